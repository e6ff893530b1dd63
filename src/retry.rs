//! Bounded exponential backoff with jitter, for optimistic-concurrency conflicts.

use std::time::Duration;

use crate::store::Store;

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

    /// The delay before the next attempt: a random share (`share` of `u32::MAX`) of a delay
    /// that doubles with every attempt up to a cap ("full jitter"), so competing writers spread
    /// out.
    pub fn delay(&self, share: u32) -> Duration {
        let exp = self.attempts.saturating_sub(1).min(16);
        let cap = BASE_DELAY.saturating_mul(1 << exp).min(MAX_DELAY);
        let nanos = cap.as_nanos() * u128::from(share) / u128::from(u32::MAX);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Sleeps before the next attempt.
    pub async fn pause<S: Store>(&self, store: &S) {
        let mut seed = [0u8; 4];
        store.random(&mut seed);
        store.sleep(self.delay(u32::from_le_bytes(seed))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_attempts_are_bounded() {
        let mut b = Backoff::new();
        assert!(b.start_attempt());
        assert_eq!(b.delay(u32::MAX), BASE_DELAY);
        assert!(b.start_attempt());
        assert_eq!(b.delay(u32::MAX), BASE_DELAY * 2);
        while b.start_attempt() {}
        assert_eq!(b.attempts(), MAX_ATTEMPTS);
        assert_eq!(b.delay(u32::MAX), MAX_DELAY);
        assert_eq!(b.delay(0), Duration::ZERO);
    }
}
