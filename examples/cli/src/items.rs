//! Reading items from text: a JSON array of objects, or JSON Lines (one object per line).
//!
//! Every item is checked before any is returned, so a caller can refuse the whole input
//! before writing anything. Items keep their exact text (key order, number spelling).

use std::borrow::Cow;

use dapr_session::item::check_object;
use serde_json::value::RawValue;

/// How the input was laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON array of objects.
    Array,
    /// One JSON object per line (blank lines skipped).
    Lines,
}

impl Format {
    /// The name used in summaries and JSON output: `json` or `jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Array => "json",
            Format::Lines => "jsonl",
        }
    }
}

/// Items read from one input.
#[derive(Debug)]
pub struct Parsed {
    /// The layout detected.
    pub format: Format,
    /// Each item's JSON text.
    pub items: Vec<String>,
    /// The 1-based line each item starts on.
    pub lines: Vec<usize>,
}

/// Why an input was refused: the first bad item (or spot) in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput {
    /// 0-based index of the bad item, if an item is at fault.
    pub index: Option<usize>,
    /// 1-based line of the fault.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "item {i} (line {}): {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// Parses `input`: a JSON array if it starts with `[`, else JSON Lines.
pub fn parse(input: &str) -> Result<Parsed, BadInput> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let start = input.len() - input.trim_start().len();
    if input.as_bytes().get(start) == Some(&b'[') {
        parse_array(input, start)
    } else {
        parse_lines(input)
    }
}

fn parse_lines(input: &str) -> Result<Parsed, BadInput> {
    let mut parsed = Parsed {
        format: Format::Lines,
        items: Vec::new(),
        lines: Vec::new(),
    };
    for (n, line) in input.lines().enumerate() {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let bad = |message: String| BadInput {
            index: Some(parsed.items.len()),
            line: n + 1,
            message,
        };
        if let Err(e) = serde_json::from_str::<&RawValue>(text) {
            return Err(bad(format!(
                "not valid JSON ({}); JSON Lines input needs one complete object per line",
                json_error(&e)
            )));
        }
        check_object(text).map_err(bad)?;
        parsed.items.push(text.to_string());
        parsed.lines.push(n + 1);
    }
    Ok(parsed)
}

fn parse_array(input: &str, open: usize) -> Result<Parsed, BadInput> {
    let bytes = input.as_bytes();
    let mut lines = LineCounter::default();
    let mut parsed = Parsed {
        format: Format::Array,
        items: Vec::new(),
        lines: Vec::new(),
    };
    let mut pos = skip_ws(bytes, open + 1);
    if bytes.get(pos) == Some(&b']') {
        return finish(input, pos + 1, &mut lines, parsed);
    }
    loop {
        let index = parsed.items.len();
        let line = lines.line_at(bytes, pos);
        let rest = input.get(pos..).unwrap_or_default();
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<&RawValue>();
        match values.next() {
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                return Err(BadInput {
                    index: Some(index),
                    line: line + e.line().saturating_sub(1),
                    message: format!("not valid JSON ({})", json_error(&e)),
                });
            }
            None => {
                return Err(BadInput {
                    index: None,
                    line,
                    message: "the array is not closed: expected an item or ']'".into(),
                });
            }
        }
        let end = pos + values.byte_offset();
        let text = input.get(pos..end).unwrap_or_default();
        check_object(text).map_err(|message| BadInput {
            index: Some(index),
            line,
            message,
        })?;
        parsed.items.push(text.to_string());
        parsed.lines.push(line);
        pos = skip_ws(bytes, end);
        match bytes.get(pos) {
            Some(b',') => {
                pos = skip_ws(bytes, pos + 1);
                if bytes.get(pos) == Some(&b']') {
                    return Err(BadInput {
                        index: None,
                        line: lines.line_at(bytes, pos),
                        message: format!("a ',' after item {index} is followed by ']'"),
                    });
                }
            }
            Some(b']') => return finish(input, pos + 1, &mut lines, parsed),
            found => {
                return Err(BadInput {
                    index: None,
                    line: lines.line_at(bytes, pos),
                    message: match found {
                        Some(_) => format!("expected ',' or ']' after item {index}"),
                        None => format!(
                            "the array is not closed: expected ',' or ']' after item {index}"
                        ),
                    },
                });
            }
        }
    }
}

