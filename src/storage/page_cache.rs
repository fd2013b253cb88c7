//! Browse pages, cached per inventory version.
//!
//! Portal users open the same pages over and over (the first page of a type,
//! with the same tag filter), and between syncs those pages do not change.
//! Every transaction that changes what can be browsed bumps the inventory
//! version in Postgres (`storage::resources::MARK_CHANGED`); a request reads
//! the version first, and only a page stored under that very version is
//! served. So a cached page is never older than one read from Postgres at the
//! same moment, on any replica, and no invalidation message is needed.
//!
//! Requests that arrive together share their version read: each is answered
//! by a read that started after it arrived, so it is as fresh as a read of its
//! own, and under load one round trip serves every request that arrived while
//! the previous one ran (instead of one round trip per request).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::body::Bytes;
use sqlx::PgPool;

pub struct PageCache {
    budget_bytes: usize,
    pages: Mutex<Pages>,
    versions: SharedRead,
}

/// One version read at a time, shared by the requests it covers.
#[derive(Default)]
struct SharedRead {
    /// Requests that have asked for the version so far.
    arrivals: AtomicU64,
    /// Held while a read runs: the requests queued behind it are then answered by it, or run the next one.
    last: tokio::sync::Mutex<LastRead>,
}

#[derive(Default)]
struct LastRead {
    /// The requests (arrival numbers up to this) that had arrived when the read started.
    covers: u64,
    version: i64,
}

impl SharedRead {
    async fn get<E, F: Future<Output = Result<i64, E>>>(&self, read: impl FnOnce() -> F) -> Result<i64, E> {
        let arrival = self.arrivals.fetch_add(1, Ordering::SeqCst) + 1;
        let mut last = self.last.lock().await;
        if last.covers >= arrival {
            return Ok(last.version);
        }
        let covers = self.arrivals.load(Ordering::SeqCst);
        let version = read().await?;
        *last = LastRead { covers, version };
        Ok(version)
    }
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
        Self { budget_bytes, pages: Mutex::new(Pages::default()), versions: SharedRead::default() }
    }

    /// The inventory version, read after this call began (see the module's comment).
    pub async fn version(&self, db: &PgPool) -> Result<i64, sqlx::Error> {
        self.versions.get(|| super::resources::version(db)).await
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

    /// Requests arriving during a read wait for the next one (which they all
    /// share); none is answered by a read that began before it arrived.
    #[tokio::test]
    async fn version_reads_are_shared_and_never_older_than_the_request() {
        use std::sync::Arc;
        let shared = Arc::new(SharedRead::default());
        let reads = Arc::new(AtomicU64::new(0));
        let (release_first, first_released) = tokio::sync::oneshot::channel::<()>();
        let read = |reads: Arc<AtomicU64>, gate: Option<tokio::sync::oneshot::Receiver<()>>| async move {
            let n = reads.fetch_add(1, Ordering::SeqCst) as i64 + 1;
            if let Some(gate) = gate {
                gate.await.unwrap();
            }
            Ok::<i64, ()>(n)
        };
        let first = tokio::spawn({
            let (shared, reads) = (shared.clone(), reads.clone());
            async move { shared.get(|| read(reads, Some(first_released))).await }
        });
        while reads.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // Ten requests arrive while the first read runs.
        let later: Vec<_> = (0..10)
            .map(|_| {
                let (shared, reads) = (shared.clone(), reads.clone());
                tokio::spawn(async move { shared.get(|| read(reads, None)).await })
            })
            .collect();
        while shared.arrivals.load(Ordering::SeqCst) < 11 {
            tokio::task::yield_now().await;
        }
        release_first.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        for request in later {
            assert_eq!(request.await.unwrap(), Ok(2), "the read after theirs, not the one running when they came");
        }
        assert_eq!(reads.load(Ordering::SeqCst), 2, "one read for the ten");
    }
}
