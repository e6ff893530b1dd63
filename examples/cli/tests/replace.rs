//! `snapshot`, `replace` and `--max-items`, run as users run them: the version a snapshot
//! prints is the one `replace --expect` takes, a stale one exits 12 and writes nothing, every
//! item is checked before anything is written, and the retention bound reaches every command
//! that writes, in both layouts.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[allow(dead_code)] // each test binary uses part of it
mod common;

use std::collections::BTreeMap;

use dapr_session_host_tests::dapr_server::{Action, Fault, Route};
use serde_json::{Value, json};

use common::{Server, TempDir, items, run};

const OK: i32 = 0;
const INVALID_INPUT: i32 = 4;
const TIMEOUT: i32 = 7;
const CHANGED: i32 = 12;

const LAYOUTS: [&str; 2] = ["log", "compat"];

/// Every key of the store and its bytes.
fn stored(server: &Server) -> BTreeMap<String, Vec<u8>> {
    let dapr = server.dapr();
    dapr.keys("statestore")
        .into_iter()
        .filter_map(|k| dapr.raw_get("statestore", &k).map(|i| (k, i.data)))
        .collect()
}

/// The items of session `id`, as `get` prints them (one JSON Lines string per item).
fn get(server: &Server, layout: &str, id: &str) -> Vec<String> {
    let r = server.cli(&["get", id, "--layout", layout]);
    r.expect_code(OK);
    r.stdout.lines().map(str::to_string).collect()
}

/// Adds `items` to session `id` through stdin, unbounded.
fn seed(server: &Server, layout: &str, id: &str, items: &[String]) {
    server
        .cli_with(
            &["add", id, "-", "--layout", layout],
            Some(items.join("\n").as_bytes()),
            &[],
        )
        .expect_code(OK);
}

#[test]
fn help_names_snapshot_replace_and_the_retention_bound() {
    for (command, expected) in [
        (
            &["snapshot"][..],
            &["<SESSION>", "--limit", "version", "replace --expect"][..],
        ),
        (
            &["replace"],
            &[
                "<SESSION>",
                "<FILE|->",
                "--expect",
                "--start",
                "12 (changed)",
            ],
        ),
        (&["add"], &["--max-items"]),
        (&["pop"], &["--max-items"]),
        (&["import"], &["--max-items"]),
        (&["clear"], &["--max-items"]),
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let r = run(&args, None, &[]);
        r.expect_code(OK);
        for word in expected {
            assert!(
                r.stdout.contains(word),
                "{args:?} lacks {word}:\n{}",
                r.stdout
            );
        }
    }
    let help = run(&["--help"], None, &[]).stdout;
    for word in ["snapshot", "replace", "--max-items", "  12  changed"] {
        assert!(help.contains(word), "help lacks {word:?}:\n{help}");
    }
    let r = run(&["add", "--help"], None, &[]);
    assert!(
        r.stdout
            .contains("every write (add, pop, import, replace) drops the oldest"),
        "{}",
        r.stdout
    );
}

