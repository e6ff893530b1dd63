//! How the service opens sessions, from its environment (Spin's `environment`, or the
//! host's). The sidecar endpoint and API token are left to the session component, which
//! reads `DAPR_HTTP_ENDPOINT`, `DAPR_HTTP_PORT` and `DAPR_API_TOKEN` itself.

use crate::bindings::agentmem::session::session::{Config, Layout};

/// Environment variable naming the Dapr state store (default `statestore`).
pub const STORE: &str = "SESSION_STORE";
/// Environment variable with a tenant key prefix (default none).
pub const KEY_PREFIX: &str = "SESSION_KEY_PREFIX";
/// Environment variable with a TTL in seconds (default none).
pub const TTL: &str = "SESSION_TTL_SECONDS";
/// Environment variable choosing the layout, `log` or `compat` (default `log`).
pub const LAYOUT: &str = "SESSION_LAYOUT";
/// Environment variable bounding the items a session keeps (default none).
pub const MAX_ITEMS: &str = "SESSION_MAX_ITEMS";

/// The session config, or what is wrong with the environment.
pub fn config(var: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let nonempty = |k: &str| var(k).filter(|v| !v.is_empty());
    let number = |k: &str, what: &str| match nonempty(k) {
        Some(v) => v
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("{k} must be a whole number of {what}, not {v:?}")),
        None => Ok(None),
    };
    let ttl_seconds = number(TTL, "seconds")?;
    let max_items = number(MAX_ITEMS, "items")?;
    let layout = match nonempty(LAYOUT).as_deref() {
        None | Some("log") => Some(Layout::Log),
        Some("compat") => Some(Layout::Compat),
        Some(other) => return Err(format!("{LAYOUT} must be log or compat, not {other:?}")),
    };
    Ok(Config {
        store_name: nonempty(STORE).unwrap_or_else(|| "statestore".into()),
        endpoint: None,
        api_token: None,
        ttl_seconds,
        consistency: None,
        key_prefix: nonempty(KEY_PREFIX),
        default_limit: None,
        timeout_ms: None,
        layout,
        max_items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment() -> Result<(), String> {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = config(env(&[]))?;
        assert_eq!(c.store_name, "statestore");
        assert!(c.ttl_seconds.is_none() && c.key_prefix.is_none());
        let c = config(env(&[(STORE, "memory"), (TTL, "60"), (KEY_PREFIX, "acme")]))?;
        assert_eq!(
            (
                c.store_name.as_str(),
                c.ttl_seconds,
                c.key_prefix.as_deref()
            ),
            ("memory", Some(60), Some("acme"))
        );
        assert!(config(env(&[(TTL, "soon")])).is_err());
        assert_eq!(config(env(&[(MAX_ITEMS, "500")]))?.max_items, Some(500));
        assert!(config(env(&[(MAX_ITEMS, "-1")])).is_err());
        assert!(config(env(&[(LAYOUT, "tree")])).is_err());
        Ok(())
    }
}
