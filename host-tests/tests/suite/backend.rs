//! The backends the suite runs against: the test server, and real daprd with Redis, with
//! SQLite and with PostgreSQL behind it.

use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use dapr_session_host_tests::client::DaprHttp;
use dapr_session_host_tests::dapr_server::{DaprServer, ServerConfig};
use dapr_session_host_tests::daprd::{self, ComponentSpec, Daprd, DaprdOptions};
use dapr_session_host_tests::postgres::Postgres;
use dapr_session_host_tests::process::TempDir;
use dapr_session_host_tests::redis::RedisServer;

/// A kind of backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The in-process Dapr-compatible test server (a fresh one per case).
    TestServer,
    /// daprd with `state.redis` on a redis-server the harness starts.
    DaprdRedis,
    /// daprd with `state.sqlite` on a temporary file.
    DaprdSqlite,
    /// daprd with `state.postgresql` v2 on a PostgreSQL server the harness starts.
    DaprdPostgres,
}

/// Why a backend did not start.
pub enum StartError {
    /// Not available on this machine (no Go, no redis-server) and allowed to be skipped.
    Skip(String),
    /// Failed.
    Fail(anyhow::Error),
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::TestServer,
        Kind::DaprdRedis,
        Kind::DaprdSqlite,
        Kind::DaprdPostgres,
    ];

    /// The name used in test names and `SUITE_BACKENDS`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TestServer => "test-server",
            Kind::DaprdRedis => "daprd-redis",
            Kind::DaprdSqlite => "daprd-sqlite",
            Kind::DaprdPostgres => "daprd-postgres",
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

    /// Starts the backend shared by every case, or `None` when each case gets its own.
    pub async fn start_shared(self) -> Result<Option<Arc<Backend>>, StartError> {
        match self {
            Kind::TestServer => Ok(None),
            Kind::DaprdRedis | Kind::DaprdSqlite | Kind::DaprdPostgres => {
                Backend::daprd(self).await.map(|b| Some(Arc::new(b)))
            }
        }
    }
}

