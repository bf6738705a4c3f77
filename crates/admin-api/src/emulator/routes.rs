//! The emulator's endpoints: routing, auth, fault injection, paging and the
//! JSON the real Admin API sends (v1 JSON:API snake_case, v2 camelCase).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::identities::{Credential, ServiceAccount};
use super::org::{Event, Group, Org, User, UserRole, Workspace};
use super::{State, Tenant, writes};

type Reply = Result<Value, ApiFailure>;

/// An error answer: status, the JSON body of the right envelope, headers.
pub(super) struct ApiFailure {
    status: StatusCode,
    body: Value,
    headers: Option<Box<HeaderMap>>,
}

impl ApiFailure {
    /// An error answer with this body and no headers of its own.
    pub(super) fn new(status: StatusCode, body: Value) -> Self {
        ApiFailure {
            status,
            body,
            headers: None,
        }
    }

    /// A 429, saying when to come back (whole seconds, rounded up) unless
    /// `retry_after` is `None`.
    fn throttled(version: Version, retry_after: Option<Duration>, mut headers: HeaderMap) -> Self {
        if let Some(wait) = retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert("retry-after", HeaderValue::from(secs));
        }
        ApiFailure {
            headers: Some(Box::new(headers)),
            ..gateway(StatusCode::TOO_MANY_REQUESTS, "Too many requests", version)
        }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(headers) = self.headers {
            response.headers_mut().extend(*headers);
        }
        response
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Version {
    V1,
    V2,
}

/// An endpoint served: "METHOD path" as the spec writes it, and its handler.
struct Endpoint {
    route: &'static str,
    handler: Handler,
}

#[derive(Clone, Copy)]
enum Handler {
    /// Answers from the organization as it was when the request came in.
    Read(fn(&Request) -> Reply),
    /// Changes the organization (writes.rs): works on a copy of it as it
    /// is now, swapped in only when it succeeds, so a refused write changes
    /// nothing; answers 204 No Content, as every write here is specified to.
    Write(fn(&Request, &mut Org) -> Result<(), ApiFailure>),
}

use Handler::{Read, Write};

/// Every endpoint the emulator serves, each declared once.
const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        route: "GET /admin/user-provisioning/v1/org/{orgId}/user/{accountId}/get-scim-links",
        handler: Read(scim_links),
    },
    Endpoint {
        route: "GET /scim/directory/{directoryId}/Users",
        handler: Read(scim_users),
    },
    Endpoint {
        route: "GET /scim/directory/{directoryId}/Groups",
        handler: Read(scim_groups),
    },
    Endpoint {
        route: "GET /admin/v1/orgs",
        handler: Read(orgs),
    },
    Endpoint {
        route: "GET /admin/v1/orgs/{orgId}",
        handler: Read(|r| Ok(json!({"data": org_json(r)}))),
    },
    Endpoint {
        route: "GET /admin/v1/orgs/{orgId}/domains",
        handler: Read(domains),
    },
    Endpoint {
        route: "GET /admin/v1/orgs/{orgId}/events",
        handler: Read(events),
    },
    Endpoint {
        route: "GET /admin/v1/orgs/{orgId}/events-stream",
        handler: Read(events_stream),
    },
    Endpoint {
        route: "GET /admin/v1/orgs/{orgId}/event-actions",
        handler: Read(|r| Ok(event_actions(r.org()))),
    },
    Endpoint {
        route: "GET /admin/v1/orgs/{orgId}/policies",
        handler: Read(policies),
    },
    Endpoint {
        route: "GET /admin/v1/orgs/{orgId}/users",
        handler: Read(managed_accounts),
    },
    Endpoint {
        route: "GET /admin/v1/orgs/{orgId}/directory/users/{accountId}/last-active-dates",
        handler: Read(last_active_dates),
    },
    Endpoint {
        route: "GET /admin/v2/orgs/{orgId}/directories",
        handler: Read(directories),
    },
    Endpoint {
        route: "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/search",
        handler: Read(users_search),
    },
    Endpoint {
        route: "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/search",
        handler: Read(groups_search),
    },
    Endpoint {
        route: "GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users/count",
        handler: Read(users_count),
    },
    Endpoint {
        route: "GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users/stats",
        handler: Read(users_stats),
    },
    Endpoint {
        route: "GET /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/count",
        handler: Read(groups_count),
    },
    Endpoint {
        route: "GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/role-assignments",
        handler: Read(user_role_assignments),
    },
    Endpoint {
        route: "GET /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments",
        handler: Read(group_role_assignments),
    },
    Endpoint {
        route: "POST /admin/v2/orgs/{orgId}/workspaces",
        handler: Read(workspaces),
    },
    Endpoint {
        route: "GET /admin/api-access/v1/orgs/{orgId}/api-tokens",
        handler: Read(api_tokens),
    },
    Endpoint {
        route: "GET /admin/api-access/v1/orgs/{orgId}/api-keys",
        handler: Read(api_keys),
    },
    Endpoint {
        route: "GET /users/{accountId}/manage/api-tokens",
        handler: Read(user_api_tokens),
    },
    // Identities beside people's accounts (identities.rs). After
    // users/count, which has the same shape as a user's details.
    Endpoint {
        route: "GET /admin/api-access/v1/orgs/{orgId}/service-accounts",
        handler: Read(service_accounts),
    },
    Endpoint {
        route: "GET /admin/api-access/v1/orgs/{orgId}/service-accounts/api-tokens",
        handler: Read(service_account_tokens),
    },
    Endpoint {
        route: "GET /admin/api-access/v1/orgs/{orgId}/service-accounts/oauth-clients",
        handler: Read(service_account_oauth_clients),
    },
    Endpoint {
        route: "GET /admin/api-access/v1/orgs/{orgId}/oauth-clients",
        handler: Read(oauth_clients),
    },
    Endpoint {
        route: "POST /admin/control/v1/orgs/{orgId}/users/auth-policies/bulk-fetch",
        handler: Read(auth_policies_bulk_fetch),
    },
    Endpoint {
        route: "GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}",
        handler: Read(user_details),
    },
    // The writes `orgsql review apply` may send (writes.rs).
    Endpoint {
        route: "POST /admin/v1/orgs/{orgId}/users/{userId}/roles/revoke",
        handler: Write(writes::revoke_user_role),
    },
    Endpoint {
        route: "POST /admin/v1/orgs/{orgId}/users/{userId}/role-assignments/revoke",
        handler: Write(writes::revoke_org_role),
    },
    Endpoint {
        route: "DELETE /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}",
        handler: Write(writes::remove_membership),
    },
    Endpoint {
        route: "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/role-assignments/revoke",
        handler: Write(writes::revoke_group_role),
    },
    Endpoint {
        route: "POST /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend",
        handler: Write(writes::suspend_user),
    },
    Endpoint {
        route: "DELETE /users/{accountId}/manage/api-tokens/{tokenId}",
        handler: Write(writes::delete_api_token),
    },
];

/// Every endpoint served, "METHOD template" as the spec writes it (the
/// tests hold the tables' calls to this list).
pub fn endpoints() -> impl Iterator<Item = &'static str> {
    ENDPOINTS.iter().map(|e| e.route)
}

impl Endpoint {
    /// The path parameters when `method path` is this endpoint.
    fn matches(&self, method: &Method, segments: &[&str]) -> Option<Vec<(&'static str, String)>> {
        let (verb, path) = self.route.split_once(' ')?;
        let template: Vec<&'static str> = path.trim_matches('/').split('/').collect();
        if verb != method.as_str() || template.len() != segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (part, segment) in template.iter().zip(segments) {
            match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => params.push((name, segment.to_string())),
                None if part == segment => {}
                None => return None,
            }
        }
        Some(params)
    }

    fn version(&self) -> Version {
        if self.route.contains("/v2/") {
            Version::V2
        } else {
            Version::V1
        }
    }
}

