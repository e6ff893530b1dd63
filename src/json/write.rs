//! Writing JSON text: strings escaped, numbers, and raw JSON placed as it is, into a `String`
//! with separators managed by the caller's structure.

/// Appends `text` to `out` as a JSON string.
pub fn string(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(text.get(start..i).unwrap_or_default());
        if escaped.is_empty() {
            out.push_str("\\u00");
            out.push(hex(b >> 4));
            out.push(hex(b & 15));
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(text.get(start..).unwrap_or_default());
    out.push('"');
}

/// The length of `text` as a JSON string, as [`string`] writes it.
pub fn string_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
        + 2
}

fn hex(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

/// Appends `n` in decimal.
pub fn u64(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

/// An object being written: `{"name":value,...}`.
pub struct Object<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Object<'a> {
    /// Opens an object in `out`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Object { out, first: true }
    }

    /// Starts member `name`; the caller writes its value to the returned string.
    pub fn member(&mut self, name: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, name);
        self.out.push(':');
        self.out
    }

    /// A string member.
    pub fn str(&mut self, name: &str, value: &str) {
        string(self.member(name), value);
    }

    /// A number member.
    pub fn u64(&mut self, name: &str, value: u64) {
        u64(self.member(name), value);
    }

    /// A member whose value is JSON text.
    pub fn raw(&mut self, name: &str, json: &str) {
        self.member(name).push_str(json);
    }

    /// Closes the object.
    pub fn end(self) {
        self.out.push('}');
    }
}

/// Writes `items` as a JSON array, each written by `each`.
pub fn array<T>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut String, T),
) {
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_match_serde_json() {
        for text in [
            "",
            "plain",
            "q\"b\\s/",
            "\u{1}\u{1f}\n\r\t",
            "é😀",
            "\u{2028}",
        ] {
            let mut out = String::new();
            string(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap(), "{text:?}");
            assert_eq!(out.len(), string_len(text));
        }
        for n in [0, 7, 10, 12345, u64::MAX] {
            let mut out = String::new();
            u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
    }

    #[test]
    fn objects_and_arrays() {
        let mut out = String::new();
        let mut o = Object::new(&mut out);
        o.str("a", "x");
        o.u64("b", 2);
        o.raw("c", "[1,2]");
        array(o.member("d"), ["p", "q"], string);
        o.end();
        assert_eq!(out, r#"{"a":"x","b":2,"c":[1,2],"d":["p","q"]}"#);
    }
}
