//! Every listing the session reads, and whether it was read whole: its pages,
//! items, requests and retries, whether the last page said there is no next
//! one, and, where the API counts the same filter, its count before and after
//! the listing. Export manifests, check reports and `orgsql_listings` read it.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One listing: the pages of one call, cursor to cursor.
#[derive(Debug, Clone, Serialize)]
pub struct ListingRecord {
    pub org_id: String,
    /// The table whose scan read it.
    pub table_name: &'static str,
    /// "METHOD template".
    pub endpoint: String,
    /// Its query string and body, without the paging cursor.
    pub parameters: String,
    pub started_at: DateTime<Utc>,
    pub pages: u64,
    /// Items the API's pages held (a table may make several rows of one
    /// item, or none): what its count counts.
    pub items: u64,
    /// Requests sent for it (retries and counts included; pages the session
    /// cache held send none).
    pub requests: u64,
    pub retries: u64,
    /// Pages the session cache held, read earlier by the same call.
    pub cached_pages: u64,
    /// The last page said there is no next one. A scan that stopped early
    /// (LIMIT) or a cursor chain that broke leaves it false.
    pub read_to_end: bool,
    /// The count endpoint asked for the same filters, if any.
    pub count_endpoint: Option<String>,
    /// The API's count just before the first page and just after the last.
    pub count_before: Option<u64>,
    pub count_after: Option<u64>,
    /// Why there is no count, when there is none.
    pub count_note: Option<String>,
}

/// What a listing's record shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Read to its end, and the API counts the items it returned, before and after.
    Complete,
    /// Read to its end; the API has no count for it.
    ReadToEnd,
    /// Not read to its end (the query needed no more, or it failed).
    NotReadToEnd,
    /// The count moved while it was read: its items are of a moving organization.
    ChangedWhileRead,
    /// The count held still and the items differ from it: items are missing
    /// (or extra). Such a listing fails its query.
    Incomplete,
}

impl Verdict {
    pub fn words(self) -> &'static str {
        match self {
            Verdict::Complete => "complete",
            Verdict::ReadToEnd => "read to its end (no count)",
            Verdict::NotReadToEnd => "not read to its end",
            Verdict::ChangedWhileRead => "changed while read",
            Verdict::Incomplete => "incomplete",
        }
    }
}

impl ListingRecord {
    pub fn verdict(&self) -> Verdict {
        if !self.read_to_end {
            return Verdict::NotReadToEnd;
        }
        match (self.count_before, self.count_after) {
            (Some(before), Some(after)) if before != after => Verdict::ChangedWhileRead,
            (Some(count), Some(_)) if count != self.items => Verdict::Incomplete,
            (Some(_), Some(_)) => Verdict::Complete,
            _ => Verdict::ReadToEnd,
        }
    }

    /// The record in words, for reports: its numbers and its verdict.
    pub fn described(&self) -> String {
        let mut text = format!(
            "{}: {} in {}, {}, {}",
            self.verdict().words(),
            several(self.items, "item"),
            several(self.pages, "page"),
            several(self.requests, "request"),
            several(self.retries, "retry")
        );
        match (self.count_before, self.count_after) {
            (Some(before), Some(after)) if before == after => {
                text.push_str(&format!("; the API counts {before} before and after"));
            }
            (Some(before), Some(after)) => {
                text.push_str(&format!(
                    "; the API counted {before} before and {after} after"
                ));
            }
            (Some(before), None) => text.push_str(&format!("; the API counted {before} before")),
            _ => {
                if let Some(note) = &self.count_note {
                    text.push_str(&format!("; no count: {note}"));
                }
            }
        }
        text
    }
}

/// A call's counts: before its first page, after its last.
pub type Counts = (Option<u64>, Option<u64>);

/// The session's listings, and the counts each call had when it last went
/// to the API, so a listing the session cache replays keeps them.
#[derive(Debug, Default)]
pub struct ListingLog {
    records: Mutex<Vec<ListingRecord>>,
    /// Call (its first page's cache key) -> its counts.
    counts: Mutex<HashMap<String, Counts>>,
}

impl ListingLog {
    pub fn push(&self, record: ListingRecord) -> usize {
        let mut records = lock(&self.records);
        records.push(record);
        records.len() - 1
    }

    pub fn update(&self, index: usize, change: impl FnOnce(&mut ListingRecord)) {
        if let Some(record) = lock(&self.records).get_mut(index) {
            change(record);
        }
    }

    /// The records from index `start` on (all of them from 0).
    pub fn since(&self, start: usize) -> Vec<ListingRecord> {
        lock(&self.records)
            .get(start..)
            .unwrap_or_default()
            .to_vec()
    }

