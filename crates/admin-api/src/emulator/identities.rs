//! The identities beside people's accounts: service accounts with their
//! tokens and OAuth clients, the organization's OAuth clients, and the
//! authentication policy of each managed user. Planted by rule (not drawn
//! at random) so that each control over them has findings the tests can
//! name: a service account without an owner, one unused for months, a
//! token that never expires, admins under a policy without SSO, managed
//! users under none.

use chrono::{DateTime, Duration, Utc};

/// What `Org::identities` holds.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    pub service_accounts: Vec<ServiceAccount>,
    /// The organization's OAuth clients (not a service account's).
    pub oauth_clients: Vec<OauthClient>,
    pub auth_policies: Vec<AuthPolicy>,
    /// Per user (index into `Org::users`): the policy (index into
    /// `auth_policies`) that governs them; `None` for none. Only managed
    /// accounts are under a policy.
    pub policy_of: Vec<Option<usize>>,
}

#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub id: String,
    /// Its Atlassian account id.
    pub atlassian_id: String,
    pub name: &'static str,
    pub email: String,
    pub status: &'static str,
    pub description: &'static str,
    /// Index into `Org::users`; `None`: the API names nobody.
    pub created_by: Option<usize>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tokens: Vec<Credential>,
    pub oauth_clients: Vec<Credential>,
}

/// A service account's API token or OAuth client.
#[derive(Debug, Clone)]
pub struct Credential {
    pub id: String,
    pub label: &'static str,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_active: Option<DateTime<Utc>>,
    pub scopes: Vec<&'static str>,
}

#[derive(Debug, Clone)]
pub struct OauthClient {
    pub id: String,
    pub name: &'static str,
    pub created_by: usize,
    pub created_at: DateTime<Utc>,
    pub last_active: Option<DateTime<Utc>>,
    pub scopes: Vec<&'static str>,
}

#[derive(Debug, Clone)]
pub struct AuthPolicy {
    pub id: String,
    pub name: &'static str,
    pub kind: &'static str,
    pub sso_enforced: bool,
    pub two_step_enforced: bool,
    pub session_minutes: i64,
}

impl AuthPolicy {
    /// What the controls ask of an admin's policy.
    pub fn strong(&self) -> bool {
        self.sso_enforced && self.two_step_enforced
    }
}

/// The identities of an organization whose people are `people` (each
/// user's claim status and status, in `Org::users` order), all times
/// relative to `now`. Ids come from the seed and a counter so they stay the
/// same run after run. Given the people, not the `Org`: org.rs holds what
/// this makes, so this file does not import it.
pub(super) fn identities(seed: u64, now: DateTime<Utc>, people: &[(&str, &str)]) -> Identities {
    let days = Duration::days;
    let id = |kind: u64, n: u64| {
        let x = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(kind << 32 | n);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            x >> 32,
            (x >> 16) & 0xffff,
            x & 0xfff,
            (kind * 97 + n) & 0xfff,
            x & 0xffff_ffff_ffff
        )
    };
    let primary = 0;
    // Someone who is no longer here: their service account has no owner.
    let gone = people
        .iter()
        .position(|&(claim, status)| claim == "managed" && status != "active");
    let token = |n: u64, label, age: i64, expires: Option<i64>, used: Option<i64>| Credential {
        id: format!("ats_{}", &id(2, n).replace('-', "")[..16]),
        label,
        created_at: now - days(age),
        expires_at: expires.map(|d| now + days(d)),
        last_active: used.map(|d| now - days(d)),
        scopes: vec!["read:jira-work"],
    };
    let client = |n: u64, label, age: i64, used: Option<i64>| Credential {
        id: format!("oc_{}", &id(3, n).replace('-', "")[..20]),
        label,
        created_at: now - days(age),
        expires_at: None,
        last_active: used.map(|d| now - days(d)),
        scopes: vec!["read:jira-work", "write:jira-work"],
    };
    let account = |n: u64,
                   name: &'static str,
                   description: &'static str,
                   created_by: Option<usize>,
                   age: i64,
                   tokens: Vec<Credential>,
                   oauth_clients: Vec<Credential>| ServiceAccount {
        id: id(1, n),
        atlassian_id: format!("712020:{}", id(4, n)),
        name,
        email: format!("{name}@serviceaccount.atlassian.com"),
        status: "ACTIVE",
        description,
        created_by,
        created_at: now - days(age),
        updated_at: now - days(age / 2),
        tokens,
        oauth_clients,
    };
    let service_accounts = vec![
        // In use, owned, every credential expiring: passes every control.
        account(
            1,
            "jira-automation",
            "Jira automation rules",
            Some(primary),
            300,
            vec![token(1, "rules", 200, Some(150), Some(2))],
            vec![client(1, "rules-oauth", 200, Some(1))],
        ),
        // Its creator has left: no owner.
        account(
            2,
            "backup-exporter",
            "Nightly Confluence backup",
            gone,
            400,
            vec![token(2, "backup", 300, Some(60), Some(5))],
            Vec::new(),
        ),
        // Nobody named, unused for months, a token that never expires.
        account(
            3,
            "legacy-sync",
            "Old HR sync",
            None,
            700,
            vec![token(3, "sync", 650, None, Some(150))],
            vec![client(2, "sync-oauth", 650, None)],
        ),
        // Owned and in use, but its token never expires.
        account(
            4,
            "reporting-bot",
            "Weekly reports",
            Some(primary),
            120,
            vec![token(4, "reports", 100, None, Some(3))],
            Vec::new(),
        ),
        // Owned, but unused for 120 days.
        account(
            5,
            "old-migration",
            "Server to Cloud migration",
            Some(primary),
            500,
            vec![token(5, "migration", 480, Some(30), Some(120))],
            Vec::new(),
        ),
    ];
    let oauth_clients = vec![
        OauthClient {
            id: format!("oc_{}", &id(5, 1).replace('-', "")[..20]),
            name: "Slack integration",
            created_by: primary,
            created_at: now - days(400),
            last_active: Some(now - days(1)),
            scopes: vec!["read:jira-work"],
        },
        OauthClient {
            id: format!("oc_{}", &id(5, 2).replace('-', "")[..20]),
            name: "BI connector",
            created_by: primary,
            created_at: now - days(250),
            last_active: None,
            scopes: vec!["read:jira-work", "read:confluence-content.all"],
        },
    ];
    let policy = |n: u64, name, kind, sso, two_step, session_minutes| AuthPolicy {
        id: id(6, n),
        name,
        kind,
        sso_enforced: sso,
        two_step_enforced: two_step,
        session_minutes,
    };
    let auth_policies = vec![
        policy(1, "Employees (SSO)", "idp", true, true, 720),
        policy(2, "Default policy", "local", false, true, 1440),
        policy(3, "Contractors", "local", false, false, 4320),
    ];
    // The primary admin and most managed users are under the SSO policy;
    // by position, some are under a weaker one and a few under none.
    let policy_of = people
        .iter()
        .enumerate()
        .map(|(i, &(claim, _))| match i {
            _ if claim != "managed" => None,
            0 => Some(0),
            _ if i % 23 == 5 => None,
            _ if i % 11 == 3 => Some(1),
            _ if i % 17 == 7 => Some(2),
            _ => Some(0),
        })
        .collect();
    Identities {
        service_accounts,
        oauth_clients,
        auth_policies,
        policy_of,
    }
}
