//! What the middleware takes from its host besides the session: the time (token timestamps and
//! TTL checks) and randomness (a fresh IV for every token).

/// Time and randomness.
pub trait Platform {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
    /// A fresh, unpredictable 16-byte IV.
    fn iv(&self) -> [u8; 16];
}

/// The component's platform: `wasi:clocks/wall-clock` (through the standard library) and
/// `wasi:random/random`. (It compiles natively, but only a wasm host can run it.)
#[derive(Debug, Clone, Copy, Default)]
pub struct Wasi;

impl Platform for Wasi {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn iv(&self) -> [u8; 16] {
        let high = wasip2::random::random::get_random_u64().to_le_bytes();
        let low = wasip2::random::random::get_random_u64().to_le_bytes();
        let mut iv = [0u8; 16];
        let (a, b) = iv.split_at_mut(8);
        a.copy_from_slice(&high);
        b.copy_from_slice(&low);
        iv
    }
}
