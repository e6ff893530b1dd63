//! Reading JSON text: a cursor that checks the syntax strictly (RFC 8259) as it goes and hands
//! out what the caller asks for (strings unescaped, whole numbers, the raw text of any value),
//! borrowing from the input where it can.

use crate::layout::chunk;

/// Deepest nesting of arrays and objects read (as deep as common JSON parsers go).
pub const MAX_DEPTH: usize = 128;

/// A position in JSON text.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    /// How far the reader got (where a failed read stopped), in bytes.
    pub fn position(&self) -> usize {
        self.pos
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// Skips whitespace.
    pub fn ws(&mut self) {
        while self
            .bytes()
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        {
            self.pos += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.bytes().get(self.pos).copied()
    }

    /// Consumes `b` (after whitespace) if it is next.
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `Some` if nothing but whitespace is left.
    pub fn end(&mut self) -> Option<()> {
        self.ws();
        (self.pos == self.text.len()).then_some(())
    }

    /// Consumes `null` if it is next.
    pub fn null(&mut self) -> bool {
        self.ws();
        if self.text.get(self.pos..self.pos + 4) == Some("null") {
            self.pos += 4;
            true
        } else {
            false
        }
    }

    /// The raw text of the next string, quotes included, checked.
    pub fn string_raw(&mut self) -> Option<&'a str> {
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.pos;
        let mut i = start + 1;
        loop {
            match *self.bytes().get(i)? {
                b'"' => break,
                b'\\' => {
                    i += match *self.bytes().get(i + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => 2,
                        b'u' => {
                            let hex = self.bytes().get(i + 2..i + 6)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            6
                        }
                        _ => return None,
                    }
                }
                0..0x20 => return None,
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        self.text.get(start..=i)
    }

    /// The next string, unescaped; `None` if it is not one, or not text (a lone surrogate).
    pub fn string(&mut self) -> Option<String> {
        let raw = self.string_raw()?;
        chunk::decode(raw, 0..raw.len())
    }

    /// The next value if it is a whole, non-negative number that fits 64 bits.
    pub fn u64(&mut self) -> Option<u64> {
        self.ws();
        let start = self.pos;
        let raw = self.number_raw()?;
        let n = raw.parse().ok();
        if n.is_none() {
            self.pos = start;
        }
        n
    }

    fn number_raw(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let b = self.bytes();
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return None,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.pos = i;
        self.text.get(start..i)
    }

    /// The raw text of the next value of any kind, checked (nesting at most [`MAX_DEPTH`]).
    pub fn value(&mut self) -> Option<&'a str> {
        self.value_at(1)
    }

    fn value_at(&mut self, depth: usize) -> Option<&'a str> {
        let b = self.peek()?;
        let start = self.pos;
        match b {
            b'"' => {
                self.string_raw()?;
            }
            b'{' | b'[' => {
                if depth > MAX_DEPTH {
                    return None;
                }
                if b == b'{' {
                    self.object(|r, _| r.value_at(depth + 1).map(drop))?;
                } else {
                    self.array(|r| r.value_at(depth + 1).map(drop))?;
                }
            }
            b't' | b'f' | b'n' => {
                let word = ["true", "false", "null"]
                    .into_iter()
                    .find(|w| self.text.get(start..start + w.len()) == Some(*w))?;
                self.pos += word.len();
            }
            _ => {
                self.number_raw()?;
            }
        }
        self.text.get(start..self.pos)
    }

    /// Reads an array, calling `each` with the reader at every element (which must consume it).
    pub fn array(&mut self, mut each: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        if self.eat(b']') {
            return Some(());
        }
        loop {
            each(self)?;
            if self.eat(b']') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Reads an object, calling `each` with the reader at every member's value (which it must
    /// consume) and the member's name.
    pub fn object(&mut self, mut each: impl FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let raw = self.string_raw()?;
            // Names are plain ASCII in every format read here; unescape only when needed (a
            // name that is not text, a lone surrogate, is matched as written).
            let name = if raw.contains('\\') {
                chunk::decode(raw, 0..raw.len()).unwrap_or_else(|| raw.to_string())
            } else {
                raw.get(1..raw.len() - 1)?.to_string()
            };
            if !self.eat(b':') {
                return None;
            }
            each(self, &name)?;
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }
}

/// Whether `text` is exactly one JSON value (whitespace around it allowed).
pub fn is_value(text: &str) -> bool {
    let mut r = Reader::new(text);
    r.value().is_some() && r.end().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_agrees_with_serde_json() {
        let cases = [
            "{}",
            "[]",
            "0",
            "-0",
            "1.5e-3",
            "1E+9",
            "true",
            "false",
            "null",
            r#""a\"b""#,
            r#"{"a":[1,{"b":null}],"c":"\u00e9\ud800"}"#,
            " { } ",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "{\"a\":}",
            "{\"a\" 1}",
            "{,}",
            "[",
            "]",
            "\"\\x\"",
            "\"\\u12\"",
            "\"tab\there\"",
            "{} {}",
            "",
            "  ",
            "[1 2]",
            "{\"a\":1,}",
            "\"\\u00zz\"",
            "[[[]]]",
            "{\"\\u0061\":1}",
            "1.0e+",
            "-01",
            "2.",
        ];
        for c in cases {
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(c).is_ok();
            assert_eq!(is_value(c), serde, "{c:?}");
        }
    }

    #[test]
    fn depth_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(is_value(&ok));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(!is_value(&deep));
        assert!(!is_value(&"[".repeat(100_000)));
    }

    #[test]
    fn objects_arrays_strings_and_numbers() {
        let mut r = Reader::new(
            r#" {"n": 18446744073709551615, "s": "a\u00e9\"", "x": [1, 2.5], "z": null} "#,
        );
        let mut seen = Vec::new();
        r.object(|r, name| {
            match name {
                "n" => seen.push(format!("{}", r.u64()?)),
                "s" => seen.push(r.string()?),
                "z" => seen.push(format!("{}", r.null())),
                _ => seen.push(r.value()?.to_string()),
            }
            Some(())
        })
        .unwrap();
        assert_eq!(seen, ["18446744073709551615", "aé\"", "[1, 2.5]", "true"]);
        assert_eq!(Reader::new("1.5").u64(), None);
        assert_eq!(Reader::new("-1").u64(), None);
        assert_eq!(Reader::new("18446744073709551616").u64(), None);
    }

    #[test]
    fn damaged_json_is_judged_as_serde_json_judges_it() {
        let seeds = [
            r#"{"type":"message","role":"user","content":[{"type":"input_text","text":"hi \"you\" \u00e9"}],"n":-1.5e3,"ok":true,"z":null}"#,
            r#"[1,{"a":[]},"x\n",0.5,-0,1E9]"#,
        ];
        let pieces = [
            "", "\"", "{", "}", "[", "]", ",", ":", "\\", "u", "0", "-", ".", "e", " ", "\u{1}",
            "t", "é",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..20_000 {
            let base = seeds[round % seeds.len()];
            let mut text = base.to_string();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % (text.len() + 1);
                let at = (0..=at)
                    .rev()
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap_or(0);
                let piece = pieces[(next() as usize) % pieces.len()];
                if next() % 2 == 0 {
                    text.insert_str(at, piece);
                } else {
                    let end = (at + 1 + (next() as usize) % 3).min(text.len());
                    let end = (end..=text.len())
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap();
                    text.replace_range(at..end, piece);
                }
            }
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
            assert_eq!(is_value(&text), serde, "{text:?}");
        }
    }
}
