//! Key naming: the one place that formats and parses the state keys of a session.
//!
//! Every key of a session starts with its base, `{key-prefix}:{session-id}` or `{session-id}`.
//!
//! | key                    | layout  | value                                      |
//! |------------------------|---------|--------------------------------------------|
//! | `{base}:head`          | log     | the head (format 2; format 1 in 0.1.0)      |
//! | `{base}:c:{nonce}`     | log     | an immutable chunk of items                |
//! | `{base}:i:{nonce}:{n}` | log 0.1 | item `n` of a batch (read when migrating)  |
//! | `{base}:p:{nonce}`     | log 0.1 | a page of entries (read when migrating)    |
//! | `{base}:r`             | log 0.1 | the recent-items cache (deleted when migrating) |
//! | `{base}:messages`      | compat  | the Python `DaprSession` items array       |
//! | `{base}:metadata`      | compat  | the Python `DaprSession` timestamps        |

use crate::nonce;

/// The keys of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    base: String,
}

impl Keys {
    /// The keys of the session whose keys start with `base`.
    pub fn new(base: &str) -> Self {
        Keys {
            base: base.to_string(),
        }
    }

    /// The base every key starts with.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The log layout's head.
    pub fn head(&self) -> String {
        format!("{}:head", self.base)
    }

    /// The log layout's chunk named `id`.
    pub fn chunk(&self, id: &str) -> String {
        format!("{}:c:{id}", self.base)
    }

    /// Whether `key` is one of this session's chunk keys (a nonce after `{base}:c:`).
    pub fn is_chunk(&self, key: &str) -> bool {
        self.rest(key)
            .and_then(|r| r.strip_prefix("c:"))
            .is_some_and(nonce::is_nonce)
    }

    /// Item `n` of batch `batch` in the 0.1.0 log layout.
    pub fn v1_item(&self, batch: &str, n: u64) -> String {
        format!("{}:i:{batch}:{n}", self.base)
    }

    /// A page of the 0.1.0 log layout.
    pub fn v1_page(&self, page: &str) -> String {
        format!("{}:p:{page}", self.base)
    }

    /// The recent-items key of the 0.1.0 log layout.
    pub fn v1_recent(&self) -> String {
        format!("{}:r", self.base)
    }

    /// Whether `key` is an item or page key of this session in the 0.1.0 log layout.
    pub fn is_v1_key(&self, key: &str) -> bool {
        let Some(rest) = self.rest(key) else {
            return false;
        };
        let mut parts = rest.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("p"), Some(page), None, None) => nonce::is_nonce(page),
            (Some("i"), Some(batch), Some(n), None) => {
                nonce::is_nonce(batch) && n.parse::<u64>().is_ok()
            }
            _ => false,
        }
    }

    /// The compat layout's items array.
    pub fn messages(&self) -> String {
        format!("{}:messages", self.base)
    }

    /// The compat layout's timestamps.
    pub fn metadata(&self) -> String {
        format!("{}:metadata", self.base)
    }

    fn rest<'a>(&self, key: &'a str) -> Option<&'a str> {
        key.strip_prefix(self.base.as_str())?.strip_prefix(':')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_formatted_and_recognised() {
        let keys = Keys::new("t:s");
        assert_eq!(keys.head(), "t:s:head");
        assert_eq!(keys.chunk("0123456789ab"), "t:s:c:0123456789ab");
        assert!(keys.is_chunk("t:s:c:0123456789ab"));
        assert!(!keys.is_chunk("t:s:c:0123"));
        assert!(!keys.is_chunk("other:c:0123456789ab"));
        assert!(!keys.is_chunk("t:s:head"));
        assert!(keys.is_v1_key("t:s:i:0123456789ab:7"));
        assert!(keys.is_v1_key("t:s:p:0123456789ab"));
        assert!(!keys.is_v1_key("t:s:i:0123456789ab:x"));
        assert!(!keys.is_v1_key("t:s:head"));
        assert_eq!(keys.messages(), "t:s:messages");
        assert_eq!(keys.metadata(), "t:s:metadata");
        assert_eq!(keys.v1_recent(), "t:s:r");
    }
}
