//! Statistics, what the report holds, the machine it ran on, and writing it into a file (the
//! tables themselves are in `tables.rs`).

use std::path::Path;
use std::time::Duration;

use dapr_session_host_tests::daprd::DAPR_VERSION;
use dapr_session_host_tests::python::OPENAI_AGENTS;

use crate::storage::Storage;

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
    /// What each system's session occupies, per length.
    pub storage: Vec<(usize, String, Storage)>,
    pub throughput: Vec<Throughput>,
    pub iterations: usize,
    pub lengths: Vec<usize>,
    /// Size of the `log` session's head at each length.
    pub head_bytes: std::collections::BTreeMap<usize, usize>,
    /// Size of the key holding each length's items as one value.
    pub same_bytes: std::collections::BTreeMap<usize, usize>,
    /// Another build of the component timed in the same run (`--baseline`).
    pub baseline: Option<Baseline>,
}

/// Another build of the component, run as the system `"log, before"`.
pub struct Baseline {
    /// Where it was read from, as given.
    pub path: String,
    /// Its size.
    pub wasm_bytes: u64,
    /// Its Cranelift compile time.
    pub compile: Duration,
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
