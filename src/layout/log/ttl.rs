//! Time to live: the session expires as a whole, the head first.
//!
//! Every commit writes the head with the session's TTL `T`, so the head lives `T` past the
//! last write. Chunks are written with a longer TTL, `2T` plus the request timeout, and the
//! head records when each expires at the earliest (the time the write was sent plus its
//! TTL: it cannot expire sooner). Before a commit may extend the head's life, every chunk it
//! references must outlive the extended head by a margin, else the commit rewrites it (same
//! key, same bytes, a fresh TTL): a chunk is rewritten once it is `T/2` old, so refreshing
//! costs one write per chunk per `T/2` of activity, whatever the number of items.
//!
//! Why no live head can reference an expired chunk: a commit sent at `now` lands by
//! `now + timeout` (or fails), so the head it writes expires by `now + timeout + T`. Every
//! chunk it references expires no sooner than `now + T + T/2 + timeout`. Reads never extend
//! anything. A write delayed past its timeout by more than `T/2` (so that the client gave up
//! on it, and it still landed) is the one case outside this bound.

/// The TTL policy of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl {
    /// The session's TTL in seconds; `None`: it never expires.
    pub seconds: Option<u32>,
    /// The request timeout in whole seconds (rounded up).
    pub timeout_seconds: u32,
}

impl Ttl {
    /// The policy for a session TTL of `seconds` and a request timeout of `timeout_ms`.
    pub fn new(seconds: Option<u32>, timeout_ms: u64) -> Self {
        Ttl {
            seconds,
            timeout_seconds: u32::try_from(timeout_ms.div_ceil(1000)).unwrap_or(u32::MAX),
        }
    }

    /// The TTL written with the head.
    pub fn head(&self) -> Option<u32> {
        self.seconds
    }

    /// The TTL written with a chunk.
    pub fn chunk(&self) -> Option<u32> {
        self.seconds.map(|t| {
            let s = 2 * u64::from(t) + u64::from(self.timeout_seconds);
            // Dapr parses the TTL as a signed 32-bit number of seconds.
            u32::try_from(s.min(i32::MAX as u64)).unwrap_or(u32::MAX)
        })
    }

    /// The earliest expiry of a chunk whose write is sent at `now_ms`.
    pub fn chunk_expiry(&self, now_ms: u64) -> Option<u64> {
        self.chunk()
            .map(|t| now_ms.saturating_add(u64::from(t) * 1000))
    }

    /// Whether a chunk expiring at `expires` at the earliest must be rewritten before a head
    /// committed at `now_ms` may reference it. A chunk with a TTL under a session without one,
    /// and one without a TTL under a session with one, are rewritten too, so that the session
    /// lives, and expires, as a whole.
    pub fn refresh_due(&self, expires: Option<u64>, now_ms: u64) -> bool {
        match (self.seconds, expires) {
            (None, None) => false,
            (None, Some(_)) | (Some(_), None) => true,
            (Some(t), Some(e)) => {
                let margin = (u64::from(t) + u64::from(t) / 2 + u64::from(self.timeout_seconds))
                    .saturating_mul(1000);
                e < now_ms.saturating_add(margin)
            }
        }
    }

    /// How long after `at_ms` an etag seen then may still be bet on: within half the TTL the
    /// head cannot have expired (on Redis an etag given for a missing key is ignored, so a
    /// write on an expired head would silently recreate it).
    pub fn bet_window_ms(&self) -> Option<u64> {
        self.seconds.map(|t| u64::from(t) * 500)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_outlive_the_head_by_a_margin() {
        let ttl = Ttl::new(Some(100), 10_000);
        assert_eq!(ttl.head(), Some(100));
        assert_eq!(ttl.chunk(), Some(210));
        let written = 1_000_000;
        let expires = ttl.chunk_expiry(written);
        // Fresh: not due; due once T/2 old.
        assert!(!ttl.refresh_due(expires, written));
        assert!(!ttl.refresh_due(expires, written + 49_999));
        assert!(ttl.refresh_due(expires, written + 50_001));
        // At any commit that does not refresh, the chunk outlives the head it writes by
        // more than the request timeout.
        for now in (written..written + 50_000).step_by(997) {
            if !ttl.refresh_due(expires, now) {
                let head_gone_by = now + 10_000 + 100_000;
                assert!(expires.unwrap() > head_gone_by);
            }
        }
    }

    #[test]
    fn mixed_ttls_converge() {
        let none = Ttl::new(None, 1000);
        assert_eq!(
            (none.head(), none.chunk(), none.chunk_expiry(5)),
            (None, None, None)
        );
        assert!(!none.refresh_due(None, 0));
        assert!(none.refresh_due(Some(u64::MAX), 0));
        assert!(Ttl::new(Some(1), 1000).refresh_due(None, 0));
        assert_eq!(
            Ttl::new(Some(u32::MAX), 1000).chunk(),
            Some(i32::MAX as u32)
        );
    }
}
