//! A real daprd for the harness: built once from the Go module proxy (the wrapper module in
//! `host-tests/daprd/`), cached by version outside the clone, and started standalone on free
//! loopback ports with no placement, no scheduler, no metrics and no multicast name resolution.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cache::{build_once, cache_dir};
use crate::client::DaprHttp;
use crate::process::{Process, TempDir, free_port, wait_until};
use crate::redis::which;

/// The Dapr release the wrapper module pins.
pub const DAPR_VERSION: &str = "1.18.2";

const WRAPPER: [(&str, &str); 3] = [
    ("go.mod", include_str!("../daprd/go.mod")),
    ("go.sum", include_str!("../daprd/go.sum")),
    ("main.go", include_str!("../daprd/main.go")),
];

/// Why no daprd binary can be had.
#[derive(Debug)]
pub enum Unavailable {
    /// There is no Go toolchain on `PATH` (and `DAPRD_BIN` is unset).
    NoGo,
    /// Building failed.
    BuildFailed(String),
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NoGo => write!(
                f,
                "no Go toolchain on PATH to build daprd (set DAPRD_BIN to use a prebuilt daprd)"
            ),
            Unavailable::BuildFailed(why) => write!(f, "building daprd failed: {why}"),
        }
    }
}

impl std::error::Error for Unavailable {}

