//! The `dapr-session` binary, run as users run it: help, JSON output, exit codes, import and
//! export, against the in-process Dapr-compatible server or an endpoint where nothing listens.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use dapr_session_host_tests::dapr_server::{Action, Fault, ServerConfig};
use serde_json::{Value, json};

use common::{Server, TempDir, items, run, unreachable_endpoint};

// The documented exit codes.
const OK: i32 = 0;
const USAGE: i32 = 2;
const EMPTY: i32 = 3;
const INVALID_INPUT: i32 = 4;
const UNAVAILABLE: i32 = 6;
const TIMEOUT: i32 = 7;
const UNAUTHORIZED: i32 = 8;
const STORE_NOT_FOUND: i32 = 9;
const CORRUPT: i32 = 10;
const STORE_ERROR: i32 = 11;

fn values(items: &[String]) -> Vec<Value> {
    items
        .iter()
        .map(|i| serde_json::from_str(i).unwrap())
        .collect()
}

#[test]
fn help_of_every_command_exits_0_and_names_its_options() {
    let global = [
        "--endpoint",
        "--store",
        "--token",
        "--timeout-ms",
        "--prefix",
        "--ttl",
        "--max-items",
        "--consistency",
        "--layout",
        "--json",
        "--quiet",
    ];
    let commands: [(&[&str], &[&str]); 12] = [
        (
            &[],
            &[
                "get",
                "add",
                "pop",
                "import",
                "export",
                "snapshot",
                "replace",
                "Exit status",
            ],
        ),
        (&["get"], &["<SESSION>", "--limit"]),
        (&["add"], &["<SESSION>", "<ITEM>", "stdin"]),
        (&["pop"], &["<SESSION>", "exit status 3"]),
        (&["clear"], &["<SESSION>"]),
        (&["metadata"], &["<SESSION>"]),
        (&["ping"], &["state store"]),
        (
            &["import"],
            &["<SESSION>", "<FILE|->", "--batch-size", "[default: 100]"],
        ),
        (
            &["export"],
            &["<SESSION>", "--out", "--jsonl", "atomically"],
        ),
        (&["snapshot"], &["<SESSION>", "--limit", "version"]),
        (
            &["replace"],
            &["<SESSION>", "<FILE|->", "--expect", "--start"],
        ),
        (&["demo"], &["embedded"]),
    ];
    for (command, expected) in commands {
        for flag in ["--help", "-h"] {
            let mut args = command.to_vec();
            args.push(flag);
            let r = run(&args, None, &[]);
            r.expect_code(OK);
            assert!(r.stderr.is_empty(), "{args:?}: {}", r.stderr);
            for option in expected.iter().chain(&global) {
                assert!(
                    r.stdout.contains(option),
                    "{args:?} lacks {option}:\n{}",
                    r.stdout
                );
            }
        }
    }
    // The exit-code table, in the top-level help.
    let help = run(&["--help"], None, &[]).stdout;
    for row in [
        "  0   success",
        "  2   usage",
        "  3   empty",
        "  4   invalid-input",
        "  5   conflict",
        "  6   unavailable",
        "  7   timeout",
        "  8   unauthorized",
        "  9   store-not-found",
        "  10  corrupt",
        "  11  store",
        "  12  changed",
    ] {
        assert!(help.contains(row), "help lacks {row:?}:\n{help}");
    }
}

#[test]
fn usage_errors_exit_2_and_are_json_with_json() {
    let r = run(&["get"], None, &[]);
    r.expect_code(USAGE);
    assert!(r.stderr.contains("<SESSION>"), "{}", r.stderr);

    let r = run(
        &["import", "s", "f.json", "--batch-size", "0", "--json"],
        None,
        &[],
    );
    r.expect_code(USAGE);
    assert!(r.stdout.is_empty());
    let e = r.error_json();
    assert_eq!(e["error"], "usage");
    assert_eq!(e["exit_code"], USAGE);
    assert!(
        e["message"].as_str().unwrap().contains("--batch-size"),
        "{e}"
    );
}

