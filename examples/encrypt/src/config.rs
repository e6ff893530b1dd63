//! The middleware's own settings, read from `wasi:config/store` when a session is opened.
//!
//! | name | value | default |
//! |---|---|---|
//! | `encryption_key` | the master key: a Fernet key (URL-safe base64 of 32 bytes) or any other text (its UTF-8 bytes), as Python's `EncryptedSession(encryption_key=...)` | required |
//! | `encryption_ttl_seconds` | items older than this many seconds (from their write) are skipped, and dropped by writes that pass them | no expiry |
//! | `encryption_max_scan_items` | stored items one limited read may fetch in total while it widens its window | 10000 |
//!
//! The names fit Spin variables (lower case and `_`) and wasmCloud config. The key never
//! comes from the session's `config` record and never appears in an error or a log.

use crate::error::Error;
use crate::key::{KeyError, MasterKey};

/// Name of the master key's value.
pub const KEY: &str = "encryption_key";
/// Name of the item TTL's value.
pub const TTL_SECONDS: &str = "encryption_ttl_seconds";
/// Name of the scan bound's value.
pub const MAX_SCAN_ITEMS: &str = "encryption_max_scan_items";
/// Scan bound when none is configured.
pub const DEFAULT_MAX_SCAN_ITEMS: u32 = 10_000;

/// Where settings come from: `wasi:config/store` in the component, a map in tests.
pub trait Source {
    /// The value named `name`, `None` when it is not set, `Err` with the store's message when
    /// the store failed.
    fn get(&self, name: &str) -> Result<Option<String>, String>;
}

/// The middleware's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The master key.
    pub key: MasterKey,
    /// Item TTL in seconds; `None`: items never expire.
    pub ttl_seconds: Option<u32>,
    /// Bound on stored items one limited read fetches.
    pub max_scan_items: u32,
}

/// Why the settings were refused. Never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No key configured.
    #[error("no encryption key: set the `{KEY}` value in the host's wasi:config store")]
    MissingKey,
    /// The key is unusable.
    #[error("the `{KEY}` value is unusable: {0}")]
    BadKey(KeyError),
    /// A number is not a whole number in range.
    #[error(
        "the `{name}` value {value:?} is not a whole number from 1 to {}",
        u32::MAX
    )]
    BadNumber {
        /// The value's name.
        name: &'static str,
        /// The value as configured.
        value: String,
    },
    /// The configuration store failed.
    #[error("the wasi:config store failed reading `{name}`: {message}")]
    Store {
        /// The value's name.
        name: &'static str,
        /// The store's message.
        message: String,
    },
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Store { .. } => Error::Unavailable(e.to_string()),
            _ => Error::invalid(e.to_string()),
        }
    }
}

impl Settings {
    /// Reads and checks every setting.
    pub fn read(source: &dyn Source) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            source
                .get(name)
                .map_err(|message| ConfigError::Store { name, message })
        };
        let key = get(KEY)?.ok_or(ConfigError::MissingKey)?;
        let key = MasterKey::parse(&key).map_err(ConfigError::BadKey)?;
        let ttl_seconds = get(TTL_SECONDS)?
            .map(|v| positive(TTL_SECONDS, v))
            .transpose()?;
        let max_scan_items = get(MAX_SCAN_ITEMS)?
            .map(|v| positive(MAX_SCAN_ITEMS, v))
            .transpose()?
            .unwrap_or(DEFAULT_MAX_SCAN_ITEMS);
        Ok(Self {
            key,
            ttl_seconds,
            max_scan_items,
        })
    }
}

/// A whole number from 1 to `u32::MAX`, surrounding whitespace allowed.
fn positive(name: &'static str, value: String) -> Result<u32, ConfigError> {
    let trimmed = value.trim();
    match trimmed.parse::<u32>() {
        Ok(n) if n > 0 && trimmed.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(ConfigError::BadNumber { name, value }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Map(HashMap<&'static str, &'static str>);

    impl Source for Map {
        fn get(&self, name: &str) -> Result<Option<String>, String> {
            Ok(self.0.get(name).map(|v| v.to_string()))
        }
    }

    fn read(pairs: &[(&'static str, &'static str)]) -> Result<Settings, ConfigError> {
        Settings::read(&Map(pairs.iter().copied().collect()))
    }

    #[test]
    fn key_alone_gives_the_defaults() {
        let s = read(&[(KEY, "secret")]).unwrap();
        assert_eq!(s.key.bytes(), b"secret");
        assert_eq!(s.ttl_seconds, None);
        assert_eq!(s.max_scan_items, DEFAULT_MAX_SCAN_ITEMS);
        let s = read(&[
            (KEY, "secret"),
            (TTL_SECONDS, " 600\n"),
            (MAX_SCAN_ITEMS, "50"),
        ])
        .unwrap();
        assert_eq!((s.ttl_seconds, s.max_scan_items), (Some(600), 50));
    }

    #[test]
    fn missing_or_bad_values_are_typed_errors_without_the_key() {
        assert_eq!(read(&[]).unwrap_err(), ConfigError::MissingKey);
        assert_eq!(
            read(&[(KEY, "")]).unwrap_err(),
            ConfigError::BadKey(KeyError::Empty)
        );
        assert_eq!(
            read(&[(KEY, "\n")]).unwrap_err(),
            ConfigError::BadKey(KeyError::Blank)
        );
        for bad in ["0", "-1", "+5", "1.5", "ten", "", "4294967296"] {
            let e = read(&[(KEY, "hunter2-key"), (TTL_SECONDS, bad)]).unwrap_err();
            assert!(
                matches!(
                    e,
                    ConfigError::BadNumber {
                        name: TTL_SECONDS,
                        ..
                    }
                ),
                "{bad}"
            );
            let e = Error::from(e);
            assert!(matches!(e, Error::InvalidInput { .. }));
            assert!(!e.to_string().contains("hunter2"));
        }
        let e = read(&[(KEY, "k"), (MAX_SCAN_ITEMS, "0")]).unwrap_err();
        assert!(matches!(
            e,
            ConfigError::BadNumber {
                name: MAX_SCAN_ITEMS,
                ..
            }
        ));
    }

    #[test]
    fn store_failures_are_unavailable() {
        struct Failing;
        impl Source for Failing {
            fn get(&self, _: &str) -> Result<Option<String>, String> {
                Err("vault sealed".into())
            }
        }
        let e = Error::from(Settings::read(&Failing).unwrap_err());
        assert_eq!(
            e,
            Error::Unavailable(
                "the wasi:config store failed reading `encryption_key`: vault sealed".into()
            )
        );
    }
}
