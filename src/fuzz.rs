//! Property tests of every decoder and validator that runs natively: what comes back from the
//! store (log heads, pages, the recent key, stored items, capabilities) and what comes in from
//! the caller (items, session ids, configs, key prefixes, endpoints), plus the pure logic that
//! runs on decoded heads.
//!
//! Inputs are random bytes, random JSON values, and structured mutations of valid encodings
//! (truncated, bytes flipped, values swapped for other types, numbers made huge or negative,
//! fields dropped or duplicated), from a seeded PRNG. Properties: nothing panics (the tests
//! run with overflow checks, so an arithmetic overflow is a failure too), errors are typed,
//! valid encodings round-trip, decoding is deterministic, and decoders agree with an oracle
//! where there is one.
//!
//! `DAPR_SESSION_FUZZ_CASES` sets the cases per property (default 2,000; the module runs in a
//! few seconds); `DAPR_SESSION_FUZZ_SEED` the first seed. A failure prints the seed of the
//! failing case: rerun it with `DAPR_SESSION_FUZZ_SEED=<seed> DAPR_SESSION_FUZZ_CASES=1`.
//!
//! The Dapr client's private decoders (error bodies, bulk-get answers, the metadata answer)
//! and the compat layout's (messages array, metadata) only run inside the component; the
//! suite's `corrupt::garbage_sidecar_answers_are_typed_errors` fuzzes them there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::config::{
    self, ApiToken, LayoutKind, MAX_KEY_PREFIX_BYTES, MAX_SESSION_ID_BYTES, Options, Settings,
};
use crate::dapr::{ComponentInfo, DaprError, encode};
use crate::error::Error;
use crate::item;
use crate::layout::log::head::tests::flatten;
use crate::layout::log::head::{self, Entry, FANOUT, Head, TAIL_BYTES, TAIL_ITEMS};
use crate::layout::log::page::Page;
use crate::layout::log::recent::{RECENT_BYTES, Recent};
use crate::layout::newest;

/// splitmix64: small, fast, and good enough to drive generators.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Cases per property.
fn cases() -> u64 {
    env_u64("DAPR_SESSION_FUZZ_CASES").unwrap_or(2_000)
}

/// Runs `property` on `cases()` seeds; on a panic, fails naming the property and the seed.
fn check(name: &str, property: impl Fn(&mut Rng)) {
    let first = env_u64("DAPR_SESSION_FUZZ_SEED").unwrap_or(0x5eed_0000);
    // Each property gets its own stream, so adding one does not shift the others.
    let salt = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    for i in 0..cases() {
        let seed = first.wrapping_add(i);
        let mut rng = Rng(seed ^ salt);
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| property(&mut rng))) {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{name}: failed with DAPR_SESSION_FUZZ_SEED={seed} DAPR_SESSION_FUZZ_CASES=1: {why}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Generators.

/// Characters that matter to JSON, URLs, Dapr keys and UTF-8 handling.
const CHARS: &[char] = &[
    'a', 'b', 'z', '0', '9', ' ', '"', '\\', '/', ':', '|', '%', '?', '#', '+', '.', '{', '}', '[',
    ']', ',', '\n', '\t', '\0', '\u{7f}', '\u{85}', 'é', '€', '😊', '\u{202e}', '\u{2028}',
    '\u{feff}', '\u{fffd}', 'i', 'p', 'r', 'h', 'e', 'd',
];

fn text(rng: &mut Rng, max: usize) -> String {
    let n = rng.below(max + 1);
    (0..n).map(|_| *rng.pick(CHARS)).collect()
}

fn bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    let n = rng.below(max + 1);
    (0..n)
        .map(|_| {
            if rng.chance(2) {
                *rng.pick(b"{}[]\":,0123456789.eE+-ntrufals \\u\n")
            } else {
                (rng.next() & 0xff) as u8
            }
        })
        .collect()
}

