//! Statistics and the Markdown report.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use dapr_session_host_tests::daprd::DAPR_VERSION;
use dapr_session_host_tests::python::OPENAI_AGENTS;

/// Timings of one measurement, in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<f64>);

impl Samples {
    /// Adds one timing.
    pub fn push(&mut self, us: f64) {
        self.0.push(us);
    }

    fn quantile(&self, q: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return f64::NAN;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i.min(v.len() - 1)]
    }

    /// The median.
    pub fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    /// The 95th percentile.
    pub fn p95(&self) -> f64 {
        self.quantile(0.95)
    }

    /// How many timings.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// The component's cost at the host.
pub struct Costs {
    pub wasm_bytes: u64,
    pub compile: Duration,
    pub instantiate: Samples,
    pub per_instance: u64,
    pub per_session: f64,
}

/// One operation of one system at one session length.
pub struct Row {
    pub length: usize,
    pub system: String,
    pub op: String,
    pub samples: Samples,
}

/// Agent turns (`get-items(20)` + `add-items` of 2) served with `sessions` at once.
pub struct Throughput {
    pub sessions: usize,
    pub turns: u64,
    /// Requests to the sidecar, all sessions together.
    pub requests: u64,
    pub elapsed: Duration,
}

/// Everything measured.
pub struct Report {
    pub costs: Costs,
    pub floor_get: Samples,
    pub floor_post: Samples,
    pub rows: Vec<Row>,
    pub throughput: Vec<Throughput>,
    pub iterations: usize,
    pub lengths: Vec<usize>,
    /// Size of the `log` session's head at each length.
    pub head_bytes: std::collections::BTreeMap<usize, usize>,
}

fn ms(us: f64) -> String {
    if us >= 100_000.0 {
        format!("{:.0}", us / 1000.0)
    } else if us >= 10_000.0 {
        format!("{:.1}", us / 1000.0)
    } else {
        format!("{:.2}", us / 1000.0)
    }
}

const OPS: [(&str, &str); 4] = [
    ("add", "add-items (2-item turn)"),
    ("get20", "get-items(limit=20)"),
    ("getall", "get-items()"),
    ("pop", "pop-item"),
];