#[test]
fn add_get_pop_clear_metadata_round_trip_as_json() {
    let server = Server::start();
    let [first, second] = [
        r#"{"role":"user","content":"What city is the Golden Gate Bridge in?"}"#,
        r#"{"role":"assistant","content":"San Francisco."}"#,
    ];

    let r = server.cli(&["add", "user-1", first, second, "--json"]);
    r.expect_code(OK);
    assert_eq!(r.json(), json!({"added": 2, "session": "user-1"}));

    let r = server.cli(&["get", "user-1", "--json"]);
    r.expect_code(OK);
    assert_eq!(
        r.json(),
        json!([values(&[first.into()])[0], values(&[second.into()])[0]])
    );

    let r = server.cli(&["metadata", "user-1", "--json"]);
    r.expect_code(OK);
    let m = r.json();
    assert_eq!(m["session_id"], "user-1");
    let created = m["created_at_ms"].as_u64().expect("created_at_ms");
    assert!(m["updated_at_ms"].as_u64().expect("updated_at_ms") >= created);

    let r = server.cli(&["pop", "user-1", "--json"]);
    r.expect_code(OK);
    assert_eq!(r.json()["popped"], values(&[second.into()])[0]);

    let r = server.cli(&["clear", "user-1", "--json"]);
    r.expect_code(OK);
    assert_eq!(r.json(), json!({"cleared": true, "session": "user-1"}));

    // Nothing left: pop has nothing to do.
    let r = server.cli(&["pop", "user-1", "--json"]);
    r.expect_code(EMPTY);
    assert_eq!(r.json(), json!({"popped": null, "session": "user-1"}));
    assert!(r.stderr.is_empty(), "{}", r.stderr);
}

#[test]
fn import_of_a_json_array_then_export_gives_the_items_back() {
    let server = Server::start();
    let dir = TempDir::new("array");
    let input = items(1000, "array");
    let file = dir.path("in.json");
    std::fs::write(&file, format!("[\n{}\n]\n", input.join(",\n"))).unwrap();

    // Not a terminal: a status line every 10% at most, then a summary.
    let r = server.cli(&["import", "arr", &file]);
    r.expect_code(OK);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("importing 500/1,000 items (50%)\n"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.lines().count() <= 10, "{}", r.stderr);
    assert!(
        r.stderr
            .ends_with("imported 1,000 items (JSON array) into session 'arr' in 10 batches\n"),
        "{}",
        r.stderr
    );

    let r = server.cli(&["export", "arr"]);
    r.expect_code(OK);
    let exported: Vec<Value> = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(exported, values(&input));
    assert_eq!(r.stderr, "exported 1,000 items from session 'arr'\n");
}

#[test]
fn import_of_json_lines_from_stdin_then_export_jsonl_is_byte_identical() {
    let server = Server::start();
    let dir = TempDir::new("jsonl");
    let input = items(1000, "lines");
    let jsonl = format!("{}\n", input.join("\n"));

    let r = server.cli_with(
        &["import", "lines", "-", "--batch-size", "250", "--json"],
        Some(jsonl.as_bytes()),
        &[],
    );
    r.expect_code(OK);
    assert_eq!(
        r.json(),
        json!({"imported": 1000, "total": 1000, "batches": 4, "format": "jsonl", "session": "lines"})
    );
    assert!(
        r.stderr.is_empty(),
        "--json prints no status lines: {}",
        r.stderr
    );

    let out = dir.path("out.jsonl");
    let r = server.cli(&["export", "lines", "--jsonl", "--out", &out, "--json"]);
    r.expect_code(OK);
    assert_eq!(
        r.json(),
        json!({"exported": 1000, "session": "lines", "out": out, "format": "jsonl"})
    );
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), jsonl);
    assert_eq!(
        dir.files(),
        ["out.jsonl"],
        "no temporary file is left behind"
    );
}

