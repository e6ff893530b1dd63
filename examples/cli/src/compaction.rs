//! `snapshot` and `replace`: reading a session with its version, and replacing its history
//! (or the newest part of it) atomically, optionally only if it did not change since.

use dapr_session_host::{CallError, SessionError};
use serde_json::json;

use crate::connect::Session;
use crate::exit::Kind;
use crate::failure::Failure;
use crate::import_export::Input;
use crate::output::{Output, json_array};
use crate::progress::plural;

/// `snapshot`: the newest `limit` items (all when `None`) as `get` prints them, with their
/// position and the session's version on stderr; one JSON object with `--json`.
pub async fn snapshot(s: &mut Session, limit: Option<u32>, out: &Output) -> Result<Kind, Failure> {
    let snap = s.get_snapshot(limit).await.map_err(|e| s.fail(&e))?;
    if out.is_json() {
        out.raw(snapshot_json(s.id(), &snap.version, snap.first, &snap.items).as_bytes())?;
    } else {
        out.items(&snap.items)?;
        out.note(&format!(
            "session '{}' is at version {}; {} from position {}",
            s.id(),
            snap.version,
            plural(snap.items.len(), "item"),
            snap.first
        ));
    }
    Ok(Kind::Success)
}

/// The `--json` form of a snapshot, on one line. Items keep their stored text (a
/// `serde_json::Value` would reorder their keys).
fn snapshot_json(id: &str, version: &str, first: u64, items: &[String]) -> String {
    let items = json_array(items, false);
    format!(
        "{{\"session\":{},\"version\":{},\"first\":{first},\"items\":{}}}\n",
        json!(id),
        json!(version),
        items.trim_end()
    )
}

/// What `replace` was asked to do.
pub struct Replace<'a> {
    /// The new items, checked.
    pub input: &'a Input,
    /// Keep the items before this position (`None`: replace the whole history).
    pub start: Option<u64>,
    /// Write only if the session is at this version.
    pub expect: Option<&'a str>,
}

/// `replace`: the session's history, or its items from `start` on, become the input's items,
/// in one atomic write.
pub async fn replace(s: &mut Session, r: &Replace<'_>, out: &Output) -> Result<Kind, Failure> {
    let items = r.input.items();
    if let Err(e) = s.replace(r.start, items, r.expect).await {
        return Err(replace_failed(s, &e, r));
    }
    let what = plural(items.len(), "item");
    let text = match r.start {
        None => format!("replaced the history of session '{}' with {what}", s.id()),
        Some(start) => format!(
            "replaced the items of session '{}' from position {start} on with {what}",
            s.id()
        ),
    };
    out.result(
        &json!({
            "replaced": items.len(),
            "start": r.start.unwrap_or(0),
            "session": s.id(),
        }),
        &text,
    )?;
    Ok(Kind::Success)
}

/// The failure of a replace: `changed` says what to do next; every failure says whether the
/// session may have been replaced.
fn replace_failed(s: &Session, e: &CallError, r: &Replace<'_>) -> Failure {
    let mut failure = match (e, r.expect) {
        (CallError::Session(SessionError::Changed), Some(version)) => Failure::new(
            Kind::Changed,
            format!(
                "session '{}' changed since version {version}: nothing was replaced. Read it \
                 again (dapr-session snapshot {}) and retry with the new version.",
                s.id(),
                s.id()
            ),
        )
        .with("expected", version),
        _ => s.fail(e),
    };
    let uncertain = matches!(
        e,
        CallError::Trap(_)
            | CallError::Session(
                SessionError::Timeout | SessionError::Interrupted(_) | SessionError::Protocol(_)
            )
    );
    // `interrupted` says so already.
    let interrupted = matches!(e, CallError::Session(SessionError::Interrupted(_)));
    if uncertain && !interrupted {
        failure.message = format!(
            "{}\nthe replacement may or may not have been applied (the request did not \
             complete); read the session (dapr-session snapshot {}) before retrying",
            failure.message,
            s.id()
        );
    }
    failure.with("uncertain", uncertain)
}

#[cfg(test)]
mod tests {
    use super::snapshot_json;

    #[test]
    fn snapshot_json_keeps_item_text_and_is_one_line() {
        let items = vec!["{\"b\":1,\"a\":2}".to_string(), "{\"c\":\"é\"}".to_string()];
        assert_eq!(
            snapshot_json("s\"1", "abc.3", 7, &items),
            "{\"session\":\"s\\\"1\",\"version\":\"abc.3\",\"first\":7,\
             \"items\":[{\"b\":1,\"a\":2},{\"c\":\"é\"}]}\n"
        );
        assert_eq!(
            snapshot_json("s", "0", 0, &[]),
            "{\"session\":\"s\",\"version\":\"0\",\"first\":0,\"items\":[]}\n"
        );
    }
}
