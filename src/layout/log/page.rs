//! Pages: immutable keys holding the older entries of a level.
//!
//! A page of batch entries (a level-1 page) also carries copies of the items of the batches
//! it lists, as they were when the page was written; entries in pages never change (pops
//! only touch the head), so the copies stay exact. A long read then fetches one page per 32
//! batches instead of one key per item. Batches too large to copy are `null` and read from
//! their item keys. Pages of higher levels list pages and carry no items.
//!
//! | page of       | value                                                        |
//! |---------------|--------------------------------------------------------------|
//! | batches       | `{"e": [[nonce, items], ...], "t": [[item, ...] or null, ...]}` |
//! | pages         | `[[nonce, items], ...]`                                      |

use serde::{Deserialize, Serialize};

use super::head::Entry;

/// Largest batch whose items a page copies.
pub const COPY_BATCH_ITEMS: u64 = 64;
/// Most item bytes a page copies (about 16 items of 4 KiB, or 256 of 256 bytes).
pub const COPY_BYTES: usize = 64 * 1024;

/// A parsed page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Entries, oldest first.
    pub entries: Vec<Entry>,
    /// For a page of batches: each batch's items, or `None` where they were not copied.
    pub items: Vec<Option<Vec<String>>>,
}

#[derive(Serialize, Deserialize)]
struct Batches {
    #[serde(rename = "e")]
    entries: Vec<Entry>,
    #[serde(rename = "t", default)]
    items: Vec<Option<Vec<String>>>,
}

impl Page {
    /// Parses a stored page; `None` if it is not one.
    pub fn parse(data: &[u8]) -> Option<Page> {
        match data.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => serde_json::from_slice(data).ok().map(|entries| Page {
                entries,
                items: Vec::new(),
            }),
            Some(b'{') => serde_json::from_slice::<Batches>(data).ok().map(|b| Page {
                entries: b.entries,
                items: b.items,
            }),
            _ => None,
        }
    }

    /// The items copied for entry `i`, if any.
    pub fn items_of(&self, i: usize) -> Option<&Vec<String>> {
        self.items.get(i).and_then(Option::as_ref)
    }

    /// The JSON to store for a page of pages.
    pub fn encode_refs(entries: &[Entry]) -> Result<String, serde_json::Error> {
        serde_json::to_string(entries)
    }

    /// The JSON to store for a page of batches with their copied items.
    pub fn encode_batches(
        entries: Vec<Entry>,
        items: Vec<Option<Vec<String>>>,
    ) -> Result<String, serde_json::Error> {
        serde_json::to_string(&Batches { entries, items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_round_trip() {
        let entries = vec![Entry("a".into(), 2), Entry("b".into(), 1)];
        let refs = Page::encode_refs(&entries).unwrap();
        assert_eq!(Page::parse(refs.as_bytes()).unwrap().entries, entries);
        let items = vec![Some(vec!["{\"x\":1}".to_string(), "{}".to_string()]), None];
        let batches = Page::encode_batches(entries.clone(), items.clone()).unwrap();
        let page = Page::parse(batches.as_bytes()).unwrap();
        assert_eq!(page.entries, entries);
        assert_eq!(page.items_of(0), items[0].as_ref());
        assert_eq!(page.items_of(1), None);
        assert_eq!(Page::parse(b"\"nope\""), None);
        assert_eq!(Page::parse(b"{\"e\":3}"), None);
    }
}