/// Every answer, a refusal too, carries the ids Atlassian Cloud sends for a
/// request (`atl-traceid`, `atl-request-id`: measured on Jira and Confluence
/// Cloud; on the Admin API unverified), so a client can record which call
/// the API answered.
pub(crate) async fn handle(
    state: AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (trace_id, request_id) = state.request_ids();
    let mut response = answer(state, method, uri, headers, body).await;
    for (name, value) in [("atl-traceid", trace_id), ("atl-request-id", request_id)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn answer(
    AxumState(state): AxumState<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = state.enter();
    let faults = &state.config.faults;
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let Some((endpoint, params)) = ENDPOINTS
        .iter()
        .find_map(|e| e.matches(&method, &segments).map(|params| (e, params)))
    else {
        return error(
            Version::V1,
            StatusCode::NOT_FOUND,
            "ADMIN-404-1",
            "Unknown resource",
        )
        .into_response();
    };
    let version = endpoint.version();
    let n = state.count(endpoint.route);
    state.pass_gates(endpoint.route).await;
    state.remember_body(endpoint.route, &body);
    state.remember_query(endpoint.route, uri.query().unwrap_or(""));
    if let Some(status) = state.failing(endpoint.route) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return gateway(status, "Failing, as the test asked", version).into_response();
    }
    if let Some(every) = faults.fail_every.filter(|&e| e > 0 && n % e == 0) {
        let failure = if (n / every) % 2 == 1 {
            let mut headers = HeaderMap::new();
            headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            ApiFailure::throttled(
                version,
                Some(Duration::from_secs(faults.retry_after_secs)),
                headers,
            )
        } else {
            gateway(
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                version,
            )
        };
        return failure.into_response();
    }
    let key = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let authorized = if endpoint.route.starts_with("GET /scim/") {
        scim_authorize(&state, &params, key)
    } else {
        authorize(&state, endpoint, key, version)
    };
    let tenant = match authorized {
        Ok(tenant) => tenant,
        Err(failure) => return failure.into_response(),
    };
    let org = tenant.org();
    // A key reads its own organization only.
    if params
        .iter()
        .any(|(name, value)| *name == "orgId" && *value != org.id)
    {
        return error(
            version,
            StatusCode::NOT_FOUND,
            "ADMIN-404-2",
            "Organization not found",
        )
        .into_response();
    }
    // The budget is counted once the caller is known, as the real API does.
    let budget_headers = match tenant.budgets() {
        None => HeaderMap::new(),
        Some(budgets) => match budgets.admit(endpoint.route) {
            Ok(headers) => headers,
            Err(over) => {
                state.count_throttled();
                return ApiFailure::throttled(version, over.retry_after, over.headers)
                    .into_response();
            }
        },
    };
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let request = Request {
        state: &state,
        tenant,
        org: org.clone(),
        params,
        query,
        body: &body,
        version,
    };
    let answer = match endpoint.handler {
        Read(read) => read(&request).map(|value| axum::Json(value).into_response()),
        Write(write) => tenant
            .edit(|org| write(&request, org))
            .map(|()| StatusCode::NO_CONTENT.into_response()),
    };
    let mut response = answer.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().extend(budget_headers);
    response
}

/// Which organization a key is for, and whether it may call an endpoint.
/// With a scoped key configured (for the first organization), the API Access
/// API takes only that key, and the organization API refuses it.
fn authorize<'a>(
    state: &'a State,
    endpoint: &Endpoint,
    key: &str,
    version: Version,
) -> Result<&'a Tenant, ApiFailure> {
    let access_api = endpoint.route.contains("/api-access/");
    let scoped = state.config.access.scoped_key.as_deref();
    let refused = |message: &str| gateway(StatusCode::FORBIDDEN, message, version);
    let tenants = state.tenants();
    let owner = tenants.iter().find(|t| t.api_key == key);
    match (scoped, owner) {
        (Some(scoped), _) if access_api && key == scoped => Ok(&tenants[0]),
        (Some(_), Some(tenant)) if access_api && std::ptr::eq(tenant, &tenants[0]) => Err(refused(
            "The API key does not have the scope this operation needs: read:tokens:admin",
        )),
        (Some(scoped), _) if key == scoped => Err(refused(
            "Scoped API keys are not accepted by this API; use an API key without scopes",
        )),
        (_, Some(tenant)) => Ok(tenant),
        _ => Err(gateway(StatusCode::UNAUTHORIZED, "Unauthorized", version)),
    }
}

/// A SCIM call takes only its directory's own token (no organization key).
fn scim_authorize<'a>(
    state: &'a State,
    params: &[(&'static str, String)],
    key: &str,
) -> Result<&'a Tenant, ApiFailure> {
    let directory = params
        .iter()
        .find(|(name, _)| *name == "directoryId")
        .map_or("", |(_, v)| v.as_str());
    state
        .tenants()
        .iter()
        .find(|t| {
            let org = t.org();
            org.scim
                .iter()
                .any(|d| org.directories[d.directory].id == directory && d.token == key)
        })
        .ok_or_else(|| {
            // The SCIM-SPEC's Failure body for 401.
            ApiFailure::new(
                StatusCode::UNAUTHORIZED,
                json!({"error": "Unauthorized: not this directory's SCIM token", "traceId": "emulator"}),
            )
        })
}

/// A SCIM ListResponse page of `items` (RFC 7644 3.4.2.4): `startIndex`
/// 1-based, `count` at most 100. With the `scim_short` fault,
/// `totalResults` counts one more than there is.
fn scim_list(r: &Request, items: Vec<Value>) -> Reply {
    let number = |name: &str, default: usize| -> Result<usize, ApiFailure> {
        match r.param(name) {
            None => Ok(default),
            Some(text) => text.parse::<usize>().map_err(|_| {
                ApiFailure::new(
                    StatusCode::BAD_REQUEST,
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimType": "invalidValue", "detail": format!("{name} must be a number")}),
                )
            }),
        }
    };
    let start = number("startIndex", 1)?.max(1);
    let count = number("count", 100)?.min(100);
    let count = r
        .state
        .config
        .page_size_cap
        .map_or(count, |cap| count.min(cap.max(1)));
    let total = items.len() + usize::from(r.state.config.faults.scim_short);
    let page: Vec<Value> = items.into_iter().skip(start - 1).take(count).collect();
    Ok(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": page.len(),
        "Resources": page,
    }))
}

/// The SCIM directory the path names (`scim_authorize` let it through).
fn scim_directory<'o>(r: &Request, org: &'o Org) -> Result<&'o super::ScimDirectory, ApiFailure> {
    let id = r.path("directoryId");
    org.scim
        .iter()
        .find(|d| org.directories[d.directory].id == id)
        .ok_or_else(|| {
            ApiFailure::new(
                StatusCode::NOT_FOUND,
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "Directory not found"}),
            )
        })
}

/// An account's links to SCIM users, in every SCIM directory (the shape a
/// client library, JIRAJS, gives the endpoint).
fn scim_links(r: &Request) -> Reply {
    let org = r.org();
    let account = r.path("accountId");
    if !org.users.iter().any(|u| u.account_id == account) {
        return Err(error(
            r.version,
            StatusCode::NOT_FOUND,
            "ADMIN-404-3",
            "User not found",
        ));
    }
    let links: Vec<Value> = org
        .scim
        .iter()
        .flat_map(|d| {
            let directory = org.directories[d.directory].id.clone();
            d.users
                .iter()
                .filter(|u| u.account_id.as_deref() == Some(account))
                .map(move |u| {
                    json!({
                        "scimUserId": u.id,
                        "atlassianAccountId": u.account_id,
                        "orgId": org.id,
                        "directoryId": directory,
                    })
                })
        })
        .collect();
    Ok(json!({ "scimLinks": links }))
}

fn scim_users(r: &Request) -> Reply {
    let org = r.org();
    let directory = scim_directory(r, org)?;
    let id = r.path("directoryId");
    let items = directory
        .users
        .iter()
        .map(|u| super::scim::user_json(&r.state.base_url, id, u))
        .collect();
    scim_list(r, items)
}

fn scim_groups(r: &Request) -> Reply {
    let org = r.org();
    let directory = scim_directory(r, org)?;
    let id = r.path("directoryId");
    let items = directory
        .groups
        .iter()
        .map(|g| super::scim::group_json(&r.state.base_url, id, g, &directory.users))
        .collect();
    scim_list(r, items)
}

fn orgs(r: &Request) -> Reply {
    Ok(json!({"data": [org_json(r)], "links": {"self": r.url("/admin/v1/orgs")}, "meta": null}))
}

pub(super) struct Request<'a> {
    state: &'a State,
    /// The organization the key is for.
    tenant: &'a Tenant,
    /// The org as it was when the request came in.
    org: Arc<Org>,
    /// The path's parameters, by the names the spec gives them.
    params: Vec<(&'static str, String)>,
    query: Vec<(String, String)>,
    body: &'a [u8],
    version: Version,
}

