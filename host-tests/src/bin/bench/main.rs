//! Benchmarks the component against the Python `DaprSession`, on one daprd with Redis.
//!
//! ```text
//! cargo run --release -p dapr-session-host-tests --bin bench [-- --iterations 100 \
//!     --lengths 10,100,1000,10000,100000 --out BENCHMARKS.md \
//!     --baseline path/to/an/older/dapr_session.wasm]
//! ```
//!
//! Measures, through the built component in wasmtime, the agent turn (`get-items()` then a
//! 2-item `add-items`, as the SDK's `Runner` runs it, and the same with `limit=20`),
//! `add-items`, `get-items(limit=20)`, `get-items()` and `pop-item` at each session length, for
//! both layouts, interleaved iteration by iteration with the same operations through the real
//! Python `DaprSession` (gRPC) and with daprd's raw requests from a native client (the floor:
//! one small key, and one key holding the session's items as one value). Lengths above
//! 10,000 run the `log` layout alone. Then what each session occupies in Redis, the
//! component's cost at the host (size, compile time, instantiation, memory) and throughput
//! with 1, 8 and 64 sessions served at once. Writes the tables between the `bench` markers of
//! the output file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

mod baseline;
mod python;
mod report;
mod storage;
mod systems;
mod tables;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dapr_session_host_tests::client::DaprHttp;
use dapr_session_host_tests::daprd::{ComponentSpec, DAPR_VERSION, Daprd, DaprdOptions};
use dapr_session_host_tests::host::{
    BeforeSend, COMPONENT, Exchange, Hooks, Host, InstanceOptions, Layout, Pool, Synthetic,
};
use dapr_session_host_tests::redis::{RedisServer, Resp};

use crate::python::PythonBench;
use crate::report::{Baseline, Costs, Report, Row, Samples, Throughput};
use crate::storage::Storage;
use crate::systems::{
    Floor, OPS, Ours, RESTORE_POPS, STORE, cfg, fresh_op, python_op, timed, turn,
};

/// The app id daprd runs as (its Redis keys start with `{APP_ID}||`).
const APP_ID: &str = "bench";
/// Longest session every system runs; longer ones run the `log` layout alone.
const ALL_SYSTEMS_UP_TO: usize = 10_000;

struct Args {
    iterations: usize,
    lengths: Vec<usize>,
    out: std::path::PathBuf,
    throughput_secs: u64,
    baseline: Option<std::path::PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        iterations: 100,
        lengths: vec![10, 100, 1_000, 10_000, 100_000],
        out: "BENCHMARKS.md".into(),
        throughput_secs: 5,
        baseline: None,
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
            "--baseline" => a.baseline = Some(value.into()),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

/// Iterations at `length`: fewer for the long sessions, whose Python and `compat` writes move
/// megabytes.
fn iterations_at(length: usize, asked: usize) -> usize {
    match length {
        0..10_000 => asked,
        10_000..100_000 => asked.min(60),
        _ => asked.min(30),
    }
}

/// The order of the measured blocks, shuffled afresh every iteration so that no block always
/// follows the same one.
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

    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // On a worker thread, as a server's request handler runs, not on the thread blocked in
    // `main`: every answer would otherwise wake another thread.
    tokio::spawn(bench()).await?
}

/// The component's cost at the host.
async fn costs(host_compile: Duration, host: &Host, endpoint: &str) -> anyhow::Result<Costs> {
    let wasm_bytes = std::fs::metadata(COMPONENT)?.len();
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
            .open(&format!("mem-{i}"), &cfg(endpoint, Layout::Log))
            .await?;
        inst.get_items(s, Some(1)).await?;
        held.push(inst);
    }
    let per_instance = rss().saturating_sub(before) / 200;
    drop(held);
    let mut inst = host.instance().await?;
    let s = inst.open("warm", &cfg(endpoint, Layout::Log)).await?;
    inst.get_items(s, Some(1)).await?;
    let before = rss();
    let mut handles = Vec::new();
    for i in 0..10_000 {
        handles.push(
            inst.open(&format!("open-{i}"), &cfg(endpoint, Layout::Log))
                .await?,
        );
    }
    let per_session = rss().saturating_sub(before) as f64 / 10_000.0;
    for h in handles {
        inst.close(h).await?;
    }
    Ok(Costs {
        wasm_bytes,
        compile: host_compile,
        instantiate,
        per_instance,
        per_session,
    })
}

