//! Benchmarks the component against the Python `DaprSession`, on one daprd with Redis.
//!
//! ```text
//! cargo run --release -p dapr-session-host-tests --bin bench [-- --iterations 100 \
//!     --lengths 10,100,1000,10000 --out BENCHMARKS.md]
//! ```
//!
//! Measures, through the built component in wasmtime, `add-items` (a 2-item turn),
//! `get-items(limit=20)`, `get-items()` and `pop-item` at each session length, for both layouts,
//! interleaved iteration by iteration with the same operations through the real Python
//! `DaprSession` (gRPC) and with daprd's raw `GET` and `POST` of one small key from a native
//! client (the floor). Then the component's cost at the host: size, compile time,
//! instantiation through `InstancePre`, memory per instance and per open session, and
//! throughput with 1, 8 and 64 sessions served at once. Writes the tables between the
//! `bench` markers of the output file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod python;
mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dapr_session_host_tests::client::DaprHttp;
use dapr_session_host_tests::daprd::{ComponentSpec, DAPR_VERSION, Daprd, DaprdOptions};
use dapr_session_host_tests::host::{
    BeforeSend, COMPONENT, Config, Exchange, Hooks, Host, Instance, InstanceOptions, Layout, Pool,
    SessionHandle, Synthetic, config,
};
use dapr_session_host_tests::redis::RedisServer;
use serde_json::{Value, json};

use crate::python::PythonBench;
use crate::report::{Costs, Report, Row, Samples, Throughput};

const STORE: &str = "statestore";

