//! The stored form of a run of items: a JSON array of JSON strings, each string one item's
//! JSON text, oldest first. It is exactly what the Python `DaprSession` stores under
//! `{id}:messages`, so both layouts read it with the same code.
//!
//! Dapr stores a value as the JSON it parsed from the request, re-serialized by the store
//! (Redis and SQLite re-escape strings differently), so items cannot be stored as raw JSON
//! objects (a store may round numbers or reorder keys); as strings they come back exactly.
//! Reading is one pass over the bytes that copies each string out, unescaping as it goes;
//! merging chunks splices the stored strings without decoding them.

use std::ops::Range;

use crate::json;

/// A chunk holding `items` (item JSON texts), as a JSON value.
pub fn encode<S: AsRef<str>>(items: &[S]) -> String {
    let bytes: usize = items.iter().map(|i| i.as_ref().len() + 8).sum();
    let mut out = String::with_capacity(bytes + 2);
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_string(&mut out, item.as_ref());
    }
    out.push(']');
    out
}

/// The length of `text` as a JSON string, as it is stored.
pub fn encoded_len(text: &str) -> usize {
    json::write::string_len(text)
}

/// Appends `text` to `out` as a JSON string.
pub fn push_string(out: &mut String, text: &str) {
    json::write::string(out, text);
}

/// The byte ranges of the elements of a stored chunk (each a JSON string, quotes included),
/// or `None` if `raw` is not a JSON array of strings.
pub fn spans(raw: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut spans = Vec::new();
    let mut i = skip_ws(raw, 0);
    if raw.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(raw, i + 1);
    if raw.get(i) == Some(&b']') {
        return trailing_ws_only(raw, i + 1).then_some(spans);
    }
    loop {
        if raw.get(i) != Some(&b'"') {
            return None;
        }
        let end = string_end(raw, i)?;
        spans.push(i..end + 1);
        i = skip_ws(raw, end + 1);
        match raw.get(i) {
            Some(b',') => i = skip_ws(raw, i + 1),
            Some(b']') => return trailing_ws_only(raw, i + 1).then_some(spans),
            _ => return None,
        }
    }
}

/// Every element of a stored chunk, decoded; `None` if `raw` is not a JSON array of valid
/// JSON strings.
pub fn decode_all(raw: &[u8]) -> Option<Vec<String>> {
    elements(std::str::from_utf8(raw).ok()?)?
        .into_iter()
        .collect()
}

/// Every element of a stored chunk, decoded in one pass (`None` for a string that does not
/// decode to text: a lone surrogate escape); `None` if `text` is not a JSON array of strings.
pub fn elements(text: &str) -> Option<Vec<Option<String>>> {
    let raw = text.as_bytes();
    let mut out = Vec::new();
    let mut i = skip_ws(raw, 0);
    if raw.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(raw, i + 1);
    if raw.get(i) == Some(&b']') {
        return trailing_ws_only(raw, i + 1).then_some(out);
    }
    loop {
        let (item, end) = decode_at(text, i)?;
        out.push(item);
        i = skip_ws(raw, end);
        match raw.get(i) {
            Some(b',') => i = skip_ws(raw, i + 1),
            Some(b']') => return trailing_ws_only(raw, i + 1).then_some(out),
            _ => return None,
        }
    }
}

/// The string at `span` (quotes included) of `text`, unescaped; `None` if it is not a valid
/// JSON string.
pub fn decode(text: &str, span: Range<usize>) -> Option<String> {
    let (item, end) = decode_at(text, span.start)?;
    if end == span.end { item } else { None }
}

/// The JSON string that opens at `open` in `text`, unescaped (`None` if it does not decode
/// to text), and the index after it; `None` if no JSON string opens there.
fn decode_at(text: &str, open: usize) -> Option<(Option<String>, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(open) != Some(&b'"') {
        return None;
    }
    let end = string_end(bytes, open)?;
    Some((unescaped(text, open + 1, end), end + 1))
}