/// Numbers as JSON text, including ones no decoder here accepts.
fn number_text(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 => "0".into(),
        1 => "-0".into(),
        2 => "-1".into(),
        3 => u64::MAX.to_string(),
        4 => "18446744073709551616".into(),
        5 => "1e400".into(),
        6 => "-1e400".into(),
        7 => "1.5".into(),
        8 => u32::MAX.to_string(),
        9 => "4294967296".into(),
        10 => "9223372036854775808".into(),
        _ => (rng.next() % 100).to_string(),
    }
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    let leaf = depth == 0 || rng.chance(3);
    match rng.below(if leaf { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => serde_json::from_str(&number_text(rng)).unwrap_or(Value::from(7)),
        3 | 4 => Value::String(text(rng, 12)),
        5 => Value::Array((0..rng.below(4)).map(|_| value(rng, depth - 1)).collect()),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.below(4) {
                m.insert(text(rng, 4), value(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

/// Some JSON text: a random value, with raw-text oddities serde_json's writer never makes
/// (numbers out of range, lone surrogate escapes).
fn json_text(rng: &mut Rng) -> String {
    let mut s = value(rng, 3).to_string();
    if rng.chance(4) {
        s = format!("[{s},{}]", number_text(rng));
    }
    if rng.chance(6) {
        s = format!("[{s},\"\\ud800\"]");
    }
    s
}

/// A structured mutation of valid JSON `text`.
fn mutate(rng: &mut Rng, text: &str) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    match rng.below(8) {
        // Truncate.
        0 => b.truncate(rng.below(b.len() + 1)),
        // Flip bytes.
        1 => {
            for _ in 0..=rng.below(3) {
                if !b.is_empty() {
                    let i = rng.below(b.len());
                    b[i] = if rng.chance(2) {
                        *rng.pick(b"{}[]\":,0-9 \\")
                    } else {
                        (rng.next() & 0xff) as u8
                    };
                }
            }
        }
        // Swap one node of the value for another of any type, or make numbers extreme.
        2..=5 => {
            if let Ok(mut v) = serde_json::from_str::<Value>(text) {
                let nodes = count(&v);
                let target = rng.below(nodes);
                let mut seen = 0;
                let kind = rng.below(4);
                let replacement = value(rng, 2);
                let extreme = number_text(rng);
                rewrite(&mut v, target, &mut seen, &mut |node| match kind {
                    0 => *node = replacement.clone(),
                    1 => {
                        if let Some(m) = node.as_object_mut()
                            && let Some(k) = m.keys().next().cloned()
                        {
                            m.remove(&k);
                        }
                    }
                    2 => {
                        if node.is_number() || node.is_string() {
                            *node = serde_json::from_str(&extreme).unwrap_or(Value::Null);
                        }
                    }
                    _ => {
                        if let Some(a) = node.as_array_mut() {
                            a.reverse();
                            if let Some(first) = a.first().cloned() {
                                a.push(first);
                            }
                        }
                    }
                });
                b = v.to_string().into_bytes();
                // serde_json cannot hold 1e400 or 2^64: splice such text in place of a number.
                if rng.chance(3) {
                    let s = String::from_utf8_lossy(&b).into_owned();
                    b = s
                        .replacen(":1", &format!(":{}", number_text(rng)), 1)
                        .into_bytes();
                }
            }
        }
        // Duplicate a field.
        6 => {
            let s = String::from_utf8_lossy(&b).into_owned();
            if let Some(i) = s.find(",\"") {
                b = format!("{},\"v\":1{}", &s[..i], &s[i..]).into_bytes();
            }
        }
        // Surround with junk or whitespace.
        _ => {
            let pre = *rng.pick(&["", " ", "\u{feff}", "x", "\n\t"]);
            let post = *rng.pick(&["", " ", "]", "}", "\0", " {}"]);
            b = format!("{pre}{}{post}", String::from_utf8_lossy(&b)).into_bytes();
        }
    }
    b
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(m) => m.values().map(count).sum(),
        _ => 0,
    }
}

fn rewrite(v: &mut Value, target: usize, seen: &mut usize, f: &mut impl FnMut(&mut Value)) {
    if *seen == target {
        f(v);
        *seen += 1;
        return;
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().for_each(|c| rewrite(c, target, seen, f)),
        Value::Object(m) => m.values_mut().for_each(|c| rewrite(c, target, seen, f)),
        _ => {}
    }
}

/// Input for a decoder: random bytes, random JSON, or a mutation of one of `valid`.
fn input(rng: &mut Rng, valid: &[String]) -> Vec<u8> {
    match rng.below(5) {
        0 => bytes(rng, 64),
        1 => json_text(rng).into_bytes(),
        _ if valid.is_empty() => bytes(rng, 16),
        2 => rng.pick(valid).clone().into_bytes(),
        _ => {
            let v = rng.pick(valid).clone();
            let mut once = mutate(rng, &v);
            if rng.chance(3) {
                let s = String::from_utf8_lossy(&once).into_owned();
                once = mutate(rng, &s);
            }
            once
        }
    }
}

fn nonce(rng: &mut Rng) -> String {
    (0..12)
        .map(|_| char::from(*rng.pick(b"0123456789abcdefghijklmnopqrstuvwxyz")))
        .collect()
}

fn item_text(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => "{}".into(),
        1 => json!({"role": "user", "content": text(rng, 20)}).to_string(),
        2 => r#"{"a":"\ud800","n":1e400}"#.into(),
        _ => format!("{{\"x\":{}}}", value(rng, 2)),
    }
}

/// A head as writers make them: random appends and pops through the head's own API, with
/// the pages it spills kept so pops can pull them back.
fn valid_head(rng: &mut Rng) -> (Head, HashMap<String, Vec<Entry>>) {
    let mut head = Head::new();
    let mut pages = HashMap::new();
    let max = if rng.chance(4) { 400 } else { 40 };
    let steps = rng.below(max);
    for _ in 0..steps {
        if rng.chance(4) {
            let pulls = head.pull_backs_for_pop();
            head.remove_newest_item();
            for p in pulls {
                let entries = pages.get(p.page.id()).cloned().unwrap_or_default();
                head.pull_back(&p, entries);
            }
            head.trim();
        } else {
            let max = if rng.chance(8) { 100 } else { 3 };
            let n = 1 + rng.below(max);
            let items: Vec<String> = (0..n).map(|_| item_text(rng)).collect();
            let mut ids = Rng(rng.next());
            for p in head.append(Entry(nonce(rng), n as u64), || self::nonce(&mut ids)) {
                pages.insert(p.id, p.entries);
            }
            head.push_tail(&items);
        }
        if rng.chance(5) {
            head.record_op(&format!("{}.{}", nonce(rng), rng.below(3)));
        }
        if rng.chance(9) {
            head.trash.push(format!("base:i:{}:0", nonce(rng)));
        }
        if rng.chance(7) {
            head.recent = Some((nonce(rng), nonce(rng)));
        }
    }
    head.touch(1_700_000_000_000 + rng.below(1000) as u64);
    (head, pages)
}

// ---------------------------------------------------------------------------------------
// Properties of what comes back from the store.

/// Everything the layout does with a head it accepted, on an arbitrary accepted head.
fn exercise_head(rng: &mut Rng, head: &Head) {
    let mut h = head.clone();
    let _ = (h.len(), h.is_empty(), h.newest_batch());
    let outside = h.outside_tail().len();
    let marked = h.outside_tail_marked();
    assert_eq!(marked.len(), outside);
    let want = match rng.below(3) {
        0 => None,
        1 => Some(rng.next() % 100),
        _ => Some(rng.next()),
    };
    let selected = head::select_newest(&h.levels, want);
    assert_eq!(selected.len(), h.levels.len());
    for level in selected {
        let _ = head::take_covering(level, want);
    }
    for _ in 0..rng.below(4) {
        let pulls = h.pull_backs_for_pop();
        h.remove_newest_item();
        for p in &pulls {
            let entries = (0..rng.below(3))
                .map(|_| Entry(nonce(rng), rng.next() % 5))
                .collect();
            h.pull_back(p, entries);
        }
        h.trim();
    }
    let mut ids = Rng(rng.next());
    h.append(Entry(nonce(rng), 1 + rng.next() % 3), || {
        self::nonce(&mut ids)
    });
    h.push_tail(&["{}"]);
    h.record_op("op.0");
    h.touch(rng.next() >> 1);
    assert!(h.tail.len() <= TAIL_ITEMS.max(head.tail.len() + 1));
    // What a writer commits parses back as it was.
    let again: Head = serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
    assert_eq!(again, h);
}

#[test]
fn heads_decode_or_fail_typed_and_accepted_heads_are_safe_to_use() {
    check("head", |rng| {
        let (valid, _) = valid_head(rng);
        let valid_text = serde_json::to_string(&valid).unwrap();
        // Valid heads round-trip and are plausible.
        let parsed: Head = serde_json::from_str(&valid_text).unwrap();
        assert_eq!(parsed, valid);
        assert_eq!(parsed.implausible("base"), None, "{valid_text}");
        let data = input(rng, &[valid_text]);
        let first = serde_json::from_slice::<Head>(&data);
        let second = serde_json::from_slice::<Head>(&data);
        match (first, second) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "decoding is not deterministic");
                assert_eq!(a.implausible("base"), b.implausible("base"));
                if a.implausible("base").is_none() {
                    exercise_head(rng, &a);
                }
            }
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            _ => panic!("decoding is not deterministic"),
        }
    });
}

