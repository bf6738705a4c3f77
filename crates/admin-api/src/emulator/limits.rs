//! The Admin API's rate budgets, enforced: fixed periods of a minute (or of
//! a minute divided by the time scale), a count per budget, and on every
//! answer the `X-RateLimit-*` headers the spec documents. A request over
//! budget is refused with 429 and `Retry-After`, or, as the real API may
//! answer (it documents neither), without `Retry-After` and with the reset
//! stated to the minute only.

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
    /// A 429 says `Retry-After`; when false, only the `X-RateLimit-*`
    /// headers tell when to come back.
    pub retry_after: bool,
    /// How precisely `X-RateLimit-Reset` states the end of the period.
    pub reset_precision: ResetPrecision,
}

/// How `X-RateLimit-Reset` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetPrecision {
    /// To the millisecond, rounded up: never early.
    #[default]
    Millis,
    /// To the minute (`2026-11-20T12:05Z`), the seconds dropped: up to a
    /// minute early, as a server rounding it down would state it. On a
    /// sped-up clock the stated reset is then mostly already past.
    Minute,
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
            retry_after: true,
            reset_precision: ResetPrecision::Millis,
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
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// endpoint -> (period number, requests in it)
    used: HashMap<&'static str, (u64, u32)>,
    /// endpoint -> requests admitted in all
    admitted: HashMap<&'static str, u64>,
    /// A lowered budget: after so many requests, from the next period on.
    lowered: Vec<Lowered>,
}

struct Lowered {
    endpoint: &'static str,
    after: u64,
    per_minute: u32,
    /// The period it applies from, once `after` requests were admitted.
    from: Option<u64>,
}

/// An answer over budget: wait this long (`None`: do not say so).
pub(crate) struct OverBudget {
    pub headers: HeaderMap,
    pub retry_after: Option<Duration>,
}

impl Budgets {
    pub fn new(limits: RateLimits) -> Self {
        Self {
            limits,
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    /// After `after` requests to `endpoint`, allow only `per_minute` from
    /// the next period on: a server that lowers a limit mid-run.
    pub fn lower_after(&self, endpoint: &'static str, after: u64, per_minute: u32) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.lowered.push(Lowered {
            endpoint,
            after,
            per_minute,
            from: None,
        });
    }

    /// Count a request to `endpoint`: the headers for its answer, or the
    /// refusal when the period's budget is spent.
    pub fn admit(&self, endpoint: &'static str) -> Result<HeaderMap, OverBudget> {
        let period = self.limits.period();
        let elapsed = self.started.elapsed();
        let number = (elapsed.as_secs_f64() / period.as_secs_f64()) as u64;
        let ends_in = period.mul_f64((number + 1) as f64).saturating_sub(elapsed);
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let limit = state
            .lowered
            .iter()
            .filter(|l| l.endpoint == endpoint && l.from.is_some_and(|from| number >= from))
            .map(|l| l.per_minute)
            .min()
            .unwrap_or_else(|| self.limits.limit(endpoint));
        let count = state.used.entry(endpoint).or_insert((number, 0));
        if count.0 != number {
            *count = (number, 0);
        }
        let over = count.1 >= limit;
        if !over {
            count.1 += 1;
        }
        let count = *count;
        if !over {
            let admitted = state.admitted.entry(endpoint).or_default();
            *admitted += 1;
            let admitted = *admitted;
            for lowered in &mut state.lowered {
                if lowered.endpoint == endpoint
                    && lowered.from.is_none()
                    && admitted >= lowered.after
                {
                    lowered.from = Some(number + 1);
                }
            }
        }
        let headers = headers(
            limit,
            limit.saturating_sub(count.1),
            ends_in,
            self.limits.reset_precision,
        );
        if over {
            Err(OverBudget {
                headers,
                retry_after: self.limits.retry_after.then_some(ends_in),
            })
        } else {
            Ok(headers)
        }
    }
}

/// `X-RateLimit-Limit`, `-Remaining`, and `-Reset` (ISO 8601 UTC, with
/// milliseconds, as a scaled period can be a fraction of a second; or to
/// the minute).
fn headers(limit: u32, remaining: u32, ends_in: Duration, precision: ResetPrecision) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    let reset = Utc::now() + ends_in;
    let text = match precision {
        // Rounded up to the millisecond: the reset is never stated early.
        ResetPrecision::Millis => {
            (reset + Duration::from_micros(999)).to_rfc3339_opts(SecondsFormat::Millis, true)
        }
        ResetPrecision::Minute => reset.format("%Y-%m-%dT%H:%MZ").to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&text) {
        headers.insert("x-ratelimit-reset", value);
    }
    headers
}