/// The text of the JSON string whose contents are `text[start..end]`.
fn unescaped(text: &str, mut start: usize, end: usize) -> Option<String> {
    let bytes = text.as_bytes().get(..end)?;
    // Sized once (the escapes only shrink it): growing a string item by item costs more than
    // the second look at bytes already in the cache that finding `end` was.
    let mut out = String::with_capacity(end - start);
    loop {
        let i = next_special(bytes, start);
        // Every special byte is ASCII, so `i` is a character boundary.
        out.push_str(text.get(start..i)?);
        match (bytes.get(i), bytes.get(i + 1)) {
            (None, _) => return Some(out),
            // The escapes item JSON is full of, without the general path.
            (Some(b'\\'), Some(b'"')) => {
                out.push('"');
                start = i + 2;
            }
            (Some(b'\\'), Some(b'\\')) => {
                out.push('\\');
                start = i + 2;
            }
            (Some(b'\\'), _) => {
                let (c, used) = unescape(bytes, i)?;
                out.push(c);
                start = i + used;
            }
            // A control character or a quote inside a string: not JSON.
            _ => return None,
        }
    }
}

/// The index of the first byte from `i` on that is a quote, a backslash or a control
/// character (the bytes a JSON string scan stops at), or `bytes.len()`. Eight bytes at a
/// time: items are long runs of plain text between a few escapes.
#[inline]
fn next_special(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    while let Some(word) = bytes
        .get(i..i + 8)
        .and_then(|s| <&[u8; 8]>::try_from(s).ok())
    {
        let w = u64::from_le_bytes(*word);
        let hits = zero(w ^ (ONES * u64::from(b'"')))
            | zero(w ^ (ONES * u64::from(b'\\')))
            | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
        if hits != 0 {
            // The lowest flagged byte is exact (borrows only flag bytes above a hit).
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// The character the escape at `bytes[i]` (a backslash) stands for, and its length.
fn unescape(bytes: &[u8], i: usize) -> Option<(char, usize)> {
    let c = match bytes.get(i + 1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let first = hex4(bytes, i + 2)?;
            if !(0xd800..0xe000).contains(&first) {
                return Some((char::from_u32(first)?, 6));
            }
            // A surrogate pair: a high surrogate, then `\u` and a low one.
            if first >= 0xdc00 || bytes.get(i + 6..i + 8)? != b"\\u" {
                return None;
            }
            let second = hex4(bytes, i + 8)?;
            if !(0xdc00..0xe000).contains(&second) {
                return None;
            }
            let c = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
            return Some((char::from_u32(c)?, 12));
        }
        _ => return None,
    };
    Some((c, 2))
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u32::from_str_radix(digits, 16).ok()
}

/// Index of the quote that closes the string opened at `open`.
fn string_end(raw: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        i = next_special(raw, i);
        match raw.get(i)? {
            b'"' => return Some(i),
            b'\\' => i += 2,
            _ => return None,
        }
    }
}

fn skip_ws(raw: &[u8], mut i: usize) -> usize {
    while raw
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        i += 1;
    }
    i
}

fn trailing_ws_only(raw: &[u8], i: usize) -> bool {
    skip_ws(raw, i) == raw.len()
}

/// Whether decoded item text looks like an item this component stored: a JSON object, as
/// the items written were checked to be. Cheap: a stored string was written whole.
pub fn looks_like_item(text: &str) -> bool {
    text.starts_with('{') && text.ends_with('}')
}

/// A chunk made of stored elements (byte ranges of raw chunks) and new items, in order.
#[derive(Debug, Default)]
pub struct Builder {
    out: String,
    count: usize,
}