impl Report {
    fn median(&self, length: usize, system: &str, op: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.length == length && r.system == system && r.op == op)
            .map(|r| r.samples.median())
    }

    /// The floor an operation is compared with: raw GET for reads, raw POST for writes.
    fn floor(&self, op: &str) -> f64 {
        if op.starts_with("get") {
            self.floor_get.median()
        } else {
            self.floor_post.median()
        }
    }

    /// The report, as Markdown.
    pub fn markdown(&self, environment: &str) -> String {
        let mut m = String::new();
        let c = &self.costs;
        let _ = writeln!(m, "{environment}");
        let lengths: Vec<String> = self.lengths.iter().map(usize::to_string).collect();
        let _ = writeln!(
            m,
            "Reproduce every table: `cargo run --release -p dapr-session-host-tests --bin bench -- --iterations {} --lengths {}` \
             ({} interleaved iterations per operation and length, at most 60 at 10,000 items).\n",
            self.iterations,
            lengths.join(","),
            self.iterations
        );
        let _ = writeln!(m, "### The component at the host\n");
        let _ = writeln!(m, "| measure | value |\n|---|---|");
        let _ = writeln!(
            m,
            "| `.wasm` size | {} bytes ({:.0} KiB) |",
            c.wasm_bytes,
            c.wasm_bytes as f64 / 1024.0
        );
        let _ = writeln!(
            m,
            "| compile (Cranelift, once per process) | {:.0} ms |",
            c.compile.as_secs_f64() * 1000.0
        );
        let _ = writeln!(
            m,
            "| instantiate with `InstancePre` (median / p95 of {}) | {:.0} µs / {:.0} µs |",
            c.instantiate.len(),
            c.instantiate.median(),
            c.instantiate.p95()
        );
        let _ = writeln!(
            m,
            "| memory per instance with one session open (RSS / 200 instances) | {:.0} KiB |",
            c.per_instance as f64 / 1024.0
        );
        let _ = writeln!(
            m,
            "| memory per further open session in one instance (RSS / 10,000 sessions) | {:.0} bytes |",
            c.per_session
        );
        let _ = writeln!(m);
        let _ = writeln!(
            m,
            "### The floor: daprd's raw state API, one small key, native keep-alive client\n"
        );
        let _ = writeln!(m, "| request | median | p95 |\n|---|---|---|");
        let _ = writeln!(
            m,
            "| `GET /v1.0/state/statestore/key` | {} ms | {} ms |",
            ms(self.floor_get.median()),
            ms(self.floor_get.p95())
        );
        let _ = writeln!(
            m,
            "| `POST /v1.0/state/statestore` (one key) | {} ms | {} ms |",
            ms(self.floor_post.median()),
            ms(self.floor_post.p95())
        );
        let _ = writeln!(m);
        let _ = writeln!(m, "### Latency per operation (ms, median / p95)\n");
        let _ = writeln!(
            m,
            "`log` and `compat` are this component (in wasmtime, over daprd's HTTP API, the host keeping \
             connections alive); `python` is `DaprSession` from `{OPENAI_AGENTS}` over daprd's gRPC API; \
             \"log, no pool\" is the `log` layout under wasmtime's default outgoing HTTP, a new connection \
             per request; \"log, fresh instance\" instantiates the component for every operation, as \
             serverless hosts do per request, and is timed from instantiation to the answer. \
             \"× python\" is Python's median over ours (higher is better for us); \"× floor\" \
             is ours over the raw request (`GET` for reads, `POST` for writes). Each iteration runs \
             the blocks (one per system, and the floor) in a fresh random order, each block \
             starting with one untimed request.\n"
        );
        for (op, title) in OPS {
            let _ = writeln!(m, "#### {title}\n");
            let _ = writeln!(
                m,
                "| items | log | compat | python | log × python | log × floor | compat × python | log, no pool | log, fresh instance |"
            );
            let _ = writeln!(m, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for &length in &self.lengths {
                let cell = |system: &str| {
                    self.rows
                        .iter()
                        .find(|r| r.length == length && r.system == system && r.op == op)
                        .map_or("-".to_string(), |r| {
                            format!("{} / {}", ms(r.samples.median()), ms(r.samples.p95()))
                        })
                };
                let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
                    _ => "-".into(),
                };
                let log = self.median(length, "log", op);
                let compat = self.median(length, "compat", op);
                let python = self.median(length, "python", op);
                let _ = writeln!(
                    m,
                    "| {length} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    cell("log"),
                    cell("compat"),
                    cell("python"),
                    ratio(python, log),
                    ratio(log, Some(self.floor(op))),
                    ratio(python, compat),
                    cell("log, no pool"),
                    cell("log, fresh instance"),
                );
            }
            let _ = writeln!(m);
            if op == "get20" {
                let _ = writeln!(
                    m,
                    "`get-items(limit=20)` on the `log` layout is one `GET` of the session's head, whose \
                     tail holds the newest items. The same `GET` from the native client, for comparison:\n"
                );
                let _ = writeln!(
                    m,
                    "| items | head bytes | raw `GET` of the head | log | log × raw head `GET` | log, head answered by the host |\n|---:|---:|---:|---:|---:|---:|"
                );
                for &length in &self.lengths {
                    let raw = self.median(length, "head GET", op);
                    let log = self.median(length, "log", op);
                    let _ = writeln!(
                        m,
                        "| {length} | {} | {} | {} | {} | {} |",
                        self.head_bytes.get(&length).copied().unwrap_or(0),
                        raw.map_or("-".into(), ms),
                        log.map_or("-".into(), ms),
                        match (log, raw) {
                            (Some(l), Some(r)) if r > 0.0 => format!("{:.1}×", l / r),
                            _ => "-".into(),
                        },
                        self.median(length, "host-answered", op)
                            .map_or("-".into(), ms),
                    );
                }
                let _ = writeln!(m);
            }
        }
        let _ = writeln!(
            m,
            "### Throughput: sessions served at once from one host process\n"
        );
        let _ = writeln!(
            m,
            "Each session has its own instance and runs agent turns (`get-items(limit=20)` then a 2-item `add-items`), `log` layout.\n"
        );
        let _ = writeln!(
            m,
            "| sessions | turns | seconds | turns/s | requests to the sidecar per turn | requests/s |\n|---:|---:|---:|---:|---:|---:|"
        );
        for t in &self.throughput {
            let secs = t.elapsed.as_secs_f64();
            let _ = writeln!(
                m,
                "| {} | {} | {:.1} | {:.0} | {:.2} | {:.0} |",
                t.sessions,
                t.turns,
                secs,
                t.turns as f64 / secs,
                t.requests as f64 / t.turns.max(1) as f64,
                t.requests as f64 / secs
            );
        }
        let _ = writeln!(m);
        let _ = writeln!(m, "### Targets\n");
        let _ = writeln!(m, "| target | measured | met |\n|---|---|---|");
        let big = self.lengths.iter().copied().max().unwrap_or(0);
        for op in ["add", "get20"] {
            if let (Some(py), Some(log)) =
                (self.median(big, "python", op), self.median(big, "log", op))
            {
                let x = py / log;
                let _ = writeln!(
                    m,
                    "| {op} at {big} items ≥ 20× faster than Python | {x:.1}× | {} |",
                    if x >= 20.0 { "yes" } else { "no" }
                );
            }
        }
        for op in ["add", "pop", "get20"] {
            let worst = self
                .lengths
                .iter()
                .filter_map(|&l| self.median(l, "log", op).map(|v| (l, v / self.floor(op))))
                .fold((0, 0.0f64), |a, b| if b.1 > a.1 { b } else { a });
            let _ = writeln!(
                m,
                "| {op} within 3× of the floor at every length | worst {:.1}× (at {} items) | {} |",
                worst.1,
                worst.0,
                if worst.1 <= 3.0 { "yes" } else { "no" }
            );
        }
        let kb = self.costs.wasm_bytes as f64 / 1000.0;
        let _ = writeln!(
            m,
            "| component under 400 KB | {kb:.0} KB | {} |",
            if kb < 400.0 { "yes" } else { "no" }
        );
        m
    }
}

