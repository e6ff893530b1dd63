//! A wasmtime host for the session component: compiles it once, instantiates it cheaply
//! (through `InstancePre`), and calls its `session` interface with typed Rust values.
//!
//! Each [`Instance`] is one component instance with its own store, as one replica of an app
//! would have; its outgoing HTTP goes over real sockets (`wasi:http` default hooks).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use crate::intercept::{BeforeSend, Exchange, HookFuture, Hooks, Pool, Synthetic, Traffic};

mod bindings {
    wasmtime::component::bindgen!({
        world: "dapr-session",
        path: "../wit",
        exports: { default: async },
    });
}

pub use bindings::exports::agentmem::session::session::{
    Config, Consistency, Error as SessionError, InvalidInput, Layout, SessionMetadata, StoreError,
};

/// The path of the component the build script compiled.
pub const COMPONENT: &str = env!("DAPR_SESSION_WASM");
/// The path of the example HTTP service (imports `session`, exports `wasi:http/incoming-handler`).
pub const HTTP_SERVICE: &str = env!("DAPR_SESSION_HTTP_SERVICE_WASM");

/// What a store of the host holds: WASI and wasi-http state.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: Hooks,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl HostState {
    /// The state of a new store: stderr inherited, the environment, clock and hooks of
    /// `options`.
    pub fn new(options: InstanceOptions) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stderr();
        for (k, v) in &options.env {
            wasi.env(k, v);
        }
        if let Some(clock) = options.clock {
            wasi.wall_clock(clock);
        }
        HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: options.hooks,
        }
    }
}

/// A wall clock tests can set, so timestamps are exact without sleeping.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `ms` milliseconds since the Unix epoch.
    pub fn at_ms(ms: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(ms)))
    }

    /// Sets the time, in milliseconds since the Unix epoch.
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl HostWallClock for ManualClock {
    fn resolution(&self) -> Duration {
        Duration::from_millis(1)
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// How to set up one instance.
#[derive(Clone, Default)]
pub struct InstanceOptions {
    /// Environment variables the component sees.
    pub env: Vec<(String, String)>,
    /// A wall clock to use instead of the real one.
    pub clock: Option<ManualClock>,
    /// Hooks on the instance's outgoing HTTP.
    pub hooks: Hooks,
}

/// Fails if a source the built `wasm` was compiled from is newer than it: tests must never run
/// an old build. The sources are those cargo lists in the `.d` file next to the `.wasm` (so
/// test-only files, which the component never compiles, do not count); without one, every file
/// under the workspace's `src/` and `wit/` and the example service's.
pub fn check_fresh(wasm: &Path) -> anyhow::Result<()> {
    let built = std::fs::metadata(wasm)
        .and_then(|m| m.modified())
        .with_context(|| format!("component {}", wasm.display()))?;
    let sources = match std::fs::read_to_string(wasm.with_extension("d")) {
        Ok(deps) => dep_info_sources(&deps),
        Err(_) => source_tree(),
    };
    for path in sources {
        if std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|m| m > built)
        {
            anyhow::bail!(
                "component {} is older than {}: rebuild it (cargo build -p dapr-session-host-tests)",
                wasm.display(),
                path.display()
            );
        }
    }
    Ok(())
}

/// The prerequisites of the first rule of a Makefile-style dep-info file (`\ ` escapes a space).
fn dep_info_sources(deps: &str) -> Vec<PathBuf> {
    let Some(line) = deps.lines().next() else {
        return Vec::new();
    };
    let Some((_, prerequisites)) = line.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = prerequisites.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            ' ' => {
                if !current.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(PathBuf::from(current));
    }
    out
}

/// Every file under the components' source directories.
fn source_tree() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let service = root.join("examples").join("http-service");
    let mut stack = vec![
        root.join("src"),
        root.join("wit"),
        service.join("src"),
        service.join("wit"),
    ];
    let mut files = Vec::new();
    while let Some(path) = stack.pop() {
        match std::fs::read_dir(&path) {
            Ok(entries) => stack.extend(entries.flatten().map(|e| e.path())),
            Err(_) if path.is_file() => files.push(path),
            Err(_) => {}
        }
    }
    files
}

/// The compiled component, ready to be instantiated many times.
#[derive(Clone)]
pub struct Host {
    engine: Engine,
    pre: bindings::DaprSessionPre<HostState>,
}

impl Host {
    /// Compiles the component the build script produced.
    pub fn new() -> anyhow::Result<Self> {
        check_fresh(Path::new(COMPONENT))?;
        Self::from_file(Path::new(COMPONENT))
    }

    /// Compiles the component at `path`. With `DAPR_SESSION_PERFMAP=1` in the environment,
    /// wasmtime writes `/tmp/perf-<pid>.map`, so `perf report` names the component's functions.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let mut config = wasmtime::Config::new();
        if std::env::var_os("DAPR_SESSION_PERFMAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, path)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("loading component {}", path.display()))?;
        Self::from_component(engine, &component)
    }

