//! The Admin API's rate budgets, enforced: fixed periods of a minute (or of
//! a minute divided by the time scale), a count per budget, and on every
//! answer the `X-RateLimit-*` headers the spec documents. A request over
//! budget is refused with 429 and `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue};
use chrono::{SecondsFormat, Utc};

use crate::api::budgets;

/// Which budgets the emulator enforces, and how fast its clock runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimits {
    /// How many times faster than real time a budget period passes: at 60 a
    /// documented minute lasts one second.
    pub time_scale: f64,
    /// Requests a minute for endpoints whose budget is not published.
    pub default_per_minute: u32,
}

impl RateLimits {
    /// Unpublished budgets: a guess, on purpose lower than any real
    /// organization should need, so that pacing is exercised everywhere.
    pub const DEFAULT_PER_MINUTE: u32 = 300;

    /// Real time, `time_scale` times faster.
    pub fn scaled(time_scale: f64) -> Self {
        Self {
            time_scale,
            default_per_minute: Self::DEFAULT_PER_MINUTE,
        }
    }

    /// How long one budget period lasts here.
    pub fn period(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.time_scale.max(1e-3))
    }

    /// Requests a period for an endpoint ("METHOD template").
    pub fn limit(&self, endpoint: &str) -> u32 {
        budgets::documented(endpoint).map_or(self.default_per_minute, |b| b.per_minute)
    }
}

/// Requests counted in the current period, per budget.
pub(crate) struct Budgets {
    limits: RateLimits,
    started: Instant,
    /// endpoint -> (period number, requests in it)
    used: Mutex<HashMap<&'static str, (u64, u32)>>,
}

/// An answer over budget: wait this long.
pub(crate) struct OverBudget {
    pub headers: HeaderMap,
    pub retry_after: Duration,
}

impl Budgets {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            started: Instant::now(),
            used: Mutex::new(HashMap::new()),
        }
    }

    /// Count a request to `endpoint`: the headers for its answer, or the
    /// refusal when the period's budget is spent.
    pub fn admit(&self, endpoint: &'static str) -> Result<HeaderMap, OverBudget> {
        let limit = self.limits.limit(endpoint);
        let period = self.limits.period();
        let elapsed = self.started.elapsed();
        let number = (elapsed.as_secs_f64() / period.as_secs_f64()) as u64;
        let ends_in = period.mul_f64((number + 1) as f64).saturating_sub(elapsed);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let count = used.entry(endpoint).or_insert((number, 0));
        if count.0 != number {
            *count = (number, 0);
        }
        let over = count.1 >= limit;
        if !over {
            count.1 += 1;
        }
        let headers = headers(limit, limit - count.1, ends_in);
        if over {
            Err(OverBudget {
                headers,
                retry_after: ends_in,
            })
        } else {
            Ok(headers)
        }
    }
}

/// `X-RateLimit-Limit`, `-Remaining`, and `-Reset` (ISO 8601 UTC, with
/// milliseconds: a scaled period can be a fraction of a second).
fn headers(limit: u32, remaining: u32, ends_in: Duration) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    let reset = Utc::now() + ends_in;
    if let Ok(value) = HeaderValue::from_str(&reset.to_rfc3339_opts(SecondsFormat::Millis, true)) {
        headers.insert("x-ratelimit-reset", value);
    }
    headers
}
