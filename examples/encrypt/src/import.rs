//! The imported `agentmem:session/session@0.2.0`: the session the middleware wraps, as an
//! [`Inner`], and the imported `wasi:config/store` as a settings [`Source`].

use crate::config::Source;
use crate::error::{Error, Result};
use crate::inner::{Inner, Metadata, Snapshot};
use crate::wit::agentmem::session::session as imported;
use crate::wit::wasi::config::store;

impl Inner for imported::Session {
    fn get_snapshot(&self, limit: Option<u32>) -> Result<Snapshot> {
        let s = imported::Session::get_snapshot(self, limit)?;
        Ok(Snapshot {
            items: s.items,
            first: s.first,
            version: s.version,
        })
    }

    fn add_items(&self, items: &[String]) -> Result<()> {
        Ok(imported::Session::add_items(self, items)?)
    }

    fn replace(&self, items: &[String], expected: Option<&str>) -> Result<()> {
        Ok(imported::Session::replace(self, items, expected)?)
    }

    fn replace_suffix(&self, start: u64, items: &[String], expected: Option<&str>) -> Result<()> {
        Ok(imported::Session::replace_suffix(
            self, start, items, expected,
        )?)
    }

    fn clear(&self) -> Result<()> {
        Ok(imported::Session::clear(self)?)
    }

    fn ping(&self) -> Result<()> {
        Ok(imported::Session::ping(self)?)
    }

    fn metadata(&self) -> Result<Metadata> {
        let m = imported::Session::metadata(self)?;
        Ok(Metadata {
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl From<imported::Error> for Error {
    fn from(e: imported::Error) -> Self {
        use imported::Error as E;
        match e {
            E::InvalidInput(i) => Error::InvalidInput {
                item_index: i.item_index,
                message: i.message,
            },
            E::Conflict(n) => Error::Conflict(n),
            E::Changed => Error::Changed,
            E::Unavailable(m) => Error::Unavailable(m),
            E::Timeout => Error::Timeout,
            E::Interrupted(m) => Error::Interrupted(m),
            E::Unauthorized => Error::Unauthorized,
            E::StoreNotFound(m) => Error::StoreNotFound(m),
            E::Unsupported(m) => Error::Unsupported(m),
            E::Corrupt(m) => Error::Corrupt(m),
            E::TooManyItems(n) => Error::TooManyItems(n),
            E::Protocol(m) => Error::Protocol(m),
            E::Store(s) => Error::Store {
                status: s.status,
                error_code: s.error_code,
                message: s.message,
            },
            E::Internal(m) => Error::Internal(m),
        }
    }
}

/// `wasi:config/store`, the host's configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasiConfig;

impl Source for WasiConfig {
    fn get(&self, name: &str) -> std::result::Result<Option<String>, String> {
        store::get(name).map_err(|e| match e {
            store::Error::Upstream(m) => format!("upstream: {m}"),
            store::Error::Io(m) => format!("i/o: {m}"),
        })
    }
}
