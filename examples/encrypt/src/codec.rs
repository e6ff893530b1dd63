//! Items to stored envelopes and back: [`seal`] encrypts an item's text under the session key;
//! [`open`] classifies a stored item as a live item, an expired one, or one this key cannot
//! read.

use crate::envelope::{self, Stored};
use crate::fernet::{self, TokenError, Ttl, Verified};
use crate::item;
use crate::key::SessionKey;

/// The stored envelope of an item: its text (already checked by [`item::validate`]) encrypted
/// into a Fernet token stamped `time`, with `iv`.
pub fn seal(key: &SessionKey, item_text: &str, time: u64, iv: &[u8; 16]) -> String {
    envelope::wrap(&fernet::encrypt(key, item_text.as_bytes(), time, iv))
}

/// What a stored item is to a session holding one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// An item this key decrypts, within its TTL: the item's text.
    Live(String),
    /// Authenticated by this key, but older than the TTL. The only kind a write may drop.
    Expired,
    /// Anything else; never returned and never removed.
    Unreadable(Unreadable),
}

/// Why a stored item cannot be read with this key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not an envelope: a plain item.
    Plain,
    /// An envelope whose payload is not a string.
    BadPayload,
    /// The token is malformed or its signature does not match this key (another key,
    /// another session, or altered bytes).
    Token(TokenError),
    /// Authenticated, but the plaintext is not UTF-8 JSON object text.
    NotAnItem,
}

/// Classifies one stored item. `ttl` is the item TTL and the current time, if items expire.
pub fn open(key: &SessionKey, stored: &str, ttl: Option<Ttl>) -> Opened {
    let token = match envelope::parse(stored) {
        Stored::Envelope(token) => token,
        Stored::Plain => return Opened::Unreadable(Unreadable::Plain),
        Stored::BadPayload => return Opened::Unreadable(Unreadable::BadPayload),
    };
    let verified = match Verified::new(key, token.as_bytes()) {
        Ok(verified) => verified,
        Err(e) => return Opened::Unreadable(Unreadable::Token(e)),
    };
    if let Some(ttl) = ttl {
        match verified.check_time(ttl) {
            Ok(()) => {}
            Err(TokenError::Expired) => return Opened::Expired,
            Err(e) => return Opened::Unreadable(Unreadable::Token(e)),
        }
    }
    let plaintext = match verified.decrypt(key) {
        Ok(plaintext) => plaintext,
        Err(e) => return Opened::Unreadable(Unreadable::Token(e)),
    };
    let Ok(text) = String::from_utf8(plaintext) else {
        return Opened::Unreadable(Unreadable::NotAnItem);
    };
    match item::validate(&text) {
        Ok(trimmed) if trimmed.len() == text.len() => Opened::Live(text),
        Ok(trimmed) => Opened::Live(trimmed.to_owned()),
        Err(_) => Opened::Unreadable(Unreadable::NotAnItem),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SessionKey {
        SessionKey::from_bytes(&[b; 32])
    }

    #[test]
    fn sealed_items_open_live_until_they_expire() {
        let stored = seal(&key(1), r#"{"a":"é"}"#, 100, &[3; 16]);
        assert_eq!(
            open(&key(1), &stored, None),
            Opened::Live(r#"{"a":"é"}"#.into())
        );
        let ttl = |now| Some(Ttl { seconds: 10, now });
        assert_eq!(
            open(&key(1), &stored, ttl(110)),
            Opened::Live(r#"{"a":"é"}"#.into())
        );
        assert_eq!(open(&key(1), &stored, ttl(111)), Opened::Expired);
        assert_eq!(
            open(&key(1), &stored, ttl(39)),
            Opened::Unreadable(Unreadable::Token(TokenError::FromFuture))
        );
        // Another key cannot even tell whether it expired.
        assert_eq!(
            open(&key(2), &stored, ttl(1000)),
            Opened::Unreadable(Unreadable::Token(TokenError::BadSignature))
        );
    }

    #[test]
    fn plain_items_and_non_items_are_unreadable() {
        assert_eq!(
            open(&key(1), r#"{"role":"user"}"#, None),
            Opened::Unreadable(Unreadable::Plain)
        );
        assert_eq!(
            open(
                &key(1),
                r#"{"__enc__":1,"v":1,"kid":"k","payload":7}"#,
                None
            ),
            Opened::Unreadable(Unreadable::BadPayload)
        );
        for plaintext in [&b"[1]"[..], b"{\"a\":NaN}", b"\xff{}", b""] {
            let token = fernet::encrypt(&key(1), plaintext, 5, &[0; 16]);
            assert_eq!(
                open(&key(1), &envelope::wrap(&token), None),
                Opened::Unreadable(Unreadable::NotAnItem),
                "{plaintext:?}"
            );
        }
    }
}