struct Args {
    iterations: usize,
    lengths: Vec<usize>,
    out: std::path::PathBuf,
    throughput_secs: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        iterations: 100,
        lengths: vec![10, 100, 1_000, 10_000],
        out: "BENCHMARKS.md".into(),
        throughput_secs: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--iterations" => a.iterations = value.parse()?,
            "--lengths" => {
                a.lengths = value.split(',').map(str::parse).collect::<Result<_, _>>()?
            }
            "--out" => a.out = value.into(),
            "--throughput-secs" => a.throughput_secs = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn msg(role: &str, content: &str) -> String {
    json!({"type": "message", "role": role, "content": content}).to_string()
}

fn turn(i: usize) -> Vec<String> {
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

/// The order of the measured blocks (log, compat, Python, floor, log without a pool, log in
/// a fresh instance per operation),
/// shuffled afresh every iteration so that no block always follows the same one.
struct Shuffle(u64);

impl Shuffle {
    fn new(seed: u64) -> Self {
        Shuffle(seed | 1)
    }

    /// xorshift64*
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_permutation(&mut self) -> [usize; 6] {
        let mut p = [0, 1, 2, 3, 4, 5];
        for i in (1..p.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            p.swap(i, j);
        }
        p
    }
}

/// Resident memory of this process, in bytes.
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn cfg(endpoint: &str, layout: Layout) -> Config {
    let mut c = config(endpoint, STORE);
    c.layout = Some(layout);
    c
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, f64) {
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed().as_secs_f64() * 1e6)
}

/// One component session under benchmark.
struct Ours {
    inst: Instance,
    session: SessionHandle,
}

impl Ours {
    async fn op(&mut self, op: &str, i: usize) -> anyhow::Result<f64> {
        let s = self.session;
        let (r, us) = match op {
            "add" => {
                let items = turn(i);
                timed(self.inst.add_items(s, &items)).await
            }
            "pop" => {
                let (r, us) = timed(self.inst.pop_item(s)).await;
                (r.map(|_| ()), us)
            }
            "get20" => {
                let (r, us) = timed(self.inst.get_items(s, Some(20))).await;
                (r.map(|_| ()), us)
            }
            _ => {
                let (r, us) = timed(self.inst.get_items(s, None)).await;
                (r.map(|_| ()), us)
            }
        };
        r.map_err(|e| anyhow::anyhow!("{op}: {e}"))?;
        Ok(us)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // On a worker thread, as a server's request handler runs, not on the thread blocked in
    // `main`: every answer would otherwise wake another thread.
    tokio::spawn(bench()).await?
}

async fn bench() -> anyhow::Result<()> {
    let args = args()?;
    eprintln!("starting redis-server and daprd v{DAPR_VERSION}");
    let redis = RedisServer::start().await?;
    let daprd = Daprd::start(DaprdOptions {
        app_id: "bench".into(),
        components: vec![ComponentSpec::redis(STORE, &redis.address())],
        api_token: None,
    })
    .await?;
    let endpoint = daprd.endpoint();
    // Hosts keep outgoing connections alive (Spin and wasmCloud do); wasmtime's default opens
    // one per request. Both are measured.
    let pool = Pool::new();
    let pooled = || InstanceOptions {
        hooks: Hooks {
            pool: Some(pool.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    let python = dapr_session_host_tests::python::python()?;
    let mut py = PythonBench::start(&python, daprd.grpc_port(), &endpoint, STORE)?;

    // The component at the host.
    let wasm_bytes = std::fs::metadata(COMPONENT)?.len();
    let t = Instant::now();
    let host = Host::new()?;
    let compile = t.elapsed();
    let mut instantiate = Samples::default();
    for _ in 0..200 {
        let (inst, us) = timed(host.instance()).await;
        drop(inst?);
        instantiate.push(us);
    }
    let before = rss();
    let mut held = Vec::new();
    for i in 0..200 {
        let mut inst = host.instance().await?;
        let s = inst
            .open(&format!("mem-{i}"), &cfg(&endpoint, Layout::Log))
            .await?;
        inst.get_items(s, Some(1)).await?;
        held.push(inst);
    }
    let per_instance = rss().saturating_sub(before) / 200;
    drop(held);
    let mut inst = host.instance().await?;
    let s = inst.open("warm", &cfg(&endpoint, Layout::Log)).await?;
    inst.get_items(s, Some(1)).await?;
    let before = rss();
    let mut handles = Vec::new();
    for i in 0..10_000 {
        handles.push(
            inst.open(&format!("open-{i}"), &cfg(&endpoint, Layout::Log))
                .await?,
        );
    }
    let per_session = rss().saturating_sub(before) as f64 / 10_000.0;
    for h in handles {
        inst.close(h).await?;
    }
    drop(inst);
    let costs = Costs {
        wasm_bytes,
        compile,
        instantiate,
        per_instance,
        per_session,
    };

    // Latency, interleaved: ours (log, compat), Python, and the raw floor.
    let raw = DaprHttp::new(&endpoint);
    raw.put(
        STORE,
        "bench-floor",
        &json!({"role": "user", "content": "x"}),
    )
    .await?;
    let floor_body = serde_json::to_vec(
        &json!([{"key": "bench-floor", "value": {"role": "user", "content": "x"}}]),
    )?;
    let run = std::process::id();
    let mut order = Shuffle::new(u64::from(run));
    let mut rows = Vec::new();
    let mut floor_get = Samples::default();
    let mut floor_post = Samples::default();
    let mut head_bytes = std::collections::BTreeMap::new();
    for &length in &args.lengths {
        eprintln!("length {length}: filling the sessions");
        let mut inst = host.instance_with(pooled()).await?;
        let session = inst
            .open(&format!("log-{length}-{run}"), &cfg(&endpoint, Layout::Log))
            .await?;
        let mut log = Ours { inst, session };
        // The same workload through an instance whose host opens a connection per request.
        let mut inst = host.instance().await?;
        let session = inst
            .open(
                &format!("log-nopool-{length}-{run}"),
                &cfg(&endpoint, Layout::Log),
            )
            .await?;
        let mut unpooled = Ours { inst, session };
        for i in 0..length / 2 {
            unpooled.inst.add_items(unpooled.session, &turn(i)).await?;
        }
        for i in 0..length / 2 {
            log.inst.add_items(log.session, &turn(i)).await?;
        }
        // Serverless hosts (Spin, wasmCloud) instantiate per request: every operation in an
        // instance of its own, timed from instantiation to the answer.
        let fresh_id = format!("log-fresh-{length}-{run}");
        {
            let mut inst = host.instance_with(pooled()).await?;
            let s = inst.open(&fresh_id, &cfg(&endpoint, Layout::Log)).await?;
            for i in 0..length / 2 {
                inst.add_items(s, &turn(i)).await?;
            }
        }
        let mut inst = host.instance_with(pooled()).await?;
        let session = inst
            .open(
                &format!("compat-{length}-{run}"),
                &cfg(&endpoint, Layout::Compat),
            )
            .await?;
        let mut compat = Ours { inst, session };
        let all: Vec<String> = (0..length / 2).flat_map(turn).collect();
        compat.inst.add_items(compat.session, &all).await?;
        let py_session = format!("python-{length}-{run}");
        let all_values: Vec<Value> = all
            .iter()
            .map(|i| serde_json::from_str(i).unwrap())
            .collect();
        py.op(&py_session, "add", json!({"items": all_values}))?;

        let mut samples: std::collections::BTreeMap<(&str, &str), Samples> = Default::default();
        let iterations = if length >= 10_000 {
            args.iterations.min(60)
        } else {
            args.iterations
        };
        eprintln!("length {length}: {iterations} interleaved iterations");
        for i in 0..iterations + 5 {
            let warm = i < 5;
            for block in order.next_permutation() {
                match block {
                    0 | 1 | 4 => {
                        let (name, ours) = match block {
                            0 => ("log", &mut log),
                            1 => ("compat", &mut compat),
                            _ => ("log, no pool", &mut unpooled),
                        };
                        // Untimed: the first request after another system's block pays for
                        // the switch (threads waking); every block starts with one.
                        ours.inst
                            .get_items(ours.session, Some(1))
                            .await
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        for op in ["add", "pop", "get20", "getall"] {
                            let us = ours.op(op, i).await?;
                            if !warm {
                                samples.entry((name, op)).or_default().push(us);
                            }
                        }
                        ours.op("pop", i).await?;
                    }
                    5 => {
                        // (operation, timed): the first is the block's warm-up, the last
                        // restores the length.
                        for (op, timed) in [
                            ("get20", false),
                            ("add", true),
                            ("pop", true),
                            ("get20", true),
                            ("getall", true),
                            ("pop", false),
                        ] {
                            let t = Instant::now();
                            let mut inst = host.instance_with(pooled()).await?;
                            let session =
                                inst.open(&fresh_id, &cfg(&endpoint, Layout::Log)).await?;
                            Ours { inst, session }.op(op, i).await?;
                            let us = t.elapsed().as_secs_f64() * 1e6;
                            if timed && !warm {
                                samples
                                    .entry(("log, fresh instance", op))
                                    .or_default()
                                    .push(us);
                            }
                        }
                    }
                    2 => {
                        let items: Vec<Value> = turn(i)
                            .iter()
                            .map(|t| serde_json::from_str(t).unwrap())
                            .collect();
                        py.op(&py_session, "get", json!({"limit": 1}))?;
                        for (op, extra) in [
                            ("add", json!({"items": items})),
                            ("pop", json!({})),
                            ("get20", json!({"limit": 20})),
                            ("getall", json!({})),
                        ] {
                            let wire = if op.starts_with("get") { "get" } else { op };
                            let us = py.op(&py_session, wire, extra)?;
                            if !warm {
                                samples.entry(("python", op)).or_default().push(us);
                            }
                        }
                        py.op(&py_session, "pop", json!({}))?;
                    }
                    _ => {
                        raw.get(STORE, "bench-floor").await?;
                        let (g, us) = timed(raw.get(STORE, "bench-floor")).await;
                        g?;
                        if !warm {
                            floor_get.push(us);
                        }
                        // What one round trip moving the log layout's head costs at this length.
                        let head_key = format!("log-{length}-{run}:head");
                        let (g, us) = timed(raw.get(STORE, &head_key)).await;
                        let head = g?;
                        if !warm {
                            samples.entry(("head GET", "get20")).or_default().push(us);
                            head_bytes.insert(length, head.body.len());
                        }
                        let (p, us) = timed(raw.send(
                            http::Method::POST,
                            "/v1.0/state/statestore",
                            Some(floor_body.clone()),
                            &[],
                        ))
                        .await;
                        p?;
                        if !warm {
                            floor_post.push(us);
                        }
                    }
                }
            }
        }
        // The component's and wasmtime's own share: the same get-items(limit=20) with the
        // host answering the head's GET itself, no sidecar and no network.
        let head_key = format!("log-{length}-{run}:head");
        let head = String::from_utf8(raw.get(STORE, &head_key).await?.body.to_vec())?;
        let answer: BeforeSend = Arc::new(move |e: &Exchange| {
            let hit = e.method == "GET" && e.uri.contains("%3Ahead");
            let body = head.clone();
            Box::pin(async move { hit.then_some(Synthetic { status: 200, body }) })
        });
        let mut inst = host
            .instance_with(InstanceOptions {
                hooks: Hooks {
                    before_send: Some(answer),
                    pool: Some(pool.clone()),
                    ..Default::default()
                },
                ..Default::default()
            })
            .await?;
        let session = inst
            .open(&format!("log-{length}-{run}"), &cfg(&endpoint, Layout::Log))
            .await?;
        let mut local = Ours { inst, session };
        for i in 0..iterations * 5 {
            let us = local.op("get20", i).await?;
            if i >= 20 {
                samples
                    .entry(("host-answered", "get20"))
                    .or_default()
                    .push(us);
            }
        }
        for ((system, op), s) in samples {
            rows.push(Row {
                length,
                system: system.to_string(),
                op: op.to_string(),
                samples: s,
            });
        }
    }

    // Throughput: N sessions, one instance each, served at once from this process.
    let mut throughput = Vec::new();
    for n in [1usize, 8, 64] {
        let deadline = Instant::now() + Duration::from_secs(args.throughput_secs);
        let mut tasks = Vec::new();
        for t in 0..n {
            let mut inst = host.instance_with(pooled()).await?;
            let s = inst
                .open(&format!("tp-{n}-{t}-{run}"), &cfg(&endpoint, Layout::Log))
                .await?;
            tasks.push(tokio::spawn(async move {
                let mut turns = 0u64;
                while Instant::now() < deadline {
                    inst.get_items(s, Some(20))
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    inst.add_items(s, &turn(turns as usize))
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    turns += 1;
                }
                anyhow::Ok(turns)
            }));
        }
        let started = Instant::now();
        let sent = pool.requests();
        let mut turns = 0;
        for t in tasks {
            turns += t.await??;
        }
        throughput.push(Throughput {
            sessions: n,
            turns,
            requests: pool.requests() - sent,
            elapsed: started.elapsed(),
        });
    }
    drop(py);

    let report = Report {
        costs,
        floor_get,
        floor_post,
        rows,
        throughput,
        iterations: args.iterations,
        lengths: args.lengths.clone(),
        head_bytes,
    };
    let markdown = report.markdown(&report::environment(&redis_version(), &python)?);
    println!("{markdown}");
    report::write_between_markers(&args.out, &markdown)?;
    eprintln!("results written to {}", args.out.display());
    Ok(())
}

fn redis_version() -> String {
    std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
