//! A whole read of one `log` session, in a loop, for profiling: fills a session of N items
//! (2-item turns) on the in-process test server, then times `get-items()` R times.
//!
//! ```text
//! cargo build --release -p dapr-session-host-tests --example profile_read
//! DAPR_SESSION_PERFMAP=1 perf record -g -D 5000 \
//!     target/release/examples/profile_read 10000 600     # N items, R reads
//! perf report --no-children --sort dso,symbol
//! ```
//!
//! Build the component with `CARGO_PROFILE_RELEASE_STRIP=false` to see its function names.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Instant;

use dapr_session_host_tests::dapr_server::DaprServer;
use dapr_session_host_tests::host::{Host, config};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(10_000, |a| a.parse().unwrap());
    let reps: usize = args.next().map_or(100, |a| a.parse().unwrap());
    let server = DaprServer::start_default().await.unwrap();
    let host = Host::new().unwrap();
    let mut inst = host.instance().await.unwrap();
    let s = inst
        .open("profile", &config(&server.endpoint(), "statestore"))
        .await
        .unwrap();
    for i in 0..n / 2 {
        let turn = vec![
            format!(
                r#"{{"type":"message","role":"user","content":"question {i}: what should the agent do next, given the conversation so far?"}}"#
            ),
            format!(
                r#"{{"type":"message","role":"assistant","content":"answer {i}: a reply of typical length, with a few sentences of content in it."}}"#
            ),
        ];
        inst.add_items(s, &turn).await.unwrap();
    }
    eprintln!("filled {n} items");
    let started = Instant::now();
    for _ in 0..reps {
        assert_eq!(inst.get_items(s, None).await.unwrap().len(), n);
    }
    eprintln!(
        "get-items() of {n} items: {:.2} ms",
        started.elapsed().as_secs_f64() * 1000.0 / reps as f64
    );
}
