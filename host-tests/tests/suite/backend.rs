//! The backends the suite runs against.

use std::sync::Arc;

use dapr_session_host_tests::client::DaprHttp;
use dapr_session_host_tests::dapr_server::{DaprServer, ServerConfig};

/// A kind of backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The in-process Dapr-compatible test server (a fresh one per case).
    TestServer,
}

impl Kind {
    const ALL: [Kind; 1] = [Kind::TestServer];

    /// The name used in test names and `SUITE_BACKENDS`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TestServer => "test-server",
        }
    }

    /// The backends `SUITE_BACKENDS` selects (all when unset).
    pub fn selected() -> Vec<Kind> {
        match std::env::var("SUITE_BACKENDS") {
            Ok(list) if !list.trim().is_empty() => Self::ALL
                .into_iter()
                .filter(|k| list.split(',').any(|n| n.trim() == k.name()))
                .collect(),
            _ => Self::ALL.to_vec(),
        }
    }

    /// Whether a backend that cannot start is skipped (loudly) rather than failed.
    pub fn missing_is_skip(self) -> bool {
        false
    }

    /// Starts the backend shared by every case, or `None` when each case gets its own.
    pub async fn start_shared(self) -> anyhow::Result<Option<Arc<Backend>>> {
        match self {
            Kind::TestServer => Ok(None),
        }
    }
}

/// A running backend.
pub struct Backend {
    /// Which kind it is.
    pub kind: Kind,
    /// Sidecar base URL.
    pub endpoint: String,
    /// State store name.
    pub store: String,
    /// API token the sidecar wants, if any.
    pub api_token: Option<String>,
    /// The in-process server, for the test-server backend.
    pub server: Option<DaprServer>,
}

impl Backend {
    /// A fresh test server with one transactional store, `statestore`, wanting an API token.
    pub async fn test_server() -> anyhow::Result<Self> {
        let token = format!("token-{:x}", std::process::id());
        let server = DaprServer::start(ServerConfig {
            api_token: Some(token.clone()),
            ..ServerConfig::default()
        })
        .await?;
        Ok(Backend {
            kind: Kind::TestServer,
            endpoint: server.endpoint(),
            store: "statestore".into(),
            api_token: Some(token),
            server: Some(server),
        })
    }

    fn http(&self) -> DaprHttp {
        DaprHttp::new(&self.endpoint).with_token(self.api_token.as_deref())
    }

    /// Stores a JSON value at `key` through Dapr's API.
    pub async fn put_json(&self, key: &str, value: &serde_json::Value) -> anyhow::Result<()> {
        let answer = self.http().put(&self.store, key, value).await?;
        anyhow::ensure!(answer.status.is_success(), "planting {key}: {answer:?}");
        Ok(())
    }

    /// Stores bytes that need not be JSON at `key`, below Dapr's API.
    pub async fn put_bytes(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        match &self.server {
            Some(s) => {
                s.raw_put(&self.store, key, bytes);
                Ok(())
            }
            None => anyhow::bail!("{:?} cannot store raw bytes", self.kind),
        }
    }

    /// The bytes stored at `key`, read through Dapr's API (`None` if missing).
    pub async fn get_bytes(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let answer = self.http().get(&self.store, key).await?;
        match answer.status.as_u16() {
            204 => Ok(None),
            200 => Ok(Some(answer.body.to_vec())),
            _ => anyhow::bail!("reading {key}: {answer:?}"),
        }
    }

    /// Stops whatever the backend started.
    pub async fn stop(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
