//! One HTTP client for the Admin API: builds URLs, authenticates, retries,
//! and streams the pages of a listing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::cache::PageCache;
use super::listings::{ListingLog, ListingRecord};
use super::log::{RequestLog, RequestRecord};
use super::pacer::{Pacer, Wait};
use super::paging::{Envelope, PageItems, next_cursor};
use super::retry::{RetryPolicy, is_retryable};
use super::{ApiError, ApiKey, api_message};

mod write;
pub use write::{REVOCABLE_ROLES, WRITES, Written};

/// The only POSTs the client may send: searches that read.
const READ_ONLY_POSTS: [&str; 4] = [
    "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/search",
    "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/search",
    "/admin/v2/orgs/{orgId}/workspaces",
    // A bulk read: which authentication policy governs each user named.
    "/admin/control/v1/orgs/{orgId}/users/auth-policies/bulk-fetch",
];

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Without the `/admin` part, e.g. `https://api.atlassian.com`.
    pub base_url: String,
    pub org_id: String,
    pub api_key: ApiKey,
    /// A second key, with scopes, for the APIs that need one (the API
    /// Access API); the main key serves the rest.
    pub scoped_api_key: Option<ApiKey>,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// Requests a fan-out table (one call per user or group) keeps in flight.
    pub concurrency: usize,
    /// How long a fetched page is reused; `None` turns the cache off.
    pub cache_ttl: Option<Duration>,
    /// The largest answer read; a larger one is refused as it arrives.
    pub max_page_bytes: usize,
    /// The connection's name in the config file, if it came from there.
    pub name: Option<String>,
    /// Each SCIM directory's own token (directory id, token): the SCIM API
    /// takes no organization key.
    pub scim_tokens: Vec<(String, ApiKey)>,
    /// The organization's "now" when it is not the wall clock: the demo's
    /// fixed instant. Sessions over it answer `now()` with it, and exports
    /// record it as their data's as-of time.
    pub clock: Option<chrono::DateTime<chrono::Utc>>,
    /// Send the keys over plain http to a host that is not this machine
    /// (`--allow-insecure-http`); else only https, or http to loopback.
    pub allow_insecure_http: bool,
}

/// Fan-out requests in flight by default: quick on a large org while staying
/// far below the rates at which the Admin API starts answering 429.
pub const DEFAULT_CONCURRENCY: u16 = 8;
/// Pages are reused for five minutes by default.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(300);

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, org_id: impl Into<String>, api_key: ApiKey) -> Self {
        Self {
            base_url: base_url.into(),
            org_id: org_id.into(),
            api_key,
            scoped_api_key: None,
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(60),
            concurrency: usize::from(DEFAULT_CONCURRENCY),
            cache_ttl: Some(DEFAULT_CACHE_TTL),
            max_page_bytes: MAX_PAGE_BYTES,
            name: None,
            scim_tokens: Vec::new(),
            clock: None,
            allow_insecure_http: false,
        }
    }
}

/// The base URL the keys may be sent to: https, or http to this machine
/// (or anywhere with `allow_insecure_http`), and with no user name or
/// password in it (orgsql authenticates with the key, and a URL's
/// credentials would end up in reports and logs).
fn keyed_base_url(text: &str, allow_insecure_http: bool) -> Result<Url, ApiError> {
    let refused = |problem: String| ApiError::BaseUrl {
        url: shown_url(text),
        of: String::new(),
        problem,
    };
    let url = Url::parse(text.trim_end_matches('/'))
        .map_err(|e| refused(format!("it is not a URL ({e})")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused(
            "it holds a user name or password (not shown). orgsql sends its key in the \
             Authorization header, so they serve nothing, and a URL's credentials end up in \
             reports and logs: remove them (a proxy's own go in HTTPS_PROXY)"
                .to_string(),
        ));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(url),
        "http" => Err(refused(
            "the key would travel unencrypted. orgsql sends it only over https, or over http \
             to this machine (127.0.0.0/8, ::1, localhost); to send it over http anyway (a test \
             server on your network), add --allow-insecure-http"
                .to_string(),
        )),
        other => Err(refused(format!(
            "orgsql speaks https (or http to this machine), not {}",
            crate::text::visible(other)
        ))),
    }
}

/// A host on this machine: 127.0.0.0/8, ::1 or localhost.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A URL as it may be shown or recorded: without user name, password, query
/// or fragment. What is not a URL could hold anything, so it is not shown.
pub fn shown_url(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "(not a URL, not shown)".to_string(),
    }
}

/// Where the cursor of the next page goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorIn {
    /// `?cursor=`, with the other query parameters sent again (events lose
    /// their filters otherwise).
    Query,
    /// The POST body's `cursor`; `keep_filters: false` when the endpoint wants
    /// the cursor alone (workspaces).
    Body { keep_filters: bool },
    /// SCIM 2.0 (RFC 7644 3.4.2.4): `?startIndex=` (1-based) with `count`,
    /// the answer a ListResponse (`totalResults`, `startIndex`,
    /// `Resources`); the listing ends when it holds `totalResults` items,
    /// and fails when a page comes back empty before that. The directory's
    /// own SCIM token goes with it.
    StartIndex,
}

