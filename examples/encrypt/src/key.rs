//! Keys: the master key as Python's `EncryptedSession` reads it, and the per-session key
//! derived from it.
//!
//! The master key is the 32 bytes `base64.urlsafe_b64decode(key)` yields, when it yields
//! exactly 32, else the key's UTF-8 bytes. The session key is HKDF-SHA256 of the master key
//! with the session id's UTF-8 bytes as salt and `agents.session-store.hkdf.v1` as info, 32
//! bytes: the first 16 sign Fernet tokens, the last 16 encrypt them. Key bytes are wiped when
//! dropped and never printed.

use std::fmt;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::python_base64::urlsafe_b64decode;

/// HKDF `info` of the `hkdf-v1` key id.
pub const HKDF_INFO: &[u8] = b"agents.session-store.hkdf.v1";

/// Why a configured key is refused. Never contains the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is empty (Python refuses it too).
    #[error("the encryption key is empty")]
    Empty,
    /// The key is only whitespace: almost surely a blank line or an unset variable, which
    /// Python would silently use as a key.
    #[error("the encryption key is only whitespace")]
    Blank,
}

/// The master key's bytes, as Python's `_ensure_fernet_key_bytes` makes them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey(Vec<u8>);

impl MasterKey {
    /// Reads a configured key: a Fernet key (URL-safe base64 of 32 bytes) or any other text,
    /// whose UTF-8 bytes are then the key.
    pub fn parse(key: &str) -> Result<Self, KeyError> {
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if key.chars().all(char::is_whitespace) {
            return Err(KeyError::Blank);
        }
        // Python's decoder refuses a `str` that is not ASCII before decoding anything.
        if key.is_ascii()
            && let Ok(bytes) = urlsafe_b64decode(key.as_bytes())
        {
            let bytes = Zeroizing::new(bytes);
            if bytes.len() == 32 {
                return Ok(Self(bytes.to_vec()));
            }
        }
        Ok(Self(key.as_bytes().to_vec()))
    }

    /// The key's bytes (the HKDF input).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key of one session: HKDF-SHA256, salt the session id, info [`HKDF_INFO`].
    pub fn derive(&self, session_id: &str) -> SessionKey {
        let mut okm = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
        if Hkdf::<Sha256>::new(Some(session_id.as_bytes()), &self.0)
            .expand(HKDF_INFO, okm.as_mut_slice())
            .is_err()
        {
            unreachable!("HKDF-SHA256 expands to 32 bytes");
        }
        SessionKey::from_bytes(&okm)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A Fernet key: 16 bytes for HMAC-SHA256 signing, 16 for AES-128 encryption.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionKey {
    signing: [u8; 16],
    encryption: [u8; 16],
}

impl SessionKey {
    /// The key from its 32 bytes (signing half first, as Fernet orders them).
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut signing = [0u8; 16];
        let mut encryption = [0u8; 16];
        let (s, e) = bytes.split_at(16);
        signing.copy_from_slice(s);
        encryption.copy_from_slice(e);
        Self {
            signing,
            encryption,
        }
    }

    /// The HMAC-SHA256 key.
    pub fn signing(&self) -> &[u8; 16] {
        &self.signing
    }

    /// The AES-128 key.
    pub fn encryption(&self) -> &[u8; 16] {
        &self.encryption
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fernet_keys_decode_and_other_text_is_taken_as_is() {
        let fernet = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let want: Vec<u8> = (0..32).collect();
        assert_eq!(MasterKey::parse(fernet).unwrap().bytes(), want);
        // Without its padding Python refuses to decode it: the text itself is the key.
        let unpadded = fernet.trim_end_matches('=');
        assert_eq!(
            MasterKey::parse(unpadded).unwrap().bytes(),
            unpadded.as_bytes()
        );
        assert_eq!(MasterKey::parse("secret").unwrap().bytes(), b"secret");
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(MasterKey::parse(&hex).unwrap().bytes(), hex.as_bytes());
        let non_ascii = format!("é{fernet}");
        assert_eq!(
            MasterKey::parse(&non_ascii).unwrap().bytes(),
            non_ascii.as_bytes()
        );
    }

    #[test]
    fn empty_and_blank_keys_are_refused() {
        assert_eq!(MasterKey::parse("").unwrap_err(), KeyError::Empty);
        assert_eq!(MasterKey::parse(" \n\t").unwrap_err(), KeyError::Blank);
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = MasterKey::parse("super-secret-value").unwrap();
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
        assert_eq!(format!("{:?}", key.derive("s")), "SessionKey(<redacted>)");
    }
}
