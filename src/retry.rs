//! Bounded exponential backoff with jitter, for optimistic-concurrency conflicts.

use std::time::Duration;

/// How many times an operation is attempted before it reports a conflict. Generous: with
/// many writers on one session, a writer can lose many races in a row while others, just
/// done, cut in again; the delays below bound the total wait to about ten seconds.
pub const MAX_ATTEMPTS: u32 = 64;
const BASE_DELAY: Duration = Duration::from_millis(4);
const MAX_DELAY: Duration = Duration::from_millis(250);

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

    /// Sleeps before the next attempt: a random share ("full jitter") of a delay that doubles
    /// with every attempt up to a cap, so that competing writers spread out.
    pub async fn pause(&self) {
        let exp = self.attempts.saturating_sub(1).min(16);
        let delay = BASE_DELAY.saturating_mul(1 << exp).min(MAX_DELAY);
        // `wasi:random/random`, which every `wasi:http` proxy host has (`insecure` is not in
        // the proxy world).
        let mut seed = [0u8; 8];
        wstd::rand::get_random_bytes(&mut seed);
        let share = u64::from_le_bytes(seed) as f64 / u64::MAX as f64;
        wstd::task::sleep(delay.mul_f64(share).into()).await;
    }
}