/// One listing call: an endpoint template and what to send with every page.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub method: Method,
    /// Path template as in the spec, e.g. `/admin/v1/orgs/{orgId}/events`.
    pub template: &'static str,
    /// Values for placeholders other than `{orgId}`.
    pub path_params: Vec<(&'static str, String)>,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
    pub cursor_in: CursorIn,
    /// The table whose scan sends it, for `orgsql_requests`.
    pub table: &'static str,
    /// A polling listing (`/events-stream`) hands out a next cursor on every
    /// page, the last one too: an empty page ends it. (A short page does not:
    /// the API may answer fewer items than asked for before the end.)
    pub polling: bool,
    /// The answer is the data itself, one page with no envelope (the user
    /// management API's lists).
    pub bare: bool,
    /// The scope it needs of a scoped key (the API Access API): sent with
    /// the scoped key when one is given, named in a 401/403's hint.
    pub scope: Option<&'static str>,
    /// How the API counts what this call lists, to check the listing is whole.
    pub count: CountBy,
}

/// Whether the API can count what a listing lists, for the same filters.
#[derive(Debug, Clone, Default)]
pub enum CountBy {
    /// The API has no count for this listing.
    #[default]
    None,
    /// It has one, but not for this call; why.
    Not(String),
    /// This GET counts exactly what the listing lists: `{"count": n}`.
    By(Box<PageRequest>),
}

/// Fields of a search's body that are no filter: how to page and what to show.
const NOT_FILTERS: [&str; 4] = ["limit", "cursor", "expand", "sortBy"];

impl PageRequest {
    pub fn get(template: &'static str) -> Self {
        Self {
            method: Method::GET,
            template,
            path_params: Vec::new(),
            query: Vec::new(),
            body: None,
            cursor_in: CursorIn::Query,
            table: "",
            polling: false,
            bare: false,
            scope: None,
            count: CountBy::None,
        }
    }

    pub fn post(template: &'static str, body: Value, cursor_in: CursorIn) -> Self {
        Self {
            method: Method::POST,
            template,
            path_params: Vec::new(),
            query: Vec::new(),
            body: Some(body),
            cursor_in,
            table: "",
            polling: false,
            bare: false,
            scope: None,
            count: CountBy::None,
        }
    }

    pub fn path_param(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.path_params.push((name, value.into()));
        self
    }

    /// An answer without an envelope (see `bare`).
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    /// Needs a key with this scope (see `scope`).
    pub fn scoped(mut self, scope: &'static str) -> Self {
        self.scope = Some(scope);
        self
    }

    /// Counted by the GET `template`, which takes the filters `params` as
    /// query parameters: this call's body fields (or query) said to it,
    /// arrays as repeated parameters. A filter it does not take leaves the
    /// call uncounted, saying so.
    pub fn counted_by(mut self, template: &'static str, params: &[&str]) -> Self {
        let mut count = PageRequest::get(template);
        count.path_params = self.path_params.clone();
        let mut fields: Vec<(String, Value)> = self
            .query
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        if let Some(Value::Object(body)) = &self.body {
            fields.extend(body.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for (name, value) in fields {
            if NOT_FILTERS.contains(&name.as_str()) {
                continue;
            }
            if !params.contains(&name.as_str()) {
                self.count = CountBy::Not(format!("{template} takes no {name}"));
                return self;
            }
            let values = match value {
                Value::Array(items) => items,
                other => vec![other],
            };
            for value in values {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                count.query.push((name.clone(), text));
            }
        }
        self.count = CountBy::By(Box::new(count));
        self
    }

    /// Not counted, and why (a count endpoint exists).
    pub fn uncounted(mut self, why: impl Into<String>) -> Self {
        self.count = CountBy::Not(why.into());
        self
    }

    /// A polling listing (see `polling`).
    pub fn polling(mut self) -> Self {
        self.polling = true;
        self
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_string(), value.into()));
        self
    }

    /// `GET /admin/v1/orgs/{orgId}/events`: how errors and logs name it.
    pub fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.template)
    }

    /// What it sends besides the path and the paging cursor: its query
    /// string and, for a POST, its body. (Never a key: keys go in headers.)
    pub fn parameters(&self) -> String {
        let mut text = self.query_string(None);
        if let Some(body) = &self.body {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&body.to_string());
        }
        text
    }

    /// Its query string, percent-encoded, with `cursor` when the cursor
    /// goes in the query.
    fn query_string(&self, cursor: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.query {
            query.append_pair(name, value);
        }
        match (self.cursor_in, cursor) {
            (CursorIn::Query, Some(cursor)) => {
                query.append_pair("cursor", cursor);
            }
            (CursorIn::StartIndex, Some(start)) => {
                query.append_pair("startIndex", start);
            }
            _ => {}
        }
        query.finish()
    }

    /// The `{directoryId}` it names, if any.
    pub fn directory(&self) -> Option<&str> {
        self.path_params
            .iter()
            .find(|(name, _)| *name == "directoryId")
            .map(|(_, v)| v.as_str())
    }

    /// The endpoint and its parameters, as EXPLAIN shows a call.
    pub fn described(&self) -> String {
        match self.parameters() {
            p if p.is_empty() => self.endpoint(),
            p if self.body.is_some() && self.query.is_empty() => format!("{} {p}", self.endpoint()),
            p => format!("{}?{p}", self.endpoint()),
        }
    }
}

