//! An emulator of the Atlassian Admin API on 127.0.0.1: the same paths, JSON
//! shapes, paging styles, page-size limits and error bodies as the real API,
//! serving a generated organization. Used by `--demo`, the tests and the
//! benchmarks, and as `orgsql emulator` by anyone else.

mod history;
mod identities;
mod limits;
mod live;
mod org;
mod routes;
mod scim;
mod writes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub use identities::{AuthPolicy, Credential, Identities, OauthClient, ServiceAccount};
pub use limits::{RateLimits, ResetPrecision};
pub use live::{ALERTING_ACTIONS, Doer, appendable_actions};
pub use org::{
    ApiToken, DEMO_NOW, Directory, Domain, Event, EventAction, Group, GroupRole, Location, Org,
    OrgApiKey, OrgSpec, Policy, ProductAccess, RoleTenure, ScimDirectory, ScimGroup, ScimUser,
    User, UserRole, WRITER_KEY_LABEL, Workspace,
};
pub use routes::endpoints;

use crate::api::{ApiKey, ClientConfig};

/// An organization's SCIM tokens, by directory id, as a client takes them.
fn scim_tokens(org: &Org) -> Vec<(String, ApiKey)> {
    org.scim
        .iter()
        .map(|d| {
            (
                org.directories[d.directory].id.clone(),
                ApiKey::new(d.token.clone()),
            )
        })
        .collect()
}

impl Org {
    /// The organization `spec` describes (org.rs), its audit log holding
    /// the history of who may do what (history.rs) written over it, and its
    /// identity providers' SCIM directories (scim.rs). Here, where all are
    /// known: history.rs and scim.rs build on org.rs, never the reverse.
    pub fn generate(spec: &OrgSpec) -> Org {
        let mut org = Org::generate_with(spec, history::history);
        // Service accounts, OAuth clients, authentication policies.
        let people: Vec<(&str, &str)> = org
            .users
            .iter()
            .map(|u| (u.claim_status, u.status))
            .collect();
        org.identities = identities::identities(spec.seed, spec.now, &people);
        scim::provision(spec, &mut org);
        org
    }
}

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
    /// Leave the user at this position of every users/search listing out
    /// of the page that holds it, silently: the cursor chain and
    /// users/count stay true (an API that loses a row).
    pub drop_user: Option<usize>,
    /// SCIM listings count one more user or group (`totalResults`) than
    /// their pages hold: a listing that ends short.
    pub scim_short: bool,
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
    /// The first organization's key; `emulator-key-<seed>` when `None`.
    pub api_key: Option<String>,
    /// How many organizations it serves (0 counts as 1), each with its own
    /// key (`emulator-key-<seed>-org<n>` for the n-th after the first) and
    /// budgets; some of the first's people are outside accounts in the others.
    pub orgs: usize,
    /// How the API Access API (tokens, keys) takes keys.
    pub access: AccessRules,
    /// Days of audit log the API keeps, as the real one keeps 180 on most
    /// plans: `/events` and `/events-stream` leave out events older than
    /// this before the organization's "now". `None`: every event is kept
    /// (the demo's log reaches back to 2022).
    pub retention_days: Option<u32>,
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
    /// The organizations served, the first first.
    tenants: Vec<Tenant>,
    base_url: String,
    config: EmulatorConfig,
    counter: AtomicU64,
    /// Answers given, each with its own request id (unrouted ones too).
    answered: AtomicU64,
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
    /// Requests refused for being over budget.
    throttled: AtomicU64,
    /// Tests' gates (`Emulator::hold_after`), while the test holds them.
    gates: Mutex<Vec<std::sync::Weak<GateState>>>,
    /// Routes answered with an error (`Emulator::fail`): "METHOD template"
    /// suffix and status.
    failing: Mutex<Vec<(String, u16)>>,
}

/// Requests to an endpoint held back after the first few, until the test
/// opens the gate: a run that cannot end (or go on) before the test has
/// seen what it waits for, with no sleep and no luck. Dropped, it lets
/// every request go, so a failed test leaves none hanging.
#[derive(Debug, Clone)]
pub struct Gate(Arc<GateState>);