#[test]
fn implausible_heads_are_those_no_writer_makes() {
    check("implausible", |rng| {
        let (mut head, _) = valid_head(rng);
        assert_eq!(head.implausible("base"), None);
        let bad_id = (*rng.pick(&[
            "head",
            "x:head",
            "aaaaaaaaaaa",
            "aaaaaaaaaaaaa",
            "AAAAAAAAAAAA",
            "aaaaaa:aaaaa",
            "",
        ]))
        .to_string();
        match rng.below(5) {
            0 if !head.levels.iter().all(Vec::is_empty) => {
                let k = head.levels.iter().position(|l| !l.is_empty()).unwrap();
                let i = rng.below(head.levels[k].len());
                head.levels[k][i].1 = 0;
            }
            4 if !head.levels.iter().all(Vec::is_empty) => {
                let k = head.levels.iter().position(|l| !l.is_empty()).unwrap();
                let i = rng.below(head.levels[k].len());
                head.levels[k][i].0 = bad_id;
            }
            1 => {
                // More than one add-items list carries, at level 0 or (times FANOUT^k) above.
                let k = rng.below(head.levels.len() + 1);
                while head.levels.len() <= k {
                    head.levels.push(Vec::new());
                }
                let most = u64::from(u32::MAX) * (FANOUT as u64).pow(k as u32);
                head.levels[k].push(Entry(nonce(rng), most + 1));
            }
            2 => {
                head.levels.push(vec![
                    Entry(nonce(rng), u64::MAX),
                    Entry(nonce(rng), u64::MAX),
                ]);
            }
            _ => head.trash.push(
                (*rng.pick(&[
                    "base",
                    "base2:x",
                    "x:base:head",
                    "",
                    "basex:head",
                    "head",
                    "base:head",
                    "base:p:x:head",
                    "base:i:aaaaaaaaaaaa:head",
                    "base:i:x:i:aaaaaaaaaaaa:0",
                ]))
                .to_string(),
            ),
        }
        assert!(head.implausible("base").is_some(), "{head:?}");
    });
}

