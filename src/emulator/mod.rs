//! An emulator of the Atlassian Admin API on 127.0.0.1: the same paths, JSON
//! shapes, paging styles, page-size limits and error bodies as the real API,
//! serving a generated organization. Used by `--demo`, the tests and the
//! benchmarks, and as `orgsql emulator` by anyone else.

mod limits;
mod org;
mod routes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use limits::RateLimits;
pub use org::{
    ApiToken, Directory, Domain, Event, EventAction, Group, GroupRole, Location, Org, OrgApiKey,
    OrgSpec, Policy, ProductAccess, User, UserRole, Workspace,
};

use crate::api::{ApiKey, ClientConfig};

/// Faults to inject, deterministically, so tests need no luck.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Added before every answer.
    pub latency: Duration,
    /// Every n-th request fails, alternately with 429 (rate limited) and 503.
    pub fail_every: Option<u64>,
    /// `Retry-After` seconds sent with an injected 429.
    pub retry_after_secs: u64,
    /// Hand out the same next-page cursor again and again (a broken API).
    pub repeat_cursor: bool,
}

#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    pub org: OrgSpec,
    pub faults: Faults,
    /// Cap every page size below the API's own maxima, to exercise paging on small orgs.
    pub page_size_cap: Option<usize>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The API's rate budgets, enforced; `None` answers every request.
    pub limits: Option<RateLimits>,
    /// The one key it accepts; `emulator-key-<seed>` when `None`.
    pub api_key: Option<String>,
    /// How the API Access API (tokens, keys) takes keys.
    pub access: AccessRules,
}

/// The API Access API's rules for keys, as the evidence has them.
#[derive(Debug, Clone, Default)]
pub struct AccessRules {
    /// When set, the API Access API takes only this (scoped) key and the
    /// organization API refuses it; else the one key reads everything.
    pub scoped_key: Option<String>,
    /// Refuse the org-wide token listing (403), as for a key without
    /// `read:tokens:admin`.
    pub refuse_token_listing: bool,
}

impl EmulatorConfig {
    /// The demo organization: the API's budgets enforced, its clock 600
    /// times faster (a documented minute lasts 0.1 s), so that pacing is
    /// real and the demo still answers at once.
    pub fn demo() -> Self {
        Self {
            limits: Some(RateLimits::scaled(600.0)),
            ..Self::default()
        }
    }
}

pub(crate) struct State {
    /// The organization served; `Emulator::change` swaps in a changed copy.
    org: Mutex<Arc<Org>>,
    base_url: String,
    api_key: String,
    config: EmulatorConfig,
    counter: AtomicU64,
    /// Requests served, by "METHOD template".
    requests: Mutex<BTreeMap<String, u64>>,
    /// The last JSON body received, by "METHOD template".
    last_bodies: Mutex<BTreeMap<String, serde_json::Value>>,
    /// The last query string received, by "METHOD template".
    last_queries: Mutex<BTreeMap<String, String>>,
    /// The names of every query parameter and body field received.
    params_seen: Mutex<std::collections::BTreeSet<String>>,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    budgets: Option<limits::Budgets>,
    /// Requests refused for being over budget.
    throttled: AtomicU64,
    /// The events of the org being served, in processing order (indices),
    /// worked out once per version of the org.
    processing_order: Mutex<Option<ProcessingOrder>>,
}

/// An org version and its events' indices in processing order.
type ProcessingOrder = (Arc<Org>, Arc<Vec<usize>>);

