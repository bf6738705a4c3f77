//! The Atlassian Admin API client: auth, base URL, paging, retries, errors.

mod cache;
mod client;
mod error;
mod log;
mod paging;
mod retry;

pub use client::{
    Client, ClientConfig, CursorIn, DEFAULT_CACHE_TTL, DEFAULT_CONCURRENCY, PageRequest,
};
pub use error::{ApiError, api_message};
pub use log::RequestRecord;
pub use paging::{Envelope, PageItems, next_cursor};
pub use retry::RetryPolicy;

use std::fmt;

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
