//! The Atlassian Admin API client: auth, base URL, paging, retries, errors.

pub mod budgets;
// Public for the unit tests in tests/it/unit.
pub mod cache;
pub mod client;
pub mod error;
pub mod listings;
pub mod log;
mod orgs;
pub mod pacer;
pub mod paging;
pub mod retry;

pub use client::{
    Client, ClientConfig, CountBy, CursorIn, DEFAULT_CACHE_TTL, DEFAULT_CONCURRENCY, Keep, Page,
    PageRequest, REVOCABLE_ROLES, WRITES, Written, shown_url,
};
pub use error::{ApiError, api_message, duration_words};
pub use listings::{Completeness, ListingRecord, Verdict};
pub use log::RequestRecord;
pub use orgs::Orgs;
pub use pacer::Wait;
pub use paging::{Envelope, PageItems, next_cursor};
pub use retry::{DEFAULT_MAX_WAIT, RetryPolicy};

use std::fmt;

/// The polling audit API: five times the budget of `/events`, ordered by
/// processing time, with a cursor that outlives the last page.
pub const EVENTS_STREAM: &str = "/admin/v1/orgs/{orgId}/events-stream";

/// An organization API key. Debug and errors never show it; it leaves the
/// process only in the `Authorization` header.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_string())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}
