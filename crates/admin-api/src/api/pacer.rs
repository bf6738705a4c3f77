//! Paces the requests to each rate budget so that a steady run gets no 429.
//!
//! Before the API has said anything, at most the documented number of
//! requests of a budget go out (`budgets::DOCUMENTED`; unpublished budgets
//! are not held back). Then every answer's `X-RateLimit-Remaining` and
//! `-Reset` set the pace: what is left of the period, spread over what is
//! left of it. A 429 that still comes holds the budget until the API's hint
//! and slows it down from then on. An API that sends no rate headers is not
//! paced (its 429s are still honoured).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use tokio::sync::Notify;

use super::budgets;

/// Waits longer than this are shown on the progress line, in words.
pub const NOTABLE_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
pub struct Pacer {
    pub budgets: Mutex<HashMap<String, Budget>>,
    /// Woken when an answer arrives: it may say more is left.
    answered: Notify,
}

/// A wait someone is in, for the progress line.
#[derive(Debug, Clone)]
pub struct Wait {
    pub endpoint: String,
    pub until: Instant,
    pub why: String,
}

#[derive(Debug)]
pub struct Budget {
    /// Requests sent whose answer has not come.
    pub in_flight: u32,
    /// Requests sent in all; a request's number is this count when it went.
    sent: u64,
    /// Requests the newest answer says are left, less those sent since.
    pub remaining: Option<u32>,
    /// When the period the newest answer spoke of ends.
    pub reset: Option<Instant>,
    /// The period's size, from `X-RateLimit-Limit`.
    limit: Option<u32>,
    /// Sent while no answer told what is left (the period just began).
    sent_unknowing: u32,
    /// Earliest time for the next request.
    next: Instant,
    /// Nothing goes out before then (a 429's hint).
    hold: Option<Instant>,
    /// Spacing multiplier; each 429 raises it.
    slower: f64,
    /// The API sent no rate headers: do not pace.
    silent: bool,
    /// Someone waits for this budget until then, and why.
    waiting: Option<(Instant, String)>,
}

impl Budget {
    pub fn new(now: Instant) -> Self {
        Self {
            in_flight: 0,
            sent: 0,
            remaining: None,
            reset: None,
            limit: None,
            sent_unknowing: 0,
            next: now,
            hold: None,
            slower: 1.0,
            silent: false,
            waiting: None,
        }
    }
}

pub enum Decision {
    Go,
    /// Wait until then (or until an answer says more).
    Until(Instant, String),
    /// Wait for an answer to say what is left.
    Answer,
}

/// The longest a request waits for an answer to say more before it goes
/// anyway (an answer lost to a timeout must not stall a budget).
const ANSWER_PATIENCE: Duration = Duration::from_secs(2);

impl Pacer {
    /// Wait until a request to `endpoint` ("METHOD template") may go; returns
    /// how long that took, and the request in flight, to tell its answer
    /// to. `Err(wait)` when the wait would exceed `max_wait`.
    pub async fn acquire(
        &self,
        endpoint: &str,
        max_wait: Duration,
    ) -> Result<(Duration, InFlight<'_>), Wait> {
        let started = Instant::now();
        loop {
            let now = Instant::now();
            let decision = self.decide(endpoint, now);
            let answered = self.answered.notified();
            match decision {
                Decision::Go => {
                    let mut budgets = self
                        .budgets
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let number = budgets.get_mut(endpoint).map_or(0, |b| {
                        b.sent += 1;
                        b.sent
                    });
                    let request = InFlight {
                        pacer: self,
                        endpoint: endpoint.to_string(),
                        number,
                        settled: false,
                    };
                    return Ok((started.elapsed(), request));
                }
                Decision::Until(until, why) => {
                    if until.saturating_duration_since(started) > max_wait {
                        self.clear_wait(endpoint);
                        return Err(Wait {
                            endpoint: endpoint.to_string(),
                            until,
                            why,
                        });
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(until.into()) => {}
                        () = answered => {}
                    }
                }
                Decision::Answer => {
                    tokio::select! {
                        () = tokio::time::sleep(ANSWER_PATIENCE) => {
                            self.go_anyway(endpoint);
                        }
                        () = answered => {}
                    }
                }
            }
        }
    }