#[test]
fn pages_parse_or_are_rejected() {
    check("page", |rng| {
        let entries: Vec<Entry> = (0..rng.below(FANOUT + 1))
            .map(|_| Entry(nonce(rng), 1 + rng.next() % 70))
            .collect();
        let copies: Vec<Option<Vec<String>>> = entries
            .iter()
            .map(|e| {
                (e.1 <= 4 && rng.chance(2)).then(|| (0..e.1).map(|_| item_text(rng)).collect())
            })
            .collect();
        let refs = Page::encode_refs(&entries).unwrap();
        let batches = Page::encode_batches(entries.clone(), copies.clone()).unwrap();
        assert_eq!(Page::parse(refs.as_bytes()).unwrap().entries, entries);
        let page = Page::parse(batches.as_bytes()).unwrap();
        assert_eq!((&page.entries, &page.items), (&entries, &copies));
        for (i, copy) in copies.iter().enumerate() {
            assert_eq!(page.items_of(i), copy.as_ref());
        }
        let data = input(rng, &[refs, batches]);
        let a = Page::parse(&data);
        assert_eq!(a, Page::parse(&data), "not deterministic");
        if let Some(p) = a {
            // Whatever parsed can be indexed anywhere and re-encoded.
            for i in 0..p.entries.len() + 2 {
                let _ = p.items_of(i);
            }
            let again = Page::encode_batches(p.entries.clone(), p.items.clone()).unwrap();
            assert_eq!(Page::parse(again.as_bytes()), Some(p));
        }
    });
}

