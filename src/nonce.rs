//! Random names for chunks, session generations and operations.

/// Characters of a nonce: lower-case letters and digits (safe in keys and URLs).
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Length of a nonce: 36^12 ≈ 2^62 possibilities.
pub const LEN: usize = 12;

/// A nonce made from `random` bytes (one per character).
pub fn from_random(random: impl FnOnce(&mut [u8])) -> String {
    let mut bytes = [0u8; LEN];
    random(&mut bytes);
    bytes
        .iter()
        .map(|b| {
            char::from(
                ALPHABET
                    .get(usize::from(*b) % ALPHABET.len())
                    .copied()
                    .unwrap_or(b'0'),
            )
        })
        .collect()
}

/// Whether `s` is a nonce as [`from_random`] makes them.
pub fn is_nonce(s: &str) -> bool {
    s.len() == LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_use_the_alphabet() {
        let n = from_random(|b| b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8 * 7));
        assert!(is_nonce(&n), "{n}");
        assert!(!is_nonce("ABCDEFGHIJKL") && !is_nonce("abc"));
    }
}