    fn decide(&self, endpoint: &str, now: Instant) -> Decision {
        let mut budgets = self
            .budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let budget = budgets
            .entry(endpoint.to_string())
            .or_insert_with(|| Budget::new(now));
        let decision = decide(budget, endpoint, now);
        budget.waiting = match &decision {
            Decision::Until(until, why) => Some((*until, why.clone())),
            _ => None,
        };
        decision
    }

    fn clear_wait(&self, endpoint: &str) {
        let mut budgets = self
            .budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(budget) = budgets.get_mut(endpoint) {
            budget.waiting = None;
        }
    }

    /// No answer came to say more: let one more request find out.
    fn go_anyway(&self, endpoint: &str) {
        let mut budgets = self
            .budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(budget) = budgets.get_mut(endpoint) {
            budget.sent_unknowing = budget.sent_unknowing.saturating_sub(1);
        }
    }

    /// An answer to a request of `endpoint` came: no longer in flight; then
    /// `update` its budget, and wake whoever waits for news.
    fn on_answer(&self, endpoint: &str, update: impl FnOnce(&mut Budget, Instant)) {
        let now = Instant::now();
        {
            let mut budgets = self
                .budgets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let budget = budgets
                .entry(endpoint.to_string())
                .or_insert_with(|| Budget::new(now));
            budget.in_flight = budget.in_flight.saturating_sub(1);
            update(budget, now);
        }
        self.answered.notify_waiters();
    }

    /// An answer to request `number` came (any status but 429): read what it
    /// says is left.
    fn answered(&self, endpoint: &str, number: u64, headers: Option<&HeaderMap>) {
        self.on_answer(endpoint, |budget, now| {
            match headers.and_then(|h| rate_headers(h, Utc::now(), now)) {
                Some((limit, remaining, Some(reset))) => {
                    budget.silent = false;
                    budget.limit = limit.or(budget.limit);
                    // The requests sent after this one are not counted in
                    // its answer (those sent before it mostly are).
                    let after =
                        u32::try_from(budget.sent.saturating_sub(number)).unwrap_or(u32::MAX);
                    let left = remaining.saturating_sub(after.min(budget.in_flight));
                    let same_period = budget.reset.is_some_and(|r| {
                        r.max(reset).duration_since(r.min(reset)) < Duration::from_millis(50)
                    });
                    budget.remaining = match (same_period, budget.remaining) {
                        // Answers overtake each other: the lower count is newer.
                        (true, Some(ours)) => Some(ours.min(left)),
                        _ => Some(left),
                    };
                    budget.reset = Some(reset);
                    budget.sent_unknowing = 0;
                }
                // A reset already past (stated to the minute, its seconds
                // dropped) tells not when the period ends: its size still
                // bounds the requests sent on no news, those in flight.
                Some((limit, _, None)) => {
                    budget.silent = false;
                    budget.limit = limit.or(budget.limit);
                    budget.remaining = None;
                    budget.reset = None;
                    budget.sent_unknowing = budget.in_flight;
                }
                None if headers.is_some() => budget.silent = true,
                None => {}
            }
        });
    }

    /// A 429: hold the budget for `hint` and pace it more slowly from now on.
    fn throttled(&self, endpoint: &str, hint: Duration) {
        self.on_answer(endpoint, |budget, now| {
            budget.hold = Some(now + hint);
            budget.remaining = Some(0);
            budget.reset = Some(now + hint);
            budget.slower = (budget.slower * 1.5).min(8.0);
        });
    }

    /// The longest wait going on now, if it is a notable one.
    pub fn longest_wait(&self) -> Option<Wait> {
        let now = Instant::now();
        let budgets = self
            .budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        budgets
            .iter()
            .filter_map(|(endpoint, b)| {
                let (until, why) = b.waiting.as_ref()?;
                (until.saturating_duration_since(now) > NOTABLE_WAIT).then(|| Wait {
                    endpoint: endpoint.clone(),
                    until: *until,
                    why: why.clone(),
                })
            })
            .max_by_key(|w| w.until)
    }
}

/// A request `acquire` let go, in flight until its answer is told with
/// `answered` or `throttled`. Dropped untold (the query stopped wanting it:
/// a LIMIT met, Ctrl-C), it stops counting as in flight: else the budget
/// would wait for answers that never come.
pub struct InFlight<'a> {
    pacer: &'a Pacer,
    endpoint: String,
    /// Its number among the budget's requests.
    pub number: u64,
    settled: bool,
}

