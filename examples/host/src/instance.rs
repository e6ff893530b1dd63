//! One instance of the component and typed calls into its `session` interface.

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use crate::options::HostState;
use crate::wit::{Config, DaprSession, SessionError, SessionMetadata, Snapshot};

/// A failed call: the component returned an error, or it trapped.
#[derive(Debug)]
pub enum CallError {
    /// The `error` the component returned.
    Session(SessionError),
    /// The component trapped or could not be called.
    Trap(wasmtime::Error),
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

/// The result of a call into the component.
pub type CallResult<T> = Result<T, CallError>;

fn flatten<T>(r: wasmtime::Result<Result<T, SessionError>>) -> CallResult<T> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CallError::Session(e)),
        Err(e) => Err(CallError::Trap(e)),
    }
}

/// An open `session` resource inside an [`Instance`]; valid only in the instance that
/// opened it.
#[derive(Debug, Clone, Copy)]
pub struct SessionHandle(ResourceAny);

/// One instance of the component, with its own store.
pub struct Instance {
    store: Store<HostState>,
    api: DaprSession,
}

impl Instance {
    pub(crate) fn new(store: Store<HostState>, api: DaprSession) -> Self {
        Instance { store, api }
    }

    /// `session.open`: validates the id and the config; sends nothing.
    pub async fn open(&mut self, id: &str, config: &Config) -> CallResult<SessionHandle> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_open(&mut self.store, id, config).await).map(SessionHandle)
    }

    /// `session.id`.
    pub async fn id(&mut self, s: SessionHandle) -> CallResult<String> {
        let api = self.api.agentmem_session_session().session();
        api.call_id(&mut self.store, s.0)
            .await
            .map_err(CallError::Trap)
    }

    /// `session.get-items`: the newest `limit` items, oldest first.
    pub async fn get_items(
        &mut self,
        s: SessionHandle,
        limit: Option<u32>,
    ) -> CallResult<Vec<String>> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_get_items(&mut self.store, s.0, limit).await)
    }

    /// `session.add-items`: appends one atomic batch.
    pub async fn add_items(&mut self, s: SessionHandle, items: &[String]) -> CallResult<()> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_add_items(&mut self.store, s.0, items).await)
    }

    /// `session.pop-item`: removes and returns the newest item.
    pub async fn pop_item(&mut self, s: SessionHandle) -> CallResult<Option<String>> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_pop_item(&mut self.store, s.0).await)
    }

    /// `session.clear`: deletes the items and the metadata.
    pub async fn clear(&mut self, s: SessionHandle) -> CallResult<()> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_clear(&mut self.store, s.0).await)
    }

    /// `session.ping`: the sidecar is ready and has the state store.
    pub async fn ping(&mut self, s: SessionHandle) -> CallResult<()> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_ping(&mut self.store, s.0).await)
    }

    /// `session.metadata`: the session id, created-at and updated-at.
    pub async fn metadata(&mut self, s: SessionHandle) -> CallResult<SessionMetadata> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_metadata(&mut self.store, s.0).await)
    }

    /// `session.get-snapshot`: the newest `limit` items, their position and the version.
    pub async fn get_snapshot(
        &mut self,
        s: SessionHandle,
        limit: Option<u32>,
    ) -> CallResult<Snapshot> {
        let api = self.api.agentmem_session_session().session();
        flatten(api.call_get_snapshot(&mut self.store, s.0, limit).await)
    }

    /// `session.replace`: the whole history, atomically, if still at `expected`.
    pub async fn replace(
        &mut self,
        s: SessionHandle,
        items: &[String],
        expected: Option<&str>,
    ) -> CallResult<()> {
        let api = self.api.agentmem_session_session().session();
        flatten(
            api.call_replace(&mut self.store, s.0, items, expected)
                .await,
        )
    }

    /// `session.replace-suffix`: the items from `start` on, atomically, if still at
    /// `expected`.
    pub async fn replace_suffix(
        &mut self,
        s: SessionHandle,
        start: u64,
        items: &[String],
        expected: Option<&str>,
    ) -> CallResult<()> {
        let api = self.api.agentmem_session_session().session();
        flatten(
            api.call_replace_suffix(&mut self.store, s.0, start, items, expected)
                .await,
        )
    }

    /// Drops the `session` resource.
    pub async fn close(&mut self, s: SessionHandle) -> CallResult<()> {
        s.0.resource_drop_async(&mut self.store)
            .await
            .map_err(CallError::Trap)
    }
}
