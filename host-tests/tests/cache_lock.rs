//! Processes racing for one cache artifact build it once: two copies of this test binary
//! share an empty cache directory, both ask for the artifact at the same moment, one builds
//! it while the other waits on the lock, and both end up with the whole artifact.
//!
//! (daprd and the Python venv go through the same `build_once`; building them twice for
//! real takes minutes, so the race is run with a stand-in artifact.)

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use dapr_session_host_tests::cache::build_once;
use dapr_session_host_tests::process::TempDir;

/// Set in the child processes: the shared cache directory.
const RACER_DIR: &str = "DAPR_SESSION_LOCK_RACER_DIR";
/// Set in the child processes: when to start, in ms since the Unix epoch.
const RACER_START: &str = "DAPR_SESSION_LOCK_RACER_START";

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// One racer: waits for the common start, then asks for the artifact; the build takes a
/// while, so the other racer asks while it runs. Prints `made` or `found`.
fn race(dir: &Path, start_ms: u128) {
    while now_ms() < start_ms {
        std::thread::sleep(Duration::from_millis(1));
    }
    let artifact = dir.join("artifact");
    let made = build_once(&artifact, "building the stand-in artifact", || {
        let log = dir.join("builds.log");
        let mut text = std::fs::read_to_string(&log).unwrap_or_default();
        text.push_str(&format!("{}\n", std::process::id()));
        std::fs::write(&log, text)?;
        std::thread::sleep(Duration::from_millis(1500));
        let part = dir.join("artifact.part");
        std::fs::write(&part, vec![7u8; 1 << 20])?;
        std::fs::rename(&part, &artifact)?;
        Ok(())
    })
    .unwrap();
    assert_eq!(std::fs::read(&artifact).unwrap(), vec![7u8; 1 << 20]);
    println!("{}", if made { "RACER made" } else { "RACER found" });
}

#[test]
fn two_processes_racing_for_an_empty_cache_build_once() {
    if let (Some(dir), Some(start)) = (std::env::var_os(RACER_DIR), std::env::var_os(RACER_START)) {
        race(
            &PathBuf::from(dir),
            start.to_string_lossy().parse().unwrap(),
        );
        return;
    }
    let cache = TempDir::new("lock-race").unwrap();
    let start = now_ms() + 1500;
    let exe = std::env::current_exe().unwrap();
    let racers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "two_processes_racing_for_an_empty_cache_build_once",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(RACER_DIR, cache.path())
                .env(RACER_START, start.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outcomes = Vec::new();
    for racer in racers {
        let out = racer.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "racer failed:\n{stdout}\n{stderr}");
        let outcome = stdout
            .lines()
            .find_map(|l| l.split("RACER ").nth(1))
            .unwrap_or_else(|| panic!("no outcome in\n{stdout}"))
            .to_string();
        if outcome == "found" {
            assert!(
                stderr.contains("waiting for another process building the stand-in artifact"),
                "the racer that found the artifact did not wait for the lock:\n{stderr}"
            );
        }
        outcomes.push(outcome);
    }
    outcomes.sort();
    assert_eq!(outcomes, ["found", "made"]);
    let builds = std::fs::read_to_string(cache.path().join("builds.log")).unwrap();
    assert_eq!(builds.lines().count(), 1, "built more than once: {builds}");
}
