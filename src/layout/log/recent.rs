//! The recent key: copies of the newest batches' items, in one key, so that reading a whole
//! session of typical size (a few hundred items) takes one round trip instead of one key per
//! item.
//!
//! `{base}:r` holds `[[nonce, [item, ...]], ...]`, oldest batch first, at most
//! [`RECENT_BYTES`] of items. Batch contents never change, so the copy of a batch is right
//! whoever wrote it and whenever: readers use it only for batches the head lists (with the
//! head's live count), and writers simply rewrite the key with their view. Two writers racing
//! can leave it missing a batch; readers then read that batch's item keys.

use serde::{Deserialize, Serialize};

use super::page::COPY_BATCH_ITEMS;

/// Most item bytes the recent key holds.
pub const RECENT_BYTES: usize = 16 * 1024;
/// The key is rewritten once this many items are neither in the head's tail nor in it.
pub const REFRESH_ITEMS: u64 = 8;

/// Copies of the newest batches, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recent(pub Vec<(String, Vec<String>)>);

impl Recent {
    /// Parses the stored key; anything unreadable is an empty cache.
    pub fn parse(data: &[u8]) -> Recent {
        serde_json::from_slice(data).unwrap_or_default()
    }

    /// The items copied for batch `nonce`.
    pub fn get(&self, nonce: &str) -> Option<&Vec<String>> {
        self.0
            .iter()
            .find(|(n, _)| n == nonce)
            .map(|(_, items)| items)
    }

    /// The oldest and the newest batch held, for the head to record.
    pub fn coverage(&self) -> Option<(String, String)> {
        Some((self.0.first()?.0.clone(), self.0.last()?.0.clone()))
    }

    /// A cache of the batches `wanted` (oldest first), taking their items from this cache or
    /// from `more`, dropping the oldest past the byte budget.
    pub fn rebuilt(&self, wanted: &[&str], more: &[(String, Vec<String>)]) -> Recent {
        let mut batches: Vec<(String, Vec<String>)> = wanted
            .iter()
            .filter_map(|n| {
                self.get(n)
                    .or_else(|| more.iter().find(|(m, _)| m == n).map(|(_, i)| i))
                    .filter(|items| items.len() as u64 <= COPY_BATCH_ITEMS)
                    .map(|items| (n.to_string(), items.clone()))
            })
            .collect();
        let mut total: usize = batches.iter().flat_map(|(_, i)| i).map(String::len).sum();
        let mut drop = 0;
        for (_, items) in &batches {
            if total <= RECENT_BYTES {
                break;
            }
            total -= items.iter().map(String::len).sum::<usize>();
            drop += 1;
        }
        batches.drain(..drop);
        Recent(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: &str, items: &[&str]) -> (String, Vec<String>) {
        (n.to_string(), items.iter().map(|i| i.to_string()).collect())
    }

    #[test]
    fn keeps_wanted_batches_within_budget() {
        let r = Recent::default().rebuilt(
            &["a", "b"],
            &[batch("a", &["{}"]), batch("b", &["{\"x\":1}"])],
        );
        let r = r.rebuilt(&["b", "c"], &[batch("c", &["{}"])]);
        assert_eq!(
            r.0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["b", "c"]
        );
        assert_eq!(r.get("b").map(Vec::len), Some(1));
        let big = "x".repeat(RECENT_BYTES / 2 + 1);
        let r = r.rebuilt(
            &["b", "d", "e"],
            &[batch("d", &[big.as_str()]), batch("e", &[big.as_str()])],
        );
        assert_eq!(
            r.0.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["e"]
        );
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(Recent::parse(json.as_bytes()), r);
        assert_eq!(Recent::parse(b"nope"), Recent::default());
    }
}