impl Builder {
    /// An empty chunk with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut out = String::with_capacity(bytes + 2);
        out.push('[');
        Builder { out, count: 0 }
    }

    fn separate(&mut self) {
        if self.count > 0 {
            self.out.push(',');
        }
        self.count += 1;
    }

    /// Appends stored elements `spans` of `text` (a chunk [`spans`] accepted) as they are.
    pub fn push_stored(&mut self, text: &str, spans: &[Range<usize>]) -> Option<()> {
        for span in spans {
            let element = text.get(span.clone())?;
            self.separate();
            self.out.push_str(element);
        }
        Some(())
    }

    /// Appends new items.
    pub fn push_items<S: AsRef<str>>(&mut self, items: &[S]) {
        for item in items {
            self.separate();
            push_string(&mut self.out, item.as_ref());
        }
    }

    /// Items so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no item was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The chunk's JSON.
    pub fn finish(mut self) -> String {
        self.out.push(']');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_the_stored_form() {
        let items = [
            r#"{"role":"user","content":"hi \"there\" \\ / é 😀"}"#,
            "{\"a\":\"\u{1}\t\n\r\"}",
            r#"{"s":"\ud800 kept as text"}"#,
            "{}",
        ];
        let stored = encode(&items);
        let lens: usize = items.iter().map(|i| encoded_len(i)).sum();
        assert_eq!(stored.len(), lens + items.len() - 1 + 2);
        // serde_json agrees on the encoding.
        let parsed: Vec<String> = serde_json::from_str(&stored).unwrap();
        assert_eq!(parsed, items);
        assert_eq!(decode_all(stored.as_bytes()).unwrap(), items);
    }

    #[test]
    fn stores_reescaping_is_read_back() {
        // Go's encoding/json escapes <, >, & and U+2028; Redis leaves them; both decode alike.
        let go = r#"[ "{\"x\":\"\u003ca\u003e \u0026 \u2028 \ud83d\ude00\"}" ]"#;
        assert_eq!(
            decode_all(go.as_bytes()).unwrap(),
            ["{\"x\":\"<a> & \u{2028} 😀\"}"]
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "{}",
            "[1]",
            "[\"a\",]",
            "[\"a\"",
            "[\"a\" \"b\"]",
            "[\"\\x\"]",
            "[\"\\ud800\"]",
            "[\"\\udc00\\ud800\"]",
            "[\"a\"] x",
            "[\"tab\tin\"]",
            "null",
        ] {
            assert_eq!(decode_all(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(decode_all(b" [ ] ").unwrap(), Vec::<String>::new());
        // A lone surrogate is a JSON string that is not text: that element alone is lost.
        assert_eq!(
            elements(r#"["{}","\ud800","{\"a\":1}"]"#),
            Some(vec![Some("{}".into()), None, Some("{\"a\":1}".into())])
        );
        assert_eq!(decode_all(b"[\"\xff\"]"), None);
        // Every position of a special byte in a word is found.
        for at in 0..20 {
            let t = format!("{}\\n{}", "a".repeat(at), "a".repeat(19 - at));
            let v = format!("[\"{t}\"]");
            assert_eq!(decode_all(v.as_bytes()).unwrap()[0].len(), 20, "{v}");
            assert_eq!(next_special(t.as_bytes(), 0), at);
            assert_eq!(next_special(&[b'x', 0x1f, b'"'], 0), 1);
            assert_eq!(next_special("éééé\u{7f}xxxxxxx".as_bytes(), 0), 16);
        }
    }

    #[test]
    fn builder_splices_stored_elements_with_new_items() {
        let a = encode(&["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]);
        let spans = spans(a.as_bytes()).unwrap();
        let mut b = Builder::with_capacity(64);
        b.push_stored(&a, &spans[1..]).unwrap();
        b.push_items(&["{\"n\":4}"]);
        assert_eq!(b.len(), 3);
        let merged = b.finish();
        assert_eq!(
            decode_all(merged.as_bytes()).unwrap(),
            ["{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]
        );
        assert_eq!(Builder::with_capacity(0).finish(), "[]");
    }

    #[test]
    fn item_shape_check() {
        assert!(looks_like_item("{\"a\":1}"));
        assert!(!looks_like_item("[1]") && !looks_like_item("{") && !looks_like_item(""));
    }

    #[test]
    fn decoding_agrees_with_serde_json_on_generated_chunks() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = [
            "a", "p", " ", "\"", "\\", "\n", "\u{1}", "é", "😀", "<", "\u{2028}", "/",
        ];
        for round in 0..300 {
            let items: Vec<String> = (0..1 + next() % 20)
                .map(|_| {
                    let len = next() % 400;
                    let text: String = (0..len)
                        .map(|_| {
                            // Long runs of one character, as padded items have.
                            let c = alphabet[(next() % alphabet.len() as u64) as usize];
                            c.repeat(1 + (next() % 12) as usize)
                        })
                        .collect();
                    serde_json::json!({ "k": text }).to_string()
                })
                .collect();
            let stored = serde_json::to_string(&items).unwrap();
            assert_eq!(
                decode_all(stored.as_bytes()).as_ref(),
                Some(&items),
                "round {round}"
            );
            assert_eq!(decode_all(encode(&items).as_bytes()).as_ref(), Some(&items));
            let spans = spans(stored.as_bytes()).unwrap();
            assert_eq!(spans.len(), items.len());
            for (span, item) in spans.into_iter().zip(&items) {
                assert_eq!(decode(&stored, span).as_ref(), Some(item));
            }
        }
    }
}
