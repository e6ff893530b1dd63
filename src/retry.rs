//! Bounded exponential backoff with jitter, for optimistic-concurrency conflicts.

use std::time::Duration;

/// How many times an operation is attempted before it reports a conflict.
pub const MAX_ATTEMPTS: u32 = 10;
const BASE_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_millis(500);

/// Counts attempts and sleeps between them.
#[derive(Debug, Default)]
pub struct Backoff {
    attempts: u32,
}

impl Backoff {
    /// A fresh backoff: no attempt made yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the start of an attempt. `false` once [`MAX_ATTEMPTS`] have been made.
    pub fn start_attempt(&mut self) -> bool {
        if self.attempts >= MAX_ATTEMPTS {
            return false;
        }
        self.attempts += 1;
        true
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Sleeps before the next attempt: half of an exponentially growing delay, plus a random
    /// share of the other half, so that competing writers spread out.
    pub async fn pause(&self) {
        let exp = self.attempts.saturating_sub(1).min(16);
        let delay = BASE_DELAY.saturating_mul(1 << exp).min(MAX_DELAY);
        let half = delay / 2;
        let mut seed = [0u8; 8];
        wstd::rand::get_insecure_random_bytes(&mut seed);
        let jitter = half.mul_f64(u64::from_le_bytes(seed) as f64 / u64::MAX as f64);
        wstd::task::sleep((half + jitter).into()).await;
    }
}
