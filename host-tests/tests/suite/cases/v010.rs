//! The 0.1.0 component (`tests/fixtures/dapr_session-0.1.0.wasm`, built from commit
//! `2dcb1d7`), run with a wasmtime bindgen of its own WIT (`agentmem:session@0.1.0`), to
//! write sessions in 0.1.0's format for the current component to read and migrate.

use std::path::Path;
use std::sync::OnceLock;

use dapr_session_host::{HostState, InstanceOptions};
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceAny};

mod bindings {
    wasmtime::component::bindgen!({
        world: "dapr-session",
        path: "tests/fixtures/session-0.1.0.wit",
        exports: { default: async },
    });
}

use bindings::exports::agentmem::session::session::{Config, Error, Layout};
use bindings::{DaprSession, DaprSessionPre};

/// The 0.1.0 component's file.
const WASM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/dapr_session-0.1.0.wasm"
);

/// The component compiled and linked, once per process.
fn pre() -> anyhow::Result<&'static DaprSessionPre<HostState>> {
    static PRE: OnceLock<Result<DaprSessionPre<HostState>, String>> = OnceLock::new();
    PRE.get_or_init(|| {
        let load = || -> anyhow::Result<DaprSessionPre<HostState>> {
            let engine = dapr_session_host::engine()?;
            let component = Component::from_file(&engine, Path::new(WASM))
                .map_err(|e| anyhow::anyhow!("compiling {WASM}: {e:#}"))?;
            let mut linker = Linker::new(&engine);
            dapr_session_host::add_to_linker(&mut linker)?;
            Ok(DaprSessionPre::new(linker.instantiate_pre(&component)?)?)
        };
        load().map_err(|e| format!("{e:#}"))
    })
    .as_ref()
    .map_err(|e| anyhow::anyhow!("the 0.1.0 component: {e}"))
}

/// One instance of the 0.1.0 component with one session open.
pub struct V010 {
    store: Store<HostState>,
    api: DaprSession,
    session: ResourceAny,
}

/// Turns a 0.1.0 call's result into an `anyhow` one.
fn check<T>(r: wasmtime::Result<Result<T, Error>>, what: &str) -> anyhow::Result<T> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(anyhow::anyhow!("0.1.0 {what}: {e:?}")),
        Err(trap) => Err(anyhow::anyhow!("0.1.0 {what} trapped: {trap:#}")),
    }
}

impl V010 {
    /// Opens session `id` (log layout) of the store `store` at `endpoint` in a new instance.
    pub async fn open(
        endpoint: &str,
        store: &str,
        api_token: Option<String>,
        id: &str,
    ) -> anyhow::Result<V010> {
        let pre = pre()?;
        let mut st = Store::new(pre.engine(), HostState::new(InstanceOptions::default()));
        let api = pre.instantiate_async(&mut st).await?;
        let config = Config {
            store_name: store.to_string(),
            endpoint: Some(endpoint.to_string()),
            api_token,
            ttl_seconds: None,
            consistency: None,
            key_prefix: None,
            default_limit: None,
            timeout_ms: None,
            layout: Some(Layout::Log),
        };
        let session = check(
            api.agentmem_session_session()
                .session()
                .call_open(&mut st, id, &config)
                .await,
            "open",
        )?;
        Ok(V010 {
            store: st,
            api,
            session,
        })
    }

    /// `add-items`.
    pub async fn add(&mut self, items: &[String]) -> anyhow::Result<()> {
        let api = self.api.agentmem_session_session().session();
        check(
            api.call_add_items(&mut self.store, self.session, items)
                .await,
            "add-items",
        )
    }

    /// `pop-item`.
    pub async fn pop(&mut self) -> anyhow::Result<Option<String>> {
        let api = self.api.agentmem_session_session().session();
        check(
            api.call_pop_item(&mut self.store, self.session).await,
            "pop-item",
        )
    }

    /// `get-items`.
    pub async fn get(&mut self, limit: Option<u32>) -> anyhow::Result<Vec<String>> {
        let api = self.api.agentmem_session_session().session();
        check(
            api.call_get_items(&mut self.store, self.session, limit)
                .await,
            "get-items",
        )
    }

    /// `metadata`: created-at and updated-at.
    pub async fn times(&mut self) -> anyhow::Result<(Option<u64>, Option<u64>)> {
        let api = self.api.agentmem_session_session().session();
        let m = check(
            api.call_metadata(&mut self.store, self.session).await,
            "metadata",
        )?;
        Ok((m.created_at, m.updated_at))
    }
}
