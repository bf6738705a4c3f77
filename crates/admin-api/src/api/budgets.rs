//! The Admin API's rate budgets as its spec states them (organization spec,
//! 2026-08-21 narrative): the one table the client's pacer starts from and
//! the emulator enforces. Endpoints not listed are rate limited too, but the
//! numbers are not published.

/// A documented budget: so many requests a minute to one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// "METHOD template", as requests are logged.
    pub endpoint: &'static str,
    pub per_minute: u32,
    /// What the budget is counted over, in the spec's words.
    pub per: &'static str,
}

/// The published budgets. `/events` was lowered from 50 to 10 a minute at
/// the end of May 2025, and the spec points clients to `/events-stream`.
pub const DOCUMENTED: [Budget; 5] = [
    Budget {
        endpoint: "GET /admin/v1/orgs/{orgId}/events",
        per_minute: 10,
        per: "API path",
    },
    Budget {
        endpoint: "GET /admin/v1/orgs/{orgId}/events/{eventId}",
        per_minute: 10,
        per: "API path",
    },
    Budget {
        endpoint: "GET /admin/v1/orgs/{orgId}/event-actions",
        per_minute: 10,
        per: "API path",
    },
    Budget {
        endpoint: "GET /admin/v1/orgs/{orgId}/events-stream",
        per_minute: 50,
        per: "API path",
    },
    Budget {
        endpoint: "GET /admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates",
        per_minute: 200,
        per: "organization",
    },
];

/// The documented budget of an endpoint ("METHOD template"), if there is one.
pub fn documented(endpoint: &str) -> Option<Budget> {
    DOCUMENTED.iter().copied().find(|b| b.endpoint == endpoint)
}