impl Request<'_> {
    pub(super) fn org(&self) -> &Org {
        &self.org
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.state.base_url, path)
    }

    /// A path parameter (`accountId`); empty when the path has none.
    pub(super) fn path(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The request's body, as sent.
    pub(super) fn body(&self) -> &[u8] {
        self.body
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Array parameters, repeated (`?ip=a&ip=b`) or comma-separated (`?ip=a,b`).
    fn params(&self, name: &str) -> Vec<String> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|v| !v.is_empty())
            .collect()
    }

    fn json_body(&self) -> Result<Map<String, Value>, ApiFailure> {
        if self.body.is_empty() {
            return Ok(Map::new());
        }
        match serde_json::from_slice::<Value>(self.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(self.bad_request("ADMIN-400-24", "Invalid request body")),
        }
    }

    /// A time parameter in epoch milliseconds, as `/events` takes them.
    fn epoch_param(&self, name: &str) -> Result<Option<i64>, ApiFailure> {
        self.param(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| self.bad_request("ADMIN-400-3", "Invalid time date"))
            })
            .transpose()
    }

    fn bad_request(&self, code: &str, detail: &str) -> ApiFailure {
        error(self.version, StatusCode::BAD_REQUEST, code, detail)
    }

    /// `limit` between 1 and the endpoint's maximum, else the API's 400.
    fn limit(&self, value: Option<i64>, default: usize, max: usize) -> Result<usize, ApiFailure> {
        let limit = match value {
            None => default,
            Some(n) if n >= 1 && n as usize <= max => n as usize,
            Some(n) => {
                return Err(self.bad_request(
                    "ADMIN-400-24",
                    &format!("limit must be between 1 and {max}, got {n}"),
                ));
            }
        };
        Ok(self
            .state
            .config
            .page_size_cap
            .map_or(limit, |cap| limit.min(cap.max(1))))
    }

    fn query_limit(&self, default: usize, max: usize) -> Result<usize, ApiFailure> {
        let value = match self.param("limit") {
            None => None,
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|_| self.bad_request("ADMIN-400-24", "limit must be a number"))?,
            ),
        };
        self.limit(value, default, max)
    }

    /// One page of `items` from the cursor on; the next cursor when more remain.
    fn page<'t, T>(
        &self,
        items: &'t [T],
        cursor: Option<&str>,
        size: usize,
    ) -> Result<(&'t [T], Option<String>), ApiFailure> {
        let offset = match cursor {
            None => 0,
            Some(c) => decode_cursor(c)
                .filter(|&o| o <= items.len())
                .ok_or_else(|| self.bad_request("ADMIN-400-1", "Invalid page cursor"))?,
        };
        let end = (offset + size).min(items.len());
        let next = if self.state.config.faults.repeat_cursor {
            Some(encode_cursor(size))
        } else {
            (end < items.len()).then(|| encode_cursor(end))
        };
        Ok((&items[offset..end], next))
    }
}

fn encode_cursor(offset: usize) -> String {
    hex(&format!("page:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    unhex(cursor)?.strip_prefix("page:")?.parse().ok()
}

/// Cursors are opaque hex, as the API's look opaque.
fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(cursor: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..cursor.len())
        .step_by(2)
        .map(|i| {
            cursor
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// v1 application errors and all v2 errors: the JSON:API `errors` envelope.
pub(super) fn error(version: Version, status: StatusCode, code: &str, detail: &str) -> ApiFailure {
    let mut item = json!({
        "id": format!("emulator-{}", status.as_u16()),
        "status": status.as_u16().to_string(),
        "code": code,
        "detail": detail,
    });
    if version == Version::V1 {
        item["title"] = json!(status.canonical_reason().unwrap_or("Error"));
    }
    ApiFailure {
        status,
        body: json!({ "errors": [item] }),
        headers: None,
    }
}

/// The gateway's answers (401, 429, 503): `{code, message}` on v1, the
/// `errors` envelope on v2.
fn gateway(status: StatusCode, message: &str, version: Version) -> ApiFailure {
    match version {
        Version::V1 => ApiFailure {
            status,
            body: json!({ "code": status.as_u16(), "message": message }),
            headers: None,
        },
        Version::V2 => error(
            version,
            status,
            &format!("ADMIN-{}", status.as_u16()),
            message,
        ),
    }
}

fn org_json(r: &Request) -> Value {
    let org = r.org();
    let base = r.url(&format!("/admin/v1/orgs/{}", org.id));
    json!({
        "id": org.id,
        "type": "orgs",
        "attributes": {"name": org.name},
        "relationships": {
            "domains": {"links": {"related": format!("{base}/domains")}},
            "users": {"links": {"related": format!("{base}/users")}},
        },
        "links": {"self": base},
    })
}

/// v1 lists: `links.next` is a full URL carrying the cursor.
fn v1_links(r: &Request, path: &str, next: Option<String>) -> Value {
    let mut links = json!({ "self": r.url(path) });
    if let Some(next) = next {
        links["next"] = json!(r.url(&format!("{path}?cursor={next}")));
    }
    links
}

fn domains(r: &Request) -> Reply {
    let org = r.org();
    let size = r.limit(None, 20, 20)?;
    let (page, next) = r.page(&org.domains, r.param("cursor"), size)?;
    let path = format!("/admin/v1/orgs/{}/domains", org.id);
    let data: Vec<Value> = page
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "type": "domains",
                "attributes": {"name": d.name, "claim": {"type": d.claim_type, "status": d.claim_status}},
                "links": {"self": r.url(&format!("{path}/{}", d.id))},
            })
        })
        .collect();
    Ok(json!({ "data": data, "links": v1_links(r, &path, next) }))
}

fn directories(r: &Request) -> Reply {
    let size = r.query_limit(20, 100)?;
    let (page, next) = r.page(&r.org().directories, r.param("cursor"), size)?;
    let data: Vec<Value> = page
        .iter()
        .map(|d| json!({"directoryId": d.id, "name": d.name, "icon": "https://admin.atlassian.com/icons/directory.svg"}))
        .collect();
    Ok(v2_page(data, next))
}

/// v2 lists: `links.next` is a bare cursor, absent on the last page.
fn v2_page(data: Vec<Value>, next: Option<String>) -> Value {
    let mut links = Map::new();
    if let Some(next) = next {
        links.insert("next".to_string(), json!(next));
    }
    json!({ "data": data, "links": links })
}

pub(super) fn directory_filter(r: &Request, dir: &str) -> Result<Option<usize>, ApiFailure> {
    if dir == "-" {
        return Ok(None);
    }
    r.org()
        .directories
        .iter()
        .position(|d| d.id == dir)
        .map(Some)
        .ok_or_else(|| {
            error(
                r.version,
                StatusCode::NOT_FOUND,
                "ADMIN-404-11",
                "Directory not found",
            )
        })
}

fn strings(
    body: &Map<String, Value>,
    key: &str,
    max: usize,
    r: &Request,
) -> Result<Option<Vec<String>>, ApiFailure> {
    let Some(value) = body.get(key) else {
        return Ok(None);
    };
    let list: Option<Vec<String>> = value.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    });
    match list {
        Some(list) if !list.is_empty() && list.len() <= max => Ok(Some(list)),
        _ => Err(r.bad_request(
            "ADMIN-400-24",
            &format!("{key} must be an array of 1 to {max} strings"),
        )),
    }
}

fn cursor_of(body: &Map<String, Value>) -> Option<&str> {
    body.get("cursor").and_then(Value::as_str)
}

/// Where the filters of a request are: a search's JSON body, or a count's
/// query string (arrays repeated or comma-joined).
enum Filters<'a> {
    Body(&'a Map<String, Value>),
    Query,
}

impl Filters<'_> {
    /// A list of 1 to `max` strings, else the API's 400.
    fn list(&self, r: &Request, key: &str, max: usize) -> Result<Option<Vec<String>>, ApiFailure> {
        match self {
            Filters::Body(body) => strings(body, key, max, r),
            Filters::Query => {
                // Given, even empty (`accountIds=`), it filters: a value
                // that matches nothing still counts nothing, as in a search.
                if !r.query.iter().any(|(k, _)| k == key) {
                    return Ok(None);
                }
                let list: Vec<String> = r
                    .query
                    .iter()
                    .filter(|(k, _)| k == key)
                    .flat_map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
                    .collect();
                if list.len() > max {
                    return Err(r.bad_request(
                        "ADMIN-400-24",
                        &format!("{key} takes at most {max} values"),
                    ));
                }
                Ok(Some(list))
            }
        }
    }

    fn text(&self, r: &Request, key: &str) -> Option<String> {
        match self {
            Filters::Body(body) => body.get(key).and_then(Value::as_str).map(str::to_string),
            Filters::Query => r.param(key).map(str::to_string),
        }
    }

    fn flag(&self, r: &Request, key: &str) -> Result<Option<bool>, ApiFailure> {
        match self {
            Filters::Body(body) => Ok(body.get(key).and_then(Value::as_bool)),
            Filters::Query => r
                .param(key)
                .map(|v| {
                    v.parse().map_err(|_| {
                        r.bad_request("ADMIN-400-24", &format!("{key} must be true or false"))
                    })
                })
                .transpose(),
        }
    }
}

