//! When to retry and how long to wait: `Retry-After`, then `X-RateLimit-Reset`,
//! then exponential backoff with jitter.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use reqwest::header::HeaderMap;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first one included.
    pub max_attempts: u32,
    /// First backoff step when the server gives no hint; doubles each attempt.
    pub base_delay: Duration,
    /// The longest wait accepted for one request: a server that asks for
    /// longer fails the request with a message saying so.
    pub max_delay: Duration,
}

/// How long orgsql waits at most, by default, before one request.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(120);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: DEFAULT_MAX_WAIT,
        }
    }
}

/// Statuses worth another attempt: rate limited, or a gateway that may recover.
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

impl RetryPolicy {
    /// How long to wait before attempt `attempt + 1`: the server's hint, else
    /// backoff. Not capped: the caller decides whether it is too long.
    pub fn delay(&self, attempt: u32, headers: Option<&HeaderMap>, now: DateTime<Utc>) -> Duration {
        headers
            .and_then(|h| hint(h, now))
            .unwrap_or_else(|| self.backoff(attempt))
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so many
    /// clients hitting one limit do not retry in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max_delay);
        let half = exp / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }
}

/// The server's word on when to come back: `Retry-After`, else
/// `X-RateLimit-Reset` when nothing remains.
pub fn hint(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    retry_after(headers, now).or_else(|| rate_limit_reset(headers, now))
}

/// `Retry-After`: delay in seconds or an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    Some(until(at.with_timezone(&Utc), now))
}

/// `X-RateLimit-Reset` when nothing remains and it is still ahead. A
/// reset already past (one stated to the minute, its seconds dropped)
/// says nothing of when the period ends: backoff decides then, not an
/// immediate retry into the same spent budget.
fn rate_limit_reset(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let remaining = headers.get("x-ratelimit-remaining")?.to_str().ok()?;
    if remaining.trim().parse::<i64>().ok()? > 0 {
        return None;
    }
    let at = parse_reset(headers.get("x-ratelimit-reset")?.to_str().ok()?)?;
    (at > now).then(|| until(at, now))
}

/// An `X-RateLimit-Reset` time: ISO 8601, seen with and without seconds
/// (`2023-10-11T05:12Z`), so parsed leniently.
pub fn parse_reset(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    DateTime::parse_from_rfc3339(value)
        .ok()
        .or_else(|| DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M%#z").ok())
        .map(|t| t.with_timezone(&Utc))
}

fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}
