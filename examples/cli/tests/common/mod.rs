//! Running the built `dapr-session` binary against the in-process Dapr-compatible server.

use std::io::Write as _;
use std::process::{Command, Stdio};

use dapr_session_host_tests::dapr_server::{DaprServer, ServerConfig};
use dapr_session_host_tests::host::COMPONENT;
use serde_json::Value;

/// The embedded Dapr-compatible server on its own runtime; dropping it stops both.
pub struct Server {
    server: Option<DaprServer>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    /// A server with one transactional store named `statestore`.
    pub fn start() -> Self {
        Self::start_with(ServerConfig::default())
    }

    /// A server set up by `config`.
    pub fn start_with(config: ServerConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime
            .block_on(DaprServer::start(config))
            .expect("start the Dapr-compatible server");
        Server {
            server: Some(server),
            runtime: Some(runtime),
        }
    }

    /// The server.
    pub fn dapr(&self) -> &DaprServer {
        self.server.as_ref().expect("running")
    }

    /// Its base URL.
    pub fn endpoint(&self) -> String {
        self.dapr().endpoint()
    }

    /// Runs the CLI with `--endpoint` set to this server.
    pub fn cli(&self, args: &[&str]) -> Run {
        self.cli_with(args, None, &[])
    }

    /// Runs the CLI with `--endpoint` set to this server, `stdin` and extra environment.
    pub fn cli_with(&self, args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
        let endpoint = self.endpoint();
        let mut all = vec!["--endpoint", endpoint.as_str()];
        all.extend_from_slice(args);
        run(&all, stdin, env)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Stop accepting and close every connection, then stop the runtime.
        drop(self.server.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What a run of the CLI did.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Everything on stdout.
    pub stdout: String,
    /// Everything on stderr.
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as one JSON value.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Stderr parsed as one JSON value (the error object under `--json`).
    pub fn error_json(&self) -> Value {
        serde_json::from_str(&self.stderr)
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {self:?}"))
    }

    /// Asserts the exit code, showing the whole run if it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }
}

/// Runs the CLI with `args`, optional `stdin` and extra environment, with none of the Dapr
/// variables of the test's own environment.
///
/// The component is named with `--component`, which skips the host's check that it is newer
/// than the component's sources: other work on those sources must not fail these tests, which
/// are about the command line, not the component.
pub fn run(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dapr-session"));
    cmd.args(["--component", COMPONENT])
        .args(args)
        .env_remove("DAPR_HTTP_ENDPOINT")
        .env_remove("DAPR_HTTP_PORT")
        .env_remove("DAPR_API_TOKEN")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run dapr-session");
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let output = child.wait_with_output().expect("wait for dapr-session");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A loopback URL where nothing listens.
pub fn unreachable_endpoint() -> (String, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    (format!("http://127.0.0.1:{port}"), port)
}

/// `n` distinct items, as JSON text.
pub fn items(n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"type":"message","role":"{}","content":"{tag}-{i:04}","n":{i}}}"#,
                if i % 2 == 0 { "user" } else { "assistant" }
            )
        })
        .collect()
}

/// A scratch directory for one test, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// A fresh directory named after `test`.
    pub fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("dapr-session-cli-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }

    /// The names of the files in it.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("list temp dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
