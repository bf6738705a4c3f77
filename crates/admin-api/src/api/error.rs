//! One error type for everything the Admin API can answer, with a hint for the user.

use serde_json::Value;

// The API's words are quoted as a terminal may show them: a line break in
// an error is then always orgsql's own.
use crate::text::visible;

/// What went wrong talking to the Admin API. Every variant names the endpoint
/// (method and path template, never ids or keys) so the user knows where.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{endpoint}: HTTP {status}: {}{}", visible(message), hint_for(*status, *scope))]
    Status {
        endpoint: String,
        status: u16,
        message: String,
        /// The scope the endpoint needs of a scoped key, if it is one of those.
        scope: Option<&'static str>,
    },
    #[error("{endpoint}: {} (gave up after {attempts} attempts){}", visible(detail), hint_for(*status, None))]
    RetriesExhausted {
        endpoint: String,
        status: u16,
        attempts: u32,
        detail: String,
    },
    #[error(
        "{endpoint}: could not reach the API: {}. Check --base-url and the network",
        visible(detail)
    )]
    Transport { endpoint: String, detail: String },
    #[error("the base URL {url}{of} is refused: {problem}")]
    BaseUrl {
        url: String,
        /// " (connection NAME)" when it came from the config file.
        of: String,
        problem: String,
    },
    #[error(
        "{endpoint}: the API returned the same page cursor twice; stopping instead of looping \
         forever. The listing would be incomplete, so the query fails"
    )]
    RepeatedCursor { endpoint: String },
    #[error("{endpoint}: unexpected response body: {}", visible(detail))]
    Decode { endpoint: String, detail: String },
    #[error(
        "{endpoint}: the answer is not the Admin API's JSON (HTTP {status}, Content-Type \
         {}, starting {}). Hint: a proxy or a login page may be answering \
         instead of the API; check --base-url (ORGSQL_BASE_URL) and the network",
        visible(content_type),
        visible(start)
    )]
    NotTheApi {
        endpoint: String,
        status: u16,
        content_type: String,
        start: String,
    },
    #[error(
        "{endpoint}: the API sent the same item twice in one listing ({}); a listing that \
         repeats itself would not end, so the query stops",
        visible(item)
    )]
    RepeatedItem { endpoint: String, item: String },
    #[error(
        "{table}: the API counts {counted} for {endpoint} ({count_endpoint}, asked before and \
         after the listing, the same both times), but the listing's pages held {listed}: the \
         API left rows out of its pages (or added some) while its cursor chain ran to its end. \
         The result would be incomplete, so it fails rather than be used as evidence. Run it \
         again; if it repeats, report it to Atlassian support (orgsql_requests and \
         orgsql_listings show the calls)"
    )]
    Incomplete {
        /// The table whose scan read it (and the organization, when several).
        table: String,
        endpoint: String,
        count_endpoint: String,
        counted: u64,
        listed: u64,
    },
    #[error(
        "{endpoint}: no SCIM token for directory {directory}{}. The SCIM API takes each \
         directory's own token (made when the identity provider's directory was created in \
         admin.atlassian.com). Add it to the connection in the config file: \
         [connections.NAME.scim.\"{directory}\"] with token_env, token_file or token_command",
        if configured.is_empty() { String::new() } else { format!(" (tokens are configured for: {})", configured.join(", ")) }
    )]
    NoScimToken {
        endpoint: String,
        directory: String,
        configured: Vec<String>,
    },
    #[error(
        "{endpoint}: the SCIM listing of directory {directory} ended short: totalResults says \
         {total}, the pages held {listed} before an empty one. The result would be incomplete, \
         so the query fails; run it again, and if it repeats, report it to Atlassian support"
    )]
    ScimShort {
        endpoint: String,
        directory: String,
        total: u64,
        listed: u64,
    },
    #[error("{endpoint}: refused: orgsql only calls read endpoints")]
    NotReadOnly { endpoint: String },
    #[error("{endpoint}: refused: not one of the writes `orgsql review apply` makes")]
    NotAWrite { endpoint: String },
    #[error(
        "{endpoint}: the next request would have to wait {}: {why}. orgsql waits at most {} \
         (--max-wait); try again later, or raise --max-wait",
        duration_words(*wait),
        duration_words(*max)
    )]
    WaitTooLong {
        endpoint: String,
        wait: std::time::Duration,
        max: std::time::Duration,
        why: String,
    },
}