    pub fn len(&self) -> usize {
        lock(&self.records).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn remembered(&self, call: &str) -> Option<Counts> {
        lock(&self.counts).get(call).copied()
    }

    pub fn remember(&self, call: &str, counts: Counts) {
        lock(&self.counts).insert(call.to_string(), counts);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A table's listings summed up, per organization: what a manifest and a
/// report say of one table read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Completeness {
    pub table: String,
    pub org_id: String,
    pub listings: u64,
    pub pages: u64,
    /// Items the API's pages held.
    pub items: u64,
    pub requests: u64,
    pub retries: u64,
    /// Every listing was read to its end.
    pub read_to_end: bool,
    /// Listings the API counted, and how many of those held still and
    /// matched their items.
    pub counted: u64,
    pub counted_complete: u64,
    /// The API's counts (before and after) and the items, summed over the
    /// counted listings that were read to their end.
    pub count_before: Option<u64>,
    pub count_after: Option<u64>,
    pub counted_items: Option<u64>,
    /// Listings whose count moved while they were read.
    pub changed_while_read: u64,
    /// Listings whose count held still and did not match their items.
    pub incomplete: u64,
    /// Why listings went uncounted, each reason once.
    pub uncounted: Vec<String>,
}

impl Completeness {
    /// One summary per (organization, table), in the order first read.
    pub fn of(records: &[ListingRecord]) -> Vec<Completeness> {
        let mut out: Vec<Completeness> = Vec::new();
        // A listing the session cache replayed whole is the one that filled
        // the cache, read again: counted once, as that one.
        let replayed = |r: &&ListingRecord| r.pages > 0 && r.cached_pages == r.pages;
        for record in records.iter().filter(|r| !replayed(r)) {
            let index = match out
                .iter()
                .position(|c| c.table == record.table_name && c.org_id == record.org_id)
            {
                Some(index) => index,
                None => {
                    out.push(Completeness {
                        table: record.table_name.to_string(),
                        org_id: record.org_id.clone(),
                        read_to_end: true,
                        ..Completeness::default()
                    });
                    out.len() - 1
                }
            };
            let c = &mut out[index];
            c.listings += 1;
            c.pages += record.pages;
            c.items += record.items;
            c.requests += record.requests;
            c.retries += record.retries;
            c.read_to_end &= record.read_to_end;
            let verdict = record.verdict();
            match verdict {
                Verdict::ChangedWhileRead => c.changed_while_read += 1,
                Verdict::Incomplete => c.incomplete += 1,
                _ => {}
            }
            if let (Some(before), Some(after), true) =
                (record.count_before, record.count_after, record.read_to_end)
            {
                c.counted += 1;
                if verdict == Verdict::Complete {
                    c.counted_complete += 1;
                }
                c.count_before = Some(c.count_before.unwrap_or(0) + before);
                c.count_after = Some(c.count_after.unwrap_or(0) + after);
                c.counted_items = Some(c.counted_items.unwrap_or(0) + record.items);
            } else if let Some(note) = &record.count_note
                && !c.uncounted.contains(note)
            {
                c.uncounted.push(note.clone());
            }
        }
        out
    }

    /// The summary in words, for reports.
    pub fn described(&self) -> String {
        let verdict = if self.incomplete > 0 {
            "INCOMPLETE"
        } else if self.changed_while_read > 0 {
            "changed while read"
        } else if !self.read_to_end {
            "not read to its end"
        } else if self.counted > 0 && self.counted == self.listings {
            "complete"
        } else {
            "read to its end"
        };
        let mut text = format!(
            "{verdict}: {} in {}, {}, {}, {}",
            several(self.items, "item"),
            several(self.listings, "listing"),
            several(self.pages, "page"),
            several(self.requests, "request"),
            several(self.retries, "retry")
        );
        if let (Some(before), Some(after), Some(items)) =
            (self.count_before, self.count_after, self.counted_items)
        {
            let counts = if before == after {
                format!("the API counts {before} before and after")
            } else {
                format!("the API counted {before} before and {after} after")
            };
            text.push_str(&format!(
                "; {counts} for the {} counted, which held {}",
                several(self.counted, "listing"),
                several(items, "item")
            ));
        }
        if self.counted < self.listings && !self.uncounted.is_empty() {
            text.push_str(&format!("; not counted: {}", self.uncounted.join("; ")));
        }
        text
    }
}

/// "1 page", "3 pages", "2 retries".
fn several(n: u64, what: &str) -> String {
    match (n, what.strip_suffix('y')) {
        (1, _) => format!("1 {what}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {what}s"),
    }
}
