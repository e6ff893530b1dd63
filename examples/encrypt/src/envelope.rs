//! The envelope: the JSON object stored in place of each item.
//!
//! `{"__enc__":1,"v":1,"kid":"hkdf-v1","payload":"<Fernet token>"}`, written compact, byte for
//! byte what Python's `DaprSession` stores for an `EncryptedSession` item. On read an item is
//! an envelope when Python's `_is_encrypted_envelope` says so: an object whose `__enc__` equals
//! 1 (Python's `==`: `1`, `1.0` and `true` all do) and which has `payload`, `kid` and `v` keys,
//! whatever their values. Anything else is a plain item.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

/// The `kid` written: per-session keys derived with HKDF (`crate::key`).
pub const KID: &str = "hkdf-v1";

/// The stored text of an envelope holding `token`.
pub fn wrap(token: &str) -> String {
    // Tokens are URL-safe base64: nothing in them needs escaping in a JSON string.
    format!(r#"{{"__enc__":1,"v":1,"kid":"{KID}","payload":"{token}"}}"#)
}

/// What a stored item is, read as Python reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored<'a> {
    /// Not an envelope: a plain item, or not a JSON object at all.
    Plain,
    /// An envelope whose payload is a string: the token.
    Envelope(Cow<'a, str>),
    /// An envelope whose payload is not a string (Python fails on it).
    BadPayload,
}

/// Reads one stored item.
pub fn parse(stored: &str) -> Stored<'_> {
    let Ok(fields) = serde_json::from_str::<Fields<'_>>(stored) else {
        return Stored::Plain;
    };
    let marked = fields.enc.as_ref().is_some_and(equals_one);
    if !(marked && fields.v.0 && fields.kid.0) {
        return Stored::Plain;
    }
    match fields.payload {
        Payload::Missing => Stored::Plain,
        Payload::Text(token) => Stored::Envelope(token),
        Payload::Other => Stored::BadPayload,
    }
}

/// Python's `value == 1`.
fn equals_one(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64() == Some(1.0),
        _ => false,
    }
}

/// The keys Python looks at; everything else in the object is skipped unparsed.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(rename = "__enc__")]
    enc: Option<serde_json::Value>,
    #[serde(default)]
    v: Present,
    #[serde(default)]
    kid: Present,
    #[serde(borrow, default)]
    payload: Payload<'a>,
}

/// Whether a key is there at all (even as `null`).
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Present(true))
    }
}

/// The payload: absent, a string (the token), or anything else (`null` included).
#[derive(Default)]
enum Payload<'a> {
    #[default]
    Missing,
    Text(Cow<'a, str>),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Payload<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> serde::de::Visitor<'de> for PayloadVisitor {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Payload::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Payload::Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Payload::Text(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Payload::Other)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Payload::Other)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Payload::Other)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Payload::Other)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Payload::Other)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Payload::Other)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_map(map).map(|_| Payload::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_writes_what_python_stores() {
        assert_eq!(
            wrap("gAAAA-_="),
            r#"{"__enc__":1,"v":1,"kid":"hkdf-v1","payload":"gAAAA-_="}"#
        );
        assert_eq!(parse(&wrap("tok")), Stored::Envelope(Cow::Borrowed("tok")));
    }

    #[test]
    fn envelopes_are_recognised_as_python_does() {
        for text in [
            r#"{"__enc__":1,"v":1,"kid":"hkdf-v1","payload":"t"}"#,
            r#"{"payload":"t","kid":null,"v":null,"__enc__":1.0,"extra":[1,{"x":2}]}"#,
            r#"{"__enc__":true,"v":2,"kid":"other","payload":"t"}"#,
            r#"{"__enc__":1e0,"v":1,"kid":"k","payload":"t"}"#,
        ] {
            assert_eq!(parse(text), Stored::Envelope(Cow::Borrowed("t")), "{text}");
        }
        assert_eq!(
            parse(r#"{"__enc__":1,"v":1,"kid":"k","payload":"\u0074"}"#),
            Stored::Envelope(Cow::Owned("t".into()))
        );
        for text in [
            r#"{"role":"user","content":"hi"}"#,
            r#"{"__enc__":2,"v":1,"kid":"k","payload":"t"}"#,
            r#"{"__enc__":"1","v":1,"kid":"k","payload":"t"}"#,
            r#"{"__enc__":false,"v":1,"kid":"k","payload":"t"}"#,
            r#"{"__enc__":1,"kid":"k","payload":"t"}"#,
            r#"{"__enc__":1,"v":1,"payload":"t"}"#,
            r#"{"__enc__":1,"v":1,"kid":"k"}"#,
            r#"{"__enc__":1.5,"v":1,"kid":"k","payload":"t"}"#,
            "[1]",
            "not json",
        ] {
            assert_eq!(parse(text), Stored::Plain, "{text}");
        }
        for payload in ["1", "null", "[\"t\"]", "{\"t\":1}", "true"] {
            let text = format!(r#"{{"__enc__":1,"v":1,"kid":"k","payload":{payload}}}"#);
            assert_eq!(parse(&text), Stored::BadPayload, "{text}");
        }
    }
}
