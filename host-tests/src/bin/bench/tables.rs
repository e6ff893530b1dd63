//! The report's Markdown tables, and the targets they are checked against.

use std::fmt::Write as _;

use dapr_session_host_tests::python::OPENAI_AGENTS;

use crate::report::Report;

pub(crate) fn ms(us: f64) -> String {
    if us >= 100_000.0 {
        format!("{:.0}", us / 1000.0)
    } else if us >= 10_000.0 {
        format!("{:.1}", us / 1000.0)
    } else {
        format!("{:.2}", us / 1000.0)
    }
}

pub(crate) fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
        _ => "-".into(),
    }
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "**no**" }
}

const OPS: [(&str, &str); 4] = [
    ("add", "add-items (2-item turn)"),
    ("get20", "get-items(limit=20)"),
    ("getall", "get-items()"),
    ("pop", "pop-item"),
];

impl Report {
    pub(crate) fn median(&self, length: usize, system: &str, op: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.length == length && r.system == system && r.op == op)
            .map(|r| r.samples.median())
    }

    pub(crate) fn cell(&self, length: usize, system: &str, op: &str) -> String {
        self.rows
            .iter()
            .find(|r| r.length == length && r.system == system && r.op == op)
            .map_or("-".to_string(), |r| {
                format!("{} / {}", ms(r.samples.median()), ms(r.samples.p95()))
            })
    }

    fn storage_of(&self, length: usize, system: &str) -> Option<crate::storage::Storage> {
        self.storage
            .iter()
            .find(|(l, s, _)| *l == length && s == system)
            .map(|(_, _, s)| *s)
    }

    /// The report, as Markdown.
    pub fn markdown(&self, environment: &str) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "{environment}");
        let lengths: Vec<String> = self.lengths.iter().map(usize::to_string).collect();
        let _ = writeln!(
            m,
            "Reproduce every table: `cargo run --release -p dapr-session-host-tests --bin bench -- \
             --iterations {} --lengths {}` ({} interleaved iterations per operation and length, \
             at most 60 at 10,000 items and 30 at 100,000; lengths above 10,000 run the `log` \
             layout alone).\n",
            self.iterations,
            lengths.join(","),
            self.iterations
        );
        if let Some(b) = &self.baseline {
            let _ = writeln!(
                m,
                "With `--baseline {}`: another build of the component, timed in the same run as \
                 \"log, before\" (see \"Before and after\").\n",
                b.path
            );
        }
        self.costs_table(&mut m);
        self.turn_tables(&mut m);
        self.op_tables(&mut m);
        self.baseline_table(&mut m);
        self.storage_table(&mut m);
        self.throughput_table(&mut m);
        self.targets(&mut m);
        m
    }

    fn costs_table(&self, m: &mut String) {
        let c = &self.costs;
        let _ = writeln!(m, "### The component at the host\n");
        let _ = writeln!(m, "| measure | value |\n|---|---|");
        let _ = writeln!(
            m,
            "| `.wasm` size | {} bytes ({:.0} KiB) |",
            c.wasm_bytes,
            c.wasm_bytes as f64 / 1024.0
        );
        let _ = writeln!(
            m,
            "| compile (Cranelift, once per process) | {:.0} ms |",
            c.compile.as_secs_f64() * 1000.0
        );
        let _ = writeln!(
            m,
            "| instantiate with `InstancePre` (median / p95 of {}) | {:.0} µs / {:.0} µs |",
            c.instantiate.len(),
            c.instantiate.median(),
            c.instantiate.p95()
        );
        let _ = writeln!(
            m,
            "| memory per instance with one session open (RSS / 200 instances) | {:.0} KiB |",
            c.per_instance as f64 / 1024.0
        );
        let _ = writeln!(
            m,
            "| memory per further open session in one instance (RSS / 10,000 sessions) | {:.0} bytes |\n",
            c.per_session
        );
        let _ = writeln!(
            m,
            "### The floor: daprd's raw state API, one small key, native keep-alive client\n"
        );
        let _ = writeln!(m, "| request | median | p95 |\n|---|---|---|");
        let _ = writeln!(
            m,
            "| `GET /v1.0/state/statestore/key` | {} ms | {} ms |",
            ms(self.floor_get.median()),
            ms(self.floor_get.p95())
        );
        let _ = writeln!(
            m,
            "| `POST /v1.0/state/statestore` (one key) | {} ms | {} ms |\n",
            ms(self.floor_post.median()),
            ms(self.floor_post.p95())
        );
    }

    fn turn_tables(&self, m: &mut String) {
        let _ = writeln!(m, "### The agent turn (ms, median / p95)\n");
        let _ = writeln!(
            m,
            "What every agent pays per turn: the SDK's `Runner` reads the history (`get-items()`, \
             the whole of it, unless the app sets a limit), then appends the turn's items (a \
             2-item `add-items`). `log` and `compat` are this component (in wasmtime, over \
             daprd's HTTP API, the host keeping connections alive); `python` is `DaprSession` \
             from `{OPENAI_AGENTS}` over daprd's gRPC API, timed inside Python; \"floor\" is \
             what the turn cannot go below: one raw `GET` of a key holding the same items as \
             one value (what `compat` stores) and one raw `POST` of a small key, from a native \
             keep-alive client; \"fresh instance\" runs the turn in a new instance, as \
             serverless hosts do per request. \"× python\" is Python's median over ours (higher \
             is better for us); \"× floor\" is ours over the floor.\n"
        );
        for (op, title, floor) in [
            (
                "turn",
                "`get-items()` then `add-items` (2 items)",
                "raw GET of the same bytes + POST",
            ),
            (
                "turn20",
                "`get-items(limit=20)` then `add-items` (2 items)",
                "raw GET + POST, small keys",
            ),
        ] {
            let _ = writeln!(m, "#### {title}\n");
            let _ = writeln!(
                m,
                "| items | log | compat | python | floor: {floor} | log × python | log × floor | log, fresh instance |"
            );
            let _ = writeln!(m, "|---:|---:|---:|---:|---:|---:|---:|---:|");
            for &length in &self.lengths {
                let log = self.median(length, "log", op);
                let _ = writeln!(
                    m,
                    "| {length} | {} | {} | {} | {} | {} | {} | {} |",
                    self.cell(length, "log", op),
                    self.cell(length, "compat", op),
                    self.cell(length, "python", op),
                    self.cell(length, "floor", op),
                    ratio(self.median(length, "python", op), log),
                    ratio(log, self.median(length, "floor", op)),
                    self.cell(length, "log, fresh instance", op),
                );
            }
            let _ = writeln!(m);
        }
    }

    fn op_tables(&self, m: &mut String) {
        let _ = writeln!(m, "### Latency per operation (ms, median / p95)\n");
        let _ = writeln!(
            m,
            "Systems as above; \"log, no pool\" is the `log` layout under wasmtime's default \
             outgoing HTTP, a new connection per request. \"× floor\" is ours over the raw \
             one-key request (`GET` for reads, `POST` for writes); for `get-items()` the floor \
             is the raw `GET` of a key holding the same items as one value. Each iteration runs \
             the blocks (one per system, and the floor) in a fresh random order, each block \
             starting with one untimed request.\n"
        );
        for (op, title) in OPS {
            let _ = writeln!(m, "#### {title}\n");
            let _ = writeln!(
                m,
                "| items | log | compat | python | log × python | floor | log × floor | compat × python | log, no pool | log, fresh instance | fresh × log |"
            );
            let _ = writeln!(
                m,
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for &length in &self.lengths {
                let log = self.median(length, "log", op);
                let floor = self.median(length, "floor", op);
                let _ = writeln!(
                    m,
                    "| {length} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    self.cell(length, "log", op),
                    self.cell(length, "compat", op),
                    self.cell(length, "python", op),
                    ratio(self.median(length, "python", op), log),
                    floor.map_or("-".into(), ms),
                    ratio(log, floor),
                    ratio(
                        self.median(length, "python", op),
                        self.median(length, "compat", op)
                    ),
                    self.cell(length, "log, no pool", op),
                    self.cell(length, "log, fresh instance", op),
                    ratio(self.median(length, "log, fresh instance", op), log),
                );
            }
            let _ = writeln!(m);
            if op == "getall" {
                let _ = writeln!(
                    m,
                    "With the host answering the head's and the chunks' `GET`s itself (no sidecar, \
                     no network: the component's, wasmtime's and the host's own share), \
                     `get-items()` takes {}.\n",
                    self.lengths
                        .iter()
                        .map(|l| format!(
                            "{} ms at {l} items",
                            self.median(*l, "host-answered", "getall")
                                .map_or("-".into(), ms)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let _ = writeln!(
                    m,
                    "The floor's key holds the same items as the session, as one value: \
                     {}.\n",
                    self.lengths
                        .iter()
                        .map(|l| format!(
                            "{} bytes at {l} items",
                            self.same_bytes.get(l).copied().unwrap_or(0)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            if op == "get20" {
                let _ = writeln!(
                    m,
                    "`get-items(limit=20)` on the `log` layout is one `GET` of the session's head, \
                     whose tail holds the newest items. The same `GET` from the native client, for \
                     comparison:\n"
                );
                let _ = writeln!(
                    m,
                    "| items | head bytes | raw `GET` of the head | log | log × raw head `GET` | log, head answered by the host |\n|---:|---:|---:|---:|---:|---:|"
                );
                for &length in &self.lengths {
                    let raw = self.median(length, "head GET", op);
                    let log = self.median(length, "log", op);
                    let _ = writeln!(
                        m,
                        "| {length} | {} | {} | {} | {} | {} |",
                        self.head_bytes.get(&length).copied().unwrap_or(0),
                        raw.map_or("-".into(), ms),
                        log.map_or("-".into(), ms),
                        ratio(log, raw),
                        self.median(length, "host-answered", op)
                            .map_or("-".into(), ms),
                    );
                }
                let _ = writeln!(m);
            }
        }
    }

    fn storage_table(&self, m: &mut String) {
        let _ = writeln!(m, "### Storage per session\n");
        let _ = writeln!(
            m,
            "Right after filling each session with 2-item turns: the keys it has in Redis, the \
             bytes Redis reports for them (`MEMORY USAGE`, summed: keys, values and Redis's own \
             overhead), and the bytes of the values alone. \"log ÷ compat\" compares the bytes \
             Redis reports; \"key budget\" is 2 + items/256.\n"
        );
        let _ = writeln!(
            m,
            "| items | log keys | log bytes | log value bytes | compat keys | compat bytes | python keys | python bytes | log ÷ compat | key budget |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for &length in &self.lengths {
            let log = self.storage_of(length, "log");
            let compat = self.storage_of(length, "compat");
            let python = self.storage_of(length, "python");
            let keys =
                |s: Option<crate::storage::Storage>| s.map_or("-".into(), |s| s.keys.to_string());
            let bytes =
                |s: Option<crate::storage::Storage>| s.map_or("-".into(), |s| s.memory.to_string());
            let _ = writeln!(
                m,
                "| {length} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                keys(log),
                bytes(log),
                log.map_or("-".into(), |s| s.values.to_string()),
                keys(compat),
                bytes(compat),
                keys(python),
                bytes(python),
                ratio(
                    log.map(|s| s.memory as f64),
                    compat.map(|s| s.memory as f64)
                ),
                2 + length / 256,
            );
        }
        let _ = writeln!(m);
    }

    fn throughput_table(&self, m: &mut String) {
        let _ = writeln!(
            m,
            "### Throughput: sessions served at once from one host process\n"
        );
        let _ = writeln!(
            m,
            "Each session has its own instance and runs agent turns (`get-items(limit=20)` then a \
             2-item `add-items`), `log` layout.\n"
        );
        let _ = writeln!(
            m,
            "| sessions | turns | seconds | turns/s | requests to the sidecar per turn | requests/s |\n|---:|---:|---:|---:|---:|---:|"
        );
        for t in &self.throughput {
            let secs = t.elapsed.as_secs_f64();
            let _ = writeln!(
                m,
                "| {} | {} | {:.1} | {:.0} | {:.2} | {:.0} |",
                t.sessions,
                t.turns,
                secs,
                t.turns as f64 / secs,
                t.requests as f64 / t.turns.max(1) as f64,
                t.requests as f64 / secs
            );
        }
        let _ = writeln!(m);
    }

    /// The worst `value(length)` over the lengths that have one, and where.
    fn worst(
        &self,
        lengths: &[usize],
        value: impl Fn(usize) -> Option<f64>,
    ) -> Option<(usize, f64)> {
        lengths
            .iter()
            .filter_map(|&l| value(l).map(|v| (l, v)))
            .fold(None, |w, (l, v)| match w {
                Some((_, wv)) if wv >= v => w,
                _ => Some((l, v)),
            })
    }

    fn targets(&self, m: &mut String) {
        let _ = writeln!(m, "### Targets\n");
        let _ = writeln!(m, "| target | measured | met |\n|---|---|---|");
        for (length, want) in [(10_000usize, 10.0), (100, 3.0)] {
            if let (Some(py), Some(log)) = (
                self.median(length, "python", "turn"),
                self.median(length, "log", "turn"),
            ) {
                let x = py / log;
                let _ = writeln!(
                    m,
                    "| agent turn at {length} items ≥ {want:.0}× faster than Python | {x:.1}× | {} |",
                    yes(x >= want)
                );
            }
        }
        let wide: Vec<usize> = self
            .lengths
            .iter()
            .copied()
            .filter(|l| (1_000..=10_000).contains(l))
            .collect();
        if let Some((at, x)) = self.worst(&wide, |l| {
            Some(self.median(l, "log", "getall")? / self.median(l, "floor", "getall")?)
        }) {
            let _ = writeln!(
                m,
                "| `get-items()` within 2× the raw `GET` of the same bytes at 1,000 and 10,000 items | worst {x:.1}× (at {at} items) | {} |",
                yes(x <= 2.0)
            );
        }
        for op in ["add", "pop", "get20"] {
            if let Some((at, x)) = self.worst(&self.lengths, |l| {
                Some(self.median(l, "log", op)? / self.median(l, "floor", op)?)
            }) {
                let _ = writeln!(
                    m,
                    "| {op} within 2× the one-key floor at every length | worst {x:.1}× (at {at} items) | {} |",
                    yes(x <= 2.0)
                );
            }
            if let Some((at, x)) = self.worst(&self.lengths, |l| {
                Some(self.median(l, "log, fresh instance", op)? / self.median(l, "log", op)?)
            }) {
                let _ = writeln!(
                    m,
                    "| {op} in a fresh instance within 1.5× of a warm one at every length | worst {x:.1}× (at {at} items) | {} |",
                    yes(x <= 1.5)
                );
            }
        }
        if let Some((at, x)) = self.worst(&self.lengths, |l| {
            Some(
                self.storage_of(l, "log")?.memory as f64
                    / self.storage_of(l, "compat")?.memory as f64,
            )
        }) {
            let _ = writeln!(
                m,
                "| stored bytes at most 1.3× what `compat` stores | worst {x:.2}× (at {at} items) | {} |",
                yes(x <= 1.3)
            );
        }
        if let Some((at, x)) = self.worst(&self.lengths, |l| {
            let keys = self.storage_of(l, "log")?.keys as f64;
            Some(keys / (2 + l / 256) as f64)
        }) {
            let keys = self.storage_of(at, "log").map_or(0, |s| s.keys);
            let _ = writeln!(
                m,
                "| keys per session at most 2 + items/256 | worst {keys} keys for a budget of {} (at {at} items) | {} |",
                2 + at / 256,
                yes(x <= 1.0)
            );
        }
        let kb = self.costs.wasm_bytes as f64 / 1000.0;
        let _ = writeln!(
            m,
            "| component under 400 KB | {kb:.0} KB | {} |",
            yes(kb < 400.0)
        );
    }
}
