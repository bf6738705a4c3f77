//! `user_auth_policies`: the authentication policy that governs each
//! managed user (SSO enforced, two-step verification, session length), from
//! `POST /admin/control/v1/orgs/{orgId}/users/auth-policies/bulk-fetch`,
//! which takes the users' ids in its body, in batches. Three public clients
//! name the path; the body and the answer are unverified (API-ACCESS.md §2),
//! so every JSON name the decoder reads is in `ApiUserAuthPolicy` and
//! `BATCH`/`body` below: change them there when a real answer is seen.

use serde::Deserialize;
use serde_json::json;

use super::Label;
use super::filters::Filter;
use super::provider::{Fetch, Resource, Scan};
use super::users::every_managed_user;
use crate::api::{CursorIn, PageRequest};
use crate::row;

pub struct UserAuthPolicies;

/// Users per call: the documented maximum is unknown; 100 is the users
/// search's page size, so a batch is one page of the managed users.
const BATCH: usize = 100;

const BULK_FETCH: &str = "/admin/control/v1/orgs/{orgId}/users/auth-policies/bulk-fetch";

/// The call for one batch of account ids.
fn body(ids: &[String]) -> PageRequest {
    PageRequest::post(
        BULK_FETCH,
        json!({ "userIds": ids }),
        CursorIn::Body { keep_filters: true },
    )
}

/// One user's policy, as the answer is taken to give it (unverified).
#[derive(Debug, Deserialize)]
pub struct ApiUserAuthPolicy {
    #[serde(rename = "userId")]
    user_id: String,
    #[serde(rename = "policyId")]
    policy_id: Option<String>,
    #[serde(rename = "policyName")]
    policy_name: Option<String>,
    #[serde(rename = "policyType")]
    policy_type: Option<String>,
    #[serde(rename = "ssoEnforced")]
    sso_enforced: Option<bool>,
    #[serde(rename = "twoStepVerificationEnforced")]
    two_step_enforced: Option<bool>,
    #[serde(rename = "sessionDurationMinutes")]
    session_minutes: Option<i64>,
}

row! {
    UserAuthPolicyRow(origin, p: ApiUserAuthPolicy) {
        account_id: key = p.user_id, "Managed user's account id (joins users.account_id)";
        policy_id: text = p.policy_id, "The authentication policy that governs them; NULL: none";
        policy_name: text = p.policy_name, "Its name";
        policy_type: text = p.policy_type, "Its type, as the API gives it (e.g. the default or a non-billable policy)";
        sso_enforced: flag = p.sso_enforced, "Whether the policy enforces single sign-on";
        two_step_enforced: flag = p.two_step_enforced, "Whether the policy enforces two-step verification";
        session_duration_minutes: count = p.session_minutes, "How long a session lasts before logging in again";
    }
}

impl Resource for UserAuthPolicies {
    type Data = Vec<ApiUserAuthPolicy>;
    type Row = UserAuthPolicyRow;

    const NAME: &'static str = "user_auth_policies";
    const DESCRIPTION: &'static str = "The authentication policy of each managed user: SSO, \
        two-step verification, session length (bulk fetch in batches; shape unverified)";
    const KEY: &'static [&'static str] = &["account_id"];
    const LABELS: &'static [Label] = &[Label::email("account_id")];
    /// account_id picks the users asked about: exact.
    const FILTERS: &'static [Filter] = &[Filter::parent("account_id", "userIds")];

    fn fetch(scan: &Scan) -> Fetch {
        scan.batched(every_managed_user(), BATCH, body)
    }
}