/// The machine and the versions, as Markdown.
pub fn environment(redis: &str, python: &Path) -> anyhow::Result<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let py = std::process::Command::new(python)
        .args(["-c", "import sys, agents, dapr.version as v; print(sys.version.split()[0], 'dapr', v.__version__)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    Ok(format!(
        "### Machine and versions\n\n\
         | | |\n|---|---|\n\
         | CPU | {cpu}, {cores} cores |\n\
         | memory | {} |\n\
         | Rust | {rustc} (host built with `--release`) |\n\
         | wasmtime | 48.0.8 |\n\
         | daprd | v{DAPR_VERSION}, `state.redis` |\n\
         | Redis | {redis} |\n\
         | Python | {py}, `{OPENAI_AGENTS}` |\n",
        mem.trim_start_matches("MemTotal:").trim()
    ))
}

/// Replaces what lies between `<!-- bench:begin -->` and `<!-- bench:end -->` in `path`
/// (appending the markers if the file has none).
pub fn write_between_markers(path: &Path, body: &str) -> anyhow::Result<()> {
    const BEGIN: &str = "<!-- bench:begin -->";
    const END: &str = "<!-- bench:end -->";
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{BEGIN}\n{body}\n{}", &text[..b], &text[e..]),
        _ => format!("{text}\n{BEGIN}\n{body}\n{END}\n"),
    };
    std::fs::write(path, new)?;
    Ok(())
}