/// Everything measured at one length.
#[derive(Default)]
struct AtLength {
    samples: BTreeMap<(&'static str, &'static str), Samples>,
    storage: BTreeMap<&'static str, Storage>,
    head_bytes: usize,
    same_bytes: usize,
}

impl AtLength {
    fn push(&mut self, system: &'static str, op: &'static str, us: f64) {
        self.samples.entry((system, op)).or_default().push(us);
    }
}

struct Bench {
    host: Host,
    pool: Pool,
    endpoint: String,
    redis: Resp,
    py: PythonBench,
    run: u32,
    order: Shuffle,
    floor_get: Samples,
    floor_post: Samples,
    /// Another build of the component (`--baseline`), run as [`baseline::BEFORE`].
    before: Option<Host>,
}

impl Bench {
    fn pooled(&self) -> InstanceOptions {
        InstanceOptions {
            hooks: Hooks {
                pool: Some(self.pool.clone()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    async fn length(&mut self, length: usize, iterations: usize) -> anyhow::Result<AtLength> {
        let run = self.run;
        let all_systems = length <= ALL_SYSTEMS_UP_TO;
        let mut out = AtLength::default();
        eprintln!("length {length}: filling the sessions");
        let log_id = format!("log-{length}-{run}");
        let log_cfg = cfg(&self.endpoint, Layout::Log);
        let mut log = Ours::open(&self.host, self.pooled(), &log_id, &log_cfg).await?;
        log.fill(length).await?;
        out.storage.insert(
            "log",
            storage::measure(&mut self.redis, APP_ID, &log_id).await?,
        );
        // Serverless hosts (Spin, wasmCloud) instantiate per request: a session of its own
        // whose every operation runs in a new instance.
        let fresh_id = format!("log-fresh-{length}-{run}");
        Ours::open(&self.host, self.pooled(), &fresh_id, &log_cfg)
            .await?
            .fill(length)
            .await?;
        let items: Vec<String> = (0..length / 2).flat_map(turn).collect();
        // The floor for whole reads: one key holding the session's items as one value, what
        // `compat` stores (written straight into Redis: daprd takes at most 4 MiB a request).
        let same_key = format!("same-{length}-{run}");
        self.redis
            .put_dapr_raw(
                &format!("{APP_ID}||{same_key}"),
                &serde_json::to_vec(&items)?,
            )
            .await?;
        let floor = Floor::new(
            DaprHttp::new(&self.endpoint),
            "bench-floor",
            &same_key,
            &format!("{log_id}:head"),
        )?;
        let mut before = match &self.before {
            Some(host) => {
                let id = format!("log-before-{length}-{run}");
                let mut ours = Ours::open(host, self.pooled(), &id, &log_cfg).await?;
                ours.fill(length).await?;
                Some(ours)
            }
            None => None,
        };
        let (mut compat, mut unpooled, py_id) = if all_systems {
            let compat_id = format!("compat-{length}-{run}");
            let mut compat = Ours::open(
                &self.host,
                self.pooled(),
                &compat_id,
                &cfg(&self.endpoint, Layout::Compat),
            )
            .await?;
            compat.inst.add_items(compat.session, &items).await?;
            out.storage.insert(
                "compat",
                storage::measure(&mut self.redis, APP_ID, &compat_id).await?,
            );
            // The `log` layout under wasmtime's default outgoing HTTP: a connection per request.
            let mut unpooled = Ours::open(
                &self.host,
                InstanceOptions::default(),
                &format!("log-nopool-{length}-{run}"),
                &log_cfg,
            )
            .await?;
            unpooled.fill(length).await?;
            let py_id = format!("python-{length}-{run}");
            let values: Vec<serde_json::Value> = items
                .iter()
                .map(|i| serde_json::from_str(i))
                .collect::<Result<_, _>>()?;
            self.py
                .op(&py_id, "add", serde_json::json!({"items": values}))?;
            out.storage.insert(
                "python",
                storage::measure(&mut self.redis, APP_ID, &py_id).await?,
            );
            (Some(compat), Some(unpooled), Some(py_id))
        } else {
            (None, None, None)
        };

        eprintln!("length {length}: {iterations} interleaved iterations");
        for i in 0..iterations + 5 {
            let warm = i < 5;
            for block in self.order.permutation(7) {
                match block {
                    0 | 1 | 4 | 6 => {
                        let (name, ours) = match block {
                            0 => ("log", Some(&mut log)),
                            1 => ("compat", compat.as_mut()),
                            4 => ("log, no pool", unpooled.as_mut()),
                            _ => (baseline::BEFORE, before.as_mut()),
                        };
                        let Some(ours) = ours else { continue };
                        // Untimed: the first request after another system's block pays for
                        // the switch (threads waking); every block starts with one.
                        ours.op("get1", i).await?;
                        for op in OPS {
                            let us = ours.op(op, i).await?;
                            if !warm {
                                out.push(name, op, us);
                            }
                        }
                        for _ in 0..RESTORE_POPS {
                            ours.op("pop", i).await?;
                        }
                    }
                    2 => {
                        let Some(py_id) = &py_id else { continue };
                        python_op(&mut self.py, py_id, "get1", i)?;
                        for op in OPS {
                            let us = python_op(&mut self.py, py_id, op, i)?;
                            if !warm {
                                out.push("python", op, us);
                            }
                        }
                        for _ in 0..RESTORE_POPS {
                            python_op(&mut self.py, py_id, "pop", i)?;
                        }
                    }
                    5 => {
                        let fresh =
                            |op| fresh_op(&self.host, self.pooled(), &fresh_id, &log_cfg, op, i);
                        fresh("get1").await?;
                        for op in OPS {
                            let us = fresh(op).await?;
                            if !warm {
                                out.push("log, fresh instance", op, us);
                            }
                        }
                        for _ in 0..RESTORE_POPS {
                            fresh("pop").await?;
                        }
                    }
                    _ => {
                        floor.get(&floor.small).await?;
                        let (get, _) = floor.get(&floor.small).await?;
                        let post = floor.post().await?;
                        let (head, head_bytes) = floor.get(&floor.head).await?;
                        let (same, same_bytes) = floor.get(&floor.same).await?;
                        // The floor of a turn: one raw GET of the same bytes and one POST.
                        let started = Instant::now();
                        floor.get(&floor.same).await?;
                        floor.post().await?;
                        let turn = started.elapsed().as_secs_f64() * 1e6;
                        let started = Instant::now();
                        floor.get(&floor.small).await?;
                        floor.post().await?;
                        let turn20 = started.elapsed().as_secs_f64() * 1e6;
                        if !warm {
                            self.floor_get.push(get);
                            self.floor_post.push(post);
                            out.push("floor", "get20", get);
                            out.push("floor", "add", post);
                            out.push("floor", "pop", post);
                            out.push("head GET", "get20", head);
                            out.push("floor", "getall", same);
                            out.push("floor", "turn", turn);
                            out.push("floor", "turn20", turn20);
                            out.head_bytes = head_bytes;
                            out.same_bytes = same_bytes;
                        }
                    }
                }
            }
        }
        // The component's and wasmtime's own share of reads: the host answers the GETs of the
        // head and the chunks itself, no sidecar and no network.
        let mut answers: BTreeMap<String, String> = BTreeMap::new();
        let head = String::from_utf8(floor.raw.get(STORE, &floor.head).await?.body.to_vec())?;
        let parsed: serde_json::Value = serde_json::from_str(&head)?;
        for chunk in parsed["k"].as_array().into_iter().flatten() {
            let key = format!("{log_id}:c:{}", chunk[0].as_str().unwrap_or_default());
            let body = floor.raw.get(STORE, &key).await?.body.to_vec();
            answers.insert(
                dapr_session_host_tests::client::encode(&key),
                String::from_utf8(body)?,
            );
        }
        answers.insert(dapr_session_host_tests::client::encode(&floor.head), head);
        let answers = Arc::new(answers);
        let answer: BeforeSend = Arc::new(move |e: &Exchange| {
            let body = (e.method == "GET")
                .then(|| {
                    let path = e.uri.split('?').next().unwrap_or_default();
                    let key = path.rsplit('/').next().unwrap_or_default();
                    answers.get(key).cloned()
                })
                .flatten();
            Box::pin(async move { body.map(|body| Synthetic { status: 200, body }) })
        });
        let options = InstanceOptions {
            hooks: Hooks {
                before_send: Some(answer),
                pool: Some(self.pool.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut local = Ours::open(&self.host, options, &log_id, &log_cfg).await?;
        for i in 0..iterations * 5 {
            for op in ["get20", "getall"] {
                let us = local.op(op, i).await?;
                if i >= 20 {
                    out.push("host-answered", op, us);
                }
            }
        }
        Ok(out)
    }

    /// Agent turns (`get-items(limit=20)` then a 2-item `add-items`) with `n` sessions served
    /// at once, one instance each, for `secs`.
    async fn throughput(&self, n: usize, secs: u64) -> anyhow::Result<Throughput> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for t in 0..n {
            let id = format!("tp-{n}-{t}-{}", self.run);
            let mut ours = Ours::open(
                &self.host,
                self.pooled(),
                &id,
                &cfg(&self.endpoint, Layout::Log),
            )
            .await?;
            tasks.push(tokio::spawn(async move {
                let mut turns = 0usize;
                while Instant::now() < deadline {
                    ours.op("turn20", turns).await?;
                    turns += 1;
                }
                anyhow::Ok(turns as u64)
            }));
        }
        let started = Instant::now();
        let sent = self.pool.requests();
        let mut turns = 0;
        for t in tasks {
            turns += t.await??;
        }
        Ok(Throughput {
            sessions: n,
            turns,
            requests: self.pool.requests() - sent,
            elapsed: started.elapsed(),
        })
    }
}

async fn bench() -> anyhow::Result<()> {
    let args = args()?;
    eprintln!("starting redis-server and daprd v{DAPR_VERSION}");
    let redis = RedisServer::start().await?;
    let daprd = Daprd::start(DaprdOptions {
        app_id: APP_ID.into(),
        components: vec![ComponentSpec::redis(STORE, &redis.address())],
        api_token: None,
    })
    .await?;
    let endpoint = daprd.endpoint();
    let python = dapr_session_host_tests::python::python()?;
    let t = Instant::now();
    let host = Host::new()?;
    let compile = t.elapsed();
    let costs = costs(compile, &host, &endpoint).await?;
    let (before, baseline) = match &args.baseline {
        Some(path) => {
            let t = Instant::now();
            let before = Host::from_file(path)?;
            let info = Baseline {
                path: path.display().to_string(),
                wasm_bytes: std::fs::metadata(path)?.len(),
                compile: t.elapsed(),
            };
            (Some(before), Some(info))
        }
        None => (None, None),
    };
    DaprHttp::new(&endpoint)
        .put(
            STORE,
            "bench-floor",
            &serde_json::json!({"role": "user", "content": "x"}),
        )
        .await?;
    let mut bench = Bench {
        host,
        pool: Pool::new(),
        endpoint: endpoint.clone(),
        redis: redis.client().await?,
        py: PythonBench::start(&python, daprd.grpc_port(), &endpoint, STORE)?,
        run: std::process::id(),
        order: Shuffle::new(u64::from(std::process::id())),
        floor_get: Samples::default(),
        floor_post: Samples::default(),
        before,
    };
    let mut rows = Vec::new();
    let mut storage = Vec::new();
    let mut head_bytes = BTreeMap::new();
    let mut same_bytes = BTreeMap::new();
    for &length in &args.lengths {
        let at = bench
            .length(length, iterations_at(length, args.iterations))
            .await?;
        for ((system, op), samples) in at.samples {
            rows.push(Row {
                length,
                system: system.to_string(),
                op: op.to_string(),
                samples,
            });
        }
        for (system, s) in at.storage {
            storage.push((length, system.to_string(), s));
        }
        head_bytes.insert(length, at.head_bytes);
        same_bytes.insert(length, at.same_bytes);
    }
    let mut throughput = Vec::new();
    for n in [1usize, 8, 64] {
        throughput.push(bench.throughput(n, args.throughput_secs).await?);
    }
    let Bench {
        floor_get,
        floor_post,
        py,
        ..
    } = bench;
    drop(py);

    let report = Report {
        costs,
        floor_get,
        floor_post,
        rows,
        storage,
        throughput,
        iterations: args.iterations,
        lengths: args.lengths.clone(),
        head_bytes,
        same_bytes,
        baseline,
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