#[derive(Debug)]
struct GateState {
    /// Which requests: "METHOD template" ends with it.
    suffix: String,
    /// How many go through before it holds.
    after: u64,
    passed: AtomicU64,
    open: tokio::sync::watch::Sender<bool>,
    /// Requests held so far.
    held: tokio::sync::watch::Sender<u64>,
}

impl Gate {
    /// Let every held request go, and every later one.
    pub fn open(&self) {
        self.0.open.send_replace(true);
    }

    /// Wait until a request is being held.
    pub async fn held(&self) {
        self.holding(1).await;
    }

    /// Wait until `n` requests are being held at once.
    pub async fn holding(&self, n: u64) {
        let mut held = self.0.held.subscribe();
        let _ = held.wait_for(|held| *held >= n).await;
    }
}

impl GateState {
    /// A request to `route`: `None` to let it through, else what it waits on
    /// (until it says open, or the gate is gone).
    fn holds(&self, route: &str) -> Option<tokio::sync::watch::Receiver<bool>> {
        if !route.ends_with(&self.suffix) || self.passed.fetch_add(1, Ordering::SeqCst) < self.after
        {
            return None;
        }
        let open = self.open.subscribe();
        if *open.borrow() {
            return None;
        }
        self.held.send_modify(|n| *n += 1);
        Some(open)
    }
}

/// One organization served, with its key and its own rate budgets.
pub(crate) struct Tenant {
    /// `Emulator::change` swaps in a changed copy.
    org: Mutex<Arc<Org>>,
    api_key: String,
    budgets: Option<limits::Budgets>,
    /// Its events in processing order (indices), worked out once per
    /// version of the org.
    processing_order: Mutex<Option<ProcessingOrder>>,
}

impl Tenant {
    fn new(org: Org, api_key: String, limits: Option<RateLimits>) -> Self {
        Self {
            org: Mutex::new(Arc::new(org)),
            api_key,
            budgets: limits.map(limits::Budgets::new),
            processing_order: Mutex::new(None),
        }
    }

