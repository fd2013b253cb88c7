//! Browse pages, cached per inventory version.
//!
//! Portal users open the same pages over and over (the first page of a type,
//! with the same tag filter), and between syncs those pages do not change.
//! Every transaction that changes what can be browsed bumps the inventory
//! version in Postgres (`storage::resources::MARK_CHANGED`); a request reads
//! the version first, and only a page stored under that very version is
//! served. So a cached page is never older than one read from Postgres at the
//! same moment, on any replica, and no invalidation message is needed.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;

pub struct PageCache {
    budget_bytes: usize,
    pages: Mutex<Pages>,
}

/// The pages of one inventory version: an older version is never needed again.
#[derive(Default)]
struct Pages {
    version: i64,
    bytes: usize,
    by_key: HashMap<String, Bytes>,
}

impl Pages {
    /// Moves on to `version` when it is newer, dropping the older pages.
    fn at(&mut self, version: i64) -> Option<&mut Self> {
        if version > self.version {
            *self = Pages { version, ..Pages::default() };
        }
        (version == self.version).then_some(self)
    }
}

impl PageCache {
    /// A cache holding at most `budget_bytes` of pages; 0 caches nothing.
    pub fn new(budget_bytes: usize) -> Self {
        Self { budget_bytes, pages: Mutex::new(Pages::default()) }
    }

    /// The page stored under `key` for exactly `version`.
    pub fn get(&self, version: i64, key: &str) -> Option<Bytes> {
        let outcome = {
            let mut pages = self.pages.lock().expect("page cache lock");
            pages.at(version).and_then(|pages| pages.by_key.get(key).cloned())
        };
        metrics::counter!("jit_iam_browse_pages_total", "cache" => if outcome.is_some() { "hit" } else { "miss" })
            .increment(1);
        outcome
    }

    /// Keeps `page`, read after reading `version`. Once the budget is used up,
    /// new pages wait for the next version (the first pages asked for are the
    /// ones asked for most).
    pub fn put(&self, version: i64, key: String, page: Bytes) {
        let mut pages = self.pages.lock().expect("page cache lock");
        if let Some(pages) = pages.at(version) {
            if pages.bytes + page.len() + key.len() <= self.budget_bytes {
                pages.bytes += page.len() + key.len();
                pages.by_key.insert(key, page);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_served_only_for_their_version() {
        let cache = PageCache::new(1024);
        cache.put(3, "a".into(), Bytes::from_static(b"page at 3"));
        assert_eq!(cache.get(3, "a").as_deref(), Some(&b"page at 3"[..]));
        assert_eq!(cache.get(3, "b"), None);
        // A newer version drops the older pages; a late put of an older version is ignored.
        assert_eq!(cache.get(4, "a"), None);
        cache.put(3, "a".into(), Bytes::from_static(b"page at 3"));
        assert_eq!(cache.get(4, "a"), None);
        assert_eq!(cache.get(3, "a"), None);
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let cache = PageCache::new(20);
        cache.put(1, "a".into(), Bytes::from(vec![b'x'; 15]));
        cache.put(1, "b".into(), Bytes::from(vec![b'y'; 15]));
        assert!(cache.get(1, "a").is_some());
        assert_eq!(cache.get(1, "b"), None);
        let off = PageCache::new(0);
        off.put(1, "a".into(), Bytes::from_static(b"x"));
        assert_eq!(off.get(1, "a"), None);
    }
}
