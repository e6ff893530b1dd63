//! The exported `agentmem:session/session@0.2.0`: opens the wrapped session with the caller's
//! config and the middleware's own settings from `wasi:config/store`, and converts between the
//! WIT types and [`EncryptedSession`].

use crate::config::Settings;
use crate::error::Error;
use crate::import::WasiConfig;
use crate::platform::Wasi;
use crate::session::EncryptedSession;
use crate::wit::agentmem::session::session as imported;
use crate::wit::exports::agentmem::session::session as exported;

/// The type the component exports.
pub struct Component;

impl exported::Guest for Component {
    type Session = Session;
}

/// The exported `session` resource.
pub struct Session(EncryptedSession<imported::Session, Wasi>);

impl exported::GuestSession for Session {
    fn open(
        session_id: String,
        config: exported::Config,
    ) -> Result<exported::Session, exported::Error> {
        // Our own settings first: a missing or bad key fails here, before the wrapped session
        // is even opened (which sends nothing either).
        let settings = Settings::read(&WasiConfig).map_err(Error::from)?;
        let default_limit = config.default_limit;
        let inner =
            imported::Session::open(&session_id, &inner_config(config)).map_err(Error::from)?;
        Ok(exported::Session::new(Session(EncryptedSession::new(
            session_id,
            inner,
            Wasi,
            &settings,
            default_limit,
        ))))
    }

    fn id(&self) -> String {
        self.0.id().to_string()
    }

    fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>, exported::Error> {
        Ok(self.0.get_items(limit)?)
    }

    fn add_items(&self, items: Vec<String>) -> Result<(), exported::Error> {
        Ok(self.0.add_items(&items)?)
    }

    fn pop_item(&self) -> Result<Option<String>, exported::Error> {
        Ok(self.0.pop_item()?)
    }

    fn clear(&self) -> Result<(), exported::Error> {
        Ok(self.0.clear()?)
    }

    fn ping(&self) -> Result<(), exported::Error> {
        Ok(self.0.ping()?)
    }

    fn metadata(&self) -> Result<exported::SessionMetadata, exported::Error> {
        let m = self.0.metadata()?;
        Ok(exported::SessionMetadata {
            session_id: self.0.id().to_string(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }

    fn get_snapshot(&self, limit: Option<u32>) -> Result<exported::Snapshot, exported::Error> {
        let s = self.0.get_snapshot(limit)?;
        Ok(exported::Snapshot {
            items: s.items,
            first: s.first,
            version: s.version,
        })
    }

    fn replace(&self, items: Vec<String>, expected: Option<String>) -> Result<(), exported::Error> {
        Ok(self.0.replace(&items, expected.as_deref())?)
    }

    fn replace_suffix(
        &self,
        start: u64,
        items: Vec<String>,
        expected: Option<String>,
    ) -> Result<(), exported::Error> {
        Ok(self.0.replace_suffix(start, &items, expected.as_deref())?)
    }
}

/// The caller's config for the wrapped session, without `default-limit`: the middleware
/// applies it to live items itself (stored items include ones it skips).
fn inner_config(c: exported::Config) -> imported::Config {
    imported::Config {
        store_name: c.store_name,
        endpoint: c.endpoint,
        api_token: c.api_token,
        ttl_seconds: c.ttl_seconds,
        consistency: c.consistency.map(|c| match c {
            exported::Consistency::Eventual => imported::Consistency::Eventual,
            exported::Consistency::Strong => imported::Consistency::Strong,
        }),
        key_prefix: c.key_prefix,
        default_limit: None,
        timeout_ms: c.timeout_ms,
        layout: c.layout.map(|l| match l {
            exported::Layout::Log => imported::Layout::Log,
            exported::Layout::Compat => imported::Layout::Compat,
        }),
        max_items: c.max_items,
    }
}

impl From<Error> for exported::Error {
    fn from(e: Error) -> Self {
        use exported::Error as E;
        match e {
            Error::InvalidInput {
                item_index,
                message,
            } => E::InvalidInput(exported::InvalidInput {
                item_index,
                message,
            }),
            Error::Conflict(n) => E::Conflict(n),
            Error::Changed => E::Changed,
            Error::Unavailable(m) => E::Unavailable(m),
            Error::Timeout => E::Timeout,
            Error::Interrupted(m) => E::Interrupted(m),
            Error::Unauthorized => E::Unauthorized,
            Error::StoreNotFound(m) => E::StoreNotFound(m),
            Error::Unsupported(m) => E::Unsupported(m),
            Error::Corrupt(m) => E::Corrupt(m),
            Error::TooManyItems(n) => E::TooManyItems(n),
            Error::Protocol(m) => E::Protocol(m),
            Error::Store {
                status,
                error_code,
                message,
            } => E::Store(exported::StoreError {
                status,
                error_code,
                message,
            }),
            Error::Internal(m) => E::Internal(m),
        }
    }
}
