//! The session: argument checks, limit resolution and the health check, over a storage layout.

use crate::config::{self, LayoutKind, Options, Settings};
use crate::dapr::DaprClient;
use crate::error::{Error, Result};
use crate::item;
use crate::layout::log::ttl::Ttl;
use crate::layout::{Layout, Mode, Snapshot, Timestamps, compat::Compat, log::Log};

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
        );
        let base = settings.key_base(&id);
        let layout = match settings.layout {
            LayoutKind::Log => {
                let timeout_ms = u64::try_from(settings.timeout.as_millis()).unwrap_or(u64::MAX);
                Layout::Log(Box::new(Log::new(
                    client.clone(),
                    &base,
                    Ttl::new(settings.ttl_seconds, timeout_ms),
                    settings.max_items,
                )))
            }
            LayoutKind::Compat => Layout::Compat(Box::new(Compat::new(
                client.clone(),
                &id,
                &base,
                settings.ttl_seconds,
                settings.max_items,
            ))),
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
        Ok(self.layout.snapshot(limit, Mode::Skip).await?.items)
    }

    /// Like [`Session::get_items`], with the items' position and the session's version; the
    /// items are consecutive (item `i` is at position `first + i`), so the window stops after
    /// the newest stored entry that is not a readable item.
    pub async fn get_snapshot(&self, limit: Option<u32>) -> Result<Snapshot> {
        let limit = limit.or(self.settings.default_limit);
        if limit == Some(0) {
            // Nothing to return, but the version is still read.
            let mut s = self.layout.snapshot(Some(1), Mode::Consecutive).await?;
            s.first = s.first.saturating_add(s.items.len() as u64);
            s.items.clear();
            return Ok(s);
        }
        self.layout.snapshot(limit, Mode::Consecutive).await
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

    /// Replaces the whole history with `items`, if the session is at `expected` (when given).
    pub async fn replace(&self, items: &[String], expected: Option<&str>) -> Result<()> {
        let items = item::validate_batch(items)?;
        self.layout.replace(None, &items, expected).await
    }

    /// Replaces the items from position `start` with `items`, if the session is at
    /// `expected` (when given).
    pub async fn replace_suffix(
        &self,
        start: u64,
        items: &[String],
        expected: Option<&str>,
    ) -> Result<()> {
        let items = item::validate_batch(items)?;
        self.layout.replace(Some(start), &items, expected).await
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
