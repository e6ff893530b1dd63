//! The component's exports: converts between the WIT types and the session, and runs each
//! call to completion on wstd's event loop.

use crate::wit::exports::agentmem::session::session as wit;
use crate::config::ApiToken;
use crate::dapr::Consistency;
use crate::error::Error;
use crate::session::Session;

/// The type the component exports.
pub struct Component;

impl wit::Guest for Component {
    type Session = Session;
}

impl wit::GuestSession for Session {
    fn open(session_id: String, config: wit::Config) -> Result<wit::Session, wit::Error> {
        let options = crate::config::Options {
            store_name: config.store_name,
            endpoint: config.endpoint,
            api_token: config.api_token.map(ApiToken::from),
            ttl_seconds: config.ttl_seconds,
            consistency: config.consistency.map(|c| match c {
                wit::Consistency::Eventual => Consistency::Eventual,
                wit::Consistency::Strong => Consistency::Strong,
            }),
            key_prefix: config.key_prefix,
            default_limit: config.default_limit,
            timeout_ms: config.timeout_ms,
            layout: config.layout.map(|l| match l {
                wit::Layout::Log => crate::config::LayoutKind::Log,
                wit::Layout::Compat => crate::config::LayoutKind::Compat,
            }),
        };
        let session = Session::open(session_id, options, |name| std::env::var(name).ok())?;
        Ok(wit::Session::new(session))
    }

    fn id(&self) -> String {
        Session::id(self).to_string()
    }

    fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>, wit::Error> {
        Ok(wstd::runtime::block_on(Session::get_items(self, limit))?)
    }

    fn add_items(&self, items: Vec<String>) -> Result<(), wit::Error> {
        Ok(wstd::runtime::block_on(Session::add_items(self, &items))?)
    }

    fn pop_item(&self) -> Result<Option<String>, wit::Error> {
        Ok(wstd::runtime::block_on(Session::pop_item(self))?)
    }

    fn clear(&self) -> Result<(), wit::Error> {
        Ok(wstd::runtime::block_on(Session::clear(self))?)
    }

    fn ping(&self) -> Result<(), wit::Error> {
        Ok(wstd::runtime::block_on(Session::ping(self))?)
    }

    fn metadata(&self) -> Result<wit::SessionMetadata, wit::Error> {
        let t = wstd::runtime::block_on(Session::metadata(self))?;
        Ok(wit::SessionMetadata {
            session_id: self.id().to_string(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        })
    }
}

impl From<Error> for wit::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidInput {
                item_index,
                message,
            } => wit::Error::InvalidInput(wit::InvalidInput {
                item_index,
                message,
            }),
            Error::Conflict(attempts) => wit::Error::Conflict(attempts),
            Error::Unavailable(m) => wit::Error::Unavailable(m),
            Error::Timeout => wit::Error::Timeout,
            Error::Unauthorized => wit::Error::Unauthorized,
            Error::StoreNotFound(m) => wit::Error::StoreNotFound(m),
            Error::Corrupt(m) => wit::Error::Corrupt(m),
            Error::Store {
                status,
                code,
                message,
            } => wit::Error::Store(wit::StoreError {
                status,
                error_code: code,
                message,
            }),
        }
    }
}
