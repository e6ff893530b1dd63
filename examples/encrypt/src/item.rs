//! Item text: what the middleware accepts from callers and returns from decrypted tokens.
//!
//! An item is one JSON object carried as JSON text, nested at most [`MAX_DEPTH`] levels (the
//! session component's own rule). The middleware encrypts the caller's text byte for byte
//! (surrounding whitespace trimmed) and returns decrypted text unchanged, so items come back
//! exactly as they went in; Python's `EncryptedSession` reads that text with `json.loads`, and
//! what Python writes (its compact `json.dumps`) is returned as Python wrote it.

use serde_json::value::RawValue;

/// Deepest nesting accepted, as the session component accepts.
pub const MAX_DEPTH: usize = 128;

/// Checks that `text` is exactly one JSON object and returns it without surrounding whitespace.
pub fn validate(text: &str) -> Result<&str, String> {
    let raw: &RawValue =
        serde_json::from_str(text).map_err(|e| format!("item is not valid JSON: {e}"))?;
    let json = raw.get();
    if !json.starts_with('{') {
        return Err(format!("expected a JSON object, found {}", kind_of(json)));
    }
    if depth(json) > MAX_DEPTH {
        return Err(format!("the object nests deeper than {MAX_DEPTH} levels"));
    }
    Ok(json)
}

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
    fn objects_pass_trimmed_and_unchanged() {
        assert_eq!(validate(" {\"a\": 1.0e0 }\n"), Ok("{\"a\": 1.0e0 }"));
        assert_eq!(validate("{}"), Ok("{}"));
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "x",
            "[]",
            "\"s\"",
            "1",
            "null",
            "{} {}",
            "{\"a\":}",
            "{\"a\":NaN}",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(129),
            "1".to_owned() + &"}".repeat(129)
        );
        assert!(validate(&deep).is_err());
        let ok = format!(
            "{}{}",
            "{\"a\":".repeat(127),
            "1".to_owned() + &"}".repeat(127)
        );
        assert!(validate(&ok).is_ok());
    }
}