/// One page of a listing.
/// How a table's converted pages are kept with the cached pages: under
/// the table's name, copied out (cheaply: a record batch shares its
/// buffers) and counted by their size.
pub struct Keep<B> {
    pub table: &'static str,
    pub copy: fn(&B) -> B,
    pub size: fn(&B) -> usize,
}

/// A page converted, with what the listing needs of it.
struct Converted<B> {
    data: B,
    items: u64,
    next: Option<String>,
}

pub struct Page<T> {
    pub data: T,
    /// The answer as it came, for decoding it again another way.
    pub body: Bytes,
    /// The next page's cursor; `None` on the last page.
    pub next: Option<String>,
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: Url,
    org_id: String,
    /// How errors name the organization: its connection's name and id.
    org_label: String,
    auth: HeaderValue,
    scoped_auth: Option<HeaderValue>,
    /// SCIM tokens by directory id.
    scim_auth: std::collections::BTreeMap<String, HeaderValue>,
    retry: RetryPolicy,
    /// What the clients of one session share: one log, one list of notices.
    shared: Arc<Shared>,
    concurrency: usize,
    cache: PageCache,
    /// Each organization has its own budgets.
    pacer: Pacer,
    max_page_bytes: usize,
    clock: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("org_id", &self.inner.org_id)
            .finish_non_exhaustive()
    }
}