#[test]
fn snapshot_prints_items_like_get_and_the_version_replace_takes() {
    for layout in LAYOUTS {
        let server = Server::start();
        let old = items(5, "old");
        // Never written: version "0", no items.
        let r = server.cli(&["snapshot", "s", "--layout", layout, "--json"]);
        r.expect_code(OK);
        assert_eq!(
            r.json(),
            json!({"session": "s", "version": "0", "first": 0, "items": []})
        );
        seed(&server, layout, "s", &old);

        // Text: stdout is exactly what get prints; the version and position on stderr.
        let r = server.cli(&["snapshot", "s", "--layout", layout, "--limit", "2"]);
        r.expect_code(OK);
        assert_eq!(r.stdout, format!("{}\n{}\n", old[3], old[4]));
        let r_json = server.cli(&["snapshot", "s", "--layout", layout, "--json"]);
        r_json.expect_code(OK);
        let snap = r_json.json();
        let version = snap["version"].as_str().unwrap().to_string();
        assert!(!version.is_empty() && version != "0", "{snap}");
        assert_eq!(
            r.stderr,
            format!("session 's' is at version {version}; 2 items from position 3\n")
        );
        // --json keeps every item's text byte for byte, on one line.
        assert_eq!(
            r_json.stdout,
            format!(
                "{{\"session\":\"s\",\"version\":{},\"first\":0,\"items\":[{}]}}\n",
                json!(version),
                old.join(",")
            )
        );

        // That version replaces; the same version again is stale: exit 12, nothing written.
        let dir = TempDir::new(&format!("snap-{layout}"));
        let new = items(3, "new");
        let file = dir.path("new.json");
        std::fs::write(&file, format!("[{}]", new.join(",\n"))).unwrap();
        let r = server.cli(&[
            "replace", "s", &file, "--expect", &version, "--layout", layout, "--json",
        ]);
        r.expect_code(OK);
        assert_eq!(r.json(), json!({"replaced": 3, "start": 0, "session": "s"}));
        assert_eq!(get(&server, layout, "s"), new, "{layout}");

        let before = stored(&server);
        let r = server.cli(&[
            "replace", "s", &file, "--expect", &version, "--layout", layout,
        ]);
        r.expect_code(CHANGED);
        assert_eq!(
            r.stderr,
            format!(
                "error: session 's' changed since version {version}: nothing was replaced. Read \
                 it again (dapr-session snapshot s) and retry with the new version.\n"
            )
        );
        let r = server.cli(&[
            "replace", "s", &file, "--expect", &version, "--layout", layout, "--json",
        ]);
        r.expect_code(CHANGED);
        let e = r.error_json();
        assert_eq!(
            (
                &e["error"],
                &e["exit_code"],
                &e["expected"],
                &e["uncertain"]
            ),
            (
                &json!("changed"),
                &json!(CHANGED),
                &json!(version),
                &json!(false)
            ),
            "{e}"
        );
        assert_eq!(stored(&server), before, "{layout}: a stale replace wrote");
    }
}

