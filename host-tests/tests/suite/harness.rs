//! A small test runner: runs every case against every selected backend, concurrently, each
//! under a time limit, and stops every backend it started before it exits, pass or fail.
//!
//! Arguments are substring filters on `backend::case` names. `SUITE_BACKENDS` picks
//! backends (comma-separated; default: all); `SUITE_ENCRYPTED=1` runs every case through the
//! encryption middleware.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use dapr_session_host_tests::client::DaprHttp;
use dapr_session_host_tests::host::{
    Config, Host, Instance, InstanceOptions, Layout, SessionHandle,
};

use crate::backend::{Backend, Kind, StartError};

/// What a case returns.
pub type CaseResult = anyhow::Result<()>;

/// The future a case's function returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = CaseResult> + Send>>;

/// One behaviour to check.
pub struct Case {
    /// Name shown in the output.
    pub name: &'static str,
    /// The check.
    pub run: fn(Ctx) -> CaseFuture,
    /// Backends the case cannot run on, and why (printed when skipped).
    pub skip_on: &'static [(Kind, &'static str)],
    /// Storage layouts the case runs with.
    pub layouts: &'static [Layout],
}

/// Both layouts.
pub const BOTH: &[Layout] = &[Layout::Log, Layout::Compat];

/// The name of a layout in test names.
pub fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::Log => "log",
        Layout::Compat => "compat",
    }
}

/// Declares a case from an `async fn(Ctx) -> CaseResult`, run with both layouts, or with
/// only `log` or `compat`.
#[macro_export]
macro_rules! case {
    ($f:path) => {
        $crate::harness::Case { name: stringify!($f), run: |c| Box::pin($f(c)), skip_on: &[], layouts: $crate::harness::BOTH }
    };
    ($f:path, log) => {
        $crate::harness::Case { name: stringify!($f), run: |c| Box::pin($f(c)), skip_on: &[], layouts: &[dapr_session_host_tests::host::Layout::Log] }
    };
    ($f:path, compat) => {
        $crate::harness::Case { name: stringify!($f), run: |c| Box::pin($f(c)), skip_on: &[], layouts: &[dapr_session_host_tests::host::Layout::Compat] }
    };
    ($f:path, $layout:ident, skip $($kind:expr => $why:expr),+) => {
        $crate::harness::Case { skip_on: &[$(($kind, $why)),+], ..$crate::case!($f, $layout) }
    };
}

/// What a case gets: the host, its backend, and helpers.
pub struct Ctx {
    /// The compiled component.
    pub host: Host,
    /// Where the state lives.
    pub backend: Arc<Backend>,
    /// The layout every config of this case uses.
    pub layout: Layout,
    case: &'static str,
    run: String,
    ids: AtomicU32,
}

impl Ctx {
    /// A session id no other case or run uses.
    pub fn id(&self, tag: &str) -> String {
        let n = self.ids.fetch_add(1, Ordering::SeqCst);
        format!(
            "{}-{}-{tag}-{}-{n}",
            self.case,
            layout_name(self.layout),
            self.run
        )
    }

    /// A config for this backend's store, every optional field unset.
    pub fn config(&self) -> Config {
        let mut c =
            dapr_session_host_tests::host::config(&self.backend.endpoint, &self.backend.store);
        c.api_token = self.backend.api_token.clone();
        c.layout = Some(self.layout);
        c
    }

    /// The key whose presence shows session `base` (prefix included) is stored.
    pub fn probe_key(&self, base: &str) -> String {
        match self.layout {
            Layout::Log => format!("{base}:head"),
            Layout::Compat => format!("{base}:messages"),
        }
    }

    /// A new component instance.
    pub async fn instance(&self) -> anyhow::Result<Instance> {
        self.host.instance().await
    }

    /// A new component instance set up by `options`.
    pub async fn instance_with(&self, options: InstanceOptions) -> anyhow::Result<Instance> {
        self.host.instance_with(options).await
    }

    /// Opens `id` with [`Ctx::config`].
    pub async fn open(&self, inst: &mut Instance, id: &str) -> anyhow::Result<SessionHandle> {
        Ok(inst.open(id, &self.config()).await?)
    }

    /// A native client for the backend's sidecar.
    pub fn http(&self) -> DaprHttp {
        DaprHttp::new(&self.backend.endpoint).with_token(self.backend.api_token.as_deref())
    }
}

struct Outcome {
    name: String,
    result: Result<(), String>,
    elapsed: Duration,
}

const CASE_TIMEOUT: Duration = Duration::from_secs(180);
const PARALLEL: usize = 6;

/// Runs `cases` and returns the process exit code.
pub fn main(cases: &'static [Case]) -> ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let list_only = std::env::args().any(|a| a == "--list");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(cases, filters, list_only));
    // Backends were stopped inside `run`; shut down whatever tasks are left.
    runtime.shutdown_timeout(Duration::from_secs(5));
    code
}

fn run_name(kind: Kind, layout: Layout, case: &Case) -> String {
    format!("{}::{}::{}", kind.name(), layout_name(layout), case.name)
}