/// What the clients of one session share.
#[derive(Debug, Default)]
struct Shared {
    log: RequestLog,
    listings: ListingLog,
    notices: std::sync::Mutex<Vec<String>>,
    /// The session reads several organizations: notices name theirs.
    several: std::sync::atomic::AtomicBool,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        Self::with_shared(config, Arc::default())
    }

    /// A client for another organization in the same session: its own
    /// budgets and cache, this one's request log and notices.
    pub fn sibling(&self, config: ClientConfig) -> Result<Self, ApiError> {
        self.inner
            .shared
            .several
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Self::with_shared(config, self.inner.shared.clone())
    }

    fn with_shared(config: ClientConfig, shared: Arc<Shared>) -> Result<Self, ApiError> {
        let endpoint = || "configuration".to_string();
        let base_url =
            keyed_base_url(&config.base_url, config.allow_insecure_http).map_err(|mut e| {
                if let (ApiError::BaseUrl { of, .. }, Some(name)) = (&mut e, &config.name) {
                    *of = format!(" (connection {})", crate::text::visible(name));
                }
                e
            })?;
        let header = |key: &ApiKey| {
            let mut auth =
                HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                    ApiError::Transport {
                        endpoint: endpoint(),
                        detail: "an API key holds characters that cannot go in an HTTP header"
                            .to_string(),
                    }
                })?;
            auth.set_sensitive(true);
            Ok::<_, ApiError>(auth)
        };
        let auth = header(&config.api_key)?;
        let scoped_auth = config.scoped_api_key.as_ref().map(header).transpose()?;
        let scim_auth = config
            .scim_tokens
            .iter()
            .map(|(directory, token)| Ok((directory.clone(), header(token)?)))
            .collect::<Result<_, ApiError>>()?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("orgsql/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Transport {
                endpoint: endpoint(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base_url,
                org_label: match &config.name {
                    Some(name) => format!("{name} ({})", config.org_id),
                    None => config.org_id.clone(),
                },
                org_id: config.org_id,
                auth,
                scoped_auth,
                scim_auth,
                retry: config.retry,
                shared,
                concurrency: config.concurrency.max(1),
                cache: PageCache::new(config.cache_ttl),
                pacer: Pacer::default(),
                max_page_bytes: config.max_page_bytes,
                clock: config.clock,
            }),
        })
    }

    pub fn org_id(&self) -> &str {
        &self.inner.org_id
    }

    /// The Admin API's base URL, for reports.
    pub fn base_url(&self) -> &str {
        self.inner.base_url.as_str()
    }

    /// The organization's fixed "now", if it has one (`ClientConfig::clock`).
    pub fn clock(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.inner.clock
    }

    /// Requests a fan-out scan keeps in flight.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// Every request the session has sent so far (for every organization),
    /// retries included; cache hits are not requests.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.inner.shared.log.since(0)
    }

    /// The requests sent after the first `start` (a count from `request_count`).
    pub fn requests_since(&self, start: usize) -> Vec<RequestRecord> {
        self.inner.shared.log.since(start)
    }

    /// How many requests the session has sent.
    pub fn request_count(&self) -> usize {
        self.inner.shared.log.len()
    }

    /// Every listing the session has read (for every organization).
    pub fn listings(&self) -> Vec<ListingRecord> {
        self.inner.shared.listings.since(0)
    }

    /// The listings begun after the first `start` (a count from `listing_count`).
    pub fn listings_since(&self, start: usize) -> Vec<ListingRecord> {
        self.inner.shared.listings.since(start)
    }

    /// How many listings the session has begun.
    pub fn listing_count(&self) -> usize {
        self.inner.shared.listings.len()
    }

    /// The SCIM directories this client has a token for, by id.
    pub fn scim_directories(&self) -> Vec<String> {
        self.inner.scim_auth.keys().cloned().collect()
    }

    /// The key a request goes with: a SCIM directory's token for a SCIM
    /// call (`send` has refused one without), the scoped one where its API
    /// needs a scope and one was given, else the main key.
    fn auth_for(&self, request: &PageRequest) -> &HeaderValue {
        if request.cursor_in == CursorIn::StartIndex
            && let Some(token) = request
                .directory()
                .and_then(|directory| self.inner.scim_auth.get(directory))
        {
            return token;
        }
        match (&self.inner.scoped_auth, request.scope) {
            (Some(scoped), Some(_)) => scoped,
            _ => &self.inner.auth,
        }
    }

    /// Something the user should hear of, said once (e.g. a table read
    /// another way than usual).
    pub fn notice(&self, text: impl Into<String>) {
        let mut text = text.into();
        if self
            .inner
            .shared
            .several
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            text = format!("org {}: {text}", self.inner.org_label);
        }
        let mut notices = self
            .inner
            .shared
            .notices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !notices.contains(&text) {
            notices.push(text);
        }
    }

    /// The notices not taken yet.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(
            &mut *self
                .inner
                .shared
                .notices
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The longest wait for a rate budget going on now, if it is long enough
    /// to tell the user about.
    pub fn longest_wait(&self) -> Option<Wait> {
        self.inner.pacer.longest_wait()
    }

    /// Forget cached pages, of one table or all: the next scans fetch afresh.
    pub fn clear_cache(&self, table: Option<&str>) {
        self.inner.cache.clear(table);
    }

    /// Every page of a listing, fetched one at a time as the stream is polled.
    /// Each item is the page's `data`. A cursor seen twice ends the stream with an error.
    /// The listing is recorded (`listings`); when the API counts what it
    /// lists, the count is asked before the first page and after the last,
    /// and a count that held still but differs from the rows ends the stream
    /// with `ApiError::Incomplete`.
    pub fn pages<T>(&self, request: PageRequest) -> BoxStream<'static, Result<T, ApiError>>
    where
        T: DeserializeOwned + PageItems + Send + Sync + 'static,
    {
        self.pages_as(request, Ok, None)
    }

    /// `pages`, each page's data turned into `B` by `convert`; with a
    /// `Keep`, what a page turned into is kept with the page in the session
    /// cache and given again, not decoded again, while the page is held.
    pub fn pages_as<T, B, F>(
        &self,
        request: PageRequest,
        convert: F,
        keep: Option<Keep<B>>,
    ) -> BoxStream<'static, Result<B, ApiError>>
    where
        T: DeserializeOwned + PageItems + Send + 'static,
        B: Send + Sync + 'static,
        F: Fn(T) -> Result<B, String> + Send + Sync + 'static,
    {
        struct State<F, B> {
            convert: F,
            keep: Option<Keep<B>>,
            client: Client,
            request: PageRequest,
            cursor: Option<String>,
            seen: HashSet<String>,
            done: bool,
            /// Its record in the listing log.
            listing: usize,
            /// The first page's cache key: the call, for remembered counts.
            call: String,
            counts: (Option<u64>, Option<u64>),
            rows: u64,
            /// The first page was asked for.
            started: bool,
            /// Some page came from the API; some from the session cache.
            fetched: bool,
            cached: bool,
        }
        let (count_endpoint, count_note) = match &request.count {
            CountBy::None => (None, None),
            CountBy::Not(why) => (None, Some(why.clone())),
            CountBy::By(count) => (Some(count.endpoint()), None),
        };
        let listing = self.inner.shared.listings.push(ListingRecord {
            org_id: self.inner.org_id.clone(),
            table_name: request.table,
            endpoint: request.endpoint(),
            parameters: request.parameters(),
            started_at: chrono::Utc::now(),
            pages: 0,
            items: 0,
            requests: 0,
            retries: 0,
            cached_pages: 0,
            read_to_end: false,
            count_endpoint,
            count_before: None,
            count_after: None,
            count_note,
        });
        let state = State {
            convert,
            keep,
            client: self.clone(),
            call: self.cache_key(&request, None).unwrap_or_default(),
            request,
            cursor: None,
            seen: HashSet::new(),
            done: false,
            listing,
            counts: (None, None),
            rows: 0,
            started: false,
            fetched: false,
            cached: false,
        };
        stream::try_unfold(state, |mut state| async move {
            if state.done {
                return Ok(None);
            }
            let first = !std::mem::replace(&mut state.started, true);
            if first && matches!(state.request.count, CountBy::By(_)) {
                // A call whose first page the session cache holds was counted
                // when that page was fetched.
                let cached = state.client.inner.cache.holds(&state.call);
                let remembered = cached
                    .then(|| state.client.inner.shared.listings.remembered(&state.call))
                    .flatten();
                state.counts.0 = match remembered {
                    Some((before, _)) => before,
                    None => {
                        state
                            .client
                            .listing_count_now(&state.request, state.listing)
                            .await
                    }
                };
                let before = state.counts.0;
                state
                    .client
                    .inner
                    .shared
                    .listings
                    .update(state.listing, |r| r.count_before = before);
            }
            let (page, attempts) = state
                .client
                .converted_page::<T, B, F>(
                    &state.request,
                    state.cursor.as_deref(),
                    &state.convert,
                    state.keep.as_ref(),
                )
                .await
                .map_err(|e| state.client.placed(e))?;
            let items = page.items;
            state.rows += items;
            state.fetched |= attempts.is_some();
            state.cached |= attempts.is_none();
            state
                .client
                .inner
                .shared
                .listings
                .update(state.listing, |r| {
                    r.pages += 1;
                    r.items += items;
                    match attempts {
                        Some(attempts) => {
                            r.requests += u64::from(attempts);
                            r.retries += u64::from(attempts.saturating_sub(1));
                        }
                        None => r.cached_pages += 1,
                    }
                });
            let drained = state.request.polling && items == 0;
            match page.next {
                Some(_) if drained => state.done = true,
                Some(next) => {
                    if !state.seen.insert(next.clone()) {
                        return Err(state.client.placed(ApiError::RepeatedCursor {
                            endpoint: state.request.endpoint(),
                        }));
                    }
                    state.cursor = Some(next);
                }
                None => state.done = true,
            }
            if state.done {
                state
                    .client
                    .listing_ended(
                        &mut state.counts,
                        &state.request,
                        state.listing,
                        &state.call,
                        (state.fetched, state.cached),
                    )
                    .await;
                if let (Some(before), Some(after)) = state.counts
                    && before == after
                    && before != state.rows
                    && let CountBy::By(count) = &state.request.count
                {
                    return Err(state.client.placed(ApiError::Incomplete {
                        table: state.request.table.to_string(),
                        endpoint: state.request.endpoint(),
                        count_endpoint: count.endpoint(),
                        counted: before,
                        listed: state.rows,
                    }));
                }
            }
            Ok(Some((page.data, state)))
        })
        .boxed()
    }

    /// A listing read its last page: recorded, and, when the API counts it,
    /// the count after it (the one remembered, when the session cache served
    /// every page) in `counts`, remembered for the call. `(fetched, cached)`:
    /// whether some pages came from the API, and some from the cache.
    async fn listing_ended(
        &self,
        counts: &mut (Option<u64>, Option<u64>),
        request: &PageRequest,
        listing: usize,
        call: &str,
        (fetched, cached): (bool, bool),
    ) {
        let listings = &self.inner.shared.listings;
        if fetched && cached && counts.0.is_some() {
            // Some pages are of an earlier read (the cache's), some of now:
            // no one count is of what they hold together.
            counts.1 = None;
            listings.update(listing, |r| {
                r.count_note = Some(
                    "read partly from the session cache, partly from the API: no count \
                     judges it"
                        .to_string(),
                );
            });
        } else if matches!(request.count, CountBy::By(_)) && counts.0.is_some() {
            let remembered = (!fetched)
                .then(|| listings.remembered(call).and_then(|(_, after)| after))
                .flatten();
            counts.1 = match remembered {
                Some(after) => Some(after),
                None => self.listing_count_now(request, listing).await,
            };
            listings.remember(call, *counts);
        }
        let after = counts.1;
        listings.update(listing, |r| {
            r.read_to_end = true;
            r.count_after = after;
        });
    }

    /// The API's count for a listing, asked now (never from the cache),
    /// within the same budgets and retries as its pages. A count the API
    /// will not give leaves the listing uncounted, its record saying why.
    async fn listing_count_now(&self, request: &PageRequest, listing: usize) -> Option<u64> {
        let CountBy::By(count) = &request.count else {
            return None;
        };
        let mut count = (**count).clone();
        count.table = request.table;
        let listings = &self.inner.shared.listings;
        let answer = match self.url(&count) {
            Ok(url) => self.fetch(&count, url, None).await,
            Err(e) => Err(e),
        };
        let (body, attempts) = match answer {
            Ok((body, _, attempts)) => (body, attempts),
            Err(e) => {
                let note = format!("the count was not given: {e}");
                listings.update(listing, |r| r.count_note = Some(note));
                return None;
            }
        };
        listings.update(listing, |r| {
            r.requests += u64::from(attempts);
            r.retries += u64::from(attempts.saturating_sub(1));
        });
        let value = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("count").and_then(Value::as_u64));
        if value.is_none() {
            let note = format!(
                "{} answered no count: {}",
                count.endpoint(),
                first_bytes(&body)
            );
            listings.update(listing, |r| r.count_note = Some(note));
        }
        value
    }

    /// An error, naming the organization when the session reads several.
    fn placed(&self, mut error: ApiError) -> ApiError {
        if self
            .inner
            .shared
            .several
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let place = error.place_mut();
            *place = format!("org {}: {place}", self.inner.org_label);
        }
        error
    }

    /// One page of a listing, decoded: its `data`, its raw body and the
    /// cursor of the next page.
    pub async fn page<T>(
        &self,
        request: &PageRequest,
        cursor: Option<&str>,
    ) -> Result<Page<T>, ApiError>
    where
        T: DeserializeOwned + PageItems,
    {
        self.decoded_page(request, cursor)
            .await
            .map(|(page, _)| page)
            .map_err(|e| self.placed(e))
    }

    /// A page, and the attempts it took when it was sent (`None`: the
    /// session cache held it).
    /// One page converted: from the memo kept with the cached page, or
    /// decoded (and, with `keep`, remembered). `None` attempts: no request
    /// was sent.
    async fn converted_page<T, B, F>(
        &self,
        request: &PageRequest,
        cursor: Option<&str>,
        convert: &F,
        keep: Option<&Keep<B>>,
    ) -> Result<(Converted<B>, Option<u32>), ApiError>
    where
        T: DeserializeOwned + PageItems,
        B: Send + Sync + 'static,
        F: Fn(T) -> Result<B, String>,
    {
        let key = match keep {
            Some(keep) => {
                let key = self.cache_key(request, cursor)?;
                let held = self
                    .inner
                    .cache
                    .memo(&key, keep.table)
                    .and_then(|memo| memo.downcast::<Converted<B>>().ok());
                if let Some(held) = held {
                    let page = Converted {
                        data: (keep.copy)(&held.data),
                        items: held.items,
                        next: held.next.clone(),
                    };
                    return Ok((page, None));
                }
                Some(key)
            }
            None => None,
        };
        let (page, attempts): (Page<T>, Option<u32>) = self.decoded_page(request, cursor).await?;
        let items = page.data.item_count() as u64;
        let data = convert(page.data).map_err(|detail| ApiError::Decode {
            endpoint: request.endpoint(),
            detail,
        })?;
        let page = Converted {
            data,
            items,
            next: page.next,
        };
        if let (Some(keep), Some(key)) = (keep, key) {
            let held = Converted {
                data: (keep.copy)(&page.data),
                items,
                next: page.next.clone(),
            };
            let bytes = (keep.size)(&held.data);
            self.inner
                .cache
                .remember(&key, keep.table, Arc::new(held), bytes);
        }
        Ok((page, attempts))
    }

    async fn decoded_page<T>(
        &self,
        request: &PageRequest,
        cursor: Option<&str>,
    ) -> Result<(Page<T>, Option<u32>), ApiError>
    where
        T: DeserializeOwned + PageItems,
    {
        let (body, logged) = self.send(request, cursor).await?;
        let decode_error = |detail: String| ApiError::Decode {
            endpoint: request.endpoint(),
            detail,
        };
        let not_the_page = |e: serde_json::Error| {
            decode_error(format!(
                "not the page this endpoint documents ({e}); it starts {}",
                first_bytes(&body)
            ))
        };
        if request.cursor_in == CursorIn::StartIndex {
            return self
                .scim_page(request, cursor, &body, logged)
                .map(|page| (page, logged.map(|(_, attempts)| attempts)));
        }
        let page: Envelope<T> = if request.bare {
            Envelope {
                data: serde_json::from_slice(&body).map_err(not_the_page)?,
                links: None,
                meta: None,
            }
        } else {
            serde_json::from_slice(&body).map_err(not_the_page)?
        };
        if let Some((index, _)) = logged {
            self.inner
                .shared
                .log
                .set_rows(index, page.data.item_count());
        }
        let next = next_cursor(&page).map_err(decode_error)?;
        Ok((
            Page {
                data: page.data,
                body,
                next,
            },
            logged.map(|(_, attempts)| attempts),
        ))
    }

    /// A SCIM ListResponse page: its `Resources`, and the next page's
    /// `startIndex` while the items so far are fewer than `totalResults`.
    /// A page that starts elsewhere than asked, or an empty page before
    /// `totalResults`, fails: the listing would be short.
    fn scim_page<T>(
        &self,
        request: &PageRequest,
        cursor: Option<&str>,
        body: &Bytes,
        logged: Option<(usize, u32)>,
    ) -> Result<Page<T>, ApiError>
    where
        T: DeserializeOwned + PageItems,
    {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ListResponse {
            total_results: u64,
            start_index: Option<u64>,
            #[serde(rename = "Resources")]
            resources: Option<Value>,
        }
        let endpoint = request.endpoint();
        let decode_error = |detail: String| ApiError::Decode {
            endpoint: endpoint.clone(),
            detail,
        };
        let list: ListResponse = serde_json::from_slice(body).map_err(|e| {
            decode_error(format!(
                "not a SCIM ListResponse ({e}); it starts {}",
                first_bytes(body)
            ))
        })?;
        let asked = cursor.and_then(|c| c.parse::<u64>().ok()).unwrap_or(1);
        if let Some(start) = list.start_index.filter(|s| *s != asked) {
            return Err(decode_error(format!(
                "asked for startIndex {asked}, the page starts at {start}"
            )));
        }
        let data: T = serde_json::from_value(list.resources.unwrap_or(Value::Array(Vec::new())))
            .map_err(|e| decode_error(format!("a SCIM resource is not as documented: {e}")))?;
        let items = data.item_count() as u64;
        if let Some((index, _)) = logged {
            self.inner.shared.log.set_rows(index, data.item_count());
        }
        let so_far = asked - 1 + items;
        let next = if so_far >= list.total_results {
            None
        } else if items == 0 {
            return Err(ApiError::ScimShort {
                endpoint,
                directory: request.directory().unwrap_or("-").to_string(),
                total: list.total_results,
                listed: so_far,
            });
        } else {
            Some((so_far + 1).to_string())
        };
        Ok(Page {
            data,
            body: body.clone(),
            next,
        })
    }

    /// The session cache's key of one page of a call.
    fn cache_key(&self, request: &PageRequest, cursor: Option<&str>) -> Result<String, ApiError> {
        let url = self.url(request)?;
        Ok(format!(
            "{} {url} {:?} {:?} {}",
            request.method,
            request.query,
            cursor,
            request
                .body
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default()
        ))
    }

    /// One page: from the session cache, or fetched with retries. Returns the
    /// raw body of a 2xx answer and, when a request was sent, its log index
    /// and the attempts it took.
    pub async fn send(
        &self,
        request: &PageRequest,
        cursor: Option<&str>,
    ) -> Result<(Bytes, Option<(usize, u32)>), ApiError> {
        let endpoint = request.endpoint();
        if request.method != Method::GET && !READ_ONLY_POSTS.contains(&request.template) {
            return Err(ApiError::NotReadOnly { endpoint });
        }
        if request.cursor_in == CursorIn::StartIndex {
            let directory = request.directory().unwrap_or("-");
            if !self.inner.scim_auth.contains_key(directory) {
                return Err(ApiError::NoScimToken {
                    endpoint,
                    directory: directory.to_string(),
                    configured: self.scim_directories(),
                });
            }
        }
        let url = self.url(request)?;
        let key = self.cache_key(request, cursor)?;
        let slot = self.inner.cache.slot(&key, request.table);
        let mut logged = None;
        let body = slot
            .get_or_try_init(|| async {
                let (body, index, attempts) = self.fetch(request, url, cursor).await?;
                logged = Some((index, attempts));
                Ok::<_, ApiError>(body)
            })
            .await?;
        if logged.is_some() {
            self.inner.cache.admit(&key, body.len());
        }
        Ok((body.clone(), logged))
    }

    /// Send one request when its rate budget allows, retrying what is worth
    /// retrying; every attempt is logged, with the time it waited.
    async fn fetch(
        &self,
        request: &PageRequest,
        url: Url,
        cursor: Option<&str>,
    ) -> Result<(Bytes, usize, u32), ApiError> {
        let endpoint = request.endpoint();
        let policy = &self.inner.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (waited, in_flight) = self.turn(&endpoint).await?;
            let started_at = chrono::Utc::now();
            let clock = std::time::Instant::now();
            let result = self.build(request, url.clone(), cursor).send().await;
            let log = |status: Option<u16>, bytes: Option<usize>| {
                // `-v`: one line a request. The resolved path is percent-
                // encoded; no header is logged, so never the key.
                tracing::debug!(
                    target: "orgsql::request",
                    "{} {} {} -> {}, attempt {attempt}, waited {:.0} ms, took {:.0} ms, {} bytes",
                    request.method,
                    request.template,
                    resolved(&url, request, cursor),
                    status.map_or("no answer".to_string(), |s| s.to_string()),
                    waited.as_secs_f64() * 1000.0,
                    clock.elapsed().as_secs_f64() * 1000.0,
                    bytes.map_or("-".to_string(), |b| b.to_string()),
                );
                self.record(request, started_at, clock, waited, attempt, status, bytes)
            };
            let (status, detail, delay) = match result {
                Ok(response) if response.status().is_success() => {
                    in_flight.answered(Some(response.headers()));
                    let status = response.status().as_u16();
                    let content_type = response
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let body = read_body(response, &endpoint, self.inner.max_page_bytes).await;
                    let index = log(Some(status), body.as_ref().ok().map(Bytes::len));
                    let body =
                        body.and_then(|body| the_apis_json(&endpoint, status, &content_type, body));
                    return body.map(|b| (b, index, attempt));
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let body = response.bytes().await.unwrap_or_default();
                    log(Some(status), None);
                    let message = api_message(&body);
                    if !is_retryable(status) {
                        in_flight.answered(Some(&headers));
                        return Err(ApiError::Status {
                            endpoint,
                            status,
                            message,
                            scope: request.scope,
                        });
                    }
                    let delay = policy.delay(attempt, Some(&headers), chrono::Utc::now());
                    if status == 429 {
                        if delay > policy.max_delay {
                            in_flight.throttled(Duration::ZERO);
                            return Err(ApiError::WaitTooLong {
                                endpoint,
                                wait: delay,
                                max: policy.max_delay,
                                why: format!("the API answered 429 ({message}) and asks for that"),
                            });
                        }
                        // The pacer holds the budget; the next attempt waits there.
                        in_flight.throttled(delay);
                    } else {
                        in_flight.answered(Some(&headers));
                    }
                    let delay = (status != 429).then_some(delay);
                    (status, format!("HTTP {status}: {message}"), delay)
                }
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => {
                    in_flight.answered(None);
                    log(None, None);
                    let delay = policy.delay(attempt, None, chrono::Utc::now());
                    (0, e.without_url().to_string(), Some(delay))
                }
                Err(e) => {
                    in_flight.answered(None);
                    log(None, None);
                    return Err(ApiError::Transport {
                        endpoint,
                        detail: e.without_url().to_string(),
                    });
                }
            };
            if attempt >= policy.max_attempts {
                return Err(match status {
                    0 => ApiError::Transport {
                        endpoint,
                        detail: format!("{detail} (after {attempt} attempts)"),
                    },
                    _ => ApiError::RetriesExhausted {
                        endpoint,
                        status,
                        attempts: attempt,
                        detail,
                    },
                });
            }
            if let Some(delay) = delay {
                tokio::time::sleep(delay.min(policy.max_delay)).await;
            }
        }
    }

    /// Keep one attempt in the session's request log (`orgsql_requests`);
    /// its index there.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        request: &PageRequest,
        started_at: chrono::DateTime<chrono::Utc>,
        clock: std::time::Instant,
        waited: Duration,
        attempt: u32,
        status: Option<u16>,
        bytes: Option<usize>,
    ) -> usize {
        self.inner.shared.log.push(RequestRecord {
            org_id: self.inner.org_id.clone(),
            parameters: request.parameters(),
            started_at,
            method: request.method.to_string(),
            endpoint: request.template,
            status,
            duration_ms: clock.elapsed().as_secs_f64() * 1000.0,
            wait_ms: waited.as_secs_f64() * 1000.0,
            attempt,
            rows: None,
            bytes,
            table_name: request.table,
        })
    }

    /// Wait for `endpoint`'s rate budget (at most the retry policy's
    /// longest wait): how long it waited, and the request's place in flight.
    async fn turn(
        &self,
        endpoint: &str,
    ) -> Result<(std::time::Duration, super::pacer::InFlight<'_>), ApiError> {
        let max = self.inner.retry.max_delay;
        self.inner
            .pacer
            .acquire(endpoint, max)
            .await
            .map_err(|wait| ApiError::WaitTooLong {
                endpoint: endpoint.to_string(),
                wait: wait
                    .until
                    .saturating_duration_since(std::time::Instant::now()),
                max,
                why: wait.why,
            })
    }

    fn build(
        &self,
        request: &PageRequest,
        url: Url,
        cursor: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), url)
            .header(AUTHORIZATION, self.auth_for(request).clone())
            .header(ACCEPT, "application/json")
            .query(&request.query);
        let body = match (request.cursor_in, cursor) {
            (_, None) => request.body.clone(),
            (CursorIn::Query, Some(cursor)) => {
                builder = builder.query(&[("cursor", cursor)]);
                request.body.clone()
            }
            (CursorIn::StartIndex, Some(start)) => {
                builder = builder.query(&[("startIndex", start)]);
                request.body.clone()
            }
            (
                CursorIn::Body {
                    keep_filters: false,
                },
                Some(cursor),
            ) => Some(serde_json::json!({ "cursor": cursor })),
            (CursorIn::Body { keep_filters: true }, Some(cursor)) => {
                let mut body = request
                    .body
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({}));
                if let Some(map) = body.as_object_mut() {
                    map.insert("cursor".to_string(), Value::String(cursor.to_string()));
                }
                Some(body)
            }
        };
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        builder
    }

    fn url(&self, request: &PageRequest) -> Result<Url, ApiError> {
        let mut url = self.inner.base_url.clone();
        {
            let mut segments = url.path_segments_mut().map_err(|_| ApiError::Transport {
                endpoint: request.endpoint(),
                detail: "the base URL cannot carry a path".to_string(),
            })?;
            segments.pop_if_empty();
            for part in request.template.split('/').filter(|s| !s.is_empty()) {
                let value = match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some("orgId") => self.inner.org_id.as_str(),
                    Some("directoryId") => request
                        .path_params
                        .iter()
                        .find(|(name, _)| *name == "directoryId")
                        .map_or("-", |(_, v)| v.as_str()),
                    Some(name) => request
                        .path_params
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.as_str())
                        .ok_or_else(|| ApiError::Decode {
                            endpoint: request.endpoint(),
                            detail: format!("no value for path parameter {name}"),
                        })?,
                    None => part,
                };
                segments.push(value);
            }
        }
        Ok(url)
    }
}