    pub(crate) fn org(&self) -> Arc<Org> {
        self.org
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Change the org: `edit` works on a copy of it as it is now, swapped
    /// in only when it succeeds. Holds the lock meanwhile, so two changes
    /// never work from the same version and lose one.
    pub(crate) fn edit<T, E>(&self, edit: impl FnOnce(&mut Org) -> Result<T, E>) -> Result<T, E> {
        let mut current = self
            .org
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut org = Org::clone(&current);
        let out = edit(&mut org)?;
        *current = Arc::new(org);
        Ok(out)
    }

    pub(crate) fn budgets(&self) -> Option<&limits::Budgets> {
        self.budgets.as_ref()
    }

    /// `org.events` indices by (processing time, id).
    pub(crate) fn processing_order(&self, org: &Arc<Org>) -> Arc<Vec<usize>> {
        let mut cached = self
            .processing_order
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        let first = Org::generate(&config.org);
        let seed = config.org.seed;
        let mut tenants = Vec::new();
        for number in 1..config.orgs.max(1) {
            let org =
                Org::generate(&config.org.sibling(number)).into_sibling_of(&first, number, 10);
            let key = format!("emulator-key-{seed}-org{}", number + 1);
            tenants.push(Tenant::new(org, key, config.limits));
        }
        let key = config
            .api_key
            .clone()
            .unwrap_or_else(|| format!("emulator-key-{seed}"));
        tenants.insert(0, Tenant::new(first, key, config.limits));
        let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            tenants,
            base_url: format!("http://{addr}"),
            counter: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            requests: Mutex::new(BTreeMap::new()),
            last_bodies: Mutex::new(BTreeMap::new()),
            last_queries: Mutex::new(BTreeMap::new()),
            params_seen: Mutex::new(std::collections::BTreeSet::new()),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            gates: Mutex::new(Vec::new()),
            failing: Mutex::new(Vec::new()),
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

    /// The (first) organization as it is being served now.
    pub fn org(&self) -> Arc<Org> {
        self.state.tenants[0].org()
    }

    /// Every organization served, the first first.
    pub fn orgs(&self) -> Vec<Arc<Org>> {
        self.state.tenants.iter().map(Tenant::org).collect()
    }

    /// Change the (first) organization between queries (add a user, grant
    /// a role, change a policy): requests after this see the changed org.
    pub fn change(&self, edit: impl FnOnce(&mut Org)) {
        self.change_org(0, edit);
    }

    /// Change the organization at `index` (in the order of `orgs`).
    pub fn change_org(&self, index: usize, edit: impl FnOnce(&mut Org)) {
        if let Some(tenant) = self.state.tenants.get(index) {
            let _: Result<(), std::convert::Infallible> = tenant.edit(|org| {
                edit(org);
                Ok(())
            });
        }
    }

    /// An admin acts while the emulator runs: `action` (one of
    /// `appendable_actions`) is appended to the audit log of the organization
    /// at `index`, processed now and after every event already there, so
    /// `/events-stream` serves it after any cursor handed out before. With
    /// `happened`, a late event: it happened then and is processed now.
    pub fn append_event(
        &self,
        index: usize,
        action: &str,
        happened: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Event, String> {
        self.append_event_by(index, action, happened, Doer::default())
    }

    /// `append_event`, done by `doer`'s actor (else the owner) and, for a
    /// group event, on `doer`'s group (else the next in turn).
    pub fn append_event_by(
        &self,
        index: usize,
        action: &str,
        happened: Option<chrono::DateTime<chrono::Utc>>,
        doer: Doer,
    ) -> Result<Event, String> {
        let tenant = self
            .state
            .tenants
            .get(index)
            .ok_or_else(|| format!("no organization {index}"))?;
        tenant.edit(|org| live::append(org, action, happened, doer))
    }

    /// The (first) organization's key.
    pub fn api_key(&self) -> ApiKey {
        ApiKey::new(self.state.tenants[0].api_key.clone())
    }

    /// A client configuration pointed at the (first) organization, with
    /// its SCIM directories' tokens.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new(self.base_url(), self.org().id.clone(), self.api_key());
        config.scim_tokens = scim_tokens(&self.org());
        config
    }

    /// Each SCIM directory's (id, token) of the organization at `index`.
    pub fn scim_tokens(&self, index: usize) -> Vec<(String, String)> {
        self.state
            .tenants
            .get(index)
            .map(|t| {
                let org = t.org();
                org.scim
                    .iter()
                    .map(|d| (org.directories[d.directory].id.clone(), d.token.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A client configuration for each organization, in order.
    pub fn client_configs(&self) -> Vec<ClientConfig> {
        self.state
            .tenants
            .iter()
            .map(|t| {
                let mut config = ClientConfig::new(
                    self.base_url(),
                    t.org().id.clone(),
                    ApiKey::new(t.api_key.clone()),
                );
                config.scim_tokens = scim_tokens(&t.org());
                config
            })
            .collect()
    }

    /// The `{"base_url", "org_id", "api_key"}` line `orgsql emulator`
    /// prints (the first organization's), with `orgs`, every organization's
    /// `{"org_id", "name", "api_key"}`, when it serves several.
    pub fn connection_json(&self) -> serde_json::Value {
        let first = &self.state.tenants[0];
        let mut json = serde_json::json!({
            "base_url": self.base_url(),
            "org_id": first.org().id,
            "api_key": first.api_key,
            "scim_tokens": self.scim_tokens(0).into_iter().collect::<BTreeMap<_, _>>(),
        });
        if self.state.tenants.len() > 1 {
            json["orgs"] = self
                .state
                .tenants
                .iter()
                .map(|t| {
                    let org = t.org();
                    serde_json::json!({"org_id": org.id, "name": org.name, "api_key": t.api_key})
                })
                .collect();
        }
        json
    }

    /// Requests served so far whose "METHOD template" ends with `suffix`
    /// (e.g. "/events"); every request when `suffix` is empty.
    pub fn requests(&self, suffix: &str) -> u64 {
        let requests = self
            .state
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        requests
            .iter()
            .filter(|(k, _)| k.ends_with(suffix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every endpoint requested so far, "METHOD template" (as `endpoints`
    /// lists them), and how many times: what a client sent, reads and
    /// writes, to the route.
    pub fn routes_requested(&self) -> BTreeMap<String, u64> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The last JSON body sent to an endpoint whose "METHOD template" ends with `suffix`.
    pub fn last_body(&self, suffix: &str) -> Option<serde_json::Value> {
        let bodies = self
            .state
            .last_bodies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        queries
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| v.clone())
    }

    /// After `after` requests to `endpoint` ("METHOD template") of the
    /// first organization, allow only `per_minute` from the next budget
    /// period on (with rate limits on).
    pub fn lower_limit_after(&self, endpoint: &'static str, after: u64, per_minute: u32) {
        if let Some(budgets) = self.state.tenants[0].budgets() {
            budgets.lower_after(endpoint, after, per_minute);
        }
    }

    /// Hold the requests whose "METHOD template" ends with `suffix`, after
    /// the first `after` of them, until the gate returned is opened. A held
    /// request is counted by `requests` already.
    pub fn hold_after(&self, suffix: &str, after: u64) -> Gate {
        let gate = Gate(Arc::new(GateState {
            suffix: suffix.to_string(),
            after,
            passed: AtomicU64::new(0),
            open: tokio::sync::watch::Sender::new(false),
            held: tokio::sync::watch::Sender::new(0),
        }));
        let mut gates = self
            .state
            .gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        gates.push(Arc::downgrade(&gate.0));
        gate
    }

    /// Answer every request whose "METHOD template" ends with `suffix` with
    /// `status` (an API that is down), until `fail(suffix, None)`.
    pub fn fail(&self, suffix: &str, status: Option<u16>) {
        let mut failing = self
            .state
            .failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failing.retain(|(s, _)| s != suffix);
        if let Some(status) = status {
            failing.push((suffix.to_string(), status));
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn reset_requests(&self) {
        self.state
            .params_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.state
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    pub(crate) fn tenants(&self) -> &[Tenant] {
        &self.tenants
    }

    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    fn remember_query(&self, endpoint: &str, query: &str) {
        let mut queries = self
            .last_queries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        queries.insert(endpoint.to_string(), query.to_string());
        let mut seen = self
            .params_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.extend(form_urlencoded::parse(query.as_bytes()).map(|(k, _)| k.into_owned()));
    }

    fn remember_body(&self, endpoint: &str, body: &[u8]) {
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
            if let Some(fields) = json.as_object() {
                let mut seen = self
                    .params_seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                seen.extend(fields.keys().cloned());
            }
            let mut bodies = self
                .last_bodies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            bodies.insert(endpoint.to_string(), json);
        }
    }

    /// The next answer's (trace id, request id), each unique among this
    /// emulator's answers: 16 hex digits and a UUID, as Atlassian's look.
    fn request_ids(&self) -> (String, String) {
        let n = self.answered.fetch_add(1, Ordering::SeqCst) + 1;
        (
            format!("{n:016x}"),
            format!("00000000-0000-4000-8000-{n:012x}"),
        )
    }

    fn count_throttled(&self) {
        self.throttled.fetch_add(1, Ordering::SeqCst);
    }

    /// The status `Emulator::fail` set for `route`, if any.
    fn failing(&self, route: &str) -> Option<u16> {
        self.failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|(suffix, _)| route.ends_with(suffix.as_str()))
            .map(|(_, status)| *status)
    }

    /// Wait at every gate that holds requests to `route`.
    async fn pass_gates(&self, route: &str) {
        let held: Vec<_> = self
            .gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .filter_map(|gate| gate.holds(route))
            .collect();
        // Not holding the gates meanwhile: a test that drops its gate
        // (a failed one) lets the requests go.
        for mut open in held {
            let _ = open.wait_for(|open| *open).await;
        }
    }

    fn count(&self, endpoint: &str) -> u64 {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry(endpoint.to_string()).or_default() += 1;
        self.counter.fetch_add(1, Ordering::SeqCst) + 1
    }
}