/// A count endpoint takes exactly its spec's query parameters: any other
/// is refused, so a client that sends a filter the count cannot apply
/// learns it instead of getting a count of something else.
fn only_params(r: &Request, allowed: &[&str]) -> Result<(), ApiFailure> {
    match r.query.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        Some((name, _)) => {
            Err(r.bad_request("ADMIN-400-24", &format!("unknown query parameter {name}")))
        }
        None => Ok(()),
    }
}

/// The filters users/search and users/count share: read once from either,
/// matched one way.
struct UserFilters {
    account_ids: Option<Vec<String>>,
    emails: Option<Vec<String>>,
    account_status: Option<Vec<String>>,
    membership_status: Option<Vec<String>>,
    status: Option<Vec<String>>,
    group_ids: Option<Vec<String>>,
    directory_ids: Option<Vec<String>>,
    resource_ids: Option<Vec<String>>,
    role_ids: Option<Vec<String>>,
    email_domains: Option<Vec<String>>,
    claim_status: Option<String>,
    mfa: Option<bool>,
    search_term: Option<String>,
}

/// users/count's query parameters, as the spec lists them.
const USERS_COUNT_PARAMS: &[&str] = &[
    "accountIds",
    "directoryIds",
    "resourceIds",
    "groupIds",
    "mfaEnabled",
    "claimStatus",
    "status",
    "accountStatus",
    "membershipStatus",
    "roleIds",
    "searchTerm",
    "emailDomains",
];

impl UserFilters {
    fn read(r: &Request, from: &Filters) -> Result<Self, ApiFailure> {
        let filters = Self {
            account_ids: from.list(r, "accountIds", 10)?,
            emails: match from {
                Filters::Body(_) => from.list(r, "emails", 100)?,
                Filters::Query => None,
            },
            account_status: from.list(r, "accountStatus", 3)?,
            membership_status: from.list(r, "membershipStatus", 3)?,
            status: from.list(r, "status", 4)?,
            group_ids: from.list(r, "groupIds", 10)?,
            directory_ids: from.list(r, "directoryIds", 10)?,
            resource_ids: from.list(r, "resourceIds", 20)?,
            role_ids: from.list(r, "roleIds", 10)?,
            email_domains: from.list(r, "emailDomains", 10)?,
            claim_status: from.text(r, "claimStatus"),
            mfa: from.flag(r, "mfaEnabled")?,
            search_term: from.text(r, "searchTerm"),
        };
        if filters.emails.is_some() && filters.search_term.is_some() {
            return Err(r.bad_request(
                "ADMIN-400-24",
                "emails and searchTerm cannot be used together",
            ));
        }
        Ok(filters)
    }

    /// The users of `org` (of one directory, or all) these filters keep,
    /// in the order the API lists them.
    fn matching<'o>(&self, org: &'o Org, directory: Option<usize>) -> Vec<&'o User> {
        let has = |list: &Option<Vec<String>>, value: &str| {
            list.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
        };
        let term = self.search_term.as_ref().map(|t| t.to_lowercase());
        org.users
            .iter()
            .filter(|u| directory.is_none_or(|d| u.directory == d))
            .filter(|u| has(&self.account_ids, &u.account_id))
            .filter(|u| {
                self.emails
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|e| e.eq_ignore_ascii_case(&u.email)))
            })
            .filter(|u| has(&self.account_status, u.account_status))
            .filter(|u| has(&self.membership_status, u.membership_status))
            .filter(|u| has(&self.status, u.status))
            .filter(|u| has(&self.directory_ids, &org.directories[u.directory].id))
            .filter(|u| {
                self.group_ids
                    .as_ref()
                    .is_none_or(|l| u.groups.iter().any(|&g| l.contains(&org.groups[g].id)))
            })
            .filter(|u| {
                self.claim_status
                    .as_deref()
                    .is_none_or(|c| c == u.claim_status)
            })
            .filter(|u| self.mfa.is_none_or(|m| u.mfa_enabled == Some(m)))
            .filter(|u| {
                self.email_domains.as_ref().is_none_or(|domains| {
                    u.email
                        .rsplit_once('@')
                        .is_some_and(|(_, d)| domains.iter().any(|w| w.eq_ignore_ascii_case(d)))
                })
            })
            .filter(|u| {
                term.as_ref().is_none_or(|t| {
                    u.nickname.to_lowercase().contains(t) || u.email.to_lowercase().contains(t)
                })
            })
            .filter(|u| {
                (self.role_ids.is_none() && self.resource_ids.is_none())
                    || org.user_roles(u).iter().any(|role| {
                        has(&self.role_ids, role.role) && has(&self.resource_ids, &role.resource_id)
                    })
            })
            .collect()
    }
}

fn users_search(r: &Request) -> Reply {
    let dir = r.path("directoryId");
    let org = r.org();
    let body = r.json_body()?;
    let directory = directory_filter(r, dir)?;
    let size = r.limit(body.get("limit").and_then(Value::as_i64), 50, 100)?;
    let expand = strings(&body, "expand", 4, r)?.unwrap_or_default();
    let matching = UserFilters::read(r, &Filters::Body(&body))?.matching(org, directory);
    let (page, next) = r.page(&matching, cursor_of(&body), size)?;
    // The fault: one user left out of the page that holds it, the cursor
    // and the count untouched.
    let left_out = r
        .state
        .config
        .faults
        .drop_user
        .and_then(|n| matching.get(n))
        .map(|u| u.account_id.as_str());
    let data = page
        .iter()
        .filter(|u| Some(u.account_id.as_str()) != left_out)
        .map(|u| user_json(org, u, &expand, directory))
        .collect();
    Ok(v2_page(data, next))
}

/// `GET users/count`: how many users users/search would list for the
/// same filters, given as query parameters.
fn users_count(r: &Request) -> Reply {
    only_params(r, USERS_COUNT_PARAMS)?;
    let directory = directory_filter(r, r.path("directoryId"))?;
    let matching = UserFilters::read(r, &Filters::Query)?.matching(r.org(), directory);
    Ok(json!({ "count": matching.len() }))
}

/// `GET users/stats`: how many users of the directory (or all) hold each
/// account status and each role (on any resource, however assigned), in
/// the spec's `MultiDirectoryUserStats` shape.
fn users_stats(r: &Request) -> Reply {
    only_params(r, &[])?;
    let org = r.org();
    let directory = directory_filter(r, r.path("directoryId"))?;
    let users: Vec<&User> = org
        .users
        .iter()
        .filter(|u| directory.is_none_or(|d| u.directory == d))
        .collect();
    let mut statuses: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut roles: std::collections::BTreeMap<&str, usize> = Default::default();
    for user in &users {
        *statuses.entry(user.account_status).or_default() += 1;
        let held: std::collections::BTreeSet<&str> =
            org.user_roles(user).iter().map(|role| role.role).collect();
        for role in held {
            *roles.entry(role).or_default() += 1;
        }
    }
    Ok(json!({
        "accountStatus": statuses
            .iter()
            .map(|(status, count)| json!({"status": status, "count": count}))
            .collect::<Vec<_>>(),
        "roles": roles
            .iter()
            .map(|(role, count)| json!({"roleId": role, "count": count}))
            .collect::<Vec<_>>(),
    }))
}

fn user_json(org: &Org, u: &User, expand: &[String], directory: Option<usize>) -> Value {
    let mut user = json!({
        "accountId": u.account_id,
        "accountType": "atlassian",
        "accountStatus": u.account_status,
        "membershipStatus": u.membership_status,
        "status": u.status,
        "claimStatus": u.claim_status,
        "addedToOrg": time(u.added_to_org),
        "name": u.name,
        "nickname": u.nickname,
        "email": u.email,
        "emailVerified": u.email_verified,
        "picture": format!("https://avatar-management.services.atlassian.com/{}/128", u.account_id),
        "avatar": format!("https://avatar-management.services.atlassian.com/{}/48", u.account_id),
        "managementSource": u.management_source,
        "timeZone": u.time_zone,
        "links": {"self": encode_cursor(0)},
    });
    let optional = [
        ("mfaEnabled", u.mfa_enabled.map(Value::from)),
        ("jobTitle", u.job_title.map(Value::from)),
        ("department", u.department.map(Value::from)),
        ("organization", u.organization.map(Value::from)),
        ("location", u.location.map(Value::from)),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            user[key] = value;
        }
    }
    let wants = |part: &str| expand.iter().any(|e| e == part);
    if wants("platformRoles") {
        user["platformRoles"] = json!(u.platform_roles);
    }
    if wants("counts.resources") {
        user["counts"] = json!({"resources": u.product_access.len()});
    }
    if wants("productAccess") {
        let access: Vec<Value> = u
            .product_access
            .iter()
            .map(|p| {
                let w = &org.workspaces[p.workspace];
                let mut item = json!({"id": w.id, "key": w.type_key});
                if let Some(t) = p.last_active {
                    item["lastActiveTimestamp"] = json!(time(t));
                }
                item
            })
            .collect();
        user["productAccess"] = json!(access);
    }
    if wants("groups") {
        // Only the groups within the requested directory.
        let groups: Vec<Value> = u
            .groups
            .iter()
            .map(|&g| &org.groups[g])
            .filter(|g| directory.is_none_or(|d| g.directory == d))
            .map(|g| json!({"id": format!("ari:cloud:identity::group/{}", g.id), "name": g.name}))
            .collect();
        user["groups"] = json!(groups);
    }
    user
}