#[test]
fn recent_keys_parse_or_read_as_empty() {
    check("recent", |rng| {
        let batches: Vec<(String, Vec<String>)> = (0..rng.below(6))
            .map(|_| {
                (
                    nonce(rng),
                    (0..1 + rng.below(3)).map(|_| item_text(rng)).collect(),
                )
            })
            .collect();
        let recent = Recent(batches.clone());
        let text = serde_json::to_string(&recent).unwrap();
        assert_eq!(Recent::parse(text.as_bytes()), recent);
        let data = input(rng, &[text]);
        let parsed = Recent::parse(&data);
        assert_eq!(parsed, Recent::parse(&data));
        // Rebuilding from any parsed cache keeps the wanted order and the budget.
        let wanted: Vec<String> = batches
            .iter()
            .map(|(n, _)| n.clone())
            .chain(parsed.0.iter().map(|(n, _)| n.clone()))
            .filter(|_| rng.chance(2))
            .collect();
        let mut unique = std::collections::HashSet::new();
        let wanted: Vec<String> = wanted
            .into_iter()
            .filter(|n| unique.insert(n.clone()))
            .collect();
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let more: Vec<(String, Vec<String>)> = (0..rng.below(3))
            .map(|_| {
                let big = "x".repeat(rng.below(2 * RECENT_BYTES));
                (nonce(rng), vec![big])
            })
            .collect();
        let rebuilt = parsed.rebuilt(&wanted, &more);
        let bytes: usize = rebuilt.0.iter().flat_map(|(_, i)| i).map(String::len).sum();
        assert!(bytes <= RECENT_BYTES);
        let mut last = 0;
        for (n, _) in &rebuilt.0 {
            let at = wanted.iter().position(|w| w == n).expect("not wanted");
            assert!(at >= last);
            last = at;
        }
        let _ = (rebuilt.coverage(), parsed.get("x"), parsed.coverage());
    });
}

/// What an item key or a compat entry decodes to, by construction.
#[test]
fn stored_entries_decode_to_valid_items_only() {
    check("entry", |rng| {
        let item = item_text(rng);
        let encoded = item::encode_string(&item);
        let raw = RawValue::from_string(encoded.clone()).unwrap();
        assert_eq!(item::decode_entry(&raw), Some(item.clone()), "round trip");
        let data = input(rng, &[encoded, item]);
        let Ok(text) = std::str::from_utf8(&data) else {
            return;
        };
        let Ok(raw) = serde_json::from_str::<Box<RawValue>>(text) else {
            return;
        };
        let out = item::decode_entry(&raw);
        assert_eq!(out, item::decode_entry(&raw));
        if let Some(out) = out {
            // A string entry comes back as its text, surrounding whitespace included (the
            // component trims what it stores; other writers may not).
            assert!(out.trim_start().starts_with('{'), "{out}");
            if raw.get().starts_with('"') {
                assert!(item::validate(&out).is_ok(), "{out}");
            }
        }
    });
}

#[test]
fn capabilities_decode_or_fail_typed() {
    check("components", |rng| {
        let valid = json!([
            {"name": "statestore", "type": "state.redis", "capabilities": ["ETAG", "TRANSACTIONAL", "TTL"]},
            {"name": "x", "type": "bindings.http"}
        ])
        .to_string();
        let data = input(rng, &[valid]);
        let a = serde_json::from_slice::<Vec<ComponentInfo>>(&data).map(|v| {
            v.into_iter()
                .map(|c| (c.name, c.kind, c.capabilities))
                .collect::<Vec<_>>()
        });
        let b = serde_json::from_slice::<Vec<ComponentInfo>>(&data).map(|v| {
            v.into_iter()
                .map(|c| (c.name, c.kind, c.capabilities))
                .collect::<Vec<_>>()
        });
        assert_eq!(a.is_ok(), b.is_ok());
        if let (Ok(a), Ok(b)) = (a, b) {
            assert_eq!(a, b);
        }
    });
}

#[test]
fn sidecar_errors_map_to_typed_errors() {
    check("dapr-error", |rng| {
        let code = (*rng.pick(&[
            "ERR_STATE_STORE_NOT_FOUND",
            "ERR_STATE_STORE_NOT_CONFIGURED",
            "ERR_HEALTH_NOT_READY",
            "ERR_STATE_SAVE",
            "",
        ]))
        .to_string();
        let status = *rng.pick(&[0u16, 200, 400, 401, 404, 409, 413, 500, 503, 599, u16::MAX]);
        let message = text(rng, 10);
        let e = match rng.below(5) {
            0 => DaprError::Timeout,
            1 => DaprError::Unauthorized,
            2 => DaprError::Transport(message.clone()),
            3 => DaprError::Protocol(message.clone()),
            _ => DaprError::Status {
                status,
                code: code.clone(),
                message: message.clone(),
            },
        };
        let ambiguous = e.is_ambiguous();
        let err = Error::from(e.clone());
        assert_eq!(err, Error::from(e.clone()));
        match (&e, &err) {
            (DaprError::Timeout, Error::Timeout)
            | (DaprError::Unauthorized, Error::Unauthorized) => {}
            (DaprError::Transport(m), Error::Unavailable(n)) => assert_eq!(m, n),
            (
                DaprError::Protocol(m),
                Error::Store {
                    status: 0, message, ..
                },
            ) => {
                assert_eq!(m, message);
            }
            (DaprError::Status { code, .. }, Error::StoreNotFound(_)) => {
                assert!(code.starts_with("ERR_STATE_STORE_NOT"));
            }
            (DaprError::Status { code, status, .. }, Error::Unavailable(_)) => {
                assert!(code == "ERR_HEALTH_NOT_READY" || *status == 503);
            }
            (
                DaprError::Status {
                    status: s, code: c, ..
                },
                Error::Store { status, code, .. },
            ) => {
                assert_eq!((s, c), (status, code));
            }
            other => panic!("unexpected mapping {other:?}"),
        }
        assert_eq!(
            ambiguous,
            matches!(
                e,
                DaprError::Timeout | DaprError::Transport(_) | DaprError::Protocol(_)
            )
        );
        assert!(!err.to_string().is_empty());
    });
}

