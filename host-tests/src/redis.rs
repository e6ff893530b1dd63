//! A `redis-server` from Debian on a free loopback port, and a minimal RESP client to look
//! at (and tamper with) what daprd stored in it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::process::{Process, TempDir, free_port, wait_until};

/// Finds `redis-server`; on a Debian machine without it, installs the `redis-server` package
/// when allowed (see [`install_with_apt`]).
pub fn ensure_redis_server() -> anyhow::Result<PathBuf> {
    if let Some(p) = which("redis-server") {
        return Ok(p);
    }
    install_with_apt("redis-server")?;
    which("redis-server").context("redis-server is not installed (apt-get install redis-server)")
}

/// Installs the Debian `package` with apt-get, when allowed: running as root, apt-get
/// present, and `DAPR_SESSION_NO_INSTALL` unset. Fails when not allowed or when apt-get
/// fails.
pub fn install_with_apt(package: &str) -> anyhow::Result<()> {
    let root = std::env::var("USER").is_ok_and(|u| u == "root") || uid_is_root();
    if !root || which("apt-get").is_none() || std::env::var_os("DAPR_SESSION_NO_INSTALL").is_some()
    {
        bail!("{package} is not installed (apt-get install {package})");
    }
    eprintln!("{package} not found: installing Debian's {package} package (apt-get)");
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("apt-get install {package} failed ({status})");
    }
    Ok(())
}

/// Whether this process runs as root.
pub fn uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The path of `program` on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A running redis-server, stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    persistent: bool,
    process: Process,
    dir: TempDir,
}

impl RedisServer {
    /// Starts redis-server on a free loopback port, no persistence, and waits for PING.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(false).await
    }

    /// Starts redis-server with an append-only file synced on every write, so a stop and
    /// [`restart`](Self::restart) keeps every acknowledged write.
    pub async fn start_persistent() -> anyhow::Result<Self> {
        Self::start_with(true).await
    }

    async fn start_with(persistent: bool) -> anyhow::Result<Self> {
        let dir = TempDir::new("redis")?;
        let port = free_port()?;
        let process = spawn(port, persistent, dir.path())?;
        let server = RedisServer {
            port,
            persistent,
            process,
            dir,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let ready = wait_until(Duration::from_secs(15), || async {
            self.client().await.ok().is_some()
        })
        .await;
        if !ready {
            bail!(
                "redis-server did not answer PING:\n{}",
                self.process.log_tail(20)
            );
        }
        Ok(())
    }

    /// Starts it again (after [`stop`](Self::stop)) on the same port and directory.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.process.stop(Duration::from_secs(5))?;
        self.process = spawn(self.port, self.persistent, self.dir.path())?;
        self.wait_ready().await
    }

    /// `host:port` for daprd's `redisHost`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connected client (after a successful PING).
    pub async fn client(&self) -> anyhow::Result<Resp> {
        let mut c = Resp::connect(self.port).await?;
        match c.command(&[b"PING"]).await? {
            Reply::Simple(s) if s == "PONG" => Ok(c),
            other => bail!("unexpected PING reply {other:?}"),
        }
    }

    /// Stops it (SIGTERM), as an operator would.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.process.stop(Duration::from_secs(5))
    }
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n ...` (`None` for a nil bulk string).
    Bulk(Option<Vec<u8>>),
    /// `*n ...`.
    Array(Vec<Reply>),
}

/// A minimal Redis client.
pub struct Resp {
    io: BufReader<TcpStream>,
}

impl Resp {
    /// Connects to 127.0.0.1:`port`.
    pub async fn connect(port: u16) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        Ok(Resp {
            io: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply.
    pub async fn command(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.io.get_mut().write_all(&out).await?;
        Box::pin(self.read()).await
    }

    async fn read(&mut self) -> anyhow::Result<Reply> {
        let mut line = String::new();
        self.io.read_line(&mut line).await?;
        let line = line.trim_end_matches(['\r', '\n']);
        let (kind, rest) = line.split_at(line.len().min(1));
        Ok(match kind {
            "+" => Reply::Simple(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Integer(rest.parse()?),
            "$" => {
                let n: i64 = rest.parse()?;
                if n < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut buf = vec![0u8; usize::try_from(n)? + 2];
                    self.io.read_exact(&mut buf).await?;
                    buf.truncate(buf.len() - 2);
                    Reply::Bulk(Some(buf))
                }
            }
            "*" => {
                let n: i64 = rest.parse()?;
                let mut items = Vec::new();
                for _ in 0..n.max(0) {
                    items.push(Box::pin(self.read()).await?);
                }
                Reply::Array(items)
            }
            other => bail!("unexpected RESP type {other:?} in {line:?}"),
        })
    }

    /// `KEYS pattern`.
    pub async fn keys(&mut self, pattern: &str) -> anyhow::Result<Vec<String>> {
        match self.command(&[b"KEYS", pattern.as_bytes()]).await? {
            Reply::Array(items) => Ok(items
                .into_iter()
                .filter_map(|r| match r {
                    Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
                    _ => None,
                })
                .collect()),
            other => bail!("KEYS: {other:?}"),
        }
    }

    /// `TTL key` in seconds (-1 no expiry, -2 no key).
    pub async fn ttl(&mut self, key: &str) -> anyhow::Result<i64> {
        match self.command(&[b"TTL", key.as_bytes()]).await? {
            Reply::Integer(n) => Ok(n),
            other => bail!("TTL: {other:?}"),
        }
    }

    /// Stores raw `data` under daprd's hash layout (`data`, `version`), bypassing daprd.
    pub async fn put_dapr_raw(&mut self, key: &str, data: &[u8]) -> anyhow::Result<()> {
        self.command(&[b"DEL", key.as_bytes()]).await?;
        match self
            .command(&[b"HSET", key.as_bytes(), b"data", data, b"version", b"1"])
            .await?
        {
            Reply::Integer(_) => Ok(()),
            other => bail!("HSET: {other:?}"),
        }
    }
}

fn spawn(port: u16, persistent: bool, dir: &Path) -> anyhow::Result<Process> {
    let bin = ensure_redis_server()?;
    let mut cmd = Command::new(bin);
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ])
    .args(if persistent {
        ["--appendonly", "yes", "--appendfsync", "always"]
    } else {
        ["--appendonly", "no", "--appendfsync", "everysec"]
    })
    .args(["--daemonize", "no", "--protected-mode", "yes"])
    .arg("--dir")
    .arg(dir);
    Process::spawn("redis-server", cmd, &dir.join("redis.log"))
}