/// The filters groups/search and groups/count share.
struct GroupFilters {
    group_ids: Option<Vec<String>>,
    group_names: Option<Vec<String>>,
    account_ids: Option<Vec<String>>,
    directory_ids: Option<Vec<String>>,
    resource_ids: Option<Vec<String>>,
    resource_owners: Option<Vec<String>>,
    role_ids: Option<Vec<String>>,
    search_term: Option<String>,
}

/// groups/count's query parameters, as the spec lists them.
const GROUPS_COUNT_PARAMS: &[&str] = &[
    "directoryIds",
    "accountIds",
    "groupIds",
    "resourceOwners",
    "resourceIds",
    "searchTerm",
    "roleIds",
];

impl GroupFilters {
    fn read(r: &Request, from: &Filters) -> Result<Self, ApiFailure> {
        let filters = Self {
            group_ids: from.list(r, "groupIds", 10)?,
            group_names: match from {
                Filters::Body(_) => from.list(r, "groupNames", 100)?,
                Filters::Query => None,
            },
            account_ids: from.list(r, "accountIds", 10)?,
            directory_ids: from.list(r, "directoryIds", 10)?,
            resource_ids: from.list(r, "resourceIds", 20)?,
            resource_owners: from.list(r, "resourceOwners", 10)?,
            role_ids: from.list(r, "roleIds", 10)?,
            search_term: from.text(r, "searchTerm"),
        };
        if filters.group_names.is_some()
            && (filters.group_ids.is_some() || filters.search_term.is_some())
        {
            return Err(r.bad_request(
                "ADMIN-400-24",
                "groupNames cannot be used with groupIds or searchTerm",
            ));
        }
        Ok(filters)
    }

    /// The groups (with their index) these filters keep, in the API's order.
    fn matching<'o>(&self, org: &'o Org, directory: Option<usize>) -> Vec<(usize, &'o Group)> {
        let has = |list: &Option<Vec<String>>, value: &str| {
            list.as_ref().is_none_or(|l| l.iter().any(|v| v == value))
        };
        let term = self.search_term.as_ref().map(|t| t.to_lowercase());
        org.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| directory.is_none_or(|d| g.directory == d))
            .filter(|(_, g)| has(&self.group_ids, &g.id))
            .filter(|(_, g)| has(&self.directory_ids, &org.directories[g.directory].id))
            .filter(|(_, g)| {
                self.group_names
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|n| n.eq_ignore_ascii_case(&g.name)))
            })
            .filter(|(_, g)| {
                term.as_ref()
                    .is_none_or(|t| g.name.to_lowercase().contains(t))
            })
            .filter(|(i, _)| {
                self.account_ids
                    .as_ref()
                    .is_none_or(|l| org.members_of(*i).any(|u| l.contains(&u.account_id)))
            })
            .filter(|(i, _)| {
                (self.role_ids.is_none()
                    && self.resource_ids.is_none()
                    && self.resource_owners.is_none())
                    || org.group_roles(*i).iter().any(|g| {
                        g.roles.iter().any(|role| has(&self.role_ids, role))
                            && has(&self.resource_ids, &g.resource_id)
                            && has(&self.resource_owners, g.resource_owner)
                    })
            })
            .collect()
    }
}

fn groups_search(r: &Request) -> Reply {
    let dir = r.path("directoryId");
    let org = r.org();
    let body = r.json_body()?;
    let directory = directory_filter(r, dir)?;
    let size = r.limit(body.get("limit").and_then(Value::as_i64), 20, 100)?;
    let expand = strings(&body, "expand", 2, r)?.unwrap_or_default();
    let matching = GroupFilters::read(r, &Filters::Body(&body))?.matching(org, directory);
    let (page, next) = r.page(&matching, cursor_of(&body), size)?;
    let data = page
        .iter()
        .map(|(i, g)| {
            let mut group = json!({
                "id": g.id,
                "name": g.name,
                "description": g.description,
                "directoryId": org.directories[g.directory].id,
                "externalSynced": g.external_synced,
                "managedBy": g.managed_by,
                "managementAccess": {"readable": true, "modifiable": !g.external_synced, "deletable": !g.external_synced},
                "links": {"self": encode_cursor(0)},
            });
            let mut counts = Map::new();
            if expand.iter().any(|e| e == "counts.users") {
                counts.insert("users".to_string(), json!(org.members_of(*i).count()));
            }
            if expand.iter().any(|e| e == "counts.resources") {
                counts.insert("resources".to_string(), json!(g.resource_count));
            }
            if !counts.is_empty() {
                group["counts"] = Value::Object(counts);
            }
            group
        })
        .collect();
    Ok(v2_page(data, next))
}

/// `GET groups/count`: how many groups groups/search would list for the
/// same filters, given as query parameters.
fn groups_count(r: &Request) -> Reply {
    only_params(r, GROUPS_COUNT_PARAMS)?;
    let directory = directory_filter(r, r.path("directoryId"))?;
    let matching = GroupFilters::read(r, &Filters::Query)?.matching(r.org(), directory);
    Ok(json!({ "count": matching.len() }))
}

fn workspaces(r: &Request) -> Reply {
    let org = r.org();
    let body = r.json_body()?;
    let cursor = body.get("cursor").and_then(Value::as_str);
    if cursor.is_some() && body.len() > 1 {
        return Err(r.bad_request(
            "ADMIN-400-24",
            "When a cursor is provided in the request body, no other properties may be present",
        ));
    }
    // The cursor remembers the page size, as the real one does.
    let (cursor, size) = match cursor {
        Some(c) => {
            let (offset, size) = c
                .split_once('.')
                .ok_or_else(|| r.bad_request("ADMIN-400-1", "Invalid page cursor"))?;
            (
                Some(offset.to_string()),
                size.parse()
                    .map_err(|_| r.bad_request("ADMIN-400-1", "Invalid page cursor"))?,
            )
        }
        None => (
            None,
            r.limit(body.get("limit").and_then(Value::as_i64), 20, 1000)?,
        ),
    };
    let (page, next) = r.page(&org.workspaces, cursor.as_deref(), size)?;
    let path = format!("/admin/v2/orgs/{}/workspaces", org.id);
    let data: Vec<Value> = page.iter().map(|w| workspace_json(r, w)).collect();
    let mut links = json!({ "self": r.url(&path) });
    if let Some(next) = next {
        links["next"] = json!(r.url(&format!("{path}?cursor={next}.{size}")));
    }
    Ok(json!({
        "data": data,
        "links": links,
        "meta": {"pageSize": size, "total": org.workspaces.len()},
    }))
}

fn workspace_json(r: &Request, w: &Workspace) -> Value {
    json!({
        "id": w.id,
        "type": "workspaces",
        "attributes": {
            "name": w.name,
            "typeKey": w.type_key,
            "type": w.type_name,
            "owner": null,
            "status": w.status,
            "statusDetails": [],
            "icons": {},
            "avatars": {},
            "labels": [],
            "sandbox": {"type": w.sandbox},
            "usage": w.usage,
            "capacity": w.capacity,
            "createdAt": time(w.created_at),
            "createdBy": w.created_by,
            "hostUrl": w.host_url,
            "realm": w.realm,
            "regions": w.regions,
        },
        "links": {"self": r.url(&format!("/admin/v2/orgs/{}/workspaces/{}", r.org().id, w.id))},
        "relationships": {
            "entitlements": [{"id": format!("{}-entitlement", w.name), "type": "entitlement",
                              "attributes": {"key": w.type_key, "plan": "standard", "planKey": "STANDARD"}}]
        },
    })
}

