//! Fernet tokens, as the `cryptography` package makes and checks them.
//!
//! A token is URL-safe base64 of `0x80 ‖ timestamp (u64, big-endian seconds) ‖ IV (16) ‖
//! AES-128-CBC ciphertext (PKCS#7) ‖ HMAC-SHA256 (32)`, the HMAC over everything before it.
//! Decoding follows Python's lenient base64 ([`crate::python_base64`]). With a TTL, a token is
//! refused once `timestamp + ttl < now` and while `now + 60 < timestamp` (clock skew);
//! without one, neither check is made (as `Fernet.decrypt(token)`).

use aes::Aes128;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::key::SessionKey;
use crate::python_base64::urlsafe_b64decode;

/// The version byte every token starts with.
const VERSION: u8 = 0x80;
/// How far in the future a token's timestamp may be, in seconds (`_MAX_CLOCK_SKEW`).
pub const MAX_CLOCK_SKEW: u64 = 60;
/// Bytes before the ciphertext: version, timestamp, IV.
const HEADER: usize = 1 + 8 + 16;
/// Bytes of the HMAC at the end.
const MAC: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not base64, not version 0x80, or too short to hold a timestamp.
    #[error("not a Fernet token")]
    Malformed,
    /// The HMAC does not match: another key, or altered bytes.
    #[error("the token's signature does not match this key")]
    BadSignature,
    /// Authentic, but older than the TTL.
    #[error("the token has expired")]
    Expired,
    /// Authentic, but stamped more than [`MAX_CLOCK_SKEW`] seconds ahead.
    #[error("the token is from the future")]
    FromFuture,
    /// Authentic, but its ciphertext does not decrypt (length or padding).
    #[error("the token's ciphertext does not decrypt")]
    BadCiphertext,
}

/// The TTL check made on decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    /// Maximum age in seconds.
    pub seconds: u64,
    /// The current time, seconds since the Unix epoch.
    pub now: u64,
}

impl Ttl {
    /// Whether a token stamped `timestamp` has outlived the TTL.
    pub fn expired(&self, timestamp: u64) -> bool {
        u128::from(timestamp) + u128::from(self.seconds) < u128::from(self.now)
    }

    /// Whether `timestamp` lies further ahead than the allowed clock skew.
    pub fn from_future(&self, timestamp: u64) -> bool {
        u128::from(self.now) + u128::from(MAX_CLOCK_SKEW) < u128::from(timestamp)
    }
}

/// Encrypts `plaintext` into a token stamped `time`, with the given IV
/// (`Fernet._encrypt_from_parts`). Callers pass a fresh random IV for every token.
pub fn encrypt(key: &SessionKey, plaintext: &[u8], time: u64, iv: &[u8; 16]) -> String {
    let encryptor = cbc::Encryptor::<Aes128>::new(key.encryption().into(), iv.into());
    let ciphertext = encryptor.encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut token = Vec::with_capacity(HEADER + ciphertext.len() + MAC);
    token.push(VERSION);
    token.extend_from_slice(&time.to_be_bytes());
    token.extend_from_slice(iv);
    token.extend_from_slice(&ciphertext);
    let tag = mac(key).chain_update(&token).finalize().into_bytes();
    token.extend_from_slice(&tag);
    URL_SAFE.encode(token)
}

/// Decrypts a token (`Fernet.decrypt(token, ttl)`), with the TTL check when `ttl` is given.
pub fn decrypt(key: &SessionKey, token: &[u8], ttl: Option<Ttl>) -> Result<Vec<u8>, TokenError> {
    let token = Verified::new(key, token)?;
    if let Some(ttl) = ttl {
        token.check_time(ttl)?;
    }
    token.decrypt(key)
}

/// A token whose signature matched the key: its timestamp can be trusted.
#[derive(Debug)]
pub struct Verified {
    data: Vec<u8>,
    timestamp: u64,
}

