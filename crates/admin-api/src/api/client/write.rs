//! The one way orgsql changes an organization: `Client::write`, for the
//! calls `orgsql review apply --execute` makes, and nothing else. Queries,
//! exports, checks, reviews and watch go through `Client::send`, which
//! refuses every method but GET and the search POSTs.
//!
//! A write is sent once: it is paced by the budgets like a read, and tried
//! again only when the API answered 429 (it did not act on it) or the
//! connection could not be made (nothing was sent). Any other answer, 2xx
//! or error, is the answer: the caller records it.

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION};

use super::{ApiError, Client, PageRequest, api_message};

/// Every call `write` may make, as method and path template.
pub const WRITES: [(&str, &str); 5] = [
    // An organization-level role (org admin) of a user.
    (
        "POST",
        "/admin/v1/orgs/{orgId}/users/{userId}/role-assignments/revoke",
    ),
    // A role of a user on a resource (a product site, the organization).
    ("POST", "/admin/v1/orgs/{orgId}/users/{userId}/roles/revoke"),
    // A user's membership of a group, and so every grant the group gives.
    (
        "DELETE",
        "/admin/v2/orgs/{orgId}/directories/{directoryId}/groups/{groupId}/memberships/{accountId}",
    ),
    // A user's access in a directory, suspended (restorable).
    (
        "POST",
        "/admin/v2/orgs/{orgId}/directories/{directoryId}/users/{accountId}/suspend",
    ),
    // One API token of a managed user.
    ("DELETE", "/users/{accountId}/manage/api-tokens/{tokenId}"),
];

/// The roles `roles/revoke` takes (`RoleApiRequest.role`, the OpenAPI
/// spec's enum).
pub const REVOCABLE_ROLES: [&str; 10] = [
    "atlassian/user",
    "atlassian/user-access-admin",
    "atlassian/admin",
    "atlassian/guest",
    "atlassian/contributor",
    "atlassian/customer",
    "atlassian/basic",
    "atlassian/stakeholder",
    "atlassian/site-admin",
    "atlassian/org-admin",
];

/// The headers that carry the API's id for a request, the first found kept.
const REQUEST_ID_HEADERS: [&str; 3] = ["atl-traceid", "x-request-id", "x-trace-id"];

/// What the API answered a write.
#[derive(Debug, Clone)]
pub struct Written {
    pub status: u16,
    /// The API's id for the request, when it sent one.
    pub request_id: Option<String>,
    /// The API's message for an error (empty for a 2xx).
    pub message: String,
}

impl Written {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl PageRequest {
    /// A write call: `method` on `template` (one of `WRITES`).
    pub fn write(method: Method, template: &'static str) -> Self {
        let mut request = PageRequest::get(template);
        request.method = method;
        request
    }

    /// The JSON body of a write.
    pub fn body(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }
}

impl Client {
    /// Send one write (see the module's words on retries). Refuses any call
    /// not in `WRITES`.
    pub async fn write(&self, request: &PageRequest) -> Result<Written, ApiError> {
        let endpoint = request.endpoint();
        let method = request.method.as_str();
        if !WRITES.contains(&(method, request.template)) {
            return Err(ApiError::NotAWrite { endpoint });
        }
        let url = self.url(request)?;
        let policy = &self.inner.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (waited, in_flight) = self.turn(&endpoint).await?;
            let started_at = chrono::Utc::now();
            let clock = std::time::Instant::now();
            let mut builder = self
                .inner
                .http
                .request(request.method.clone(), url.clone())
                .header(AUTHORIZATION, self.auth_for(request).clone())
                .header(ACCEPT, "application/json");
            if let Some(body) = &request.body {
                builder = builder.json(body);
            }
            let result = builder.send().await;
            let log = |status: Option<u16>| {
                tracing::debug!(
                    target: "orgsql::request",
                    "{} {} -> {}, attempt {attempt}, waited {:.0} ms (a write)",
                    request.method,
                    request.template,
                    status.map_or("no answer".to_string(), |s| s.to_string()),
                    waited.as_secs_f64() * 1000.0,
                );
                self.record(request, started_at, clock, waited, attempt, status, None);
            };
            let delay = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let request_id = REQUEST_ID_HEADERS.iter().find_map(|name| {
                        headers
                            .get(*name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    });
                    let body = response.bytes().await.unwrap_or_default();
                    log(Some(status));
                    let delay = policy.delay(attempt, Some(&headers), chrono::Utc::now());
                    if status != 429 || attempt >= policy.max_attempts || delay > policy.max_delay {
                        in_flight.answered(Some(&headers));
                        let message = if (200..300).contains(&status) {
                            String::new()
                        } else {
                            api_message(&body)
                        };
                        return Ok(Written {
                            status,
                            request_id,
                            message,
                        });
                    }
                    // Refused for the budget, not acted on: the pacer holds
                    // the budget, the next attempt waits there.
                    in_flight.throttled(delay);
                    None
                }
                Err(e) if e.is_connect() && attempt < policy.max_attempts => {
                    in_flight.answered(None);
                    log(None);
                    Some(policy.delay(attempt, None, chrono::Utc::now()))
                }
                Err(e) => {
                    in_flight.answered(None);
                    log(None);
                    // Perhaps sent, perhaps acted on: the caller reads the
                    // grant again before it tries once more.
                    return Err(ApiError::Transport {
                        endpoint,
                        detail: e.without_url().to_string(),
                    });
                }
            };
            if let Some(delay) = delay {
                tokio::time::sleep(delay.min(policy.max_delay)).await;
            }
        }
    }
}