// ---------------------------------------------------------------------------------------
// Properties of what comes in from the caller.

/// serde_json's own verdict on `text` as one JSON object: `Some(true)` an object, `Some(false)`
/// not one, `None` when the text is valid JSON syntax that only a typed decode refuses
/// (numbers out of f64 range, lone surrogate escapes: items are kept as text, so such an
/// object is accepted) or nests too deep for `Value` (127 levels; `item::MAX_DEPTH` is 128,
/// checked at its boundary by `item`'s own tests).
fn oracle_object(text: &str) -> Option<bool> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Some(v.is_object()),
        Err(e) if e.to_string().contains("recursion limit") => None,
        Err(_) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => None,
        Err(_) => Some(false),
    }
}

#[test]
fn items_are_accepted_exactly_when_they_are_one_json_object() {
    check("item", |rng| {
        let valid = item_text(rng);
        let deep = rng.below(140);
        let nested = format!("{{\"a\":{}1{}}}", "[".repeat(deep), "]".repeat(deep));
        let data = input(rng, &[valid, nested]);
        let Ok(text) = String::from_utf8(data) else {
            return;
        };
        let got = item::validate(&text);
        assert_eq!(got, item::validate(&text));
        match oracle_object(&text) {
            Some(true) => {
                let json_ws: &[char] = &[' ', '\t', '\n', '\r'];
                assert_eq!(got, Ok(text.trim_matches(json_ws)), "{text:?}");
                // Stored as a JSON string, read back byte for byte.
                let raw = RawValue::from_string(item::encode_string(&text)).unwrap();
                assert_eq!(item::decode_entry(&raw).as_deref(), Some(text.as_str()));
            }
            Some(false) => assert!(got.is_err(), "accepted {text:?}"),
            None => {
                if got.is_ok() {
                    assert!(text.trim_start().starts_with('{'), "{text:?}");
                }
            }
        }
        // In a batch, the error names the first bad item.
        let batch = vec!["{}".to_string(), text.clone(), "[]".to_string()];
        match item::validate_batch(&batch) {
            Err(Error::InvalidInput {
                item_index,
                message,
            }) => {
                assert!(!message.is_empty());
                assert_eq!(item_index, Some(if got.is_ok() { 2 } else { 1 }));
            }
            other => panic!("{other:?}"),
        }
    });
}

fn id(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => String::new(),
        1 => "x".repeat(MAX_SESSION_ID_BYTES + rng.below(3) - 1),
        2 => "é".repeat(MAX_SESSION_ID_BYTES / 2 + rng.below(2)),
        3 => format!("{}||{}", text(rng, 3), text(rng, 3)),
        _ => text(rng, 16),
    }
}

#[test]
fn session_ids_are_checked_as_documented() {
    check("session-id", |rng| {
        let id = id(rng);
        let ok = !id.is_empty()
            && id.len() <= MAX_SESSION_ID_BYTES
            && !id.contains("||")
            && !id.chars().any(char::is_control);
        match config::validate_session_id(&id) {
            Ok(()) => assert!(ok, "accepted {id:?}"),
            Err(Error::InvalidInput {
                item_index: None,
                message,
            }) => {
                assert!(!ok && !message.is_empty(), "refused {id:?}");
            }
            Err(other) => panic!("{other:?}"),
        }
    });
}

