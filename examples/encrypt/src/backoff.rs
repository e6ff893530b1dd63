//! Bounded exponential backoff with full jitter between read-then-write attempts that lost a
//! race to another writer, as the session component retries its own commits: without it,
//! a few instances popping one session keep invalidating each other's reads.

use std::time::Duration;

/// Read-then-write attempts of one call before `conflict` (the session component's bound).
pub const MAX_ATTEMPTS: u32 = 64;
const BASE_DELAY: Duration = Duration::from_millis(4);
const MAX_DELAY: Duration = Duration::from_millis(250);

/// The pause after `failed` attempts (1 or more): a random share (`share` of `u32::MAX`) of a
/// delay that doubles with every failed attempt from 4 ms up to 250 ms.
pub fn delay(failed: u32, share: u32) -> Duration {
    let exp = failed.saturating_sub(1).min(16);
    let cap = BASE_DELAY.saturating_mul(1 << exp).min(MAX_DELAY);
    let nanos = cap.as_nanos() * u128::from(share) / u128::from(u32::MAX);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_scale_with_the_share() {
        assert_eq!(delay(1, u32::MAX), Duration::from_millis(4));
        assert_eq!(delay(2, u32::MAX), Duration::from_millis(8));
        assert_eq!(delay(7, u32::MAX), Duration::from_millis(250));
        assert_eq!(delay(MAX_ATTEMPTS, u32::MAX), Duration::from_millis(250));
        assert_eq!(delay(3, 0), Duration::ZERO);
        assert_eq!(delay(3, u32::MAX / 2), Duration::from_nanos(7_999_999));
    }
}