#[test]
fn replace_from_a_position_keeps_the_older_items() {
    for layout in LAYOUTS {
        let server = Server::start();
        let old = items(8, "old");
        seed(&server, layout, "s", &old);
        // The SDK's replace_suffix(start, items): read the window, replace exactly it.
        let r = server.cli(&[
            "snapshot", "s", "--limit", "3", "--json", "--layout", layout,
        ]);
        r.expect_code(OK);
        let snap = r.json();
        assert_eq!(snap["first"], 5);
        let version = snap["version"].as_str().unwrap().to_string();
        let summary = [r#"{"role":"assistant","content":"summary of 3 items"}"#.to_string()];
        let r = server.cli_with(
            &[
                "replace", "s", "-", "--start", "5", "--expect", &version, "--layout", layout,
            ],
            Some(summary.join("\n").as_bytes()),
            &[],
        );
        r.expect_code(OK);
        assert_eq!(
            r.stdout,
            "replaced the items of session 's' from position 5 on with 1 item\n"
        );
        let mut want = old[..5].to_vec();
        want.extend(summary.iter().cloned());
        assert_eq!(get(&server, layout, "s"), want, "{layout}");

        // A position past the end is refused, and nothing changes.
        let before = stored(&server);
        let r = server.cli_with(
            &["replace", "s", "-", "--start", "7", "--layout", layout],
            Some(summary[0].as_bytes()),
            &[],
        );
        r.expect_code(INVALID_INPUT);
        assert!(r.stderr.contains("past the end"), "{}", r.stderr);
        assert_eq!(stored(&server), before);
    }
}

#[test]
fn replace_checks_every_item_before_loading_the_component() {
    let server = Server::start();
    let old = items(4, "old");
    seed(&server, "log", "s", &old);
    let before = stored(&server);
    let requests = server.dapr().stats().snapshot().requests();
    let dir = TempDir::new("replace-bad");
    let file = dir.path("bad.jsonl");
    let mut lines = items(5, "new");
    lines[3] = "[\"not an object\"]".into();
    std::fs::write(&file, lines.join("\n")).unwrap();
    for json in [false, true] {
        let mut args = vec!["replace", "s", file.as_str()];
        if json {
            args.push("--json");
        }
        let r = server.cli(&args);
        r.expect_code(INVALID_INPUT);
        if json {
            let e = r.error_json();
            assert_eq!(
                (&e["item_index"], &e["line"], &e["replaced"]),
                (&json!(3), &json!(4), &json!(0)),
                "{e}"
            );
        } else {
            assert!(r.stderr.contains("item 3 (line 4)"), "{}", r.stderr);
            assert!(r.stderr.ends_with("nothing was replaced\n"), "{}", r.stderr);
        }
    }
    let r = server.cli(&["replace", "s", &dir.path("missing.json")]);
    r.expect_code(1);
    assert_eq!(
        server.dapr().stats().snapshot().requests(),
        requests,
        "a refused replace sent a request"
    );
    assert_eq!(stored(&server), before);
    assert_eq!(get(&server, "log", "s"), old);
}

#[test]
fn a_replace_that_times_out_says_it_may_have_landed() {
    // compat reports a write whose answer never came (log resolves it inside the call).
    let server = Server::start();
    seed(&server, "compat", "s", &items(3, "old"));
    server
        .dapr()
        .faults()
        .add(Fault::on(Route::Save, Action::Hang));
    let r = server.cli_with(
        &[
            "replace",
            "s",
            "-",
            "--timeout-ms",
            "300",
            "--json",
            "--layout",
            "compat",
        ],
        Some(items(1, "new")[0].as_bytes()),
        &[],
    );
    r.expect_code(TIMEOUT);
    let e = r.error_json();
    assert_eq!(e["uncertain"], true, "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("may or may not have been applied")
            && message.contains("dapr-session snapshot s"),
        "{message}"
    );
}

#[test]
fn max_items_bounds_every_command_that_writes() {
    for layout in LAYOUTS {
        let server = Server::start();
        let bounded = |args: &[&str], stdin: Option<&str>, n: &str| {
            let mut all = args.to_vec();
            all.extend(["--layout", layout, "--max-items", n]);
            server
                .cli_with(&all, stdin.map(str::as_bytes), &[])
                .expect_code(OK);
        };
        let five = items(5, "add");
        bounded(&["add", "a", "-"], Some(&five.join("\n")), "3");
        assert_eq!(get(&server, layout, "a"), five[2..], "{layout} add");

        let dir = TempDir::new(&format!("max-{layout}"));
        let ten = items(10, "import");
        let file = dir.path("ten.jsonl");
        std::fs::write(&file, ten.join("\n")).unwrap();
        bounded(&["import", "i", &file, "--batch-size", "3"], None, "4");
        assert_eq!(get(&server, layout, "i"), ten[6..], "{layout} import");

        bounded(&["replace", "i", &file], None, "2");
        assert_eq!(get(&server, layout, "i"), ten[8..], "{layout} replace");

        // A session written without a bound is cut to it by the next write, a pop too.
        seed(&server, layout, "p", &five);
        let r = server.cli(&["pop", "p", "--layout", layout, "--max-items", "2", "--json"]);
        r.expect_code(OK);
        assert_eq!(
            r.json()["popped"],
            serde_json::from_str::<Value>(&five[4]).unwrap()
        );
        assert_eq!(get(&server, layout, "p"), five[2..4], "{layout} pop");

        // Reads never drop anything.
        seed(&server, layout, "r", &five);
        let r = server.cli(&["get", "r", "--layout", layout, "--max-items", "1"]);
        r.expect_code(OK);
        assert_eq!(r.stdout.lines().count(), 5, "{layout} get");
    }
}