fn wrapper_hash() -> String {
    // FNV-1a over the wrapper module: a new pin or a changed main gets a new cache entry.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, text) in WRAPPER {
        for b in name.bytes().chain(text.bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Where the cached daprd of this wrapper lives.
pub fn cached_binary() -> PathBuf {
    cache_dir()
        .join("daprd")
        .join(format!("v{DAPR_VERSION}-{}", wrapper_hash()))
        .join("daprd")
}

/// The daprd binary: `DAPRD_BIN` if set, else the cached build, else a fresh build (minutes,
/// once per machine; processes that need it meanwhile wait for that one build). Build output
/// goes to stderr.
pub fn binary() -> Result<PathBuf, Unavailable> {
    if let Some(bin) = std::env::var_os("DAPRD_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let target = cached_binary();
    if target.is_file() {
        return Ok(target);
    }
    let go = which("go").ok_or(Unavailable::NoGo)?;
    build_once(&target, "building daprd", || build(&go, &target))
        .map_err(|e| Unavailable::BuildFailed(format!("{e:#}")))?;
    Ok(target)
}

/// Builds daprd into `target`. The caller holds the cache lock, so the work directory is
/// this wrapper's own; a crashed build's leftovers are removed first.
fn build(go: &Path, target: &Path) -> anyhow::Result<()> {
    let dir = target.parent().context("cache path has no parent")?;
    let work = dir.with_file_name(format!("build-{}", wrapper_hash()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    for (name, text) in WRAPPER {
        std::fs::write(work.join(name), text)?;
    }
    eprintln!(
        "building daprd v{DAPR_VERSION} from the Go module proxy into {} (once per machine; takes minutes)",
        target.display()
    );
    let started = Instant::now();
    let status = Command::new(go)
        .current_dir(&work)
        .args([
            "build",
            "-tags",
            "stablecomponents",
            "-trimpath",
            "-ldflags",
        ])
        .arg(format!(
            "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version={DAPR_VERSION}"
        ))
        .args(["-o", "daprd", "."])
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-mod=readonly")
        .status()
        .context("running go build")?;
    if !status.success() {
        bail!("go build exited with {status}");
    }
    let elapsed = started.elapsed();
    std::fs::create_dir_all(dir)?;
    let built = work.join("daprd");
    let size = std::fs::metadata(&built)?.len();
    // Rename is atomic: a process that does not take the lock sees no binary or a whole one.
    std::fs::rename(&built, target)?;
    std::fs::write(
        dir.join("build.txt"),
        format!(
            "daprd v{DAPR_VERSION}: go build took {:.0} s, binary {size} bytes\n",
            elapsed.as_secs_f64()
        ),
    )?;
    let _ = std::fs::remove_dir_all(&work);
    eprintln!(
        "built daprd in {:.0} s ({size} bytes)",
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// A Dapr component to load.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// `metadata.name`.
    pub name: String,
    /// `spec.type`, e.g. `state.redis`.
    pub kind: String,
    /// `spec.version`, e.g. `v1`.
    pub version: String,
    /// `spec.metadata` name/value pairs.
    pub metadata: Vec<(String, String)>,
}

impl ComponentSpec {
    /// `state.redis` against `address` (`host:port`).
    pub fn redis(name: &str, address: &str) -> Self {
        ComponentSpec {
            name: name.into(),
            kind: "state.redis".into(),
            version: "v1".into(),
            metadata: vec![
                ("redisHost".into(), address.into()),
                ("redisPassword".into(), String::new()),
            ],
        }
    }

    /// `state.sqlite` on the file `path`; expired rows are removed every second.
    pub fn sqlite(name: &str, path: &Path) -> Self {
        ComponentSpec {
            name: name.into(),
            kind: "state.sqlite".into(),
            version: "v1".into(),
            metadata: vec![
                ("connectionString".into(), path.display().to_string()),
                ("cleanupInterval".into(), "1s".into()),
            ],
        }
    }

    /// `state.in-memory`.
    pub fn in_memory(name: &str) -> Self {
        ComponentSpec {
            name: name.into(),
            kind: "state.in-memory".into(),
            version: "v1".into(),
            metadata: Vec::new(),
        }
    }

    /// `state.postgresql` v2 (the version new applications should use: exact value bytes,
    /// UUID etags) on the database `connection_string` names; expired rows are removed
    /// every second.
    pub fn postgres(name: &str, connection_string: &str) -> Self {
        ComponentSpec {
            name: name.into(),
            kind: "state.postgresql".into(),
            version: "v2".into(),
            metadata: vec![
                ("connectionString".into(), connection_string.into()),
                ("cleanupInterval".into(), "1s".into()),
            ],
        }
    }

    fn yaml(&self) -> String {
        let mut y = format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {}\nspec:\n  type: {}\n  version: {}\n  metadata:{}\n",
            self.name,
            self.kind,
            self.version,
            if self.metadata.is_empty() { " []" } else { "" }
        );
        for (k, v) in &self.metadata {
            y.push_str(&format!(
                "  - name: {k}\n    value: {}\n",
                serde_json::Value::String(v.clone())
            ));
        }
        y
    }
}

/// How to start daprd.
#[derive(Debug, Clone)]
pub struct DaprdOptions {
    /// `--app-id`.
    pub app_id: String,
    /// Components to load.
    pub components: Vec<ComponentSpec>,
    /// If set, started with `DAPR_API_TOKEN` so every API call needs it.
    pub api_token: Option<String>,
}

/// A running daprd, stopped on drop.
#[derive(Debug)]
pub struct Daprd {
    http_port: u16,
    grpc_port: u16,
    internal_port: u16,
    options: DaprdOptions,
    binary: PathBuf,
    process: Process,
    dir: TempDir,
}

impl Daprd {
    /// Builds (if needed) and starts daprd, and waits until `/v1.0/healthz` answers 204.
    pub async fn start(options: DaprdOptions) -> anyhow::Result<Self> {
        let binary = binary()?;
        let dir = TempDir::new("daprd")?;
        let resources = dir.path().join("resources");
        std::fs::create_dir_all(&resources)?;
        for c in &options.components {
            std::fs::write(resources.join(format!("{}.yaml", c.name)), c.yaml())?;
        }
        // The kubernetes resolver's Init does no I/O; the default (mDNS) would multicast.
        std::fs::write(
            dir.path().join("config.yaml"),
            "apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: dapr-session-test\nspec:\n  nameResolution:\n    component: kubernetes\n",
        )?;
        let (http_port, grpc_port, internal_port) = (free_port()?, free_port()?, free_port()?);
        let process = spawn(
            &binary,
            &options,
            dir.path(),
            http_port,
            grpc_port,
            internal_port,
        )?;
        let mut daprd = Daprd {
            http_port,
            grpc_port,
            internal_port,
            options,
            binary,
            process,
            dir,
        };
        daprd.wait_ready().await?;
        Ok(daprd)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let http = DaprHttp::new(&self.endpoint());
        let ready = wait_until(Duration::from_secs(30), || {
            let http = http.clone();
            async move {
                http.send(http::Method::GET, "/v1.0/healthz", None, &[])
                    .await
                    .is_ok_and(|a| a.status == 204)
            }
        })
        .await;
        if !ready {
            let exited = self.process.exited();
            bail!(
                "daprd was not ready after 30 s (exited: {exited:?}); log tail:\n{}",
                self.process.log_tail(30)
            );
        }
        Ok(())
    }

    /// `http://127.0.0.1:{http port}`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The gRPC API port (for gRPC clients such as the Python SDK).
    pub fn grpc_port(&self) -> u16 {
        self.grpc_port
    }

    /// The API token daprd wants, if any.
    pub fn api_token(&self) -> Option<&str> {
        self.options.api_token.as_deref()
    }

    /// The app id (daprd stores keys as `{app_id}||{key}`).
    pub fn app_id(&self) -> &str {
        &self.options.app_id
    }

    /// The last lines of daprd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Stops daprd gracefully.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.process.stop(Duration::from_secs(10))
    }

    /// Kills daprd at once, as a crash would.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.process.kill()
    }

    /// Starts daprd again on the same ports with the same components.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.stop(Duration::from_secs(10))?;
        self.process = spawn(
            &self.binary,
            &self.options,
            self.dir.path(),
            self.http_port,
            self.grpc_port,
            self.internal_port,
        )?;
        self.wait_ready().await
    }
}

fn spawn(
    binary: &Path,
    options: &DaprdOptions,
    dir: &Path,
    http_port: u16,
    grpc_port: u16,
    internal_port: u16,
) -> anyhow::Result<Process> {
    let mut cmd = Command::new(binary);
    cmd.current_dir(dir)
        .args(["--app-id", &options.app_id, "--mode", "standalone"])
        .arg("--resources-path")
        .arg(dir.join("resources"))
        .arg("--config")
        .arg(dir.join("config.yaml"))
        .args(["--dapr-http-port", &http_port.to_string()])
        .args(["--dapr-grpc-port", &grpc_port.to_string()])
        .args(["--dapr-internal-grpc-port", &internal_port.to_string()])
        .args(["--dapr-listen-addresses", "127.0.0.1"])
        .args(["--dapr-internal-grpc-listen-address", "127.0.0.1"])
        .args(["--enable-metrics=false", "--log-level", "info"])
        // A clean environment: no DAPR_*, OTEL_* or scheduler addresses leak in.
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir);
    if let Some(token) = &options.api_token {
        cmd.env("DAPR_API_TOKEN", token);
    }
    let log = dir.join(format!("daprd-{http_port}.log"));
    Process::spawn("daprd", cmd, &log)
}
