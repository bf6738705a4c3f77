//! The session's page cache: an answer already fetched is reused until its
//! time to live runs out, so a self-join or a second query over the same table
//! makes no new requests. Concurrent scans asking for the same page share one
//! request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::OnceCell;

/// One page's answer, filled by the first request that asks for it.
type Slot = Arc<OnceCell<Bytes>>;

#[derive(Debug)]
pub struct PageCache {
    ttl: Option<Duration>,
    /// By request: when fetched, which table asked, the answer.
    slots: Mutex<HashMap<String, (Instant, &'static str, Slot)>>,
}

impl PageCache {
    /// `ttl: None` turns caching off.
    pub fn new(ttl: Option<Duration>) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The slot for `key`: a fresh one when caching is off, the key is new, or
    /// its answer is older than the time to live.
    pub fn slot(&self, key: String, table: &'static str) -> Slot {
        let Some(ttl) = self.ttl else {
            return Slot::default();
        };
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (created, _, slot) = slots
            .entry(key)
            .or_insert_with(|| (now, table, Slot::default()));
        if now.duration_since(*created) > ttl {
            *created = now;
            *slot = Slot::default();
        }
        slot.clone()
    }

    /// Forget the cached pages of one table, or of all (the REPL's `\refresh`).
    pub fn clear(&self, table: Option<&str>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        match table {
            Some(table) => slots.retain(|_, (_, owner, _)| *owner != table),
            None => slots.clear(),
        }
    }
}
