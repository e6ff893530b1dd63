//! `--encryption-key-file`: the embedded component behind the embedded encryption middleware
//! (or a composed `--component`), the key read from a file and never printed: what it writes
//! is stored as envelopes and read back, another key reads and pops nothing and changes no
//! byte, bad key files and components that cannot take the key are refused.

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
use std::process::{Command, Stdio};

use dapr_session_host_tests::compose;
use dapr_session_host_tests::host::{COMPONENT, ENCRYPT};
use serde_json::{Value, json};

use common::{Run, Server, TempDir, run};

const OK: i32 = 0;
const USAGE: i32 = 2;
const EMPTY: i32 = 3;
const INVALID_INPUT: i32 = 4;

const KEY: &str = "ZGFwci1zZXNzaW9uIGVuY3J5cHRpb24gdGVzdCBrZXk=";
const OTHER_KEY: &str = "a passphrase, not base64 ✓";
const MARKER: &str = "CLI-PLAINTEXT-MARKER";

/// Runs the binary with its embedded components (no `--component`) against `server`.
fn embedded(server: &Server, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_dapr-session"))
        .args(["--endpoint", &server.endpoint()])
        .args(args)
        .env_remove("DAPR_HTTP_ENDPOINT")
        .env_remove("DAPR_HTTP_PORT")
        .env_remove("DAPR_API_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run dapr-session");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every key of the store and its bytes.
fn stored(server: &Server) -> BTreeMap<String, Vec<u8>> {
    let dapr = server.dapr();
    dapr.keys("statestore")
        .into_iter()
        .filter_map(|k| dapr.raw_get("statestore", &k).map(|i| (k, i.data)))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// No output of `runs` shows `key`.
fn never_printed(runs: &[&Run], key: &str) {
    for r in runs {
        assert!(
            !r.stdout.contains(key) && !r.stderr.contains(key),
            "the key was printed: {r:?}"
        );
    }
}

#[test]
fn items_are_stored_encrypted_and_read_back_with_the_key() {
    let server = Server::start();
    let dir = TempDir::new("encryption-roundtrip");
    let key_file = dir.path("key");
    // The trailing newline `echo` writes is not part of the key.
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let other_file = dir.path("other");
    std::fs::write(&other_file, OTHER_KEY).unwrap();
    let with = |args: &[&str], file: &str| {
        let mut all = args.to_vec();
        all.extend(["--encryption-key-file", file]);
        embedded(&server, &all)
    };

    for layout in ["log", "compat"] {
        let id = format!("enc-{layout}-zoë");
        let first = json!({"role": "user", "content": format!("{MARKER} Grüße 😊")});
        let second = json!({"role": "assistant", "content": "Antwort ✓"});
        let added = with(
            &[
                "add",
                &id,
                &first.to_string(),
                &second.to_string(),
                "--layout",
                layout,
            ],
            &key_file,
        );
        added.expect_code(OK);
        let got = with(&["get", &id, "--layout", layout, "--json"], &key_file);
        got.expect_code(OK);
        assert_eq!(got.json(), json!([first, second]), "{layout}");

        // Without the key, the same session holds envelopes only.
        let plain = embedded(&server, &["get", &id, "--layout", layout, "--json"]);
        plain.expect_code(OK);
        let envelopes = plain.json();
        assert_eq!(envelopes.as_array().unwrap().len(), 2);
        for e in envelopes.as_array().unwrap() {
            assert_eq!((&e["__enc__"], &e["kid"]), (&json!(1), &json!("hkdf-v1")));
        }
        for (key, bytes) in stored(&server) {
            for needle in [MARKER, "Grüße", "Antwort"] {
                assert!(!contains(&bytes, needle), "{key} holds {needle:?}");
            }
        }

        // Another key: nothing to read, nothing to pop, not a byte changed.
        let before = stored(&server);
        let other_get = with(&["get", &id, "--layout", layout, "--json"], &other_file);
        other_get.expect_code(OK);
        assert_eq!(other_get.json(), json!([]));
        let other_pop = with(&["pop", &id, "--layout", layout], &other_file);
        other_pop.expect_code(EMPTY);
        assert_eq!(
            stored(&server),
            before,
            "{layout}: another key changed bytes"
        );

        // The right key pops the newest item.
        let popped = with(&["pop", &id, "--layout", layout, "--json"], &key_file);
        popped.expect_code(OK);
        assert_eq!(popped.json()["popped"], second);
        never_printed(&[&added, &got, &other_get, &other_pop, &popped], KEY);
        never_printed(&[&other_get, &other_pop], OTHER_KEY);
    }

    // export and import carry the key too.
    let exported = dir.path("export.json");
    with(&["export", "enc-log-zoë", "--out", &exported], &key_file).expect_code(OK);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains(MARKER), "export decrypts: {text}");
    with(&["import", "enc-copy", &exported], &key_file).expect_code(OK);
    let copy = with(&["get", "enc-copy", "--json"], &key_file);
    assert_eq!(copy.json().as_array().unwrap().len(), 1);
    assert!(!stored(&server).values().any(|b| contains(b, MARKER)));
}

#[test]
fn bad_key_files_and_components_without_wasi_config_are_refused() {
    let server = Server::start();
    let dir = TempDir::new("encryption-refused");
    let empty = dir.path("empty");
    std::fs::write(&empty, "\n").unwrap();
    let binary = dir.path("binary");
    std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
    let key_file = dir.path("key");
    std::fs::write(&key_file, KEY).unwrap();

    let r = embedded(
        &server,
        &["get", "s", "--encryption-key-file", &empty, "--json"],
    );
    r.expect_code(INVALID_INPUT);
    assert!(
        r.error_json()["message"]
            .as_str()
            .unwrap()
            .contains("holds no key"),
        "{r:?}"
    );
    let r = embedded(&server, &["get", "s", "--encryption-key-file", &binary]);
    r.expect_code(INVALID_INPUT);
    assert!(r.stderr.contains("not UTF-8"), "{r:?}");
    let missing = dir.path("missing");
    let r = embedded(&server, &["get", "s", "--encryption-key-file", &missing]);
    r.expect_code(1);
    assert!(
        r.stderr.contains("cannot read the encryption key file"),
        "{r:?}"
    );
    assert!(server.dapr().keys("statestore").is_empty());

    // The session component alone cannot take the key: refused, nothing stored unencrypted.
    let r = run(
        &["add", "s", r#"{"k":1}"#, "--encryption-key-file", &key_file],
        None,
        &[("DAPR_HTTP_ENDPOINT", &server.endpoint())],
    );
    r.expect_code(USAGE);
    assert!(r.stderr.contains("wasi:config/store"), "{r:?}");
    assert!(server.dapr().keys("statestore").is_empty());

    // The demo takes no key.
    let r = embedded(&server, &["demo", "--encryption-key-file", &key_file]);
    r.expect_code(USAGE);
    never_printed(&[&r], KEY);
}

#[test]
fn a_composed_component_takes_the_key() {
    let server = Server::start();
    let dir = TempDir::new("encryption-component");
    let composed = dir.path("encrypted.wasm");
    std::fs::write(
        &composed,
        compose::plug(
            &std::fs::read(ENCRYPT).unwrap(),
            &std::fs::read(COMPONENT).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let key_file = dir.path("key");
    std::fs::write(&key_file, KEY).unwrap();
    let cli = |args: &[&str]| {
        let mut all = vec!["--endpoint", "", "--component", &composed];
        let endpoint = server.endpoint();
        all[1] = &endpoint;
        all.extend_from_slice(args);
        let output = Command::new(env!("CARGO_BIN_EXE_dapr-session"))
            .args(&all)
            .env_remove("DAPR_API_TOKEN")
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let item = json!({"content": MARKER});
    let (code, _) = cli(&[
        "add",
        "c",
        &item.to_string(),
        "--encryption-key-file",
        &key_file,
    ]);
    assert_eq!(code, OK);
    // Read back by the embedded pair with the same key: the same format.
    let r = embedded(
        &server,
        &["get", "c", "--json", "--encryption-key-file", &key_file],
    );
    r.expect_code(OK);
    assert_eq!(r.json(), Value::Array(vec![item]));
    assert!(!stored(&server).values().any(|b| contains(b, MARKER)));
    // Without a key the composed component refuses to open the session.
    let (code, _) = cli(&["get", "c"]);
    assert_eq!(code, INVALID_INPUT);
}
