//! Every HTTP request the session sends, for the `orgsql_requests` table.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// The organization it was sent for.
    pub org_id: String,
    pub started_at: DateTime<Utc>,
    pub method: String,
    /// The path template, never ids.
    pub endpoint: &'static str,
    /// Its query string and body, without the paging cursor.
    pub parameters: String,
    /// HTTP status; `None` when no answer came (connection error, timeout).
    pub status: Option<u16>,
    pub duration_ms: f64,
    /// Time it waited for its rate budget before it was sent.
    pub wait_ms: f64,
    /// 1 for the first try, 2 for the first retry, ...
    pub attempt: u32,
    /// Items in the page's `data`, once decoded.
    pub rows: Option<usize>,
    /// Size of the answer's body, for successful requests.
    pub bytes: Option<usize>,
    /// The table whose scan sent it.
    pub table_name: &'static str,
}

#[derive(Debug, Default)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
}

impl RequestLog {
    /// Append a record; its index lets the caller fill in `rows` later.
    pub fn push(&self, record: RequestRecord) -> usize {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        records.push(record);
        records.len() - 1
    }

    pub fn set_rows(&self, index: usize, rows: usize) {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(record) = records.get_mut(index) {
            record.rows = Some(rows);
        }
    }

    /// The records from index `start` on (all of them from 0).
    pub fn since(&self, start: usize) -> Vec<RequestRecord> {
        let records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        records.get(start..).unwrap_or_default().to_vec()
    }

    pub fn len(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
