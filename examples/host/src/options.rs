//! What a store of the host holds, and how to set up one instance.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::transport::{Direct, Outgoing, Transport};

/// How to set up one instance.
#[derive(Clone, Default)]
pub struct InstanceOptions {
    /// Environment variables the component sees (it reads `DAPR_HTTP_ENDPOINT`,
    /// `DAPR_HTTP_PORT` and `DAPR_API_TOKEN` for the defaults of its config).
    pub env: Vec<(String, String)>,
    /// Values the component reads from `wasi:config/store@0.2.0-rc.1` (the session component
    /// reads none; the encryption middleware `dapr-session-encrypt`, composed in front of it,
    /// reads its key here: `encryption_key`, `encryption_ttl_seconds`).
    pub config: Vec<(String, String)>,
    /// A wall clock to use instead of the real one (`created-at`, `updated-at`).
    pub wall_clock: Option<Arc<dyn HostWallClock + Sync>>,
    /// Sends the instance's outgoing HTTP; [`Direct`] when `None`.
    pub transport: Option<Arc<dyn Transport>>,
}

impl std::fmt::Debug for InstanceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may hold secrets (DAPR_API_TOKEN, the encryption key): only the names are
        // shown.
        let names = |vars: &[(String, String)]| -> Vec<String> {
            vars.iter().map(|(k, _)| k.clone()).collect()
        };
        f.debug_struct("InstanceOptions")
            .field("env", &names(&self.env))
            .field("config", &names(&self.config))
            .field("wall_clock", &self.wall_clock.is_some())
            .field("transport", &self.transport.is_some())
            .finish()
    }
}

/// A shared clock, as WASI takes one.
struct SharedClock(Arc<dyn HostWallClock + Sync>);

impl HostWallClock for SharedClock {
    fn resolution(&self) -> Duration {
        self.0.resolution()
    }

    fn now(&self) -> Duration {
        self.0.now()
    }
}

/// What a store of the host holds: WASI, wasi-http and wasi-config state, and the transport.
pub struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    config: WasiConfigVariables,
    table: ResourceTable,
    outgoing: Outgoing,
}

impl HostState {
    /// The state of a new store: stderr inherited (the component never writes to it, but a
    /// trap's message would), the environment, config values, clock and transport of
    /// `options`.
    pub fn new(options: InstanceOptions) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stderr();
        for (k, v) in &options.env {
            wasi.env(k, v);
        }
        if let Some(clock) = options.wall_clock {
            wasi.wall_clock(SharedClock(clock));
        }
        let transport = options.transport.unwrap_or_else(|| Arc::new(Direct));
        HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            config: options.config.into_iter().collect(),
            table: ResourceTable::new(),
            outgoing: Outgoing(transport),
        }
    }
}

impl HostState {
    /// The store's `wasi:config/store` view.
    pub fn wasi_config(&mut self) -> WasiConfig<'_> {
        WasiConfig::from(&self.config)
    }
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
            hooks: &mut self.outgoing,
        }
    }
}