impl InFlight<'_> {
    /// An answer came (any status but 429): read what it says is left.
    pub fn answered(mut self, headers: Option<&HeaderMap>) {
        self.settled = true;
        self.pacer.answered(&self.endpoint, self.number, headers);
    }

    /// A 429: hold the budget for `hint` and pace it more slowly.
    pub fn throttled(mut self, hint: Duration) {
        self.settled = true;
        self.pacer.throttled(&self.endpoint, hint);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.pacer.on_answer(&self.endpoint, |_, _| {});
        }
    }
}

pub fn decide(budget: &mut Budget, endpoint: &str, now: Instant) -> Decision {
    if let Some(hold) = budget.hold {
        if now < hold {
            return Decision::Until(hold, "the API answered 429 and asked to wait".to_string());
        }
        budget.hold = None;
    }
    if budget.silent {
        budget.in_flight += 1;
        return Decision::Go;
    }
    if let (Some(left), Some(reset)) = (budget.remaining, budget.reset) {
        if now < reset {
            if left == 0 {
                let why = match budget.limit {
                    Some(limit) => format!("its budget of {limit} requests a period is spent"),
                    None => "its budget is spent".to_string(),
                };
                return Decision::Until(reset, why);
            }
            if budget.next > now {
                return Decision::Until(budget.next, "spacing requests over the budget".into());
            }
            let spacing = (reset - now)
                .div_f64(f64::from(left))
                .mul_f64(budget.slower);
            budget.remaining = Some(left - 1);
            // From when this request was due, not from now: timers wake
            // late (about a millisecond), and counted from now that lateness
            // would add up to a tenth of a budget at a few milliseconds
            // apart. Never more than one spacing is made up (no burst).
            budget.next = budget.next.max(now.checked_sub(spacing).unwrap_or(now)) + spacing;
            budget.in_flight += 1;
            return Decision::Go;
        }
        // The period is over: what it said no longer holds. Requests still
        // in flight may land in the new one: count them there.
        budget.remaining = None;
        budget.reset = None;
        budget.sent_unknowing = budget.in_flight;
    }
    // Nothing known of this period: as many as the period is known to
    // allow, then wait for an answer to tell more (if one is coming).
    let allowance = budget
        .limit
        .or_else(|| budgets::documented(endpoint).map(|b| b.per_minute));
    match allowance {
        Some(allowed) if budget.sent_unknowing >= allowed.max(1) && budget.in_flight > 0 => {
            Decision::Answer
        }
        _ => {
            budget.sent_unknowing += 1;
            budget.in_flight += 1;
            Decision::Go
        }
    }
}

/// `X-RateLimit-Limit` (if sent), `-Remaining` and `-Reset` as an instant
/// on our clock (`None` when the stated reset is not ahead); `None` unless
/// both of the latter are there and readable.
///
/// The new period is taken to begin at the stated reset, with no margin.
/// A margin of 20 ms was here, "as the API may round it down". Measured:
/// `budgets::long_scans_paced_by_every_budget_give_the_whole_answer` run 3
/// times with it and 3 without (the margin read from a variable for the
/// measurement), each run 11-17 s of 0.5 s periods against the emulator,
/// which rounds its reset up; `Emulator::throttled` counted no 429 in any
/// run, with the margin or without. Against a server that rounds down,
/// 20 ms covers neither a second (up to 1000 ms early) nor a minute; a
/// request sent early draws a 429, retried without reaching the user (a
/// reset still ahead is waited for, one already past falls to backoff).
fn rate_headers(
    headers: &HeaderMap,
    wall_now: DateTime<Utc>,
    now: Instant,
) -> Option<(Option<u32>, u32, Option<Instant>)> {
    let number =
        |name: &str| -> Option<u32> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    let remaining = number("x-ratelimit-remaining")?;
    let reset = super::retry::parse_reset(headers.get("x-ratelimit-reset")?.to_str().ok()?)?;
    let ahead = (reset - wall_now)
        .to_std()
        .ok()
        .filter(|ahead| !ahead.is_zero())
        .map(|ahead| now + ahead);
    Some((number("x-ratelimit-limit"), remaining, ahead))
}