/// The oldest instant (ms) of the audit log the API still keeps, if it
/// keeps a window (`EmulatorConfig::retention_days`).
fn retained_from(r: &Request) -> Option<i64> {
    let days = r.state.config.retention_days?;
    Some((r.state.config.org.now - chrono::Duration::days(i64::from(days))).timestamp_millis())
}

fn events(r: &Request) -> Reply {
    let org = r.org();
    let size = r.query_limit(30, 500)?;
    let (from, to) = (r.epoch_param("from")?, r.epoch_param("to")?);
    let kept = retained_from(r);
    let action = r.param("action");
    let actors = r.params("actor");
    let ips = r.params("ip");
    let q = r.param("q").map(str::to_lowercase);
    let matching: Vec<&Event> = org
        .events
        .iter()
        .filter(|e| kept.is_none_or(|k| e.time.timestamp_millis() >= k))
        .filter(|e| from.is_none_or(|f| e.time.timestamp_millis() >= f))
        .filter(|e| to.is_none_or(|t| e.time.timestamp_millis() <= t))
        .filter(|e| action.is_none_or(|a| a.eq_ignore_ascii_case(e.action)))
        .filter(|e| actors.is_empty() || actors.contains(&e.actor_id))
        .filter(|e| ips.is_empty() || e.location.as_ref().is_some_and(|l| ips.contains(&l.ip)))
        .filter(|e| {
            q.as_ref()
                .is_none_or(|q| e.message.to_lowercase().contains(q))
        })
        .collect();
    let (page, next) = r.page(&matching, r.param("cursor"), size)?;
    let path = format!("/admin/v1/orgs/{}/events", org.id);
    let data: Vec<Value> = page.iter().map(|e| event_json(r, e)).collect();
    let mut meta = json!({ "page_size": page.len() });
    let links = match next {
        Some(next) => {
            meta["next"] = json!(next);
            // Like the real API, the next link carries the cursor but not the filters.
            v1_links(r, &path, Some(next))
        }
        None => json!({}),
    };
    Ok(json!({ "data": data, "links": links, "meta": meta }))
}

/// Where a polling cursor stands: the order, the processing-time window,
/// and the last event handed out (processing time in ms, id).
#[derive(serde::Serialize, serde::Deserialize)]
struct StreamCursor {
    desc: bool,
    from: Option<i64>,
    to: Option<i64>,
    after: Option<(i64, String)>,
}

impl StreamCursor {
    fn encode(&self) -> String {
        hex(&format!("stream:{}", json!(self)))
    }

    fn decode(cursor: &str) -> Option<Self> {
        serde_json::from_str(unhex(cursor)?.strip_prefix("stream:")?).ok()
    }
}

/// The first index in `0..len` where `pred` holds (it holds from there on).
fn first(len: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let mid = low + (high - low) / 2;
        if pred(mid) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

/// `GET /v1/orgs/{orgId}/events-stream`, the polling audit API: events in
/// the order they were processed (`sortOrder`, ascending by default),
/// `from`/`to` on the processing time, and a `meta.next` cursor on every
/// page, the last one too: asked again later, it answers with what was
/// processed since.
fn events_stream(r: &Request) -> Reply {
    let org = r.org();
    let size = r.query_limit(200, 500)?;
    let cursor = match r.param("cursor") {
        Some(text) => StreamCursor::decode(text)
            .ok_or_else(|| r.bad_request("ADMIN-400-1", "Invalid page cursor"))?,
        None => {
            let desc = match r.param("sortOrder") {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(_) => {
                    return Err(r.bad_request("ADMIN-400-24", "sortOrder must be asc or desc"));
                }
            };
            StreamCursor {
                desc,
                from: r.epoch_param("from")?,
                to: r.epoch_param("to")?,
                after: None,
            }
        }
    };
    // The events in processing order, and the part of it the window and
    // the cursor leave, found by binary search.
    let order = r.tenant.processing_order(&r.org);
    let key = |e: &Event| (e.processed_at.timestamp_millis(), e.id.clone());
    let at = |i: usize| &org.events[order[i]];
    let ms = |i: usize| at(i).processed_at.timestamp_millis();
    let mut start = cursor
        .from
        .map_or(0, |f| first(order.len(), |i| ms(i) >= f));
    // Past the retention window: gone (by processing time, the stream's).
    if let Some(kept) = retained_from(r) {
        start = start.max(first(order.len(), |i| ms(i) >= kept));
    }
    let mut end = cursor
        .to
        .map_or(order.len(), |t| first(order.len(), |i| ms(i) > t));
    if let Some(after) = &cursor.after {
        let past = first(order.len(), |i| key(at(i)) > *after);
        if cursor.desc {
            end = end.min(first(order.len(), |i| key(at(i)) >= *after));
        } else {
            start = start.max(past);
        }
    }
    let window: Vec<&Event> = if start < end {
        let take = size.min(end - start);
        if cursor.desc {
            (end - take..end).rev().map(at).collect()
        } else {
            (start..start + take).map(at).collect()
        }
    } else {
        Vec::new()
    };
    let page = window.as_slice();
    let next = StreamCursor {
        after: page.last().map(|e| key(e)).or(cursor.after.clone()),
        ..cursor
    }
    .encode();
    let path = format!("/admin/v1/orgs/{}/events-stream", org.id);
    let data: Vec<Value> = page
        .iter()
        .map(|e| {
            let mut event = event_json(r, e);
            event["attributes"]["processedAt"] = json!(time(e.processed_at));
            event
        })
        .collect();
    let mut links = json!({ "self": r.url(&path) });
    if page.len() == size {
        links["next"] = json!(r.url(&format!("{path}?cursor={next}")));
    }
    Ok(json!({
        "data": data,
        "links": links,
        "meta": { "next": next, "page_size": page.len() },
    }))
}

fn event_json(r: &Request, e: &Event) -> Value {
    let mut actor = json!({
        "id": e.actor_id,
        "name": e.actor_name,
        "links": {"self": format!("https://api.atlassian.com/users/{}/manage/profile", e.actor_id)},
    });
    if let Some(email) = &e.actor_email {
        actor["email"] = json!(email);
    }
    if let Some((auth_type, token_id)) = &e.auth {
        actor["auth"] =
            json!({"authType": auth_type, "tokenId": token_id, "tokenLabel": "automation"});
    }
    let mut attributes = json!({
        "time": time(e.time),
        "action": e.action,
        "actor": actor,
        "context": e.context,
        "container": e.container,
    });
    if let Some(l) = &e.location {
        attributes["location"] =
            json!({"ip": l.ip, "city": l.city, "regionName": l.region, "countryName": l.country});
    }
    json!({
        "id": e.id,
        "type": "events",
        "attributes": attributes,
        "links": {"self": r.url(&format!("/admin/v1/orgs/{}/events/{}", r.org().id, e.id))},
        "message": {"content": e.message, "format": "simple"},
    })
}

fn event_actions(org: &Org) -> Value {
    let data: Vec<Value> = org
        .event_actions
        .iter()
        .map(|a| {
            json!({"id": a.id, "type": "eventActions",
                   "attributes": {"displayName": a.display_name, "groupDisplayName": a.group_display_name}})
        })
        .collect();
    json!({ "data": data })
}

fn policies(r: &Request) -> Reply {
    let org = r.org();
    let size = r.limit(None, 10, 10)?;
    let kind = r.param("type");
    let matching: Vec<_> = org
        .policies
        .iter()
        .filter(|p| kind.is_none_or(|k| k == p.kind))
        .collect();
    let (page, next) = r.page(&matching, r.param("cursor"), size)?;
    let path = format!("/admin/v1/orgs/{}/policies", org.id);
    let data: Vec<Value> = page
        .iter()
        .map(|p| {
            let resources: Vec<Value> = p
                .resources
                .iter()
                .map(|(id, status)| json!({"id": id, "applicationStatus": status}))
                .collect();
            json!({
                "id": p.id,
                "type": "policy",
                "attributes": {
                    "type": p.kind, "name": p.name, "status": p.status, "rule": p.rule,
                    "resources": resources,
                    "createdAt": time(p.created_at),
                    "updatedAt": p.updated_at.map(time),
                },
                "links": null,
                "relations": null,
            })
        })
        .collect();
    let links = v1_links(r, &path, next.clone());
    Ok(json!({ "data": data, "links": links, "meta": {"next": next, "page_size": page.len()} }))
}

/// The v1 product key of a workspace type key (the enums differ in one place).
fn product_key(type_key: &str) -> &str {
    match type_key {
        "jira-servicedesk" => "jira-service-desk",
        other => other,
    }
}

fn not_found(r: &Request, code: &str, what: &str) -> ApiFailure {
    error(
        r.version,
        StatusCode::NOT_FOUND,
        code,
        &format!("{what} not found"),
    )
}

fn find_user<'o>(r: &'o Request, account: &str) -> Result<&'o User, ApiFailure> {
    r.org()
        .users
        .iter()
        .find(|u| u.account_id == account)
        .ok_or_else(|| not_found(r, "ADMIN-404-8", "User"))
}