/// Checks that nothing but whitespace follows the array's closing bracket.
fn finish(
    input: &str,
    after: usize,
    lines: &mut LineCounter,
    parsed: Parsed,
) -> Result<Parsed, BadInput> {
    let bytes = input.as_bytes();
    let pos = skip_ws(bytes, after);
    if pos < bytes.len() {
        return Err(BadInput {
            index: None,
            line: lines.line_at(bytes, pos),
            message: "unexpected text after the array's closing ']'".into(),
        });
    }
    Ok(parsed)
}

/// `item` on one line: whitespace outside strings removed if the item spans lines (a JSON
/// string never holds a raw line break, so nothing inside strings changes).
pub fn one_line(item: &str) -> Cow<'_, str> {
    if !item.contains(['\n', '\r']) {
        return Cow::Borrowed(item);
    }
    let (mut out, mut in_string, mut escaped) = (String::with_capacity(item.len()), false, false);
    for c in item.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c.is_ascii_whitespace() {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// serde_json's message without its own (relative) position.
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_string(),
        None => text,
    }
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    pos
}

/// Line numbers of increasing byte offsets, counted incrementally.
#[derive(Default)]
struct LineCounter {
    pos: usize,
    line: usize,
}

impl LineCounter {
    /// The 1-based line of byte `pos` (at or after the previous one asked).
    fn line_at(&mut self, bytes: &[u8], pos: usize) -> usize {
        let upto = pos.min(bytes.len());
        if upto > self.pos {
            let newlines = bytes
                .get(self.pos..upto)
                .map_or(0, |s| s.iter().filter(|&&b| b == b'\n').count());
            self.line += newlines;
            self.pos = upto;
        }
        self.line + 1
    }
}

#[cfg(test)]
mod tests {
    use super::{Format, parse};

    #[test]
    fn array_items_keep_their_text_and_lines() {
        let input = "[\n  {\"b\":1, \"a\":2},\n  {\"c\": [1,2]}\n]\n";
        let p = parse(input).map_err(|e| e.to_string());
        let p = p
            .as_ref()
            .map(|p| (p.format, p.items.clone(), p.lines.clone()));
        assert_eq!(
            p,
            Ok((
                Format::Array,
                vec![
                    r#"{"b":1, "a":2}"#.to_string(),
                    r#"{"c": [1,2]}"#.to_string()
                ],
                vec![2, 3]
            ))
        );
    }

    #[test]
    fn lines_skip_blank_lines() {
        let p = parse("{\"a\":1}\r\n\n  {\"b\":2}  \n").map(|p| (p.format, p.items, p.lines));
        assert_eq!(
            p.map_err(|e| e.to_string()),
            Ok((
                Format::Lines,
                vec![r#"{"a":1}"#.to_string(), r#"{"b":2}"#.to_string()],
                vec![1, 3]
            ))
        );
    }

    #[test]
    fn empty_inputs_have_no_items() {
        for input in ["", "  \n", "[]", " [ ]\n"] {
            assert_eq!(
                parse(input).map(|p| p.items.len()).ok(),
                Some(0),
                "{input:?}"
            );
        }
    }

    #[test]
    fn the_first_bad_item_is_named_by_index_and_line() {
        let cases = [
            ("[{}, {},\n 3]", Some(2), 2, "found a number"),
            ("[{}, [1]]", Some(1), 1, "found an array"),
            ("[{},\n{\"a\": tru}]", Some(1), 2, "not valid JSON"),
            ("{}\n\n\"s\"\n{}", Some(1), 3, "found a string"),
            ("{}\n{\"a\":\n1}", Some(1), 2, "not valid JSON"),
            ("[{} {}]", None, 1, "expected ',' or ']' after item 0"),
            ("[{},]", None, 1, "followed by ']'"),
            ("[{}\n", None, 2, "not closed"),
            ("[{}] x", None, 1, "after the array"),
        ];
        for (input, index, line, message) in cases {
            let e = parse(input).err();
            assert_eq!(
                e.as_ref().map(|e| (e.index, e.line)),
                Some((index, line)),
                "{input:?}"
            );
            let text = e.map(|e| e.message).unwrap_or_default();
            assert!(text.contains(message), "{input:?}: {text}");
        }
    }

    #[test]
    fn one_line_removes_breaks_outside_strings_only() {
        assert_eq!(
            super::one_line("{\n  \"a b\": \"x\\\"\\n y\"\n}"),
            "{\"a b\":\"x\\\"\\n y\"}"
        );
        assert_eq!(super::one_line("{\"a\": 1}"), "{\"a\": 1}");
    }
}
