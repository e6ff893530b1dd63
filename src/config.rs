//! Session configuration: what the caller passed to `open`, defaults from the environment,
//! and validation of both.

use std::time::Duration;

use crate::dapr::Consistency;
use crate::error::{Error, Result};

/// Default request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest accepted session id, in bytes. Keeps keys within every Dapr store's key limits.
pub const MAX_SESSION_ID_BYTES: usize = 512;
/// Longest accepted key prefix, in bytes.
pub const MAX_KEY_PREFIX_BYTES: usize = 128;

/// How a session is laid out in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LayoutKind {
    /// A head and immutable chunks (the default).
    #[default]
    Log,
    /// The Python `DaprSession` layout.
    Compat,
}

/// The `config` record of the WIT interface, as plain Rust.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// State store component name.
    pub store_name: String,
    /// Sidecar base URL.
    pub endpoint: Option<String>,
    /// Dapr API token.
    pub api_token: Option<ApiToken>,
    /// TTL of every write, in seconds.
    pub ttl_seconds: Option<u32>,
    /// Consistency of reads and writes.
    pub consistency: Option<Consistency>,
    /// Tenant key prefix.
    pub key_prefix: Option<String>,
    /// Limit of `get-items` when none is given.
    pub default_limit: Option<u32>,
    /// Timeout of each request, in milliseconds.
    pub timeout_ms: Option<u32>,
    /// Storage layout.
    pub layout: Option<LayoutKind>,
    /// Most items kept; older ones are dropped by the write that goes past it.
    pub max_items: Option<u32>,
}

/// A validated configuration with every default filled in.
#[derive(Debug, Clone)]
pub struct Settings {
    /// State store component name.
    pub store_name: String,
    /// Sidecar base URL without a trailing slash.
    pub endpoint: String,
    /// Dapr API token, if any.
    pub api_token: Option<ApiToken>,
    /// TTL of every write.
    pub ttl_seconds: Option<u32>,
    /// Consistency of reads and writes.
    pub consistency: Consistency,
    /// Tenant key prefix, if any.
    pub key_prefix: Option<String>,
    /// Limit of `get-items` when none is given.
    pub default_limit: Option<u32>,
    /// Timeout of each request.
    pub timeout: Duration,
    /// Storage layout.
    pub layout: LayoutKind,
    /// Most items kept.
    pub max_items: Option<u32>,
}

/// The Dapr API token. Its `Debug` never shows it, so no log or error message can hold it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// The token, for the `dapr-api-token` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for ApiToken {
    fn from(token: String) -> Self {
        ApiToken(token)
    }
}

impl From<&str> for ApiToken {
    fn from(token: &str) -> Self {
        ApiToken(token.to_string())
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl Settings {
    /// Validates `options`, filling unset fields from `env` (the process environment).
    pub fn resolve(options: Options, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        validate_store_name(&options.store_name)?;
        let endpoint = match options.endpoint {
            Some(e) => e,
            None => default_endpoint(&env)?,
        };
        let endpoint = validate_endpoint(&endpoint)?;
        let api_token = options.api_token.or_else(|| {
            env("DAPR_API_TOKEN")
                .filter(|t| !t.is_empty())
                .map(ApiToken)
        });
        if let Some(token) = &api_token {
            // A header value must be visible ASCII; say so without echoing the token.
            let token = token.as_str();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::invalid(
                    "api-token must be non-empty visible ASCII (it is sent as an HTTP header)",
                ));
            }
        }
        if options.ttl_seconds == Some(0) {
            return Err(Error::invalid(
                "ttl-seconds must be at least 1; leave it unset for no expiry",
            ));
        }
        if let Some(prefix) = &options.key_prefix {
            validate_key_prefix(prefix)?;
        }
        if options.max_items == Some(0) {
            return Err(Error::invalid(
                "max-items must be at least 1; leave it unset for no bound (clear empties a session)",
            ));
        }
        let timeout = match options.timeout_ms {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err(Error::invalid("timeout-ms must be at least 1")),
            Some(ms) => Duration::from_millis(u64::from(ms)),
        };
        Ok(Settings {
            store_name: options.store_name,
            endpoint,
            api_token,
            ttl_seconds: options.ttl_seconds,
            consistency: options.consistency.unwrap_or(Consistency::Eventual),
            key_prefix: options.key_prefix,
            default_limit: options.default_limit,
            timeout,
            layout: options.layout.unwrap_or_default(),
            max_items: options.max_items,
        })
    }

    /// The key every storage key of `session_id` starts with: `{prefix}:{id}` or `{id}`.
    pub fn key_base(&self, session_id: &str) -> String {
        match &self.key_prefix {
            Some(p) => format!("{p}:{session_id}"),
            None => session_id.to_string(),
        }
    }
}

/// `DAPR_HTTP_ENDPOINT`, else `http://127.0.0.1:$DAPR_HTTP_PORT`, else `http://127.0.0.1:3500`.
fn default_endpoint(env: &impl Fn(&str) -> Option<String>) -> Result<String> {
    if let Some(e) = env("DAPR_HTTP_ENDPOINT").filter(|e| !e.is_empty()) {
        return Ok(e);
    }
    if let Some(port) = env("DAPR_HTTP_PORT").filter(|p| !p.is_empty()) {
        let port: u16 = port.parse().map_err(|_| {
            Error::invalid(format!("DAPR_HTTP_PORT is not a port number: '{port}'"))
        })?;
        return Ok(format!("http://127.0.0.1:{port}"));
    }
    Ok("http://127.0.0.1:3500".to_string())
}

