//! The harness's view of the host: the product host (`dapr-session-host`) loaded with the
//! component this build made (or the one `DAPR_SESSION_COMPONENT` names), refusing a
//! component older than its sources, with test options: a settable clock and [`Hooks`] that
//! record and steer the component's outgoing HTTP. [`Host::encrypted`] loads the encryption
//! middleware composed in front of that component instead, with its key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::Engine;
use wasmtime_wasi::HostWallClock;

pub use crate::intercept::{BeforeSend, Exchange, HookFuture, Hooks, Synthetic, Traffic};
pub use dapr_session_host::{
    CallError, CallResult, Config, Consistency, HostState, Instance, InvalidInput, Layout, Pool,
    SessionError, SessionHandle, SessionMetadata, Snapshot, StoreError, config,
};

/// The path of the component the build script compiled.
pub const COMPONENT: &str = env!("DAPR_SESSION_WASM");
/// The path of the example HTTP service (imports `session`, exports `wasi:http/incoming-handler`).
pub const HTTP_SERVICE: &str = env!("DAPR_SESSION_HTTP_SERVICE_WASM");
/// The path of the encryption middleware (`dapr-session-encrypt`: imports and exports
/// `session`, imports `wasi:config/store`).
pub const ENCRYPT: &str = env!("DAPR_SESSION_ENCRYPT_WASM");

/// The environment variable that names another build of the component to test (for example
/// the one `cargo component build` makes).
pub const COMPONENT_ENV: &str = "DAPR_SESSION_COMPONENT";

/// The component under test: `$DAPR_SESSION_COMPONENT` if set, else [`COMPONENT`].
pub fn component() -> PathBuf {
    std::env::var_os(COMPONENT_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(COMPONENT), PathBuf::from)
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Fails if `wasm` is older than a source it was built from (cargo's dep-info next to it
/// lists them; without one, every file under the components' source directories counts):
/// tests must never run an old build.
pub fn check_fresh(wasm: &Path) -> anyhow::Result<()> {
    let root = root();
    let service = root.join("examples").join("http-service");
    let encrypt = root.join("examples").join("encrypt");
    let fallback = [
        root.join("src"),
        root.join("wit"),
        service.join("src"),
        service.join("wit"),
        encrypt.join("src"),
        encrypt.join("wit"),
    ];
    dapr_session_build::check_fresh(wasm, &fallback)
        .context("rebuild it (cargo build -p dapr-session-host-tests)")
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
    /// `wasi:config/store` values (the encryption middleware's key and TTL); when empty, the
    /// [`Host`]'s own.
    pub config: Vec<(String, String)>,
    /// A wall clock to use instead of the real one.
    pub clock: Option<ManualClock>,
    /// Hooks on the instance's outgoing HTTP.
    pub hooks: Hooks,
}

impl InstanceOptions {
    /// The product host's options for these.
    pub fn to_host(&self) -> dapr_session_host::InstanceOptions {
        dapr_session_host::InstanceOptions {
            env: self.env.clone(),
            config: self.config.clone(),
            wall_clock: self
                .clock
                .clone()
                .map(|c| Arc::new(c) as Arc<dyn HostWallClock + Sync>),
            transport: Some(self.hooks.transport()),
        }
    }
}

/// The compiled component, ready to be instantiated many times.
#[derive(Clone)]
pub struct Host {
    inner: dapr_session_host::Host,
    /// `wasi:config/store` values of instances whose options name none.
    config: Vec<(String, String)>,
}

impl Host {
    /// Compiles the component under test ([`component`]), after checking it is not older
    /// than its sources.
    pub fn new() -> anyhow::Result<Self> {
        let wasm = component();
        check_fresh(&wasm)?;
        Self::from_file(&wasm)
    }

    /// Compiles the component at `path`.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        Ok(Host {
            inner: dapr_session_host::Host::from_file(path)?,
            config: Vec::new(),
        })
    }

    /// Compiles the encryption middleware ([`ENCRYPT`]) with the component under test
    /// ([`component`]) plugged into its `session` import, as `wac plug` composes them; every
    /// instance gets `config` (at least `encryption_key`) in `wasi:config/store` unless its
    /// options name their own.
    pub fn encrypted(config: &[(&str, &str)]) -> anyhow::Result<Self> {
        let session = component();
        check_fresh(&session)?;
        check_fresh(Path::new(ENCRYPT))?;
        let composed = crate::compose::plug(
            &std::fs::read(ENCRYPT).with_context(|| format!("reading {ENCRYPT}"))?,
            &std::fs::read(&session).with_context(|| format!("reading {}", session.display()))?,
        )
        .context("composing the middleware with the session component")?;
        Ok(Host {
            inner: dapr_session_host::Host::from_binary(&composed)?,
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    /// The product host inside.
    pub fn inner(&self) -> &dapr_session_host::Host {
        &self.inner
    }

    /// The engine the component was compiled with.
    pub fn engine(&self) -> &Engine {
        self.inner.engine()
    }

    /// A new instance with no environment.
    pub async fn instance(&self) -> anyhow::Result<Instance> {
        self.instance_with(InstanceOptions::default()).await
    }

    /// A new instance set up by `options`.
    pub async fn instance_with(&self, mut options: InstanceOptions) -> anyhow::Result<Instance> {
        if options.config.is_empty() {
            options.config = self.config.clone();
        }
        Ok(self.inner.instance_with(options.to_host()).await?)
    }
}