/// A running emulator; stops when dropped.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Emulator {
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Self> {
        let org = Org::generate(&config.org);
        let api_key = config
            .api_key
            .clone()
            .unwrap_or_else(|| format!("emulator-key-{}", config.org.seed));
        let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            org: Mutex::new(Arc::new(org)),
            base_url: format!("http://{addr}"),
            api_key,
            counter: AtomicU64::new(0),
            requests: Mutex::new(BTreeMap::new()),
            last_bodies: Mutex::new(BTreeMap::new()),
            last_queries: Mutex::new(BTreeMap::new()),
            params_seen: Mutex::new(std::collections::BTreeSet::new()),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            budgets: config.limits.map(limits::Budgets::new),
            throttled: AtomicU64::new(0),
            processing_order: Mutex::new(None),
            config,
        });
        let app = axum::Router::new()
            .fallback(routes::handle)
            .with_state(state.clone());
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                eprintln!("emulator stopped: {e}");
            }
        });
        Ok(Self {
            addr,
            state,
            shutdown: Some(shutdown),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The organization as it is being served now.
    pub fn org(&self) -> Arc<Org> {
        self.state.org()
    }

    /// Change the organization between queries (add a user, grant a role,
    /// change a policy): requests after this see the changed org.
    pub fn change(&self, edit: impl FnOnce(&mut Org)) {
        let mut current = self.state.org.lock().unwrap_or_else(|e| e.into_inner());
        let mut org = Org::clone(&current);
        edit(&mut org);
        *current = Arc::new(org);
    }

    /// The one key the emulator accepts.
    pub fn api_key(&self) -> ApiKey {
        ApiKey::new(self.state.api_key.clone())
    }

    /// A client configuration pointed at this emulator.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.base_url(), self.org().id.clone(), self.api_key())
    }

    /// The `{"base_url", "org_id", "api_key"}` line `orgsql emulator` prints.
    pub fn connection_json(&self) -> serde_json::Value {
        serde_json::json!({
            "base_url": self.base_url(),
            "org_id": self.org().id,
            "api_key": self.state.api_key,
        })
    }

    /// Requests served so far whose "METHOD template" ends with `suffix`
    /// (e.g. "/events"); every request when `suffix` is empty.
    pub fn requests(&self, suffix: &str) -> u64 {
        let requests = self
            .state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        requests
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, n)| n)
            .sum()
    }

    /// The last JSON body sent to an endpoint whose "METHOD template" ends with `suffix`.
    pub fn last_body(&self, suffix: &str) -> Option<serde_json::Value> {
        let bodies = self
            .state
            .last_bodies
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        bodies
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| v.clone())
    }

    /// The last query string sent to an endpoint whose "METHOD template" ends with `suffix`.
    pub fn last_query(&self, suffix: &str) -> Option<String> {
        let queries = self
            .state
            .last_queries
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        queries
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| v.clone())
    }

    /// After `after` requests to `endpoint` ("METHOD template"), allow only
    /// `per_minute` from the next budget period on (with rate limits on).
    pub fn lower_limit_after(&self, endpoint: &'static str, after: u64, per_minute: u32) {
        if let Some(budgets) = &self.state.budgets {
            budgets.lower_after(endpoint, after, per_minute);
        }
    }

    /// Requests refused with 429 for being over a rate budget (injected
    /// faults not counted).
    pub fn throttled(&self) -> u64 {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// The most requests it has been serving at one time.
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// The names of the query parameters and body fields received since
    /// the last `reset_requests`.
    pub fn params_seen(&self) -> std::collections::BTreeSet<String> {
        self.state
            .params_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reset_requests(&self) {
        self.state
            .params_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.state
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Counts a request as in flight until dropped.
pub(crate) struct InFlight<'a>(&'a State);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl State {
    pub(crate) fn org(&self) -> Arc<Org> {
        self.org.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    fn remember_query(&self, endpoint: &str, query: &str) {
        let mut queries = self.last_queries.lock().unwrap_or_else(|e| e.into_inner());
        queries.insert(endpoint.to_string(), query.to_string());
        let mut seen = self.params_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.extend(form_urlencoded::parse(query.as_bytes()).map(|(k, _)| k.into_owned()));
    }

    fn remember_body(&self, endpoint: &str, body: &[u8]) {
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(fields) = json.as_object() {
                let mut seen = self.params_seen.lock().unwrap_or_else(|e| e.into_inner());
                seen.extend(fields.keys().cloned());
            }
            let mut bodies = self.last_bodies.lock().unwrap_or_else(|e| e.into_inner());
            bodies.insert(endpoint.to_string(), json);
        }
    }

    /// `org.events` indices by (processing time, id).
    fn processing_order(&self, org: &Arc<Org>) -> Arc<Vec<usize>> {
        let mut cached = self
            .processing_order
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((of, order)) = cached.as_ref()
            && Arc::ptr_eq(of, org)
        {
            return order.clone();
        }
        let mut order: Vec<usize> = (0..org.events.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&org.events[a], &org.events[b]);
            (a.processed_at, &a.id).cmp(&(b.processed_at, &b.id))
        });
        let order = Arc::new(order);
        *cached = Some((org.clone(), order.clone()));
        order
    }

    fn count_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::SeqCst);
    }

    fn count(&self, endpoint: &str) -> u64 {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry(endpoint.to_string()).or_default() += 1;
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }
}