fn validate_endpoint(endpoint: &str) -> Result<String> {
    let trimmed = endpoint.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(|| {
            Error::invalid(format!(
                "endpoint must start with http:// or https://: '{endpoint}'"
            ))
        })?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty()
        || rest.contains(['?', '#', ' '])
        || !rest.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::invalid(format!(
            "endpoint is not a plain http(s) URL: '{endpoint}'"
        )));
    }
    if !valid_authority(authority) {
        return Err(Error::invalid(format!(
            "endpoint has no valid host[:port]: '{endpoint}'"
        )));
    }
    Ok(trimmed.to_string())
}

/// Whether `authority` is `[user@]host[:port]` as RFC 3986 allows it: a registered name or
/// IPv4 address, or a bracketed IPv6 address, and a port that fits 16 bits.
fn valid_authority(authority: &str) -> bool {
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port, bracketed) = match hostport.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((h, "")) => (h, None, true),
            Some((h, after)) => (h, after.strip_prefix(':').or(Some("x")), true),
            None => return false,
        },
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p), false),
            None => (hostport, None, false),
        },
    };
    let host_ok = !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')
                || (bracketed && b == b':')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

fn validate_store_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "store-name must be a Dapr component name (letters, digits, '-', '.', '_'): '{name}'"
        )))
    }
}

fn validate_key_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Err(Error::invalid(
            "key-prefix must not be empty; leave it unset for no prefix",
        ));
    }
    if prefix.len() > MAX_KEY_PREFIX_BYTES {
        return Err(Error::invalid(format!(
            "key-prefix is longer than {MAX_KEY_PREFIX_BYTES} bytes"
        )));
    }
    // The first ':' of a key ends the prefix, so a prefix holding ':' could alias another
    // tenant's keys; '||' is Dapr's own key separator.
    if prefix.contains(':') || prefix.contains("||") || prefix.chars().any(char::is_control) {
        return Err(Error::invalid(
            "key-prefix must not contain ':', '||' or control characters",
        ));
    }
    Ok(())
}

/// Checks a session id: non-empty, at most [`MAX_SESSION_ID_BYTES`], no `||` (Dapr's key
/// separator) and no control characters.
pub fn validate_session_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid("session id must not be empty"));
    }
    if id.len() > MAX_SESSION_ID_BYTES {
        return Err(Error::invalid(format!(
            "session id is {} bytes; the limit is {MAX_SESSION_ID_BYTES}",
            id.len()
        )));
    }
    if id.contains("||") {
        return Err(Error::invalid(
            "session id must not contain '||' (Dapr's key separator)",
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(Error::invalid(
            "session id must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> Options {
        Options {
            store_name: "statestore".into(),
            ..Options::default()
        }
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn endpoint_defaults_follow_dapr_env_names() {
        let s = |pairs| Settings::resolve(opts(), env(pairs)).map(|s| s.endpoint);
        assert_eq!(s(&[]), Ok("http://127.0.0.1:3500".into()));
        assert_eq!(
            s(&[("DAPR_HTTP_PORT", "3600")]),
            Ok("http://127.0.0.1:3600".into())
        );
        assert_eq!(
            s(&[
                ("DAPR_HTTP_ENDPOINT", "http://dapr:80/"),
                ("DAPR_HTTP_PORT", "1")
            ]),
            Ok("http://dapr:80".into())
        );
        assert!(s(&[("DAPR_HTTP_PORT", "x")]).is_err());
    }

    #[test]
    fn token_comes_from_env_and_is_never_printed() {
        let s = Settings::resolve(opts(), env(&[("DAPR_API_TOKEN", "s3cret")]));
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.api_token.as_ref().map(ApiToken::as_str), Some("s3cret"));
        assert!(!format!("{s:?}").contains("s3cret"));
        let mut o = opts();
        o.api_token = Some("s3cret".into());
        assert!(!format!("{o:?}").contains("s3cret"));
        // A token that is not a valid header value is refused without being echoed.
        o.api_token = Some("s3cret\nline".into());
        let e = Settings::resolve(o, env(&[]))
            .err()
            .map(|e| format!("{e} {e:?}"));
        assert!(e.as_deref().is_some_and(|e| !e.contains("s3cret")), "{e:?}");
    }

    #[test]
    fn endpoints_are_plain_http_urls() {
        let ok = |e: &str| validate_endpoint(e).is_ok();
        for good in [
            "http://127.0.0.1:3500",
            "http://dapr:80/",
            "https://dapr.example.com/sidecar",
            "http://[::1]:3500",
            "http://user@host:1",
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            "ftp://x",
            "http://",
            "http://:3500",
            "http://host:99999",
            "http://host:port",
            "http://[::1",
            "http://ho st",
            "http://host?q",
            "http://hö",
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }

    #[test]
    fn keys_are_prefixed() {
        let mut o = opts();
        o.key_prefix = Some("tenant".into());
        let s = Settings::resolve(o, env(&[])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.key_base("id"), "tenant:id");
    }

    #[test]
    fn session_ids() {
        assert!(validate_session_id("user-123").is_ok());
        assert!(validate_session_id("a/b ü ? # % .. +").is_ok());
        for bad in ["", "a||b", "a\nb", "\0"] {
            assert!(validate_session_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_session_id(&"x".repeat(MAX_SESSION_ID_BYTES)).is_ok());
        assert!(validate_session_id(&"x".repeat(MAX_SESSION_ID_BYTES + 1)).is_err());
    }
}
