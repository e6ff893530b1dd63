//! From the global options to an open session: the component's config, one instance, and
//! the [`Target`] that error messages describe.

use dapr_session_host::{
    CallError, CallResult, Config, Consistency, Host, Instance, InstanceOptions, Layout,
    SessionHandle, SessionMetadata, Snapshot,
};

use crate::cli::{ConsistencyArg, Global, LayoutArg};
use crate::encryption::EncryptionKey;
use crate::failure::Failure;

/// The component's default request timeout, in milliseconds.
const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// Environment variables the component reads for its default endpoint.
const ENDPOINT_ENV: [&str; 2] = ["DAPR_HTTP_ENDPOINT", "DAPR_HTTP_PORT"];

/// What a command talks to, as error messages name it. Holds no token.
#[derive(Debug, Clone)]
pub struct Target {
    /// The sidecar URL the component uses (credentials in it masked).
    pub endpoint: String,
    /// The state store name.
    pub store: String,
    /// Whether an API token was given (`--token` or `DAPR_API_TOKEN`).
    pub token_given: bool,
    /// The per-request timeout, in milliseconds.
    pub timeout_ms: u32,
}

impl Target {
    /// The target of `global`, resolving the endpoint from the environment as the component
    /// does.
    pub fn new(global: &Global) -> Self {
        Target {
            endpoint: display_endpoint(global.endpoint.as_deref(), |k| std::env::var(k).ok()),
            store: global.store.clone(),
            token_given: global.token.as_deref().is_some_and(|t| !t.is_empty()),
            timeout_ms: global.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
        }
    }
}

/// The endpoint the component will use: `--endpoint`, else `DAPR_HTTP_ENDPOINT`, else
/// `http://127.0.0.1:$DAPR_HTTP_PORT`, else `http://127.0.0.1:3500`; without a trailing `/`
/// and with any `user:password@` masked.
pub fn display_endpoint(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> String {
    let raw = flag
        .map(str::to_string)
        .or_else(|| env("DAPR_HTTP_ENDPOINT").filter(|e| !e.is_empty()))
        .or_else(|| {
            env("DAPR_HTTP_PORT")
                .filter(|p| !p.is_empty())
                .map(|p| format!("http://127.0.0.1:{p}"))
        })
        .unwrap_or_else(|| "http://127.0.0.1:3500".to_string());
    let trimmed = raw.trim_end_matches('/');
    let (scheme, rest) = trimmed.split_once("://").unwrap_or(("", trimmed));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) if !scheme.is_empty() => format!("{scheme}://***@{host}{path}"),
        _ => trimmed.to_string(),
    }
}

/// The component's config for `global`.
pub fn config(global: &Global) -> Config {
    Config {
        store_name: global.store.clone(),
        endpoint: global.endpoint.clone(),
        api_token: global.token.clone().filter(|t| !t.is_empty()),
        ttl_seconds: global.ttl,
        consistency: global.consistency.map(|c| match c {
            ConsistencyArg::Eventual => Consistency::Eventual,
            ConsistencyArg::Strong => Consistency::Strong,
        }),
        key_prefix: global.prefix.clone(),
        default_limit: None,
        timeout_ms: global.timeout_ms,
        layout: global.layout.map(|l| match l {
            LayoutArg::Log => Layout::Log,
            LayoutArg::Compat => Layout::Compat,
        }),
        max_items: global.max_items,
    }
}

/// An open session in its own component instance.
pub struct Session {
    inst: Instance,
    handle: SessionHandle,
    target: Target,
    id: String,
}

impl Session {
    /// Instantiates the component and opens session `id` (which sends nothing to the sidecar);
    /// `key` goes to the encryption middleware through `wasi:config/store`.
    pub async fn open(
        host: &Host,
        global: &Global,
        id: &str,
        key: Option<&EncryptionKey>,
    ) -> Result<Self, Failure> {
        let target = Target::new(global);
        // The component applies its own defaults from the same environment Dapr apps use.
        let env = ENDPOINT_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        let mut inst = host
            .instance_with(InstanceOptions {
                env,
                config: key.map(EncryptionKey::config).unwrap_or_default(),
                ..Default::default()
            })
            .await
            .map_err(|e| Failure::internal(&e))?;
        let handle = inst
            .open(id, &config(global))
            .await
            .map_err(|e| Failure::from_call(&e, &target))?;
        Ok(Session {
            inst,
            handle,
            target,
            id: id.to_string(),
        })
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What this session talks to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Explains a failed call.
    pub fn fail(&self, e: &CallError) -> Failure {
        Failure::from_call(e, &self.target)
    }

    /// `get-items(limit)`.
    pub async fn get_items(&mut self, limit: Option<u32>) -> CallResult<Vec<String>> {
        self.inst.get_items(self.handle, limit).await
    }

    /// `add-items(items)`.
    pub async fn add_items(&mut self, items: &[String]) -> CallResult<()> {
        self.inst.add_items(self.handle, items).await
    }

    /// `pop-item()`.
    pub async fn pop_item(&mut self) -> CallResult<Option<String>> {
        self.inst.pop_item(self.handle).await
    }

    /// `clear()`.
    pub async fn clear(&mut self) -> CallResult<()> {
        self.inst.clear(self.handle).await
    }

    /// `metadata()`.
    pub async fn metadata(&mut self) -> CallResult<SessionMetadata> {
        self.inst.metadata(self.handle).await
    }

    /// `get-snapshot(limit)`.
    pub async fn get_snapshot(&mut self, limit: Option<u32>) -> CallResult<Snapshot> {
        self.inst.get_snapshot(self.handle, limit).await
    }

    /// `replace(items, expected)`, or `replace-suffix(start, items, expected)` with a start.
    pub async fn replace(
        &mut self,
        start: Option<u64>,
        items: &[String],
        expected: Option<&str>,
    ) -> CallResult<()> {
        match start {
            None => self.inst.replace(self.handle, items, expected).await,
            Some(start) => {
                self.inst
                    .replace_suffix(self.handle, start, items, expected)
                    .await
            }
        }
    }

    /// `ping()`.
    pub async fn ping(&mut self) -> CallResult<()> {
        self.inst.ping(self.handle).await
    }
}

#[cfg(test)]
mod tests {
    use super::display_endpoint;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn endpoint_follows_the_component_defaults() {
        assert_eq!(display_endpoint(None, env(&[])), "http://127.0.0.1:3500");
        assert_eq!(
            display_endpoint(None, env(&[("DAPR_HTTP_PORT", "3601")])),
            "http://127.0.0.1:3601"
        );
        let both = [
            ("DAPR_HTTP_PORT", "3601"),
            ("DAPR_HTTP_ENDPOINT", "http://dapr:80/"),
        ];
        assert_eq!(display_endpoint(None, env(&both)), "http://dapr:80");
        assert_eq!(
            display_endpoint(Some("http://x:1"), env(&both)),
            "http://x:1"
        );
    }

    #[test]
    fn endpoint_credentials_are_masked() {
        assert_eq!(
            display_endpoint(Some("https://user:secret@dapr:443/v"), env(&[])),
            "https://***@dapr:443/v"
        );
    }
}
