//! Conversation items: checking what callers pass in, and decoding what the store gives back.
//!
//! An item is one JSON object (an OpenAI Responses input item) carried as JSON text. Items are
//! stored as the caller's text, so they come back byte for byte as they went in.

use crate::error::{Error, Result};
use crate::json;

/// Checks that every item of a batch is one JSON object, naming the first one that is not.
/// Returns the items with surrounding whitespace removed.
pub fn validate_batch(items: &[String]) -> Result<Vec<&str>> {
    items
        .iter()
        .enumerate()
        .map(|(index, text)| validate(text).map_err(|why| Error::invalid_item(index, why)))
        .collect()
}

/// Checks that `text` is exactly one JSON object and returns it without surrounding whitespace.
pub fn validate(text: &str) -> std::result::Result<&str, String> {
    let mut reader = json::Reader::new(text);
    let value = reader.value();
    let (Some(json), Some(())) = (value, reader.end()) else {
        if depth(text) > MAX_DEPTH {
            return Err(format!("the object nests deeper than {MAX_DEPTH} levels"));
        }
        return Err(format!(
            "item is not valid JSON (at byte {} of {})",
            reader.position(),
            text.len()
        ));
    };
    check_object(json)?;
    Ok(json)
}

/// Checks that `json` (valid JSON text without surrounding whitespace) is an object nested
/// no deeper than [`MAX_DEPTH`].
pub fn check_object(json: &str) -> std::result::Result<(), String> {
    if !json.starts_with('{') {
        return Err(format!("expected a JSON object, found {}", kind_of(json)));
    }
    if depth(json) > MAX_DEPTH {
        return Err(format!("the object nests deeper than {MAX_DEPTH} levels"));
    }
    Ok(())
}

/// Deepest nesting accepted in an item; matches what common JSON parsers (serde_json,
/// Python's `json`) handle, so every reader of the session can decode what is stored.
pub const MAX_DEPTH: usize = json::MAX_DEPTH;

/// Nesting depth of valid JSON text, counting brackets outside strings.
fn depth(json: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The item text held by one stored entry, or `None` if the entry is not a valid item.
///
/// An entry is either a JSON string holding the item's JSON (how the Python `DaprSession`
/// writes items) or the item object itself (accepted on read, as upstream does).
pub fn decode_entry(entry: &str) -> Option<String> {
    if entry.starts_with('"') {
        let text = json::Reader::new(entry).string()?;
        validate(&text).ok()?;
        Some(text)
    } else if entry.starts_with('{') {
        Some(entry.to_string())
    } else {
        None
    }
}

/// The item a stored value holds (one entry as [`decode_entry`] reads it, whitespace around
/// it allowed), or `None`.
pub fn decode_stored(text: &str) -> Option<String> {
    let mut r = json::Reader::new(text);
    let value = r.value()?;
    r.end()?;
    decode_entry(value)
}

/// Encodes item text as a JSON string, the form the upstream layout stores.
pub fn encode_string(item: &str) -> String {
    let mut out = String::with_capacity(json::write::string_len(item));
    json::write::string(&mut out, item);
    out
}

fn kind_of(json: &str) -> &'static str {
    match json.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_pass_and_are_trimmed() {
        assert_eq!(validate(" {\"a\":1}\n"), Ok("{\"a\":1}"));
        assert_eq!(validate("{}"), Ok("{}"));
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "", "x", "[]", "\"s\"", "1", "null", "true", "{} {}", "{\"a\":}", "{\"a\":1",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn depth_is_limited() {
        let ok = format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(validate(&ok).is_ok());
        let deep = format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(validate(&deep).is_err());
        // Brackets inside strings do not count.
        let strings = format!("{{\"a\":\"{}\"}}", "[".repeat(1000));
        assert!(validate(&strings).is_ok());
        assert_eq!(depth(r#"{"a":"\"[[["}"#), 1);
    }

    #[test]
    fn batch_errors_name_the_index() {
        let items = vec!["{}".to_string(), "[]".to_string()];
        match validate_batch(&items) {
            Err(Error::InvalidInput { item_index, .. }) => assert_eq!(item_index, Some(1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stored_entries_decode() {
        assert_eq!(
            decode_entry(r#""{\"a\":1}""#).as_deref(),
            Some(r#"{"a":1}"#)
        );
        assert_eq!(decode_entry(r#"{"a":1}"#).as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(decode_entry(r#""not json {{{""#), None);
        assert_eq!(decode_entry(r#""[1]""#), None);
        assert_eq!(decode_entry("42"), None);
        assert_eq!(encode_string("{\"a\":\"é\"}"), r#""{\"a\":\"é\"}""#);
    }
}