fn options(rng: &mut Rng) -> Options {
    let maybe = |rng: &mut Rng, s: String| rng.chance(2).then_some(s);
    let endpoint = (*rng.pick(&[
        "http://127.0.0.1:3500",
        "https://dapr:80/",
        "http://",
        "ftp://x",
        "http://a b",
        "http://x/?q",
        "http://[::1]:3500",
        "http://é",
        "127.0.0.1:3500",
    ]))
    .to_string();
    let endpoint = if rng.chance(4) {
        text(rng, 12)
    } else {
        endpoint
    };
    let prefix = match rng.below(5) {
        0 => "p".repeat(MAX_KEY_PREFIX_BYTES + rng.below(3) - 1),
        1 => String::new(),
        _ => text(rng, 6),
    };
    Options {
        store_name: (*rng.pick(&["statestore", "", "a/b", "..", ".", "s-1.x_y", "é"])).to_string(),
        endpoint: maybe(rng, endpoint),
        api_token: {
            // "XQ" never occurs in other generated text or field names: an echo is the token's.
            let t = format!("XQ{}", text(rng, 6));
            maybe(rng, t).map(ApiToken::from)
        },
        ttl_seconds: rng.chance(2).then(|| *rng.pick(&[0, 1, u32::MAX])),
        consistency: None,
        key_prefix: maybe(rng, prefix),
        default_limit: rng.chance(2).then(|| (rng.next() % 5) as u32),
        timeout_ms: rng.chance(2).then(|| *rng.pick(&[0, 1, u32::MAX])),
        layout: rng.chance(2).then_some(LayoutKind::Compat),
    }
}

#[test]
fn configs_resolve_or_fail_typed() {
    check("config", |rng| {
        let o = options(rng);
        let env_endpoint = text(rng, 8);
        let env_port = (*rng.pick(&["", "3500", "x", "70000"])).to_string();
        let env = |k: &str| match k {
            "DAPR_HTTP_ENDPOINT" => Some(env_endpoint.clone()),
            "DAPR_HTTP_PORT" => Some(env_port.clone()),
            _ => None,
        };
        let prefix = o.key_prefix.clone();
        let token = o.api_token.clone();
        match Settings::resolve(o, env) {
            Ok(s) => {
                assert!(s.endpoint.starts_with("http://") || s.endpoint.starts_with("https://"));
                assert!(!s.endpoint.ends_with('/'));
                if let Some(p) = &prefix {
                    assert!(!p.is_empty() && !p.contains(':') && !p.contains("||"));
                    assert!(p.len() <= MAX_KEY_PREFIX_BYTES);
                    assert_eq!(s.key_base("id"), format!("{p}:id"));
                }
                if let Some(t) = &token {
                    assert!(
                        !format!("{s:?}").contains(t.as_str()),
                        "the token is shown: {s:?}"
                    );
                }
            }
            Err(Error::InvalidInput {
                item_index: None,
                message,
            }) => {
                assert!(!message.is_empty());
                if let Some(t) = token {
                    assert!(
                        !message.contains(t.as_str()),
                        "the token is echoed: {message}"
                    );
                }
            }
            Err(other) => panic!("{other:?}"),
        }
    });
}

/// Two sessions with prefixes never share a key: the prefix holds no `:`, so the first `:`
/// of a key ends it, and the log and compat key suffixes cannot be confused with an id.
#[test]
fn prefixed_keys_never_collide() {
    fn keys(base: &str, nonce: &str) -> Vec<String> {
        vec![
            format!("{base}:head"),
            format!("{base}:r"),
            format!("{base}:p:{nonce}"),
            format!("{base}:i:{nonce}:0"),
            format!("{base}:messages"),
            format!("{base}:metadata"),
        ]
    }
    check("keys", |rng| {
        let settings = |prefix: String| {
            Settings::resolve(
                Options {
                    store_name: "s".into(),
                    endpoint: Some("http://x".into()),
                    key_prefix: Some(prefix),
                    ..Options::default()
                },
                |_| None,
            )
        };
        let short = |rng: &mut Rng| -> String {
            (0..1 + rng.below(4))
                .map(|_| *rng.pick(&['a', ':', 'i', 'p', 'r', '|']))
                .collect()
        };
        let (p1, p2) = (short(rng), short(rng));
        let id1 = short(rng);
        // The second id often extends the first with a layout suffix.
        let id2 = if rng.chance(2) {
            format!(
                "{id1}:{}",
                rng.pick(&["head", "r", "p", "i", "messages", "i:n"])
            )
        } else {
            short(rng)
        };
        let (Ok(s1), Ok(s2)) = (settings(p1.clone()), settings(p2.clone())) else {
            return;
        };
        if (config::validate_session_id(&id1).is_err())
            || config::validate_session_id(&id2).is_err()
        {
            return;
        }
        if (&p1, &id1) == (&p2, &id2) {
            return;
        }
        let n = nonce(rng);
        let a = keys(&s1.key_base(&id1), &n);
        let b = keys(&s2.key_base(&id2), &n);
        for k in &a {
            assert!(
                !b.contains(k),
                "{p1:?}+{id1:?} and {p2:?}+{id2:?} share {k:?}"
            );
        }
    });
}

