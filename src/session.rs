//! The session: argument checks, limit resolution and the health check, over a storage layout.

use crate::config::{self, LayoutKind, Options, Settings};
use crate::dapr::DaprClient;
use crate::error::{Error, Result};
use crate::item;
use crate::layout::{Layout, Timestamps, compat::Compat, log::Log};

/// One conversation in one state store.
pub struct Session {
    id: String,
    settings: Settings,
    client: DaprClient,
    layout: Layout,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens `id` with `options`, taking defaults from `env`. Sends nothing.
    pub fn open(
        id: String,
        options: Options,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        config::validate_session_id(&id)?;
        let settings = Settings::resolve(options, env)?;
        let client = DaprClient::new(
            &settings.endpoint,
            &settings.store_name,
            settings.api_token.clone(),
            settings.timeout,
            settings.consistency,
            settings.ttl_seconds,
        );
        let base = settings.key_base(&id);
        let layout = match settings.layout {
            LayoutKind::Log => Layout::Log(Box::new(Log::new(
                client.clone(),
                &base,
                settings.ttl_seconds,
            ))),
            LayoutKind::Compat => Layout::Compat(Box::new(Compat::new(client.clone(), &id, &base))),
        };
        Ok(Session {
            id,
            settings,
            client,
            layout,
        })
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The newest `limit` items (default: the configured default limit, else all), oldest first.
    pub async fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>> {
        let limit = limit.or(self.settings.default_limit);
        if limit == Some(0) {
            return Ok(Vec::new());
        }
        self.layout.get_items(limit).await
    }

    /// Appends `items` as one batch. Every item must be a JSON object; if one is not, the
    /// error names its index and nothing is written. An empty batch is a no-op.
    pub async fn add_items(&self, items: &[String]) -> Result<()> {
        let items = item::validate_batch(items)?;
        if items.is_empty() {
            return Ok(());
        }
        self.layout.add_items(&items).await
    }

    /// Removes and returns the newest item.
    pub async fn pop_item(&self) -> Result<Option<String>> {
        self.layout.pop_item().await
    }

    /// Removes every item and the session's timestamps.
    pub async fn clear(&self) -> Result<()> {
        self.layout.clear().await
    }

    /// The session's created/updated timestamps.
    pub async fn metadata(&self) -> Result<Timestamps> {
        self.layout.timestamps().await
    }

    /// Checks that the sidecar is ready and has the configured state store. Writes nothing.
    pub async fn ping(&self) -> Result<()> {
        self.client
            .healthz()
            .await
            .map_err(|e| match Error::from(e) {
                Error::Store {
                    message, status, ..
                } => Error::Unavailable(format!("sidecar not ready (HTTP {status}): {message}")),
                other => other,
            })?;
        let components = self.client.components().await?;
        let store = self.client.store();
        if components
            .iter()
            .any(|c| c.name == store && c.kind.starts_with("state."))
        {
            Ok(())
        } else {
            Err(Error::StoreNotFound(format!(
                "the sidecar has no state store named '{store}'"
            )))
        }
    }
}