#[test]
fn import_with_a_bad_item_writes_nothing_and_names_it() {
    let server = Server::start();
    let dir = TempDir::new("bad");
    let mut input = items(1000, "bad");
    input[637] = r#"["not", "an", "object"]"#.to_string();
    let file = dir.path("in.jsonl");
    std::fs::write(&file, format!("\n{}\n", input.join("\n"))).unwrap();

    let r = server.cli(&["import", "bad", &file]);
    r.expect_code(INVALID_INPUT);
    assert!(
        r.stderr
            .contains("item 637 (line 639): expected a JSON object, found an array"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was imported"), "{}", r.stderr);
    assert_eq!(server.dapr().keys("statestore"), Vec::<String>::new());

    let array = format!("[{}]", input.join(",\n"));
    let r = server.cli_with(
        &["import", "bad", "-", "--json"],
        Some(array.as_bytes()),
        &[],
    );
    r.expect_code(INVALID_INPUT);
    let e = r.error_json();
    assert_eq!(
        (
            &e["error"],
            &e["item_index"],
            &e["line"],
            &e["imported"],
            &e["exit_code"]
        ),
        (
            &json!("invalid-input"),
            &json!(637),
            &json!(638),
            &json!(0),
            &json!(INVALID_INPUT)
        )
    );
    assert_eq!(server.dapr().keys("statestore"), Vec::<String>::new());
}

#[test]
fn import_failing_midway_says_how_many_items_were_stored() {
    let server = Server::start();
    let input = items(1000, "mid");
    // Every write of the batch holding item 350 (items 300-399) fails.
    server.dapr().faults().add(
        Fault {
            route: None,
            contains: None,
            skip: 0,
            times: 1000,
            action: Action::Status(500, "ERR_STATE_SAVE"),
        }
        .containing("mid-0350"),
    );
    let jsonl = input.join("\n");
    let r = server.cli_with(
        &["import", "mid", "-", "--quiet"],
        Some(jsonl.as_bytes()),
        &[],
    );
    r.expect_code(STORE_ERROR);
    assert!(r.stderr.contains("ERR_STATE_SAVE"), "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "imported 300 of 1,000 items before the failure: those are stored, the other 700 are not"
        ),
        "{}",
        r.stderr
    );

    assert!(!r.stderr.contains("importing"), "--quiet: {}", r.stderr);

    // Text output of get: JSON Lines, each item exactly as stored.
    server.dapr().faults().clear();
    let r = server.cli(&["get", "mid"]);
    r.expect_code(OK);
    assert_eq!(r.stdout, format!("{}\n", input[..300].join("\n")));
}

#[test]
fn an_unreachable_sidecar_is_unavailable() {
    let (endpoint, port) = unreachable_endpoint();
    let r = run(&["ping", "--endpoint", &endpoint], None, &[]);
    r.expect_code(UNAVAILABLE);
    assert_eq!(
        r.stderr,
        format!(
            "error: cannot reach the Dapr sidecar at {endpoint} (connection refused). Is daprd \
             running? Set --endpoint or DAPR_HTTP_ENDPOINT/DAPR_HTTP_PORT.\n"
        )
    );

    // The endpoint from DAPR_HTTP_PORT, as the component resolves it; JSON on stderr only.
    let port = port.to_string();
    let r = run(&["get", "s", "--json"], None, &[("DAPR_HTTP_PORT", &port)]);
    r.expect_code(UNAVAILABLE);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    let e = r.error_json();
    assert_eq!(e["error"], "unavailable");
    assert_eq!(e["exit_code"], UNAVAILABLE);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("cannot reach the Dapr sidecar at {endpoint} (")),
        "{e}"
    );
}

