//! The real Python `DaprSession`: a virtualenv with `openai-agents[dapr,encrypt]` from PyPI,
//! made once per machine in the cache directory, and a small driver script to call it, bare or
//! wrapped in `EncryptedSession`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::cache::{build_once, cache_dir};

/// The pinned package the interop tests and benchmarks run (`encrypt` brings `cryptography`,
/// which `EncryptedSession` needs).
pub const OPENAI_AGENTS: &str = "openai-agents[dapr,encrypt]==0.24.0";

/// The Python of a venv that has [`OPENAI_AGENTS`], creating it on first use (once per
/// machine; processes that need it meanwhile wait for that one).
pub fn python() -> anyhow::Result<PathBuf> {
    let dir = cache_dir().join("python").join("openai-agents-0.24.0");
    let python = dir.join("venv/bin/python");
    // Written last: a venv without it is a crashed install, made again.
    let marker = dir.join("installed");
    build_once(&marker, "creating the Python venv", || {
        make_venv(&dir, &marker)
    })?;
    anyhow::ensure!(python.is_file(), "{} is missing", python.display());
    // Venvs made before the `encrypt` extra was pinned get it added once.
    build_once(
        &dir.join("installed-encrypt"),
        "adding openai-agents[encrypt]",
        || {
            pip_install(&dir.join("venv"))?;
            std::fs::write(dir.join("installed-encrypt"), OPENAI_AGENTS)?;
            Ok(())
        },
    )?;
    Ok(python)
}

fn pip_install(venv: &Path) -> anyhow::Result<()> {
    let status = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            OPENAI_AGENTS,
        ])
        .status()?;
    if !status.success() {
        bail!("pip install {OPENAI_AGENTS} failed ({status})");
    }
    Ok(())
}

fn make_venv(dir: &Path, marker: &Path) -> anyhow::Result<()> {
    let system = crate::redis::which("python3").context("python3 is not on PATH")?;
    std::fs::create_dir_all(dir)?;
    let venv = dir.join("venv");
    let _ = std::fs::remove_dir_all(&venv);
    eprintln!(
        "creating a Python venv with {OPENAI_AGENTS} in {} (once per machine)",
        dir.display()
    );
    let status = Command::new(system)
        .args(["-m", "venv"])
        .arg(&venv)
        .status()?;
    if !status.success() {
        bail!("python3 -m venv failed ({status})");
    }
    pip_install(&venv)?;
    std::fs::write(dir.join("installed-encrypt"), OPENAI_AGENTS)?;
    std::fs::write(marker, OPENAI_AGENTS)?;
    Ok(())
}

/// A driver for `DaprSession`: `python -c DRIVER <grpc address> <store> <session> <op> [json]`,
/// printing the result as JSON. Ops: `get [limit]`, `add <items>` (`-`: the items on stdin),
/// `pop`, `clear`. With `DRIVER_ENCRYPTION_KEY` set, the session is
/// `EncryptedSession(DaprSession(...), encryption_key=..., ttl=...)`, the TTL from
/// `DRIVER_ENCRYPTION_TTL` (unset: no expiry, as `ttl=None`).
pub const DRIVER: &str = r#"
import asyncio, json, os, sys
from agents.extensions.memory import DaprSession

async def main():
    address, store, session_id, op = sys.argv[1:5]
    arg = sys.argv[5] if len(sys.argv) > 5 else None
    if arg == "-":
        arg = sys.stdin.read()
    dapr = DaprSession.from_address(session_id, state_store_name=store, dapr_address=address)
    session = dapr
    key = os.environ.get("DRIVER_ENCRYPTION_KEY")
    if key is not None:
        from agents.extensions.memory.encrypt_session import EncryptedSession
        ttl = os.environ.get("DRIVER_ENCRYPTION_TTL")
        session = EncryptedSession(
            session_id, dapr, encryption_key=key, ttl=int(ttl) if ttl else None
        )
    try:
        if op == "get":
            out = await session.get_items(int(arg) if arg else None)
        elif op == "add":
            await session.add_items(json.loads(arg))
            out = None
        elif op == "pop":
            out = await session.pop_item()
        elif op == "clear":
            await session.clear_session()
            out = None
        else:
            raise SystemExit(f"unknown op {op}")
        print(json.dumps(out))
    finally:
        await dapr.close()

asyncio.run(main())
"#;

/// `EncryptedSession` settings for the [`DRIVER`].
#[derive(Clone)]
pub struct PythonEncryption {
    /// The master key (`encryption_key`); passed in the environment, never in arguments.
    pub key: String,
    /// `ttl` in seconds; `None`: no expiry.
    pub ttl: Option<u32>,
}

impl std::fmt::Debug for PythonEncryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PythonEncryption")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Arguments longer than this go through stdin (Linux caps one argument at 128 KiB).
const MAX_ARG: usize = 64 * 1024;

/// The Python `DaprSession`, pointed at one daprd.
#[derive(Debug, Clone)]
pub struct PythonDapr {
    /// The venv's Python.
    pub python: PathBuf,
    /// daprd's gRPC port (the Python SDK speaks gRPC).
    pub grpc_port: u16,
    /// daprd's HTTP endpoint (the SDK health-checks it).
    pub http_endpoint: String,
    /// API token, if daprd wants one.
    pub token: Option<String>,
    /// State store name.
    pub store: String,
    /// Wrap the session in `EncryptedSession` with these settings.
    pub encryption: Option<PythonEncryption>,
}

impl PythonDapr {
    /// Runs one [`DRIVER`] operation on `session` and returns its JSON output.
    pub fn run(
        &self,
        session: &str,
        op: &str,
        arg: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        use std::io::Write as _;
        use std::process::Stdio;

        let mut cmd = Command::new(&self.python);
        cmd.args(["-c", DRIVER])
            .arg(format!("127.0.0.1:{}", self.grpc_port))
            .args([self.store.as_str(), session, op])
            .env("DAPR_HTTP_ENDPOINT", &self.http_endpoint)
            .env(
                "DAPR_GRPC_ENDPOINT",
                format!("127.0.0.1:{}", self.grpc_port),
            )
            .env_remove("DAPR_API_TOKEN")
            .env_remove("DRIVER_ENCRYPTION_KEY")
            .env_remove("DRIVER_ENCRYPTION_TTL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let stdin = match arg {
            Some(a) if a.len() > MAX_ARG => {
                cmd.arg("-");
                Some(a)
            }
            Some(a) => {
                cmd.arg(a);
                None
            }
            None => None,
        };
        if let Some(t) = &self.token {
            cmd.env("DAPR_API_TOKEN", t);
        }
        if let Some(e) = &self.encryption {
            cmd.env("DRIVER_ENCRYPTION_KEY", &e.key);
            if let Some(ttl) = e.ttl {
                cmd.env("DRIVER_ENCRYPTION_TTL", ttl.to_string());
            }
        }
        let mut child = cmd
            .spawn()
            .context("running the Python DaprSession driver")?;
        let mut pipe = child.stdin.take().context("the driver's stdin")?;
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes())
                .context("writing the driver's input")?;
        }
        drop(pipe);
        let out = child
            .wait_with_output()
            .context("running the Python DaprSession driver")?;
        if !out.status.success() {
            bail!(
                "python DaprSession {op} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or("null");
        serde_json::from_str(last).with_context(|| format!("python printed {stdout:?}"))
    }
}