/// v1 managed accounts: users on claimed domains, snake_case, product names and URLs.
fn managed_accounts(r: &Request) -> Reply {
    let org = r.org();
    let size = r.limit(None, 50, 50)?;
    let managed: Vec<&User> = org
        .users
        .iter()
        .filter(|u| u.claim_status == "managed")
        .collect();
    let (page, next) = r.page(&managed, r.param("cursor"), size)?;
    let path = format!("/admin/v1/orgs/{}/users", org.id);
    let data: Vec<Value> = page
        .iter()
        .map(|u| {
            let access: Vec<Value> = u
                .product_access
                .iter()
                .map(|p| {
                    let w = &org.workspaces[p.workspace];
                    let mut item = json!({
                        "key": product_key(w.type_key),
                        "name": w.type_name,
                        // Bitbucket workspaces have no site host.
                        "url": match &w.host_url {
                            Some(host) => format!("https://{host}"),
                            None => format!("https://bitbucket.org/{}", w.name),
                        },
                    });
                    if let Some(t) = p.last_active {
                        item["last_active"] = json!(time(t));
                    }
                    item
                })
                .collect();
            let mut user = json!({
                "account_id": u.account_id,
                "account_type": "atlassian",
                "account_status": u.account_status,
                "name": u.name,
                "picture": format!("https://avatar-management.services.atlassian.com/{}/128", u.account_id),
                "email": u.email,
                "access_billable": u.status == "active" && !u.product_access.is_empty(),
                "product_access": access,
                "links": {"self": r.url(&format!("{path}/{}", u.account_id))},
            });
            if let Some(last) = u.product_access.iter().filter_map(|p| p.last_active).max() {
                user["last_active"] = json!(time(last));
            }
            user
        })
        .collect();
    Ok(json!({
        "data": data,
        "links": v1_links(r, &path, next),
        "meta": {"total": managed.len()},
    }))
}

/// Per user: when each product was last used, and when the user joined.
fn last_active_dates(r: &Request) -> Reply {
    let account = r.path("accountId");
    let org = r.org();
    let user = find_user(r, account)?;
    let access: Vec<Value> = user
        .product_access
        .iter()
        .filter_map(|p| {
            let w = &org.workspaces[p.workspace];
            let t = p.last_active?;
            Some(json!({
                "id": w.id.rsplit('/').next().unwrap_or(&w.id),
                "key": product_key(w.type_key),
                "last_active": t.format("%Y-%m-%d").to_string(),
                "last_active_timestamp": t.to_rfc3339_opts(SecondsFormat::Secs, true),
            }))
        })
        .collect();
    Ok(json!({
        "data": {
            "product_access": access,
            "added_to_org": user.added_to_org.format("%Y-%m-%d").to_string(),
            "added_to_org_timestamp": user.added_to_org.to_rfc3339_opts(SecondsFormat::Secs, true),
        },
        "links": {},
    }))
}

/// The role-assignment filters both role endpoints take, as repeated or
/// comma-joined query parameters; too many values is the API's 400.
fn role_filters(r: &Request) -> Result<[Vec<String>; 3], ApiFailure> {
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for (slot, (name, max)) in
        out.iter_mut()
            .zip([("roleIds", 10), ("resourceIds", 20), ("resourceOwners", 10)])
    {
        *slot = r.params(name);
        if slot.len() > max {
            return Err(r.bad_request(
                "ADMIN-400-24",
                &format!("{name} takes at most {max} values"),
            ));
        }
    }
    Ok(out)
}

fn keep(list: &[String], value: &str) -> bool {
    list.is_empty() || list.iter().any(|v| v == value)
}

fn user_role_assignments(r: &Request) -> Reply {
    let (dir, account) = (r.path("directoryId"), r.path("accountId"));
    let org = r.org();
    directory_filter(r, dir)?;
    let user = find_user(r, account)?;
    let size = r.query_limit(20, 100)?;
    let [roles, resources, owners] = role_filters(r)?;
    // One item per resource, its roles grouped, as the API sends them. The
    // item's fields describe the resource, whichever of its roles the
    // filters keep.
    let mut items: Vec<(String, &'static str, Option<usize>, Vec<UserRole>)> = Vec::new();
    for role in org.user_roles(user) {
        match items.iter_mut().find(|i| i.0 == role.resource_id) {
            Some(item) => item.3.push(role),
            None => items.push((
                role.resource_id.clone(),
                role.resource_owner,
                role.directory,
                vec![role],
            )),
        }
    }
    for item in &mut items {
        item.3.retain(|role| keep(&roles, role.role));
    }
    items.retain(|(resource, owner, _, roles)| {
        !roles.is_empty() && keep(&resources, resource) && keep(&owners, owner)
    });
    let (page, next) = r.page(&items, r.param("cursor"), size)?;
    let data = page
        .iter()
        .map(|(resource_id, owner, directory, roles)| {
            json!({
                "resourceId": resource_id,
                "resourceOwner": owner,
                "directoryId": directory.map(|d| org.directories[d].id.clone()),
                "userDirectoryStatus": directory.map(|_| user.membership_status),
                "roleAssignments": roles.iter().map(|role| json!({
                    "role": role.role,
                    "roleAssignmentMethods": role.methods,
                })).collect::<Vec<_>>(),
                "roles": roles.iter().map(|role| role.role).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(v2_page(data, next))
}

fn group_role_assignments(r: &Request) -> Reply {
    let (dir, group) = (r.path("directoryId"), r.path("groupId"));
    let org = r.org();
    directory_filter(r, dir)?;
    let index = org
        .groups
        .iter()
        .position(|g| g.id == group)
        .ok_or_else(|| not_found(r, "ADMIN-404-10", "Group"))?;
    let size = r.query_limit(20, 100)?;
    let [roles, resources, owners] = role_filters(r)?;
    let items: Vec<_> = org
        .group_roles(index)
        .into_iter()
        .filter(|g| {
            g.roles.iter().any(|role| keep(&roles, role))
                && keep(&resources, &g.resource_id)
                && keep(&owners, g.resource_owner)
        })
        .collect();
    let (page, next) = r.page(&items, r.param("cursor"), size)?;
    let data = page
        .iter()
        .map(|g| {
            json!({
                "resourceId": g.resource_id,
                "resourceOwner": g.resource_owner,
                "roles": g.roles,
                "defaultRole": g.default_role,
            })
        })
        .collect();
    Ok(v2_page(data, next))
}

/// The API Access API takes `pageSize` and `cursor` only; anything else
/// gets the same HTTP 500 every time, as one public note reports.
fn access_page_size(r: &Request) -> Result<usize, ApiFailure> {
    if let Some((name, _)) = r
        .query
        .iter()
        .find(|(name, _)| name != "pageSize" && name != "cursor")
    {
        return Err(ApiFailure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({"code": 500, "message": format!("Internal server error ({name})")}),
            headers: None,
        });
    }
    let size = match r.param("pageSize") {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .map_err(|_| r.bad_request("ADMIN-400-24", "pageSize must be a number"))?,
        ),
    };
    r.limit(size, 20, 100)
}

/// A person as the API Access API describes an owner or a creator.
fn access_person(org: &Org, user: usize) -> Value {
    let u = &org.users[user];
    json!({
        "id": u.account_id,
        "name": u.name,
        "email": u.email,
        "orgId": org.id,
        "userStatus": u.status,
        "appType": null,
    })
}

/// `GET /admin/api-access/v1/orgs/{orgId}/api-tokens`: every managed user's tokens.
fn api_tokens(r: &Request) -> Reply {
    let org = r.org();
    if r.state.config.access.refuse_token_listing {
        return Err(gateway(
            StatusCode::FORBIDDEN,
            "The API key does not have the scope this operation needs: read:tokens:admin",
            r.version,
        ));
    }
    let size = access_page_size(r)?;
    let (page, next) = r.page(&org.api_tokens, r.param("cursor"), size)?;
    let data: Vec<Value> = page
        .iter()
        .map(|t| {
            let mut token = json!({
                "id": t.id,
                "label": t.label,
                "createdAt": time(t.created_at),
                "expiresAt": t.expires_at.map(time),
                "status": if t.blocked { "BLOCKED" } else { "ALLOWED" },
                "scopes": t.scopes,
                "user": access_person(org, t.owner),
                "createdBy": t.created_by.map(|c| access_person(org, c)),
            });
            if let Some(last) = t.last_active {
                token["lastActiveAt"] = json!(time(last));
            }
            token
        })
        .collect();
    Ok(access_page(r, "api-tokens", data, next))
}

/// `GET /admin/api-access/v1/orgs/{orgId}/api-keys`: the admin API keys.
fn api_keys(r: &Request) -> Reply {
    let org = r.org();
    let size = access_page_size(r)?;
    let (page, next) = r.page(&org.api_keys, r.param("cursor"), size)?;
    let data: Vec<Value> = page
        .iter()
        .map(|k| {
            json!({
                "id": k.id,
                "label": k.label,
                "createdAt": time(k.created_at),
                "lastActiveAt": k.last_active.map(time),
                "expiresAt": k.expires_at.map(time),
                "token": null,
                "resource": org.ari(),
                "orgId": org.id,
                "createdBy": access_person(org, k.created_by),
                "scopes": k.scopes,
                "revokedBy": k.revoked.map(|(by, _)| access_person(org, by)),
                "revocationDate": k.revoked.map(|(_, at)| time(at)),
            })
        })
        .collect();
    Ok(access_page(r, "api-keys", data, next))
}

/// The API Access API's page: `links.next` is the next cursor itself.
fn access_page(r: &Request, what: &str, data: Vec<Value>, next: Option<String>) -> Value {
    let mut links = json!({
        "self": r.url(&format!("/admin/api-access/v1/orgs/{}/{what}", r.org().id)),
    });
    if let Some(next) = next {
        links["next"] = json!(next);
    }
    json!({ "data": data, "links": links })
}

/// `GET /users/{accountId}/manage/api-tokens` (user management API): one
/// managed user's tokens, a bare array in its own field names.
fn user_api_tokens(r: &Request) -> Reply {
    let org = r.org();
    let user = find_user(r, r.path("accountId"))?;
    if user.claim_status != "managed" {
        return Err(not_found(r, "ADMIN-404-8", "Managed account"));
    }
    let tokens: Vec<Value> = org
        .api_tokens
        .iter()
        .filter(|t| org.users[t.owner].account_id == user.account_id)
        .map(|t| {
            json!({
                "id": t.id,
                "label": t.label,
                "createdAt": time(t.created_at),
                "lastAccess": t.last_active.map(time),
                "expiry": t.expires_at.map(time),
                "disabledStatus": t.blocked,
            })
        })
        .collect();
    Ok(Value::Array(tokens))
}

/// `GET /admin/api-access/v1/orgs/{orgId}/service-accounts`: the issue's
/// field list, times in epoch milliseconds.
fn service_accounts(r: &Request) -> Reply {
    let org = r.org();
    let size = access_page_size(r)?;
    let (page, next) = r.page(&org.identities.service_accounts, r.param("cursor"), size)?;
    let data = page
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "atlassianId": a.atlassian_id,
                "email": a.email,
                "displayName": a.name,
                "status": a.status,
                "createdById": a.created_by.map(|u| org.users[u].account_id.clone()),
                "description": a.description,
                "createdAt": a.created_at.timestamp_millis(),
                "updatedAt": a.updated_at.timestamp_millis(),
            })
        })
        .collect();
    Ok(access_page(r, "service-accounts", data, next))
}