impl ApiError {
    /// Where it happened: the endpoint, and the organization when a session
    /// reads several.
    pub(crate) fn place_mut(&mut self) -> &mut String {
        match self {
            ApiError::Status { endpoint, .. }
            | ApiError::RetriesExhausted { endpoint, .. }
            | ApiError::Transport { endpoint, .. }
            | ApiError::RepeatedCursor { endpoint }
            | ApiError::Decode { endpoint, .. }
            | ApiError::NotTheApi { endpoint, .. }
            | ApiError::RepeatedItem { endpoint, .. }
            | ApiError::NotReadOnly { endpoint }
            | ApiError::NotAWrite { endpoint }
            | ApiError::NoScimToken { endpoint, .. }
            | ApiError::ScimShort { endpoint, .. }
            | ApiError::WaitTooLong { endpoint, .. } => endpoint,
            ApiError::BaseUrl { url, .. } => url,
            ApiError::Incomplete { table, .. } => table,
        }
    }
}

/// A duration as people say it: "0.4 s", "45 s", "3 min 20 s", "24 h".
pub fn duration_words(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(10) {
        return format!("{:.1} s", d.as_secs_f64());
    }
    let secs = d.as_secs_f64().ceil() as u64;
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 if secs.is_multiple_of(60) => format!("{} min", secs / 60),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ if secs.is_multiple_of(3600) => format!("{} h", secs / 3600),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

fn hint_for(status: u16, scope: Option<&'static str>) -> String {
    if let (401 | 403, Some(scope)) = (status, scope) {
        return format!(
            ". Hint: this API needs a scoped organization API key ({scope}); give one with \
             ATLASSIAN_SCOPED_API_KEY or --scoped-api-key-file (the main key stays for users and \
             groups, which refuse scoped keys)"
        );
    }
    match status {
        401 => {
            ". Hint: check the API key (ATLASSIAN_API_KEY, --api-key-file, or the connection's in the \
             config file) and that it is an \
             organization API key from admin.atlassian.com > Settings > API keys, not a personal API token"
        }
        403 => {
            ". Hint: the key may not read this resource; create an org-admin \"API key without scopes\" \
             in admin.atlassian.com > Settings > API keys"
        }
        404 => {
            ". Hint: check the organization id (--org-id or ATLASSIAN_ORG_ID); it is the UUID in \
             admin.atlassian.com/o/<org id>/overview"
        }
        429 => {
            ". Hint: the rate limit did not reset in time; try again later, or raise --max-retries \
             or --max-wait"
        }
        _ => "",
    }
    .to_string()
}

/// The API's own message from any of its error envelopes: JSON:API `errors[]`,
/// gateway `{code, message}`, Spring `{error, message}`, `{key}`, SCIM `{detail}`.
pub fn api_message(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        return if text.is_empty() {
            "(empty body)".to_string()
        } else {
            text.chars().take(200).collect()
        };
    };
    if let Some(errors) = json.get("errors").and_then(Value::as_array) {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| {
                let text = ["detail", "title", "message"]
                    .iter()
                    .find_map(|k| e.get(*k).and_then(Value::as_str))
                    .unwrap_or("error");
                match e.get("code").and_then(Value::as_str) {
                    Some(code) => format!("{text} ({code})"),
                    None => text.to_string(),
                }
            })
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    for key in ["message", "detail", "key", "error"] {
        if let Some(text) = json.get(key).and_then(Value::as_str) {
            return text.to_string();
        }
    }
    json.to_string().chars().take(200).collect()
}
