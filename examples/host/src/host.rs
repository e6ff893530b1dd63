//! The compiled component: loaded and linked once, then instantiated as often as needed.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::Store;
use wasmtime::component::{Component, Linker};

use crate::instance::Instance;
use crate::options::{HostState, InstanceOptions};
use crate::wit::DaprSessionPre;

/// Why a [`Host`] or an [`Instance`] could not be made.
#[derive(Debug)]
pub enum HostError {
    /// The component file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The engine could not be configured.
    Engine(wasmtime::Error),
    /// The bytes are not a component wasmtime can compile.
    Compile(wasmtime::Error),
    /// The component's imports or exports do not match WASI, wasi-http and `dapr-session`.
    Link(wasmtime::Error),
    /// Instantiation failed (a start function trapped, or resources ran out).
    Instantiate(wasmtime::Error),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Read { path, source } => {
                write!(f, "cannot read component {}: {source}", path.display())
            }
            HostError::Engine(e) => write!(f, "cannot configure wasmtime: {e:#}"),
            HostError::Compile(e) => write!(f, "cannot compile the component: {e:#}"),
            HostError::Link(e) => write!(f, "cannot link the component: {e:#}"),
            HostError::Instantiate(e) => write!(f, "cannot instantiate the component: {e:#}"),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HostError::Read { source, .. } => Some(source),
            HostError::Engine(e)
            | HostError::Compile(e)
            | HostError::Link(e)
            | HostError::Instantiate(e) => Some(e.as_ref()),
        }
    }
}

/// The engine a [`Host`] compiles with: wasmtime's defaults with async support. With
/// `DAPR_SESSION_PERFMAP=1` in the environment wasmtime writes `/tmp/perf-<pid>.map`, so
/// `perf report` names the component's functions.
pub fn engine() -> Result<Engine, HostError> {
    let mut config = wasmtime::Config::new();
    if std::env::var_os("DAPR_SESSION_PERFMAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(HostError::Engine)
}

/// Adds what the component imports to `linker`: WASI (`wasi:cli`, clocks, random, I/O) and
/// `wasi:http/outgoing-handler`, with outgoing requests going through the store's
/// [`Transport`](crate::Transport); and `wasi:config/store@0.2.0-rc.1`, serving
/// [`InstanceOptions::config`] (what the encryption middleware composed in front of the
/// session component imports).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> Result<(), HostError> {
    wasmtime_wasi::p2::add_to_linker_async(linker).map_err(HostError::Link)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker).map_err(HostError::Link)?;
    wasmtime_wasi_config::add_to_linker(linker, HostState::wasi_config).map_err(HostError::Link)
}

/// The component, compiled and linked, ready to be instantiated many times. Cloning it is
/// cheap and shares the compiled code.
#[derive(Clone)]
pub struct Host {
    engine: Engine,
    pre: DaprSessionPre<HostState>,
}

impl Host {
    /// Compiles the component in the file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, HostError> {
        let bytes = std::fs::read(path).map_err(|source| HostError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_binary(&bytes)
    }

    /// Compiles the component in `bytes` (a `.wasm` component).
    pub fn from_binary(bytes: &[u8]) -> Result<Self, HostError> {
        let engine = engine()?;
        let component = Component::from_binary(&engine, bytes).map_err(HostError::Compile)?;
        Self::from_component(engine, &component)
    }

    /// Links a component already compiled with `engine`.
    pub fn from_component(engine: Engine, component: &Component) -> Result<Self, HostError> {
        let mut linker = Linker::<HostState>::new(&engine);
        add_to_linker(&mut linker)?;
        let pre = linker
            .instantiate_pre(component)
            .and_then(DaprSessionPre::new)
            .map_err(HostError::Link)?;
        Ok(Host { engine, pre })
    }

    /// The engine the component was compiled with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The names of the component's imports (`wasi:config/store@0.2.0-rc.1`, …), so a
    /// caller can tell, say, whether it reads [`InstanceOptions::config`] at all.
    pub fn imports(&self) -> Vec<String> {
        self.pre
            .instance_pre()
            .component()
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// A new instance: no environment, the real clock, requests sent by [`Direct`](crate::Direct).
    pub async fn instance(&self) -> Result<Instance, HostError> {
        self.instance_with(InstanceOptions::default()).await
    }

    /// A new instance set up by `options`.
    pub async fn instance_with(&self, options: InstanceOptions) -> Result<Instance, HostError> {
        let mut store = Store::new(&self.engine, HostState::new(options));
        let api = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(HostError::Instantiate)?;
        Ok(Instance::new(store, api))
    }
}
