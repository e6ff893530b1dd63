//! A PostgreSQL server from the machine's PostgreSQL binaries, on a free loopback port with a
//! throw-away data directory, and a `psql` to look at (and tamper with) what daprd stored.
//!
//! PostgreSQL refuses to run as root: when the harness is root, the server runs as the
//! `postgres` user (or `nobody`), which owns the data directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::process::{Process, TempDir, free_port, wait_until};
use crate::redis::{install_with_apt, which};

/// The directory holding `initdb`, `postgres`, `pg_isready` and `psql`: the one `initdb` on
/// `PATH` resolves to (symbolic links followed), else the newest `/usr/lib/postgresql/*/bin`;
/// on a Debian machine without one, installs the `postgresql` package when allowed (as for
/// redis-server).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = find_bin_dir() {
        return Ok(dir);
    }
    install_with_apt("postgresql")?;
    find_bin_dir().context("PostgreSQL is not installed (apt-get install postgresql)")
}

fn find_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "postgres", "pg_isready", "psql"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    let on_path = which("initdb")
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| complete(d));
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            complete(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The user and group the server runs as: this process's own, or, for root, `postgres`'s
/// (else `nobody`'s) from `/etc/passwd`.
fn server_user() -> Option<(u32, u32)> {
    if !crate::redis::uid_is_root() {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            match f.as_slice() {
                [n, _, uid, gid, ..] if *n == name => Some((uid.parse().ok()?, gid.parse().ok()?)),
                _ => None,
            }
        })
    };
    entry("postgres")
        .or_else(|| entry("nobody"))
        .or(Some((65534, 65534)))
}

/// A running PostgreSQL server, stopped on drop.
#[derive(Debug)]
pub struct Postgres {
    port: u16,
    bin: PathBuf,
    user: Option<(u32, u32)>,
    process: Process,
    dir: TempDir,
}

/// The database superuser the server is initialised with.
const SUPERUSER: &str = "postgres";

impl Postgres {
    /// Initialises a data directory and starts the server on a free loopback port, with
    /// durability off (a test database), and waits until it accepts connections.
    pub async fn start() -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let user = server_user();
        let dir = TempDir::new("postgres")?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .with_context(|| format!("giving {} to uid {uid}", dir.path().display()))?;
        }
        let data = dir.path().join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C"]);
        as_user(&mut initdb, user);
        let out = initdb.output().context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let port = free_port()?;
        let mut server = Command::new(bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"]);
        as_user(&mut server, user);
        // SIGINT is PostgreSQL's fast shutdown: it does not wait for clients to disconnect.
        let process = Process::spawn("postgres", server, &dir.path().join("postgres.log"))?
            .with_stop_signal(libc::SIGINT);
        let postgres = Postgres {
            port,
            bin,
            user,
            process,
            dir,
        };
        postgres.wait_ready().await?;
        Ok(postgres)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let ready = wait_until(Duration::from_secs(30), || async {
            Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success())
        })
        .await;
        if !ready {
            bail!(
                "postgres did not accept connections after 30 s:\n{}",
                self.process.log_tail(30)
            );
        }
        Ok(())
    }

    /// The connection string daprd's `state.postgresql` takes.
    pub fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={SUPERUSER} dbname=postgres sslmode=disable",
            self.port
        )
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs `script` with `psql` (variables set with `-v name=value`, referenced as
    /// `:'name'`) and returns its unaligned, tuples-only output.
    pub fn psql(&self, script: &str, vars: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER, "-d", "postgres", "-X", "-q", "-A", "-t"])
            .args(["-v", "ON_ERROR_STOP=1"]);
        for (name, value) in vars {
            cmd.arg("-v").arg(format!("{name}={value}"));
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("running psql")?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            stdin.write_all(script.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "psql failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops it (fast shutdown).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        self.process.stop(Duration::from_secs(10))
    }

    /// The user the server runs as, if not this process's own.
    pub fn user(&self) -> Option<(u32, u32)> {
        self.user
    }

    /// Its data and socket directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `cmd` as `user` (uid, gid), if given.
fn as_user(cmd: &mut Command, user: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt as _;
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}
