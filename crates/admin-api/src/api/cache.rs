//! The session's page cache: an answer already fetched is reused until its
//! time to live runs out, so a self-join or a second query over the same table
//! makes no new requests. Concurrent scans asking for the same page share one
//! request. It holds at most `MAX_BYTES` of answers: pages beyond that are
//! fetched again when asked again, rather than filling memory with a long
//! audit log.
//!
//! Beside a page's bytes it keeps what each table decoded them into (a
//! memo): a check scans the audit log a dozen times, and decoding its JSON
//! again each time cost more than the queries. A memo lives and dies with
//! its page, so it is never fresher or staler than the bytes.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::OnceCell;

/// One page's answer, filled by the first request that asks for it.
type Slot = Arc<OnceCell<Bytes>>;

/// What a table decoded a page into, shared by the scans that ask again.
pub type Memo = Arc<dyn Any + Send + Sync>;

/// The most answer bytes kept (memos counted by their own size).
pub const MAX_BYTES: usize = 256 * 1024 * 1024;

struct Entry {
    created: Instant,
    /// The table whose scan asked, for `\refresh TABLE`.
    table: &'static str,
    slot: Slot,
    /// The page's bytes and its memos' sizes.
    bytes: usize,
    /// Per table that decoded the page: what it decoded.
    memos: HashMap<&'static str, Memo>,
}

#[derive(Default)]
struct Slots {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

pub struct PageCache {
    ttl: Option<Duration>,
    pub max_bytes: usize,
    slots: Mutex<Slots>,
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PageCache {
    /// `ttl: None` turns caching off.
    pub fn new(ttl: Option<Duration>) -> Self {
        Self {
            ttl,
            max_bytes: MAX_BYTES,
            slots: Mutex::new(Slots::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot for `key`: a fresh one when caching is off, the key is new, or
    /// its answer is older than the time to live.
    pub fn slot(&self, key: &str, table: &'static str) -> Slot {
        let Some(ttl) = self.ttl else {
            return Slot::default();
        };
        let mut slots = self.lock();
        let now = Instant::now();
        let expired = slots
            .entries
            .get(key)
            .is_some_and(|e| now.duration_since(e.created) > ttl);
        if expired && let Some(old) = slots.entries.remove(key) {
            slots.bytes -= old.bytes;
        }
        let entry = slots
            .entries
            .entry(key.to_string())
            .or_insert_with(|| Entry {
                created: now,
                table,
                slot: Slot::default(),
                bytes: 0,
                memos: HashMap::new(),
            });
        entry.slot.clone()
    }

    /// Whether the answer for `key` is held and still fresh.
    pub fn holds(&self, key: &str) -> bool {
        let Some(ttl) = self.ttl else {
            return false;
        };
        self.lock()
            .entries
            .get(key)
            .is_some_and(|e| e.created.elapsed() <= ttl && e.slot.initialized())
    }

    /// A page was fetched for `key`: keep it if it fits, else forget the slot.
    pub fn admit(&self, key: &str, bytes: usize) {
        let mut slots = self.lock();
        if slots.bytes + bytes > self.max_bytes {
            if let Some(old) = slots.entries.remove(key) {
                slots.bytes -= old.bytes;
            }
            return;
        }
        if let Some(entry) = slots.entries.get_mut(key) {
            entry.bytes = bytes;
            slots.bytes += bytes;
        }
    }

    /// What `table` decoded the page of `key` into, while the page is held.
    pub fn memo(&self, key: &str, table: &'static str) -> Option<Memo> {
        let ttl = self.ttl?;
        let slots = self.lock();
        let entry = slots.entries.get(key)?;
        (entry.created.elapsed() <= ttl && entry.slot.initialized())
            .then(|| entry.memos.get(table).cloned())
            .flatten()
    }

    /// Keep what `table` decoded the page of `key` into, if the page is held
    /// and the memo fits.
    pub fn remember(&self, key: &str, table: &'static str, memo: Memo, bytes: usize) {
        let mut slots = self.lock();
        if slots.bytes + bytes > self.max_bytes {
            return;
        }
        let Some(entry) = slots.entries.get_mut(key) else {
            return;
        };
        if !entry.slot.initialized() || entry.bytes == 0 || entry.memos.contains_key(table) {
            return;
        }
        entry.memos.insert(table, memo);
        entry.bytes += bytes;
        slots.bytes += bytes;
    }

    /// Forget the cached pages of one table, or of all (the REPL's `\refresh`).
    pub fn clear(&self, table: Option<&str>) {
        let mut slots = self.lock();
        match table {
            Some(table) => slots.entries.retain(|_, e| e.table != table),
            None => slots.entries.clear(),
        }
        slots.bytes = slots.entries.values().map(|e| e.bytes).sum();
    }
}
