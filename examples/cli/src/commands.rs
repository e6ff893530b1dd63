//! The one-call commands: `get`, `add`, `pop`, `clear`, `metadata` and `ping`.

use std::io::Read as _;

use serde_json::json;

use crate::connect::Session;
use crate::exit::Kind;
use crate::failure::Failure;
use crate::items;
use crate::output::{Output, item_value, utc};
use crate::progress::plural;

/// `get`: the newest `limit` items (all when `None`), oldest first.
pub async fn get(s: &mut Session, limit: Option<u32>, out: &Output) -> Result<Kind, Failure> {
    let items = s.get_items(limit).await.map_err(|e| s.fail(&e))?;
    out.items(&items)?;
    Ok(Kind::Success)
}

/// `add`: `items` (see [`add_items`]) as one batch.
pub async fn add(s: &mut Session, items: &[String], out: &Output) -> Result<Kind, Failure> {
    s.add_items(items).await.map_err(|e| s.fail(&e))?;
    out.result(
        &json!({"added": items.len(), "session": s.id()}),
        &format!(
            "added {} to session '{}'",
            plural(items.len(), "item"),
            s.id()
        ),
    )?;
    Ok(Kind::Success)
}

/// `pop`: removes and prints the newest item; [`Kind::Empty`] when there is none.
pub async fn pop(s: &mut Session, out: &Output) -> Result<Kind, Failure> {
    match s.pop_item().await.map_err(|e| s.fail(&e))? {
        Some(item) => {
            out.result(
                &json!({"popped": item_value(&item), "session": s.id()}),
                &items::one_line(&item),
            )?;
            Ok(Kind::Success)
        }
        None => {
            if out.is_json() {
                out.value(&json!({"popped": null, "session": s.id()}))?;
            }
            out.note(&format!("session '{}' is empty: nothing to pop", s.id()));
            Ok(Kind::Empty)
        }
    }
}

/// `clear`: deletes the session's items and timestamps.
pub async fn clear(s: &mut Session, out: &Output) -> Result<Kind, Failure> {
    s.clear().await.map_err(|e| s.fail(&e))?;
    out.result(
        &json!({"cleared": true, "session": s.id()}),
        &format!("cleared session '{}'", s.id()),
    )?;
    Ok(Kind::Success)
}

/// `metadata`: the session's created-at and updated-at times.
pub async fn metadata(s: &mut Session, out: &Output) -> Result<Kind, Failure> {
    let m = s.metadata().await.map_err(|e| s.fail(&e))?;
    let time = |t: Option<u64>| t.map_or("-".to_string(), |ms| format!("{} ({ms} ms)", utc(ms)));
    out.result(
        &json!({
            "session_id": m.session_id,
            "created_at_ms": m.created_at,
            "updated_at_ms": m.updated_at,
        }),
        &format!(
            "session     {}\ncreated-at  {}\nupdated-at  {}",
            m.session_id,
            time(m.created_at),
            time(m.updated_at)
        ),
    )?;
    Ok(Kind::Success)
}

/// `ping`: the sidecar is ready and has the state store.
pub async fn ping(s: &mut Session, out: &Output) -> Result<Kind, Failure> {
    s.ping().await.map_err(|e| s.fail(&e))?;
    let t = s.target();
    out.result(
        &json!({"ok": true, "endpoint": t.endpoint, "store": t.store}),
        &format!(
            "the Dapr sidecar at {} is ready and has the state store '{}'",
            t.endpoint, t.store
        ),
    )?;
    Ok(Kind::Success)
}

/// The items of `add`: each argument is one item; `-` stands for the items on stdin (a JSON
/// array or JSON Lines), all checked before anything is sent.
pub fn add_items(args: Vec<String>) -> Result<Vec<String>, Failure> {
    let mut items = Vec::with_capacity(args.len());
    for arg in args {
        if arg != "-" {
            items.push(arg);
            continue;
        }
        let mut input = String::new();
        std::io::stdin()
            .read_to_string(&mut input)
            .map_err(|e| Failure::io("reading stdin", &e))?;
        let parsed = items::parse(&input).map_err(|mut bad| {
            // Number the items of stdin after those given before `-`.
            bad.index = bad.index.map(|i| items.len() + i);
            let failure = Failure::new(
                Kind::InvalidInput,
                format!("stdin: {bad}; nothing was added"),
            )
            .with("line", bad.line);
            match bad.index {
                Some(i) => failure.with("item_index", i),
                None => failure,
            }
        })?;
        items.extend(parsed.items);
    }
    Ok(items)
}