fn selected(name: &str, filters: &[String]) -> bool {
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

async fn run(cases: &'static [Case], filters: Vec<String>, list_only: bool) -> ExitCode {
    let kinds = Kind::selected();
    if list_only {
        for kind in &kinds {
            for case in cases {
                for layout in case.layouts {
                    let name = run_name(*kind, *layout, case);
                    if selected(&name, &filters) {
                        println!("{name}: test");
                    }
                }
            }
        }
        return ExitCode::SUCCESS;
    }
    let encrypted = crate::encrypted::enabled();
    if encrypted {
        println!(
            "\nthrough the encryption middleware ({})",
            crate::encrypted::ENV
        );
        let unknown = crate::encrypted::unknown(cases);
        if !unknown.is_empty() {
            eprintln!("encrypted.rs skips cases that do not exist: {unknown:?}");
            return ExitCode::FAILURE;
        }
    }
    let loaded = if encrypted {
        crate::encrypted::host()
    } else {
        Host::new()
    };
    let host = match loaded {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cannot load the component: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let run_id = format!(
        "{:x}",
        std::process::id() ^ (Instant::now().elapsed().subsec_nanos()) ^ rand_u32()
    );
    let mut outcomes = Vec::new();
    let mut skipped = Vec::new();
    let started = Instant::now();
    for kind in kinds {
        let wanted: Vec<(&'static Case, Layout)> = cases
            .iter()
            .flat_map(|c| c.layouts.iter().map(move |l| (c, *l)))
            .filter(|(c, l)| selected(&run_name(kind, *l, c), &filters))
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let shared = match kind.start_shared().await {
            Ok(s) => s,
            Err(StartError::Skip(why)) => {
                println!(
                    "\n!!! SKIPPING all {} {} cases: {why}\n",
                    wanted.len(),
                    kind.name()
                );
                skipped.extend(wanted.iter().map(|(c, l)| run_name(kind, *l, c)));
                continue;
            }
            Err(StartError::Fail(e)) => {
                for (c, l) in &wanted {
                    outcomes.push(Outcome {
                        name: run_name(kind, *l, c),
                        result: Err(format!("backend did not start: {e:#}")),
                        elapsed: Duration::ZERO,
                    });
                }
                continue;
            }
        };
        println!("\nrunning {} cases against {}", wanted.len(), kind.name());
        let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut tasks = Vec::new();
        for (case, layout) in wanted {
            let name = run_name(kind, layout, case);
            if let Some((_, why)) = case.skip_on.iter().find(|(k, _)| *k == kind) {
                println!("test {name} ... skipped ({why})");
                skipped.push(name);
                continue;
            }
            if encrypted && let Some(why) = crate::encrypted::skip_reason(case.name, layout) {
                println!("test {name} ... skipped through encryption ({why})");
                skipped.push(name);
                continue;
            }
            let backend = match &shared {
                Some(b) => b.clone(),
                None => match Backend::test_server().await {
                    Ok(b) => Arc::new(b),
                    Err(e) => {
                        outcomes.push(Outcome {
                            name,
                            result: Err(format!("{e:#}")),
                            elapsed: Duration::ZERO,
                        });
                        continue;
                    }
                },
            };
            let ctx = Ctx {
                host: host.clone(),
                backend,
                layout,
                case: case.name,
                run: run_id.clone(),
                ids: AtomicU32::new(0),
            };
            let permit_source = semaphore.clone();
            let run = case.run;
            tasks.push(tokio::spawn(async move {
                let _permit = permit_source.acquire_owned().await;
                let t0 = Instant::now();
                let result = match tokio::time::timeout(CASE_TIMEOUT, tokio::spawn(run(ctx))).await
                {
                    Err(_) => Err(format!("timed out after {CASE_TIMEOUT:?}")),
                    Ok(Err(join)) => Err(panic_message(join)),
                    Ok(Ok(Err(e))) => Err(format!("{e:#}")),
                    Ok(Ok(Ok(()))) => Ok(()),
                };
                let outcome = Outcome {
                    name,
                    result,
                    elapsed: t0.elapsed(),
                };
                println!(
                    "test {} ... {} ({:.2}s)",
                    outcome.name,
                    if outcome.result.is_ok() {
                        "ok"
                    } else {
                        "FAILED"
                    },
                    outcome.elapsed.as_secs_f64()
                );
                outcome
            }));
        }
        for t in tasks {
            match t.await {
                Ok(o) => outcomes.push(o),
                Err(e) => outcomes.push(Outcome {
                    name: "<runner>".into(),
                    result: Err(format!("runner task failed: {e}")),
                    elapsed: Duration::ZERO,
                }),
            }
        }
        if let Some(b) = shared
            && let Err(e) = b.stop().await
        {
            outcomes.push(Outcome {
                name: format!("{}::<teardown>", kind.name()),
                result: Err(format!("{e:#}")),
                elapsed: Duration::ZERO,
            });
        }
    }
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    if !failed.is_empty() {
        println!("\nfailures:");
        for f in &failed {
            if let Err(e) = &f.result {
                println!("\n---- {} ----\n{e}", f.name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; {} skipped; finished in {:.1}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        outcomes.len() - failed.len(),
        failed.len(),
        skipped.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}

fn panic_message(join: tokio::task::JoinError) -> String {
    if join.is_panic() {
        let payload = join.into_panic();
        if let Some(s) = payload.downcast_ref::<String>() {
            return format!("panicked: {s}");
        }
        if let Some(s) = payload.downcast_ref::<&str>() {
            return format!("panicked: {s}");
        }
        return "panicked".into();
    }
    format!("cancelled: {join}")
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish() as u32
}