/// The largest page orgsql reads by default; the API's largest pages are a
/// few MB.
pub const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

/// The answer's body, refused as soon as it is larger than `max` (by its
/// stated length, or while it arrives) rather than read into memory.
async fn read_body(
    mut response: reqwest::Response,
    endpoint: &str,
    max: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || ApiError::Decode {
        endpoint: endpoint.to_string(),
        detail: format!(
            "the answer is larger than {max} bytes ({} MB), far more than any page of the \
             API; refused. Hint: check --base-url",
            max / (1024 * 1024)
        ),
    };
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| ApiError::Transport {
        endpoint: endpoint.to_string(),
        detail: e.without_url().to_string(),
    })? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// A successful answer that is not JSON (a proxy's login page, a captive
/// portal) is one clear error: what came, and what to check.
fn the_apis_json(
    endpoint: &str,
    status: u16,
    content_type: &str,
    body: Bytes,
) -> Result<Bytes, ApiError> {
    let looks_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{' || b == b'[');
    let says_json = content_type.is_empty() || content_type.to_ascii_lowercase().contains("json");
    if looks_json && says_json {
        return Ok(body);
    }
    Err(ApiError::NotTheApi {
        endpoint: endpoint.to_string(),
        status,
        content_type: if content_type.is_empty() {
            "none".to_string()
        } else {
            content_type.to_string()
        },
        start: first_bytes(&body),
    })
}

/// The start of a body, for an error message (shown escape-safe by whoever prints it).
pub(crate) fn first_bytes(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    let text = text.trim();
    if text.is_empty() {
        "(empty)".to_string()
    } else {
        format!("{text:?}")
    }
}

/// The path and query a request went to, as `-v` shows it (percent-encoded;
/// a POST's filters are in its body, not shown).
fn resolved(url: &Url, request: &PageRequest, cursor: Option<&str>) -> String {
    let query = request.query_string(cursor);
    if query.is_empty() {
        url.path().to_string()
    } else {
        format!("{}?{query}", url.path())
    }
}