/// In CI a missing prerequisite fails the run; elsewhere it is skipped, loudly.
fn unavailable(what: String) -> StartError {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        StartError::Fail(anyhow::anyhow!(
            "{what} (CI=true: a missing daprd is a failure)"
        ))
    } else {
        StartError::Skip(what)
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
    /// daprd, for the daprd backends.
    pub daprd: Mutex<Option<Daprd>>,
    /// redis-server, for the Redis backend.
    pub redis: Mutex<Option<RedisServer>>,
    /// The PostgreSQL server, for the PostgreSQL backend.
    pub postgres: Mutex<Option<Postgres>>,
    sqlite: Option<(TempDir, std::path::PathBuf)>,
    app_id: String,
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
            daprd: Mutex::new(None),
            redis: Mutex::new(None),
            postgres: Mutex::new(None),
            sqlite: None,
            app_id: String::new(),
        })
    }

    /// daprd with Redis, SQLite or PostgreSQL behind it, started with an API token.
    async fn daprd(kind: Kind) -> Result<Self, StartError> {
        if let Err(e) = daprd::binary() {
            return match e {
                daprd::Unavailable::NoGo => Err(unavailable(format!("daprd unavailable: {e}"))),
                other => Err(StartError::Fail(anyhow::anyhow!("{other}"))),
            };
        }
        let app_id = "dapr-session-suite".to_string();
        let token = format!("suite-token-{:x}", std::process::id());
        let (mut redis, mut sqlite, mut postgres) = (None, None, None);
        let component = match kind {
            Kind::DaprdRedis => {
                let server = RedisServer::start()
                    .await
                    .map_err(|e| unavailable(format!("redis-server unavailable: {e:#}")))?;
                let spec = ComponentSpec::redis("statestore", &server.address());
                redis = Some(server);
                spec
            }
            Kind::DaprdPostgres => {
                let server = Postgres::start()
                    .await
                    .map_err(|e| unavailable(format!("PostgreSQL unavailable: {e:#}")))?;
                let spec = ComponentSpec::postgres("statestore", &server.connection_string());
                postgres = Some(server);
                spec
            }
            Kind::TestServer => {
                return Err(StartError::Fail(anyhow::anyhow!(
                    "the test server is not a daprd backend"
                )));
            }
            Kind::DaprdSqlite => {
                let dir = TempDir::new("sqlite").map_err(|e| StartError::Fail(e.into()))?;
                let file = dir.path().join("state.db");
                let spec = ComponentSpec::sqlite("statestore", &file);
                sqlite = Some((dir, file));
                spec
            }
        };
        let daprd = Daprd::start(DaprdOptions {
            app_id: app_id.clone(),
            components: vec![component],
            api_token: Some(token.clone()),
        })
        .await
        .map_err(StartError::Fail)?;
        Ok(Backend {
            kind,
            endpoint: daprd.endpoint(),
            store: "statestore".into(),
            api_token: Some(token),
            server: None,
            daprd: Mutex::new(Some(daprd)),
            redis: Mutex::new(redis),
            postgres: Mutex::new(postgres),
            sqlite,
            app_id,
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

    /// Stores bytes that need not be JSON at `key`, below Dapr's API (in the store itself).
    pub async fn put_bytes(&self, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let stored_key = format!("{}||{key}", self.app_id);
        match self.kind {
            Kind::TestServer => {
                let server = self.server.as_ref().context("no test server")?;
                server.raw_put(&self.store, key, bytes);
                Ok(())
            }
            Kind::DaprdRedis => {
                let port = self
                    .redis
                    .lock()
                    .ok()
                    .and_then(|r| r.as_ref().map(RedisServer::port))
                    .context("no redis")?;
                let mut c = dapr_session_host_tests::redis::Resp::connect(port).await?;
                c.put_dapr_raw(&stored_key, bytes).await
            }
            Kind::DaprdSqlite => {
                let (_, file) = self.sqlite.as_ref().context("no sqlite file")?;
                sqlite_put(file, &stored_key, bytes)
            }
            Kind::DaprdPostgres => self.with_postgres(|pg| postgres_put(pg, &stored_key, bytes)),
        }
    }

    /// Every key in the store that starts with `prefix`, listed in the store itself (below
    /// Dapr's API), without daprd's `appid||` prefix.
    pub async fn keys(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        match self.kind {
            Kind::TestServer => {
                let server = self.server.as_ref().context("no test server")?;
                Ok(server
                    .keys(&self.store)
                    .into_iter()
                    .filter(|k| k.starts_with(prefix))
                    .collect())
            }
            Kind::DaprdRedis => {
                let port = self
                    .redis
                    .lock()
                    .ok()
                    .and_then(|r| r.as_ref().map(RedisServer::port))
                    .context("no redis")?;
                let mut c = dapr_session_host_tests::redis::Resp::connect(port).await?;
                let pattern = format!("{}||{}*", self.app_id, glob_escape(prefix));
                let keys = c.keys(&pattern).await?;
                Ok(keys
                    .into_iter()
                    .filter_map(|k| k.split_once("||").map(|(_, k)| k.to_string()))
                    .collect())
            }
            Kind::DaprdSqlite => {
                let (_, file) = self.sqlite.as_ref().context("no sqlite file")?;
                sqlite_keys(file, &format!("{}||{prefix}", self.app_id))
            }
            Kind::DaprdPostgres => {
                self.with_postgres(|pg| postgres_keys(pg, &format!("{}||{prefix}", self.app_id)))
            }
        }
    }

    fn with_postgres<T>(
        &self,
        f: impl FnOnce(&Postgres) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let guard = self
            .postgres
            .lock()
            .map_err(|_| anyhow::anyhow!("postgres lock poisoned"))?;
        f(guard.as_ref().context("no postgres")?)
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

    /// Stops whatever the backend started: daprd first, then redis-server or PostgreSQL.
    pub async fn stop(&self) -> anyhow::Result<()> {
        if let Some(mut d) = self.daprd.lock().ok().and_then(|mut g| g.take()) {
            d.stop()?;
        }
        if let Some(mut r) = self.redis.lock().ok().and_then(|mut g| g.take()) {
            r.stop()?;
        }
        if let Some(mut p) = self.postgres.lock().ok().and_then(|mut g| g.take()) {
            p.stop()?;
        }
        Ok(())
    }
}

fn glob_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// The keys of daprd's SQLite state table starting with `prefix` (app prefix stripped).
fn sqlite_keys(file: &std::path::Path, prefix: &str) -> anyhow::Result<Vec<String>> {
    let script = "import sqlite3,sys\n\
        c=sqlite3.connect(sys.argv[1], timeout=10)\n\
        p=sys.argv[2]\n\
        for (k,) in c.execute('SELECT key FROM state WHERE substr(key,1,?)=?', (len(p), p)):\n\
        \x20   print(k.split('||',1)[1])\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .arg(prefix)
        .output()
        .context("running python3 to read the SQLite file")?;
    anyhow::ensure!(
        out.status.success(),
        "python3 sqlite query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// Writes a row into daprd's SQLite state table with Python's sqlite3 module: the only way
/// to store bytes that are not JSON, since daprd's HTTP API stores JSON values.
fn sqlite_put(file: &std::path::Path, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let script = "import sqlite3,sys\n\
        c=sqlite3.connect(sys.argv[1], timeout=10)\n\
        c.execute('INSERT OR REPLACE INTO state (key, value, is_binary, etag) VALUES (?, ?, 0, ?)', (sys.argv[2], bytes.fromhex(sys.argv[3]), 'planted'))\n\
        c.commit()\n";
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .arg(key)
        .arg(hex)
        .status()
        .context("running python3 to write into the SQLite file")?;
    anyhow::ensure!(status.success(), "python3 sqlite write failed ({status})");
    Ok(())
}

/// The keys of daprd's PostgreSQL state table starting with `prefix` (app prefix stripped).
fn postgres_keys(pg: &Postgres, prefix: &str) -> anyhow::Result<Vec<String>> {
    let out = pg.psql(
        "SELECT key FROM state WHERE starts_with(key, :'prefix') ORDER BY key;",
        &[("prefix", prefix)],
    )?;
    Ok(out
        .lines()
        .filter_map(|k| k.split_once("||").map(|(_, k)| k.to_string()))
        .collect())
}

/// Writes a row into daprd's PostgreSQL state table (`state.postgresql` v2 keeps the value
/// bytes as they are): the way to store bytes that are not JSON.
fn postgres_put(pg: &Postgres, key: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pg.psql(
        "INSERT INTO state (key, value) VALUES (:'key', decode(:'hex', 'hex')) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, etag = gen_random_uuid(), \
         updated_at = now(), expires_at = NULL;",
        &[("key", key), ("hex", &hex)],
    )?;
    Ok(())
}
