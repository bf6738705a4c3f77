//! `orgsql emulator`: the Admin API emulator, served on 127.0.0.1 for
//! other clients (and the benches) until stopped.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::emulator::{Emulator, EmulatorConfig, Faults, OrgSpec, RateLimits, ResetPrecision};

#[derive(clap::Args)]
pub struct EmulatorArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Seed of the generated organization
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of users
    #[arg(long, default_value_t = 250)]
    pub users: usize,
    /// Number of audit events over the last 90 days
    #[arg(long, default_value_t = 3000)]
    pub events: usize,
    /// Latency added to every response, in milliseconds
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Fail every N-th request, alternately with 429 and 503
    #[arg(long, value_name = "N")]
    pub fail_every: Option<u64>,
    /// Enforce the API's documented rate budgets (429 when one is spent)
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    pub rate_limits: Switch,
    /// Run the budgets' clock this many times faster (60: a documented
    /// minute lasts one second)
    #[arg(long, default_value_t = 1.0, value_name = "X", value_parser = time_scale)]
    pub time_scale: f64,
    /// Requests a minute allowed to endpoints whose budget is not published
    #[arg(long, default_value_t = RateLimits::DEFAULT_PER_MINUTE, value_name = "N")]
    pub default_limit: u32,
    /// Say Retry-After on a 429 over budget (off: only the X-RateLimit-*
    /// headers tell when to come back, as the real API may answer)
    #[arg(long, value_enum, default_value = "on", value_name = "on|off")]
    pub retry_after: Switch,
    /// How X-RateLimit-Reset states the end of the period: to the
    /// millisecond (rounded up), or to the minute (seconds dropped: up to a
    /// minute early)
    #[arg(
        long,
        value_enum,
        default_value = "millis",
        value_name = "millis|minute"
    )]
    pub reset_precision: Precision,
    /// Organizations to serve, each with its own key and budgets (some of
    /// the first's people are outside accounts in the others)
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=50))]
    pub orgs: u16,
    /// While it runs, append an admin's event to the (first) organization's
    /// audit log every SECS seconds, processed then (for `orgsql watch`)
    #[arg(long, value_name = "SECS")]
    pub append_every: Option<u64>,
    /// Of the events appended, make every N-th a late one: it happened an
    /// hour before it is processed
    #[arg(long, value_name = "N", requires = "append_every")]
    pub late_every: Option<u64>,
    /// Keep this many days of audit log, as the real API keeps 180 on most
    /// plans: older events are left out of /events and /events-stream;
    /// `all` keeps every event, back to 2022
    #[arg(long, value_name = "DAYS|all", default_value = "180", value_parser = retention)]
    pub retention_days: Retention,
}

/// `--retention-days`: a window of days, or the whole log.
#[derive(Debug, Clone, Copy)]
pub enum Retention {
    Days(u32),
    All,
}

fn retention(text: &str) -> Result<Retention, String> {
    match text {
        "all" => Ok(Retention::All),
        _ => match text.parse::<u32>() {
            Ok(days) if days > 0 => Ok(Retention::Days(days)),
            _ => Err(format!("{text:?}: give a number of days (e.g. 180) or all")),
        },
    }
}

fn time_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "{text:?} is not a positive number (1 is real time, 60 a minute a second)"
        )),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Precision {
    Millis,
    Minute,
}

/// `orgsql emulator`: serve until Ctrl-C.
pub async fn run(args: &EmulatorArgs) -> Result<()> {
    let config = EmulatorConfig {
        org: OrgSpec {
            seed: args.seed,
            users: args.users,
            events: args.events,
            ..OrgSpec::default()
        },
        faults: Faults {
            latency: Duration::from_millis(args.latency_ms),
            fail_every: args.fail_every,
            retry_after_secs: 1,
            repeat_cursor: false,
            drop_user: None,
            scim_short: false,
        },
        page_size_cap: None,
        port: args.port,
        limits: (args.rate_limits == Switch::On).then_some(RateLimits {
            time_scale: args.time_scale,
            default_per_minute: args.default_limit,
            retry_after: args.retry_after == Switch::On,
            reset_precision: match args.reset_precision {
                Precision::Millis => ResetPrecision::Millis,
                Precision::Minute => ResetPrecision::Minute,
            },
        }),
        api_key: None,
        access: Default::default(),
        orgs: usize::from(args.orgs),
        retention_days: match args.retention_days {
            Retention::Days(days) => Some(days),
            Retention::All => None,
        },
    };
    let emulator = Emulator::start(config)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    println!("{}", emulator.connection_json());
    if let Some(secs) = args.append_every {
        let emulator = &emulator;
        let late_every = args.late_every.filter(|n| *n > 0);
        tokio::select! {
            () = append_events(emulator, secs, late_every) => {}
            stopped = tokio::signal::ctrl_c() => stopped.context("waiting for Ctrl-C")?,
        }
        return Ok(());
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

/// `--append-every`: the actions that change who may do what, in turn, one
/// every `secs` seconds, each said on stderr.
async fn append_events(emulator: &Emulator, secs: u64, late_every: Option<u64>) {
    const TURN: &[&str] = &crate::emulator::ALERTING_ACTIONS;
    let mut tick = tokio::time::interval(Duration::from_secs(secs.max(1)));
    tick.tick().await;
    for n in 1u64.. {
        tick.tick().await;
        let action = TURN[(n as usize - 1) % TURN.len()];
        let late = late_every.is_some_and(|every| n % every == 0);
        let happened = late.then(|| chrono::Utc::now() - chrono::Duration::hours(1));
        match emulator.append_event(0, action, happened) {
            Ok(event) => eprintln!(
                "appended {action} {}{}",
                event.id,
                if late {
                    " (late: happened an hour ago)"
                } else {
                    ""
                }
            ),
            Err(e) => eprintln!("cannot append {action}: {e}"),
        }
    }
}