    /// Links `component` against WASI and wasi-http.
    pub fn from_component(engine: Engine, component: &Component) -> anyhow::Result<Self> {
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = bindings::DaprSessionPre::new(linker.instantiate_pre(component)?)?;
        Ok(Host { engine, pre })
    }

    /// The engine the component was compiled with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A new instance with no environment.
    pub async fn instance(&self) -> anyhow::Result<Instance> {
        self.instance_with(InstanceOptions::default()).await
    }

    /// A new instance set up by `options`.
    pub async fn instance_with(&self, options: InstanceOptions) -> anyhow::Result<Instance> {
        let mut store = Store::new(&self.engine, HostState::new(options));
        let api = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance { store, api })
    }
}

/// A failed call: the component returned an error, or it trapped.
#[derive(Debug)]
pub enum CallError {
    /// The `error` the component returned.
    Session(SessionError),
    /// The component trapped or could not be called.
    Trap(anyhow::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Session(e) => write!(f, "session error: {e:?}"),
            CallError::Trap(e) => write!(f, "trap: {e:#}"),
        }
    }
}

impl std::error::Error for CallError {}

impl CallError {
    /// The session error, if it is one.
    pub fn session(&self) -> Option<&SessionError> {
        match self {
            CallError::Session(e) => Some(e),
            CallError::Trap(_) => None,
        }
    }
}

/// Result of a call into the component.
pub type CallResult<T> = Result<T, CallError>;

fn flatten<T>(r: wasmtime::Result<Result<T, SessionError>>) -> CallResult<T> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CallError::Session(e)),
        Err(e) => Err(CallError::Trap(e.into())),
    }
}

/// An open session handle inside an [`Instance`].
#[derive(Debug, Clone, Copy)]
pub struct SessionHandle(ResourceAny);

/// One instance of the component.
pub struct Instance {
    store: Store<HostState>,
    api: bindings::DaprSession,
}

impl Instance {
    fn session(&self) -> bindings::exports::agentmem::session::session::GuestSession<'_> {
        self.api.agentmem_session_session().session()
    }

    /// `session.open`.
    pub async fn open(&mut self, id: &str, config: &Config) -> CallResult<SessionHandle> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_open(&mut self.store, id, config).await).map(SessionHandle)
    }

    /// `session.id`.
    pub async fn id(&mut self, s: SessionHandle) -> CallResult<String> {
        let api = self.api.agentmem_session_session().session();
        api.call_id(&mut self.store, s.0)
            .await
            .map_err(|e| CallError::Trap(e.into()))
    }

    /// `session.get-items`.
    pub async fn get_items(
        &mut self,
        s: SessionHandle,
        limit: Option<u32>,
    ) -> CallResult<Vec<String>> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_get_items(&mut self.store, s.0, limit).await)
    }

    /// `session.add-items`.
    pub async fn add_items(&mut self, s: SessionHandle, items: &[String]) -> CallResult<()> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_add_items(&mut self.store, s.0, items).await)
    }

    /// `session.pop-item`.
    pub async fn pop_item(&mut self, s: SessionHandle) -> CallResult<Option<String>> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_pop_item(&mut self.store, s.0).await)
    }

    /// `session.clear`.
    pub async fn clear(&mut self, s: SessionHandle) -> CallResult<()> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_clear(&mut self.store, s.0).await)
    }

    /// `session.ping`.
    pub async fn ping(&mut self, s: SessionHandle) -> CallResult<()> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_ping(&mut self.store, s.0).await)
    }

    /// `session.metadata`.
    pub async fn metadata(&mut self, s: SessionHandle) -> CallResult<SessionMetadata> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_metadata(&mut self.store, s.0).await)
    }

    /// Drops the session resource.
    pub async fn close(&mut self, s: SessionHandle) -> anyhow::Result<()> {
        let _ = self.session();
        s.0.resource_drop_async(&mut self.store).await?;
        Ok(())
    }
}

/// A config for `store` at `endpoint`, every other field default.
pub fn config(endpoint: &str, store: &str) -> Config {
    Config {
        store_name: store.to_string(),
        endpoint: Some(endpoint.to_string()),
        api_token: None,
        ttl_seconds: None,
        consistency: None,
        key_prefix: None,
        default_limit: None,
        timeout_ms: None,
        layout: None,
    }
}

#[cfg(test)]
mod tests {
    use super::dep_info_sources;
    use std::path::PathBuf;

    #[test]
    fn reads_dep_info() {
        let deps = "/t/a.wasm: /w/src/lib.rs /w/my\\ dir/x.rs /w/wit/s.wit\n\n/w/src/lib.rs:\n";
        assert_eq!(
            dep_info_sources(deps),
            vec![
                PathBuf::from("/w/src/lib.rs"),
                PathBuf::from("/w/my dir/x.rs"),
                PathBuf::from("/w/wit/s.wit")
            ]
        );
    }
}