/// Every service account's credentials of one kind, with its id.
fn service_credentials(
    org: &Org,
    of: impl Fn(&ServiceAccount) -> &Vec<Credential>,
) -> Vec<(&ServiceAccount, &Credential)> {
    org.identities
        .service_accounts
        .iter()
        .flat_map(|a| of(a).iter().map(move |c| (a, c)))
        .collect()
}

/// `GET .../service-accounts/api-tokens`: as the org's API tokens, with
/// the service account's id.
fn service_account_tokens(r: &Request) -> Reply {
    let org = r.org();
    let size = access_page_size(r)?;
    let items = service_credentials(org, |a| &a.tokens);
    let (page, next) = r.page(&items, r.param("cursor"), size)?;
    let data = page
        .iter()
        .map(|(a, t)| {
            json!({
                "id": t.id,
                "serviceAccountId": a.id,
                "label": t.label,
                "status": "ALLOWED",
                "createdAt": time(t.created_at),
                "expiresAt": t.expires_at.map(time),
                "lastActiveAt": t.last_active.map(time),
                "scopes": t.scopes,
            })
        })
        .collect();
    Ok(access_page(r, "service-accounts/api-tokens", data, next))
}

/// `GET .../service-accounts/oauth-clients`.
fn service_account_oauth_clients(r: &Request) -> Reply {
    let org = r.org();
    let size = access_page_size(r)?;
    let items = service_credentials(org, |a| &a.oauth_clients);
    let (page, next) = r.page(&items, r.param("cursor"), size)?;
    let data = page
        .iter()
        .map(|(a, c)| {
            json!({
                "clientId": c.id,
                "serviceAccountId": a.id,
                "name": c.label,
                "status": "ACTIVE",
                "scopes": c.scopes,
                "createdAt": time(c.created_at),
                "expiresAt": c.expires_at.map(time),
                "lastActiveAt": c.last_active.map(time),
            })
        })
        .collect();
    Ok(access_page(r, "service-accounts/oauth-clients", data, next))
}

/// `GET .../oauth-clients`: the organization's own OAuth clients.
fn oauth_clients(r: &Request) -> Reply {
    let org = r.org();
    let size = access_page_size(r)?;
    let (page, next) = r.page(&org.identities.oauth_clients, r.param("cursor"), size)?;
    let data = page
        .iter()
        .map(|c| {
            json!({
                "clientId": c.id,
                "name": c.name,
                "status": "ACTIVE",
                "scopes": c.scopes,
                "createdAt": time(c.created_at),
                "lastActiveAt": c.last_active.map(time),
                "createdBy": access_person(org, c.created_by),
            })
        })
        .collect();
    Ok(access_page(r, "oauth-clients", data, next))
}

/// Users one bulk fetch takes at most (the emulator's guess, as orgsql's).
const AUTH_POLICY_BATCH: usize = 100;

/// `POST /admin/control/v1/orgs/{orgId}/users/auth-policies/bulk-fetch`:
/// each managed user named, with the policy that governs them (its fields
/// null when none does); others are left out. One page.
fn auth_policies_bulk_fetch(r: &Request) -> Reply {
    let org = r.org();
    let body = r.json_body()?;
    let Some(ids) = body.get("userIds").and_then(Value::as_array) else {
        return Err(r.bad_request("ADMIN-400-30", "userIds is required"));
    };
    if ids.is_empty() || ids.len() > AUTH_POLICY_BATCH {
        return Err(r.bad_request(
            "ADMIN-400-31",
            &format!("userIds takes 1 to {AUTH_POLICY_BATCH} ids"),
        ));
    }
    let data: Vec<Value> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|id| {
            let i = org
                .users
                .iter()
                .position(|u| u.account_id == id && u.claim_status == "managed")?;
            let policy = org
                .identities
                .policy_of
                .get(i)
                .copied()
                .flatten()
                .and_then(|p| org.identities.auth_policies.get(p));
            Some(json!({
                "userId": id,
                "policyId": policy.map(|p| p.id.clone()),
                "policyName": policy.map(|p| p.name),
                "policyType": policy.map(|p| p.kind),
                "ssoEnforced": policy.map(|p| p.sso_enforced),
                "twoStepVerificationEnforced": policy.map(|p| p.two_step_enforced),
                "sessionDurationMinutes": policy.map(|p| p.session_minutes),
            }))
        })
        .collect();
    Ok(json!({ "data": data }))
}

/// `GET /admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}`:
/// a user's details, `deactivatedOn` among them: when the organization
/// deactivated the account, as its audit log has it (the newest such event).
fn user_details(r: &Request) -> Reply {
    let org = r.org();
    let directory = directory_filter(r, r.path("directoryId"))?;
    let user = find_user(r, r.path("accountId"))?;
    let mut details = user_json(org, user, &[], directory);
    let deactivated = org
        .events
        .iter()
        .filter(|_| user.deactivated_by_org())
        .find(|e| {
            e.action == "managed_account_deactivated"
                && e.context
                    .iter()
                    .any(|c| c["id"] == user.account_id.as_str())
        })
        .map(|e| time(e.time));
    details["deactivatedOn"] = json!(deactivated);
    details["platformRoles"] = json!(user.platform_roles);
    Ok(json!({ "data": details }))
}