#[test]
fn path_segments_encode_reversibly() {
    check("encode", |rng| {
        let s = text(rng, 24);
        let e = encode(&s);
        assert!(
            e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "{e}"
        );
        let mut out = Vec::new();
        let mut it = e.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex: String = [it.next().unwrap(), it.next().unwrap()]
                    .iter()
                    .map(|&b| char::from(b))
                    .collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap());
            } else {
                out.push(b);
            }
        }
        assert_eq!(String::from_utf8(out).unwrap(), s);
    });
}

#[test]
fn newest_counts_valid_entries() {
    check("newest", |rng| {
        let entries: Vec<Option<u32>> = (0..rng.below(30))
            .map(|i| rng.chance(3).then_some(i as u32))
            .collect();
        let limit = match rng.below(3) {
            0 => None,
            1 => Some(rng.next() as u32 % 40),
            _ => Some(u32::MAX),
        };
        let got = newest(&entries, limit, |e| *e);
        let valid: Vec<u32> = entries.iter().flatten().copied().collect();
        let n = limit.map_or(valid.len(), |l| (l as usize).min(valid.len()));
        assert_eq!(got[..], valid[valid.len() - n..]);
    });
}

/// Heads built by random operations behave as their model says: pages spilled by appends and
/// pulled back by pops keep every batch, in order, and the tail is the newest items.
#[test]
fn head_operations_keep_the_model() {
    check("head-model", |rng| {
        let mut head = Head::new();
        let mut pages: HashMap<String, Vec<Entry>> = HashMap::new();
        let mut model: Vec<(String, u64)> = Vec::new();
        let mut items: Vec<String> = Vec::new();
        let mut ids = Rng(rng.next());
        for step in 0..rng.below(300) {
            if rng.chance(3) && !model.is_empty() {
                let pulls = head.pull_backs_for_pop();
                let (id, index) = head.remove_newest_item().expect("not empty");
                let last = model.last_mut().unwrap();
                assert_eq!(
                    (id.as_str(), index),
                    (last.0.as_str(), last.1 - 1),
                    "step {step}"
                );
                last.1 -= 1;
                if last.1 == 0 {
                    model.pop();
                }
                items.pop();
                for p in pulls {
                    assert!(head.pull_back(&p, pages[p.page.id()].clone()));
                }
                head.trim();
            } else {
                let max = if rng.chance(10) { 40 } else { 2 };
                let n = 1 + rng.below(max) as u64;
                let batch: Vec<String> = (0..n)
                    .map(|i| "x".repeat((i as usize * 97) % 900))
                    .collect();
                let nonce = nonce(rng);
                for p in head.append(Entry(nonce.clone(), n), || self::nonce(&mut ids)) {
                    pages.insert(p.id, p.entries);
                }
                head.push_tail(&batch);
                model.push((nonce, n));
                items.extend(batch);
            }
            assert_eq!(head.len(), model.iter().map(|(_, n)| n).sum::<u64>());
            assert!(head.levels.iter().all(|l| l.len() <= 2 * FANOUT));
            assert!(head.tail.len() <= TAIL_ITEMS);
            assert!(head.tail.iter().map(String::len).sum::<usize>() <= TAIL_BYTES);
            assert_eq!(head.tail[..], items[items.len() - head.tail.len()..]);
            assert_eq!(head.implausible("b"), None);
        }
        let flat = flatten(&head, &pages);
        let model: Vec<Entry> = model.into_iter().map(|(n, c)| Entry(n, c)).collect();
        assert_eq!(flat, model);
        // Readers rely on it: a page's entries hold exactly the items its entry counts.
        let mut refs: Vec<&Entry> = head.levels.iter().skip(1).flatten().collect();
        while let Some(e) = refs.pop() {
            let page = &pages[e.id()];
            assert_eq!(page.iter().map(Entry::items).sum::<u64>(), e.items());
            assert!(page.iter().all(Entry::is_plausible));
            if pages.contains_key(page[0].id()) {
                refs.extend(page.iter());
            }
        }
    });
}
