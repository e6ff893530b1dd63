//! Random names for batches, pages and operations.

/// Characters of a nonce: lower-case letters and digits (safe in keys and URLs).
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Length of a nonce: 36^12 ≈ 2^62 possibilities.
pub const LEN: usize = 12;

/// A fresh random nonce, from `wasi:random/random`.
pub fn new() -> String {
    let mut bytes = [0u8; LEN];
    wstd::rand::get_random_bytes(&mut bytes);
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
