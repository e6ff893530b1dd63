//! What the middleware takes from its host besides the session: the time (token timestamps and
//! TTL checks), randomness (a fresh IV for every token, jitter for retries) and pauses between
//! retries.

use std::time::Duration;

/// Time, randomness and waiting.
pub trait Platform {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
    /// A fresh, unpredictable 16-byte IV.
    fn iv(&self) -> [u8; 16];
    /// Waits `duration` (between attempts that lost a race to another writer).
    fn sleep(&self, duration: Duration);
}

/// The component's platform: `wasi:clocks/wall-clock` (through the standard library),
/// `wasi:random/random` and `wasi:clocks/monotonic-clock`. (It compiles natively, but only a wasm host can run it.)
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

    fn sleep(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        wasip2::clocks::monotonic_clock::subscribe_duration(nanos).block();
    }
}
