//! JSON the way daprd's in-memory and SQLite stores write it back.
//!
//! daprd decodes a saved `value` into a Go `any` (objects become maps, every number a
//! `float64`) and the store re-encodes it with Go's `encoding/json`: object keys sorted,
//! `<`, `>`, `&`, U+2028 and U+2029 escaped, numbers in Go's float formatting.

use serde_json::Value;

/// Encodes `value` as Go's `json.Marshal` would after a round trip through `any`.
pub fn marshal(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => write_float(n.as_f64().unwrap_or(0.0), out),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            // serde_json's default map is a BTreeMap, so keys come out sorted, as in Go.
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_value(v, out);
            }
            out.push(b'}');
        }
    }
}

/// Go's `encoding/json` float format: shortest repr, exponent form below 1e-6 and from 1e21.
fn write_float(f: f64, out: &mut Vec<u8>) {
    let abs = f.abs();
    let text = if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust prints `1e21`; Go prints `1e+21`, and pads the exponent to two digits.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                let digits = if digits.len() < 2 {
                    format!("0{digits}")
                } else {
                    digits.to_string()
                };
                format!("{mantissa}e{sign}{digits}")
            }
            None => s,
        }
    } else {
        format!("{f}")
    };
    out.extend_from_slice(text.as_bytes());
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\u{0}'..='\u{1f}' => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(json: &str) -> String {
        let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
        String::from_utf8_lossy(&marshal(&v)).into_owned()
    }

    #[test]
    fn matches_go_encoding() {
        assert_eq!(
            go(r#"{"b":1,"a":[true,null,"x<y>&z"]}"#),
            r#"{"a":[true,null,"x\u003cy\u003e\u0026z"],"b":1}"#
        );
        assert_eq!(go("1e21"), "1e+21");
        assert_eq!(go("123456789012345678"), "123456789012345680");
        assert_eq!(go("0.000001"), "0.000001");
        assert_eq!(go("0.0000001"), "1e-07");
        assert_eq!(go("1.5"), "1.5");
        assert_eq!(go(r#""tab\tnl\n""#), r#""tab\tnl\n""#);
    }
}
