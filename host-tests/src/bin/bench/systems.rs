//! The systems under benchmark and the operations they run: the component in a long-lived
//! instance, the component in an instance per operation, the Python `DaprSession`, and the raw
//! floor.

use std::time::Instant;

use dapr_session_host_tests::client::DaprHttp;
use dapr_session_host_tests::host::{
    Config, Host, Instance, InstanceOptions, Layout, SessionHandle, config,
};
use serde_json::{Value, json};

use crate::python::PythonBench;

/// The state store every system uses.
pub const STORE: &str = "statestore";

/// The operations timed, in the order each block runs them, and what they do to the length:
/// `turn` is an agent turn as the SDK's `Runner` runs it (the whole history, then the turn's two
/// items), `turn20` the same with `limit=20`.
pub const OPS: [&str; 6] = ["add", "pop", "get20", "getall", "turn", "turn20"];
/// Pops that restore the length after one block of [`OPS`] (+2 -1 +2 +2).
pub const RESTORE_POPS: usize = 5;

/// A chat message item as JSON text.
pub fn msg(role: &str, content: &str) -> String {
    json!({"type": "message", "role": role, "content": content}).to_string()
}

/// The two items of agent turn `i`, about 110 bytes each.
pub fn turn(i: usize) -> Vec<String> {
    vec![
        msg(
            "user",
            &format!("question {i}: what should the agent do next, given the conversation so far?"),
        ),
        msg(
            "assistant",
            &format!(
                "answer {i}: a reply of typical length, with a few sentences of content in it."
            ),
        ),
    ]
}

/// The config of a session of `layout` on the sidecar at `endpoint`.
pub fn cfg(endpoint: &str, layout: Layout) -> Config {
    let mut c = config(endpoint, STORE);
    c.layout = Some(layout);
    c
}

/// Runs `f` and returns its output and how long it took, in microseconds.
pub async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, f64) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed().as_secs_f64() * 1e6)
}

/// One component session in a long-lived instance.
pub struct Ours {
    pub inst: Instance,
    pub session: SessionHandle,
}

impl Ours {
    /// Opens session `id` in a new instance set up by `options`.
    pub async fn open(
        host: &Host,
        options: InstanceOptions,
        id: &str,
        config: &Config,
    ) -> anyhow::Result<Self> {
        let mut inst = host.instance_with(options).await?;
        let session = inst.open(id, config).await?;
        Ok(Ours { inst, session })
    }

    /// Appends `n` items in 2-item turns.
    pub async fn fill(&mut self, n: usize) -> anyhow::Result<()> {
        for i in 0..n / 2 {
            self.inst.add_items(self.session, &turn(i)).await?;
        }
        Ok(())
    }

    /// Runs `op` (one of [`OPS`], or `pop`/`get1` untimed) for iteration `i`; returns how long it
    /// took in microseconds.
    pub async fn op(&mut self, op: &str, i: usize) -> anyhow::Result<f64> {
        let s = self.session;
        let started = Instant::now();
        let done = match op {
            "add" => self.inst.add_items(s, &turn(i)).await,
            "pop" => self.inst.pop_item(s).await.map(drop),
            "get1" => self.inst.get_items(s, Some(1)).await.map(drop),
            "get20" => self.inst.get_items(s, Some(20)).await.map(drop),
            "getall" => self.inst.get_items(s, None).await.map(drop),
            "turn" | "turn20" => {
                let limit = (op == "turn20").then_some(20);
                match self.inst.get_items(s, limit).await {
                    Ok(_) => self.inst.add_items(s, &turn(i)).await,
                    Err(e) => Err(e),
                }
            }
            other => anyhow::bail!("no operation {other}"),
        };
        let us = started.elapsed().as_secs_f64() * 1e6;
        done.map_err(|e| anyhow::anyhow!("{op}: {e}"))?;
        Ok(us)
    }
}

/// Runs `op` on session `id` in an instance of its own, as serverless hosts run every request;
/// timed from instantiation to the answer.
pub async fn fresh_op(
    host: &Host,
    options: InstanceOptions,
    id: &str,
    config: &Config,
    op: &str,
    i: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut ours = Ours::open(host, options, id, config).await?;
    ours.op(op, i).await?;
    Ok(started.elapsed().as_secs_f64() * 1e6)
}

/// Runs `op` on the Python session `session`; returns Python's own timing.
pub fn python_op(py: &mut PythonBench, session: &str, op: &str, i: usize) -> anyhow::Result<f64> {
    let items = || -> Vec<Value> {
        turn(i)
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect()
    };
    let (wire, extra) = match op {
        "add" => ("add", json!({"items": items()})),
        "pop" => ("pop", json!({})),
        "get1" => ("get", json!({"limit": 1})),
        "get20" => ("get", json!({"limit": 20})),
        "getall" => ("get", json!({})),
        "turn" => ("turn", json!({"items": items()})),
        "turn20" => ("turn", json!({"items": items(), "limit": 20})),
        other => anyhow::bail!("no operation {other}"),
    };
    py.op(session, wire, extra)
}

/// The raw floor: daprd's state API from a native keep-alive client.
pub struct Floor {
    pub raw: DaprHttp,
    /// A small key (one item).
    pub small: String,
    /// A key holding a session's items as one value (what `compat` stores), per length.
    pub same: String,
    /// The `log` session's head, per length.
    pub head: String,
    small_body: Vec<u8>,
}

impl Floor {
    /// The floor for the keys named.
    pub fn new(raw: DaprHttp, small: &str, same: &str, head: &str) -> anyhow::Result<Self> {
        let small_body = serde_json::to_vec(
            &json!([{"key": small, "value": {"role": "user", "content": "x"}}]),
        )?;
        Ok(Floor {
            raw,
            small: small.to_string(),
            same: same.to_string(),
            head: head.to_string(),
            small_body,
        })
    }

    /// A raw `GET` of `key`; returns the time and the body's size.
    pub async fn get(&self, key: &str) -> anyhow::Result<(f64, usize)> {
        let (answer, us) = timed(self.raw.get(STORE, key)).await;
        Ok((us, answer?.body.len()))
    }

    /// A raw `POST` of the small key.
    pub async fn post(&self) -> anyhow::Result<f64> {
        let (answer, us) = timed(self.raw.send(
            http::Method::POST,
            &format!("/v1.0/state/{STORE}"),
            Some(self.small_body.clone()),
            &[],
        ))
        .await;
        answer?;
        Ok(us)
    }
}