impl Verified {
    /// Decodes a token and checks its HMAC (`Fernet.extract_timestamp`).
    pub fn new(key: &SessionKey, token: &[u8]) -> Result<Self, TokenError> {
        let data = urlsafe_b64decode(token).map_err(|_| TokenError::Malformed)?;
        let timestamp = match data.get(..9) {
            Some([VERSION, stamp @ ..]) => {
                u64::from_be_bytes(stamp.try_into().map_err(|_| TokenError::Malformed)?)
            }
            _ => return Err(TokenError::Malformed),
        };
        let split = data
            .len()
            .checked_sub(MAC)
            .ok_or(TokenError::BadSignature)?;
        let (signed, tag) = data.split_at(split);
        mac(key)
            .chain_update(signed)
            .verify_slice(tag)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(Self { data, timestamp })
    }

    /// When the token was made, seconds since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// Refuses the token when it has expired or is too far in the future.
    pub fn check_time(&self, ttl: Ttl) -> Result<(), TokenError> {
        if ttl.expired(self.timestamp) {
            Err(TokenError::Expired)
        } else if ttl.from_future(self.timestamp) {
            Err(TokenError::FromFuture)
        } else {
            Ok(())
        }
    }

    /// The plaintext.
    pub fn decrypt(&self, key: &SessionKey) -> Result<Vec<u8>, TokenError> {
        let end = self.data.len().saturating_sub(MAC);
        let (Some(iv), Some(ciphertext)) = (self.data.get(9..HEADER), self.data.get(HEADER..end))
        else {
            return Err(TokenError::BadCiphertext);
        };
        let iv: &[u8; 16] = iv.try_into().map_err(|_| TokenError::BadCiphertext)?;
        cbc::Decryptor::<Aes128>::new(key.encryption().into(), iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
            .map_err(|_| TokenError::BadCiphertext)
    }
}

fn mac(key: &SessionKey) -> HmacSha256 {
    // HMAC takes keys of any length.
    match <HmacSha256 as Mac>::new_from_slice(key.signing()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts a 16-byte key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        SessionKey::from_bytes(&bytes)
    }

    #[test]
    fn round_trip_at_every_padding_length() {
        for len in 0..40 {
            let plaintext: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let token = encrypt(&key(), &plaintext, 1000, &[7; 16]);
            let ttl = Ttl {
                seconds: 10,
                now: 1005,
            };
            assert_eq!(decrypt(&key(), token.as_bytes(), Some(ttl)), Ok(plaintext));
        }
    }

    #[test]
    fn time_checks_match_cryptography() {
        let token = encrypt(&key(), b"x", 1000, &[1; 16]);
        let at = |seconds, now| decrypt(&key(), token.as_bytes(), Some(Ttl { seconds, now }));
        assert!(at(10, 1010).is_ok());
        assert_eq!(at(10, 1011), Err(TokenError::Expired));
        assert!(at(10, 940).is_ok());
        assert_eq!(at(10, 939), Err(TokenError::FromFuture));
        assert!(decrypt(&key(), token.as_bytes(), None).is_ok());
    }

    #[test]
    fn altered_tokens_are_refused() {
        let token = encrypt(&key(), b"hello", 1000, &[1; 16]);
        let mut raw = URL_SAFE.decode(&token).unwrap();
        for i in 0..raw.len() {
            raw[i] ^= 0x01;
            let altered = URL_SAFE.encode(&raw);
            assert!(
                decrypt(&key(), altered.as_bytes(), None).is_err(),
                "byte {i}"
            );
            raw[i] ^= 0x01;
        }
        let other = SessionKey::from_bytes(&[9; 32]);
        assert_eq!(
            decrypt(&other, token.as_bytes(), None),
            Err(TokenError::BadSignature)
        );
        for short in ["", "gA==", "gAAAAAAAAAA="] {
            assert!(
                decrypt(&key(), short.as_bytes(), None).is_err(),
                "{short:?}"
            );
        }
    }
}
