//! The Python `DaprSession` under benchmark: one long-running Python process that times each
//! operation itself (so pipes and interpreter start-up are not counted), driven by JSON lines.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

const DRIVER: &str = r#"
import asyncio, json, sys, time
from agents.extensions.memory import DaprSession

async def main():
    address, store = sys.argv[1], sys.argv[2]
    sessions = {}
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        sid = cmd["session"]
        if sid not in sessions:
            sessions[sid] = DaprSession.from_address(sid, state_store_name=store, dapr_address=address)
        s = sessions[sid]
        op = cmd["op"]
        t0 = time.perf_counter()
        if op == "add":
            await s.add_items(cmd["items"])
        elif op == "get":
            out = await s.get_items(cmd.get("limit"))
        elif op == "turn":
            # An agent turn, as the SDK's Runner runs it: the history, then the turn's items.
            out = await s.get_items(cmd.get("limit"))
            await s.add_items(cmd["items"])
        elif op == "pop":
            await s.pop_item()
        elif op == "clear":
            await s.clear_session()
        dt = time.perf_counter() - t0
        print(json.dumps({"us": dt * 1e6}), flush=True)
    for s in sessions.values():
        await s.close()

asyncio.run(main())
"#;

/// A running Python benchmark driver.
pub struct PythonBench {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl PythonBench {
    /// Starts the driver against daprd's gRPC port.
    pub fn start(
        python: &std::path::Path,
        grpc_port: u16,
        http_endpoint: &str,
        store: &str,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(python)
            .args(["-c", DRIVER])
            .arg(format!("127.0.0.1:{grpc_port}"))
            .arg(store)
            .env("DAPR_HTTP_ENDPOINT", http_endpoint)
            .env_remove("DAPR_API_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the Python driver")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        Ok(PythonBench {
            child,
            stdin,
            stdout,
        })
    }

    /// Runs one operation; returns how long it took in Python, in microseconds.
    pub fn op(&mut self, session: &str, op: &str, extra: Value) -> anyhow::Result<f64> {
        let mut cmd = json!({"session": session, "op": op});
        if let (Some(obj), Some(more)) = (cmd.as_object_mut(), extra.as_object()) {
            obj.extend(more.clone());
        }
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.is_empty() {
            bail!("the Python driver exited");
        }
        let v: Value =
            serde_json::from_str(&line).with_context(|| format!("driver said {line:?}"))?;
        v["us"].as_f64().context("no timing")
    }
}

impl Drop for PythonBench {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