#[test]
fn a_wrong_store_name_is_store_not_found() {
    let server = Server::start();
    let r = server.cli(&["get", "s", "--store", "nosuch"]);
    r.expect_code(STORE_NOT_FOUND);
    assert!(
        r.stderr.contains("no state store named 'nosuch'"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--store"), "{}", r.stderr);
}

#[test]
fn a_wrong_token_is_unauthorized_and_never_printed() {
    let server = Server::start_with(ServerConfig {
        api_token: Some("right-token-123".into()),
        ..ServerConfig::default()
    });
    let r = server.cli(&["get", "s", "--token", "wrong-token-456"]);
    r.expect_code(UNAUTHORIZED);
    assert!(r.stderr.contains("refused the API token"), "{}", r.stderr);
    assert!(
        r.stderr.contains("--token or DAPR_API_TOKEN"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("wrong-token-456") && !r.stdout.contains("wrong-token-456"));

    let r = server.cli_with(
        &["ping", "--json"],
        None,
        &[("DAPR_API_TOKEN", "right-token-123")],
    );
    r.expect_code(OK);
    assert_eq!(
        r.json(),
        json!({"ok": true, "endpoint": server.endpoint(), "store": "statestore"})
    );
}

#[test]
fn a_hanging_sidecar_times_out() {
    let server = Server::start();
    server.dapr().faults().add(Fault::on(
        dapr_session_host_tests::dapr_server::Route::Healthz,
        Action::Hang,
    ));
    let r = server.cli(&["ping", "--timeout-ms", "200"]);
    r.expect_code(TIMEOUT);
    assert!(
        r.stderr.contains("did not answer within 200 ms"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("--timeout-ms"), "{}", r.stderr);
}

#[test]
fn corrupt_data_is_reported_and_left_untouched() {
    let server = Server::start();
    server
        .dapr()
        .raw_put("statestore", "broken:head", b"not a head");
    let r = server.cli(&["pop", "broken"]);
    r.expect_code(CORRUPT);
    assert!(r.stderr.contains("left untouched"), "{}", r.stderr);
    assert_eq!(
        server
            .dapr()
            .raw_get("statestore", "broken:head")
            .map(|i| i.data),
        Some(b"not a head".to_vec())
    );
}

#[test]
fn demo_prints_its_steps_as_json() {
    let r = run(&["demo", "--json"], None, &[]);
    r.expect_code(OK);
    let steps = r.json();
    let titles: Vec<&str> = steps
        .as_array()
        .expect("an array of steps")
        .iter()
        .map(|s| s["step"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(titles.len(), 8, "{titles:?}");
    assert!(titles[0].starts_with("ping"), "{titles:?}");
    assert_eq!(titles[7], "clear");
}

#[test]
fn add_checks_items_from_stdin_before_sending_any() {
    let stdin = "{\"a\":1}\n{\"b\":2}\n\"three\"\n";
    // No sidecar is needed: the bad item is found before anything is sent.
    let (endpoint, _) = unreachable_endpoint();
    let r = run(
        &["add", "s", "{\"first\":0}", "-", "--endpoint", &endpoint],
        Some(stdin.as_bytes()),
        &[],
    );
    r.expect_code(INVALID_INPUT);
    assert_eq!(
        r.stderr,
        "error: stdin: item 3 (line 3): expected a JSON object, found a string; nothing was added\n"
    );
}

#[test]
fn version_names_the_cli_the_component_and_its_wit_package() {
    let r = run(&["--version"], None, &[]);
    r.expect_code(OK);
    let wit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../wit/session.wit"
    ))
    .unwrap();
    let package = wit
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .and_then(|p| p.strip_suffix(';'))
        .unwrap();
    assert_eq!(
        r.stdout.trim(),
        format!(
            "dapr-session {} (component dapr-session {}, WIT {package})",
            env!("CARGO_PKG_VERSION"),
            dapr_session_version()
        )
    );
}

/// The `dapr-session` crate's version, from the workspace's root manifest.
fn dapr_session_version() -> String {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml")).unwrap();
    let package = manifest.split("[package]").nth(1).unwrap();
    package
        .lines()
        .find_map(|l| l.trim().strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap()
        .to_string()
}

/// The binary copied elsewhere and run from another directory, with no `--component` and no
/// cargo environment: the embedded component runs the demo.
#[test]
fn the_binary_runs_the_embedded_component_from_anywhere() {
    let dir = TempDir::new("moved");
    let moved = dir.path("dapr-session");
    std::fs::copy(env!("CARGO_BIN_EXE_dapr-session"), &moved).unwrap();
    let out = std::process::Command::new(&moved)
        .args(["demo", "--json"])
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(steps.as_array().map(Vec::len), Some(8));
    let text = std::process::Command::new(&moved)
        .arg("demo")
        .current_dir("/")
        .env_clear()
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("component: embedded dapr-session"), "{text}");
}
