//! The component's exports: converts between the WIT types and the session, and runs each
//! call to completion on the component's runtime ([`crate::runtime`]).

use crate::config::{ApiToken, LayoutKind, Options};
use crate::dapr::Consistency;
use crate::error::Error;
use crate::session::Session;
use crate::wit::exports::agentmem::session::session as wit;

/// The type the component exports.
pub struct Component;

impl wit::Guest for Component {
    type Session = Session;
}

fn run<T>(f: impl std::future::Future<Output = crate::error::Result<T>>) -> Result<T, wit::Error> {
    Ok(crate::runtime::block_on(f)?)
}

impl wit::GuestSession for Session {
    fn open(session_id: String, config: wit::Config) -> Result<wit::Session, wit::Error> {
        let options = Options {
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
                wit::Layout::Log => LayoutKind::Log,
                wit::Layout::Compat => LayoutKind::Compat,
            }),
            max_items: config.max_items,
        };
        let session = Session::open(session_id, options, |name| std::env::var(name).ok())?;
        Ok(wit::Session::new(session))
    }

    fn id(&self) -> String {
        Session::id(self).to_string()
    }

    fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>, wit::Error> {
        run(Session::get_items(self, limit))
    }

    fn add_items(&self, items: Vec<String>) -> Result<(), wit::Error> {
        run(Session::add_items(self, &items))
    }

    fn pop_item(&self) -> Result<Option<String>, wit::Error> {
        run(Session::pop_item(self))
    }

    fn clear(&self) -> Result<(), wit::Error> {
        run(Session::clear(self))
    }

    fn ping(&self) -> Result<(), wit::Error> {
        run(Session::ping(self))
    }

    fn metadata(&self) -> Result<wit::SessionMetadata, wit::Error> {
        let t = run(Session::metadata(self))?;
        Ok(wit::SessionMetadata {
            session_id: self.id().to_string(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        })
    }

    fn get_snapshot(&self, limit: Option<u32>) -> Result<wit::Snapshot, wit::Error> {
        let s = run(Session::get_snapshot(self, limit))?;
        Ok(wit::Snapshot {
            items: s.items,
            first: s.first,
            version: s.version,
        })
    }

    fn replace(&self, items: Vec<String>, expected: Option<String>) -> Result<(), wit::Error> {
        run(Session::replace(self, &items, expected.as_deref()))
    }

    fn replace_suffix(
        &self,
        start: u64,
        items: Vec<String>,
        expected: Option<String>,
    ) -> Result<(), wit::Error> {
        run(Session::replace_suffix(
            self,
            start,
            &items,
            expected.as_deref(),
        ))
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
            Error::Changed => wit::Error::Changed,
            Error::Unavailable(m) => wit::Error::Unavailable(m),
            Error::Timeout => wit::Error::Timeout,
            Error::Interrupted(m) => wit::Error::Interrupted(m),
            Error::Unauthorized => wit::Error::Unauthorized,
            Error::StoreNotFound(m) => wit::Error::StoreNotFound(m),
            Error::Unsupported(m) => wit::Error::Unsupported(m),
            Error::Corrupt(m) => wit::Error::Corrupt(m),
            Error::TooManyItems(n) => wit::Error::TooManyItems(n),
            Error::Protocol(m) => wit::Error::Protocol(m),
            Error::Store {
                status,
                code,
                message,
            } => wit::Error::Store(wit::StoreError {
                status,
                error_code: code,
                message,
            }),
            Error::Internal(m) => wit::Error::Internal(m),
        }
    }
}
