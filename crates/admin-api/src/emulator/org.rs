//! The emulated organization: generated deterministically from a seed and a
//! size, with the variety an auditor meets (managed and unmanaged accounts,
//! users without MFA, suspended and deactivated ones, admins, policies, an
//! audit log over the last 90 days, and the history of every role held,
//! in history.rs).

use chrono::{DateTime, Duration, Utc};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// The demo organization's "now", 2026-11-30T12:00:00Z: `OrgSpec::default()`
/// (`--demo`, `orgsql emulator`) generates its history up to this instant,
/// never from the clock, so the demo prints the same bytes every run.
pub const DEMO_NOW: DateTime<Utc> = DateTime::from_timestamp_nanos(1_796_040_000_000_000_000);

/// How big an organization to generate, and from which seed.
#[derive(Debug, Clone)]
pub struct OrgSpec {
    pub seed: u64,
    pub users: usize,
    /// Events of the 90 days before `now` other than grants and removals of
    /// roles, memberships and product access; the history of those (every
    /// one held now, from the day it was granted, and some taken back), and
    /// the deactivation of each managed account deactivated or deleted now,
    /// come on top.
    pub events: usize,
    /// "Now" for the generated history: nothing happens after it. Every
    /// date of the organization is drawn relative to it, never the clock.
    pub now: DateTime<Utc>,
}

impl OrgSpec {
    /// The spec of the `number`-th other organization of the same owner:
    /// the same size and "now", a seed of its own.
    pub fn sibling(&self, number: usize) -> OrgSpec {
        OrgSpec {
            seed: self.seed.wrapping_add(1000 * number as u64),
            ..self.clone()
        }
    }
}

impl Default for OrgSpec {
    fn default() -> Self {
        Self {
            seed: 42,
            users: 250,
            events: 3000,
            now: DEMO_NOW,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub directories: Vec<Directory>,
    pub domains: Vec<Domain>,
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    pub workspaces: Vec<Workspace>,
    pub policies: Vec<Policy>,
    /// Newest first, as the API returns them.
    pub events: Vec<Event>,
    pub event_actions: Vec<EventAction>,
    /// Managed users' API tokens (the API Access API lists these).
    pub api_tokens: Vec<ApiToken>,
    /// The organization's admin API keys.
    pub api_keys: Vec<OrgApiKey>,
    /// The identity providers' SCIM directories (scim.rs).
    pub scim: Vec<ScimDirectory>,
    /// Roles revoked from a group (writes.rs): (group index, resource id,
    /// role). The roles a group grants come from its name (`GROUP_GRANTS`);
    /// these no longer.
    pub group_grants_revoked: Vec<(usize, String, &'static str)>,
    /// Service accounts, OAuth clients and authentication policies
    /// (identities.rs).
    pub identities: super::identities::Identities,
    /// Every platform role ever held directly, and when (history.rs): the
    /// ground truth the audit log was written from.
    pub(super) tenures: Vec<Tenure>,
}

/// A platform role a user held directly, from one time until another or
/// now: what the generated log says, for tests of replaying it.
#[derive(Debug, Clone)]
pub struct RoleTenure {
    pub account_id: String,
    pub role: &'static str,
    pub from: DateTime<Utc>,
    /// `None`: held now.
    pub until: Option<DateTime<Utc>>,
}

impl Org {
    /// Every platform role ever held directly, and when, as generated.
    pub fn role_tenures(&self) -> Vec<RoleTenure> {
        self.tenures
            .iter()
            .map(|t| RoleTenure {
                account_id: self.users[t.user].account_id.clone(),
                role: t.role,
                from: t.from,
                until: t.until,
            })
            .collect()
    }
}

/// A user's API token.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// `asp_...`, as audit events name it.
    pub id: String,
    pub label: String,
    /// Index into `Org::users`: a managed user.
    pub owner: usize,
    pub created_at: DateTime<Utc>,
    /// `None`: never used.
    pub last_active: Option<DateTime<Utc>>,
    /// `None`: never expires.
    pub expires_at: Option<DateTime<Utc>>,
    pub blocked: bool,
    /// Empty for a classic, unscoped token.
    pub scopes: Vec<&'static str>,
    /// Index into `Org::users`, when the API says who.
    pub created_by: Option<usize>,
}

/// An organization admin API key.
#[derive(Debug, Clone)]
pub struct OrgApiKey {
    pub id: String,
    pub label: &'static str,
    pub created_at: DateTime<Utc>,
    pub last_active: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Empty: an unscoped key.
    pub scopes: Vec<&'static str>,
    /// Index into `Org::users`.
    pub created_by: usize,
    /// Who revoked it and when.
    pub revoked: Option<(usize, DateTime<Utc>)>,
}

/// One SCIM directory: which of the organization's directories it is, its
/// token, and what the identity provider has pushed to it.
#[derive(Debug, Clone)]
pub struct ScimDirectory {
    /// Index into `Org::directories`.
    pub directory: usize,
    pub token: String,
    pub users: Vec<ScimUser>,
    pub groups: Vec<ScimGroup>,
}

#[derive(Debug, Clone)]
pub struct ScimUser {
    pub id: String,
    pub external_id: String,
    pub user_name: String,
    pub email: String,
    pub display_name: String,
    pub active: bool,
    /// The account it is linked to; `None`: linked to none.
    pub account_id: Option<String>,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct ScimGroup {
    pub id: String,
    pub external_id: String,
    pub name: String,
    /// SCIM user ids (of the same directory).
    pub members: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Directory {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub claim_type: &'static str,
    pub claim_status: &'static str,
}

#[derive(Debug, Clone)]
pub struct User {
    pub account_id: String,
    pub name: String,
    pub nickname: String,
    pub email: String,
    pub email_verified: bool,
    pub account_status: &'static str,
    pub membership_status: &'static str,
    pub status: &'static str,
    pub claim_status: &'static str,
    pub management_source: Option<&'static str>,
    pub mfa_enabled: Option<bool>,
    pub added_to_org: DateTime<Utc>,
    pub job_title: Option<&'static str>,
    pub department: Option<&'static str>,
    pub organization: Option<&'static str>,
    pub location: Option<&'static str>,
    pub time_zone: &'static str,
    pub directory: usize,
    pub platform_roles: Vec<&'static str>,
    /// Sites whose site-admin role was revoked (writes.rs) while the user
    /// stays site admin of the others: `platform_roles` holds it for all.
    pub site_admin_revoked: Vec<String>,
    pub product_access: Vec<ProductAccess>,
    /// Indices into `Org::groups`.
    pub groups: Vec<usize>,
}

impl User {
    /// The last time they used any product; `None`: never.
    pub(super) fn last_active(&self) -> Option<DateTime<Utc>> {
        self.product_access
            .iter()
            .filter_map(|p| p.last_active)
            .max()
    }

    /// A managed account deactivated by the organization: deactivated, or
    /// deleted (deactivated for a grace period before it goes). The log
    /// holds when (history.rs).
    pub(super) fn deactivated_by_org(&self) -> bool {
        self.claim_status == "managed" && matches!(self.status, "deactivated" | "for_deletion")
    }

    /// When they could have a session: from joining until their last
    /// product activity (a session is activity), if active or suspended now
    /// (the log does not say when a suspension began, so their activity
    /// bounds it) or deactivated by the organization (after that activity,
    /// history.rs). `None`: never, as for an account not invited, one that
    /// never used a product, or one deactivated outside the organization.
    fn session_span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let may = matches!(self.status, "active" | "suspended") || self.deactivated_by_org();
        let last = self.last_active().filter(|_| may)?;
        Some((self.added_to_org, last))
    }
}

#[derive(Debug, Clone)]
pub struct ProductAccess {
    /// Index into `Org::workspaces`.
    pub workspace: usize,
    pub last_active: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub directory: usize,
    pub name: String,
    pub description: Option<String>,
    pub external_synced: bool,
    pub managed_by: &'static str,
    pub resource_count: i64,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub type_key: &'static str,
    pub type_name: &'static str,
    pub host_url: Option<String>,
    pub status: &'static str,
    pub realm: &'static str,
    pub regions: Vec<&'static str>,
    pub sandbox: &'static str,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub usage: Option<i64>,
    pub capacity: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub kind: &'static str,
    pub name: &'static str,
    pub status: &'static str,
    pub rule: Value,
    /// (workspace ARI, application status)
    pub resources: Vec<(String, &'static str)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub time: DateTime<Utc>,
    /// When the API processed it: after it happened, by seconds for most
    /// events and by hours or days for a few; never after "now".
    pub processed_at: DateTime<Utc>,
    pub action: &'static str,
    pub actor_id: String,
    pub actor_name: String,
    pub actor_email: Option<String>,
    /// (authType, tokenId) when the actor used a token.
    pub auth: Option<(&'static str, String)>,
    pub context: Vec<Value>,
    pub container: Vec<Value>,
    pub location: Option<Location>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Location {
    pub ip: String,
    pub city: &'static str,
    pub region: &'static str,
    pub country: &'static str,
}

/// A role a group grants on one resource.
#[derive(Debug, Clone)]
pub struct GroupRole {
    pub resource_id: String,
    pub resource_owner: &'static str,
    pub roles: Vec<&'static str>,
    pub default_role: Option<&'static str>,
}

/// A role a user holds on one resource, and how it was assigned.
#[derive(Debug, Clone)]
pub struct UserRole {
    pub resource_id: String,
    pub resource_owner: &'static str,
    /// `None` for platform roles (org-admin, site-admin), as the API says.
    pub directory: Option<usize>,
    pub role: &'static str,
    pub methods: Vec<&'static str>,
}

/// What a group's role is granted on.
enum Target {
    Org,
    /// Every workspace with a site (a host URL).
    Sites,
    /// Workspaces of these product type keys.
    Products(&'static [&'static str]),
}

/// The roles groups grant: group name, role, where, and whether the group is
/// the product's default group for that role. `legacy-admins` is empty yet
/// still grants org-admin: a finding the compliance pack should report.
const GROUP_GRANTS: &[(&str, &str, Target, bool)] = &[
    ("org-admins", "atlassian/org-admin", Target::Org, false),
    ("legacy-admins", "atlassian/org-admin", Target::Org, false),
    ("site-admins", "atlassian/site-admin", Target::Sites, false),
    (
        "jira-administrators",
        "atlassian/admin",
        Target::Products(&["jira-software", "jira-servicedesk"]),
        false,
    ),
    (
        "jira-software-users",
        "atlassian/user",
        Target::Products(&["jira-software"]),
        true,
    ),
    (
        "confluence-administrators",
        "atlassian/admin",
        Target::Products(&["confluence"]),
        false,
    ),
    (
        "confluence-users",
        "atlassian/user",
        Target::Products(&["confluence"]),
        true,
    ),
    (
        "jira-servicemanagement-users",
        "atlassian/user",
        Target::Products(&["jira-servicedesk"]),
        true,
    ),
    (
        "bitbucket-users",
        "atlassian/user",
        Target::Products(&["bitbucket"]),
        true,
    ),
];

#[derive(Debug, Clone)]
pub struct EventAction {
    pub id: String,
    pub display_name: &'static str,
    pub group_display_name: &'static str,
}

const FIRST: &[&str] = &[
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Mia",
    "William",
    "Amelia",
    "Benjamin",
    "Harper",
    "Lucas",
    "Evelyn",
    "Henry",
    "Abigail",
    "Alexander",
    "Priya",
    "Arjun",
    "Mei",
    "Hiroshi",
    "Fatima",
    "Omar",
    "Chloe",
    "Mateo",
    "Sofia",
    "Diego",
    "Aisha",
    "Kwame",
    "Ingrid",
    "Lars",
    "Zoe",
    "Nikolai",
    "Yuki",
    "Ananya",
    "Gabriel",
    "Lena",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Patel",
    "Nguyen",
    "Kim",
    "Chen",
    "Singh",
    "Okafor",
    "Rossi",
    "Novak",
    "Larsen",
    "Tanaka",
    "Costa",
    "Schmidt",
    "Dubois",
    "Kowalski",
    "Haddad",
    "Mensah",
    "Ivanova",
    "Sato",
    "Fischer",
    "Walsh",
];
const TITLES: &[&str] = &[
    "Software Engineer",
    "Senior Software Engineer",
    "Product Manager",
    "Designer",
    "Engineering Manager",
    "Support Engineer",
    "Account Executive",
    "Data Analyst",
    "IT Administrator",
    "Security Analyst",
    "Recruiter",
    "QA Engineer",
    "Site Reliability Engineer",
    "Marketing Manager",
    "Finance Analyst",
];
const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Product",
    "Design",
    "Support",
    "Sales",
    "Marketing",
    "Finance",
    "People",
    "IT",
    "Security",
];
const PLACES: &[(&str, &str, &str, &str)] = &[
    (
        "San Francisco",
        "California",
        "United States",
        "America/Los_Angeles",
    ),
    ("Austin", "Texas", "United States", "America/Chicago"),
    ("New York", "New York", "United States", "America/New_York"),
    ("Sydney", "New South Wales", "Australia", "Australia/Sydney"),
    ("London", "England", "United Kingdom", "Europe/London"),
    ("Berlin", "Berlin", "Germany", "Europe/Berlin"),
    (
        "Amsterdam",
        "North Holland",
        "Netherlands",
        "Europe/Amsterdam",
    ),
    ("Bengaluru", "Karnataka", "India", "Asia/Kolkata"),
    ("Tokyo", "Tokyo", "Japan", "Asia/Tokyo"),
    ("Toronto", "Ontario", "Canada", "America/Toronto"),
];
/// Claimed domains (verified) and one still being verified.
const CLAIMED: &[(&str, &str, &str)] = &[
    ("acme.com", "dns", "verified"),
    ("acme.io", "http", "verified"),
    ("acme-labs.com", "dns", "verified"),
    ("acme-eu.com", "dns", "unverified"),
];
const OUTSIDE: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "contractor-hub.io",
    "partnerco.com",
];
const GROUP_NAMES: &[(&str, &str)] = &[
    ("org-admins", "Organization administrators"),
    ("site-admins", "Site administrators for every product"),
    (
        "jira-administrators",
        "This group provides admin access to Jira.",
    ),
    ("jira-software-users", "Grants access to Jira Software"),
    (
        "confluence-administrators",
        "This group provides admin access to Confluence.",
    ),
    ("confluence-users", "Grants access to Confluence"),
    ("jira-servicemanagement-users", "Agents of the service desk"),
    ("bitbucket-users", "Grants access to Bitbucket"),
    ("engineering", "All engineers"),
    ("product", "Product management"),
    ("design", "Design team"),
    ("support", "Customer support"),
    ("sales", "Sales"),
    ("marketing", "Marketing"),
    ("finance", "Finance"),
    ("people", "People team"),
    ("security", "Security team"),
    ("it-ops", "IT operations"),
    ("sre", "Site reliability"),
    ("data-platform", "Data platform team"),
    ("mobile", "Mobile apps team"),
    ("leadership", "Leadership team"),
    (
        "legacy-admins",
        "Old admin group kept for the migration; should be empty",
    ),
];

/// Actions of the generated audit log, with a weight, a display name and a
/// group. The weights of the actions history.rs writes size its changes of
/// the last 90 days instead.
pub(super) const ACTIONS: &[(&str, u32, &str, &str)] = &[
    ("user_login", 300, "User logged in", "User sessions"),
    ("user_logout", 60, "User logged out", "User sessions"),
    (
        "user_added_to_group",
        80,
        "User added to group",
        "Group management",
    ),
    (
        "user_removed_from_group",
        30,
        "User removed from group",
        "Group management",
    ),
    (
        "user_granted_product_access",
        60,
        "User granted product access",
        "Product access",
    ),
    (
        "user_revoked_product_access",
        20,
        "User revoked product access",
        "Product access",
    ),
    (
        "user_granted_role",
        25,
        "User granted role",
        "User management",
    ),
    (
        "user_revoked_role",
        10,
        "User revoked role",
        "User management",
    ),
    ("group_created", 8, "Group created", "Group management"),
    ("group_deleted", 3, "Group deleted", "Group management"),
    ("api_token_created", 15, "API token created", "API tokens"),
    ("api_token_revoked", 6, "API token revoked", "API tokens"),
    ("user_invited", 20, "User invited", "User management"),
    ("user_created", 15, "User created", "User management"),
    (
        "twosv_enabled_for_user",
        12,
        "Two-step verification enabled",
        "Security",
    ),
    (
        "twosv_disabled_for_user",
        4,
        "Two-step verification disabled",
        "Security",
    ),
    ("password_change", 20, "Password changed", "Security"),
    (
        "added_org_admin",
        2,
        "Organization admin added",
        "Organization",
    ),
    (
        "removed_org_admin",
        1,
        "Organization admin removed",
        "Organization",
    ),
    ("policy_updated", 3, "Policy updated", "Policies"),
    ("export_audit_log", 2, "Audit log exported", "Organization"),
    (
        "managed_account_deactivated",
        4,
        "Managed account deactivated",
        "User management",
    ),
    ("domain_claimed", 1, "Domain claimed", "Domains"),
];

/// The org admin role, which grants every admin role.
pub(super) const ORG_ADMIN: &str = "atlassian/org-admin";

/// The actions history.rs writes; the everyday events have none of them.
pub(super) const HISTORY_ACTIONS: &[&str] = &[
    "added_org_admin",
    "removed_org_admin",
    "user_granted_role",
    "user_revoked_role",
    "user_added_to_group",
    "user_removed_from_group",
    "user_granted_product_access",
    "user_revoked_product_access",
];

/// A managed account deactivated by an org admin: the state decides who,
/// history.rs `deactivations` when; the everyday events have none (`events`).
pub(super) const DEACTIVATED: &str = "managed_account_deactivated";

/// A platform role held by a user from one time, until another or now.
#[derive(Debug, Clone)]
pub(super) struct Tenure {
    /// Index into `Org::users`.
    pub(super) user: usize,
    pub(super) role: &'static str,
    pub(super) from: DateTime<Utc>,
    /// `None`: held now.
    pub(super) until: Option<DateTime<Utc>>,
}

impl Tenure {
    pub(super) fn covers(&self, time: DateTime<Utc>) -> bool {
        self.from <= time && self.until.is_none_or(|until| time < until)
    }
}

/// What history.rs writes over an organization: the grants and removals of
/// its roles, memberships and product access, and who held which role when.
pub(super) struct History {
    /// Unsorted, not yet processed.
    pub(super) events: Vec<Event>,
    /// Every platform role ever held.
    pub(super) tenures: Vec<Tenure>,
}

pub(super) struct Gen {
    pub(super) rng: ChaCha8Rng,
}

impl Gen {
    pub(super) fn uuid(&mut self) -> String {
        let b: [u8; 16] = self.rng.random();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_be_bytes([b[4], b[5]]),
            u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
            (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
            u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
        )
    }

    /// Account ids come in three shapes; none is a UUID.
    fn account_id(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0..3 => format!(
                "{:012x}{:012x}",
                self.rng.random::<u64>() >> 16,
                self.rng.random::<u64>() >> 16
            ),
            3..6 => format!("557057:{}", self.uuid()),
            _ => format!("712020:{}", self.uuid()),
        }
    }

    pub(super) fn chance(&mut self, percent: u32) -> bool {
        self.rng.random_range(0..100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *items.choose(&mut self.rng).unwrap_or(&items[0])
    }

    fn before(&mut self, now: DateTime<Utc>, max_days: i64) -> DateTime<Utc> {
        let ms = self.rng.random_range(0..max_days * 86_400_000);
        // Whole milliseconds, as the API prints them.
        now - Duration::milliseconds(ms)
    }

    /// A time in `[from, to)`, in whole milliseconds from `from`; `from` when
    /// the span is empty.
    pub(super) fn between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> DateTime<Utc> {
        let span = (to - from).num_milliseconds();
        if span <= 0 {
            return from;
        }
        from + Duration::milliseconds(self.rng.random_range(0..span))
    }
}

impl Org {
    /// This organization (generated from `OrgSpec::sibling`) made another
    /// of the same owner as `first`: its own people, except that every
    /// `every`-th of `first`'s managed accounts is in this one too (same
    /// account, name and email) as an outside account: managed by the
    /// first organization, invited into this one.
    pub fn into_sibling_of(self, first: &Org, number: usize, every: usize) -> Org {
        let mut org = self;
        org.name = format!("Acme Subsidiary {number}");
        let mut renamed: Vec<(String, String)> = Vec::new();
        let shared: Vec<usize> = (1..org.users.len().min(first.users.len()))
            .step_by(every.max(1))
            .filter(|&i| first.users[i].claim_status == "managed")
            .collect();
        for &i in &shared {
            let theirs = &first.users[i];
            let mine = &mut org.users[i];
            renamed.push((mine.account_id.clone(), theirs.account_id.clone()));
            renamed.push((mine.email.clone(), theirs.email.clone()));
            renamed.push((mine.name.clone(), theirs.name.clone()));
            mine.account_id = theirs.account_id.clone();
            mine.email = theirs.email.clone();
            mine.name = theirs.name.clone();
            mine.nickname = theirs.nickname.clone();
            mine.claim_status = "unmanaged";
            mine.management_source = Some("invited");
            mine.organization = None;
        }
        // Anyone else is someone else: an email is one account's alone.
        let taken: std::collections::HashSet<&str> =
            first.users.iter().map(|u| u.email.as_str()).collect();
        for (i, mine) in org.users.iter_mut().enumerate() {
            if !shared.contains(&i) && taken.contains(mine.email.as_str()) {
                let email = mine.email.replacen('@', &format!("{number}@"), 1);
                renamed.push((mine.email.clone(), email.clone()));
                mine.email = email;
            }
        }
        // The audit log names people by id, name and email.
        let rename = |text: &mut String| {
            for (old, new) in &renamed {
                if text.contains(old.as_str()) {
                    *text = text.replace(old.as_str(), new);
                }
            }
        };
        for event in &mut org.events {
            rename(&mut event.actor_id);
            rename(&mut event.actor_name);
            if let Some(email) = &mut event.actor_email {
                rename(email);
            }
            rename(&mut event.message);
            for value in event.context.iter_mut().chain(event.container.iter_mut()) {
                rename_in(value, &rename);
            }
        }
        for user in org.scim.iter_mut().flat_map(|d| d.users.iter_mut()) {
            rename(&mut user.email);
            rename(&mut user.user_name);
            rename(&mut user.display_name);
            if let Some(account) = &mut user.account_id {
                rename(account);
            }
        }
        org
    }

    /// The organization `spec` describes, with `write_history`'s events
    /// and roles (history.rs) in its audit log. A parameter, not a call:
    /// history.rs reads the organization, so this file does not import it.
    pub(super) fn generate_with(
        spec: &OrgSpec,
        write_history: fn(&OrgSpec, &Org) -> History,
    ) -> Org {
        let mut g = Gen {
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
        };
        let now = spec.now;
        let id = g.uuid();
        let directories = vec![
            Directory {
                id: g.uuid(),
                name: "Acme Employees".to_string(),
            },
            Directory {
                id: g.uuid(),
                name: "Contractors and Partners".to_string(),
            },
        ];
        let domains = CLAIMED
            .iter()
            .map(|(name, claim_type, claim_status)| Domain {
                id: name.to_string(),
                name: name.to_string(),
                claim_type,
                claim_status,
            })
            .collect();
        let workspaces = workspaces(&mut g, now);
        let groups: Vec<Group> = GROUP_NAMES
            .iter()
            .enumerate()
            .map(|(i, (name, description))| Group {
                id: g.uuid(),
                // The last few groups live in the contractors' directory.
                directory: usize::from(i % 7 == 6),
                name: name.to_string(),
                description: Some(description.to_string()),
                external_synced: i % 3 == 0,
                managed_by: if i % 3 == 0 { "external" } else { "admins" },
                resource_count: g.rng.random_range(0..6),
            })
            .collect();
        let users = users(&mut g, spec, &groups, workspaces.len());
        let policies = policies(&mut g, now, &workspaces);
        let event_actions = ACTIONS
            .iter()
            .map(|(key, _, display, group)| EventAction {
                id: key.to_uppercase(),
                display_name: display,
                group_display_name: group,
            })
            .collect();
        let mut org = Org {
            id,
            name: "Acme Corporation".to_string(),
            directories,
            domains,
            users,
            groups,
            workspaces,
            policies,
            events: Vec::new(),
            event_actions,
            api_tokens: Vec::new(),
            api_keys: Vec::new(),
            scim: Vec::new(),
            group_grants_revoked: Vec::new(),
            identities: Default::default(),
            tenures: Vec::new(),
        };
        let history = write_history(spec, &org);
        let mut events = events(&mut g, spec, &org, &history.tenures);
        events.extend(history.events);
        events.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.id.cmp(&b.id)));
        process(spec, &mut events);
        org.events = events;
        credentials(spec, &mut org, &history.tenures);
        org.tenures = history.tenures;
        org
    }

    /// The admin API key the emulator's key stands for (`WRITER_KEY_LABEL`).
    pub fn writer_key(&self) -> Option<&OrgApiKey> {
        self.api_keys.iter().find(|k| k.label == WRITER_KEY_LABEL)
    }

    /// A user as audit events name them (in `context`).
    pub(super) fn user_object(&self, user: &User) -> Value {
        json!({
            "id": user.account_id, "type": "users",
            "attributes": {"name": user.name, "email": user.email, "accountType": "atlassian"},
            "links": {"self": format!("https://api.atlassian.com/users/{}/manage/profile", user.account_id)}
        })
    }

    /// A group as audit events name it (in `context`).
    pub(super) fn group_object(&self, group: usize) -> Value {
        let group = &self.groups[group];
        json!({"id": group.id, "type": "groups", "attributes": {"name": group.name, "groupName": group.name}, "links": {"alt": format!("https://admin.atlassian.com/o/{}/groups/{}", self.id, group.id)}})
    }

    /// A workspace as a product access event names it (in `context`).
    pub(super) fn product_object(&self, workspace: &Workspace) -> Value {
        json!({"id": workspace.id, "type": "products", "attributes": {"name": workspace.type_name, "siteName": workspace.name, "siteHostName": format!("https://{}", host(workspace))}})
    }

    /// The organization as the place an event happened (`container`).
    pub(super) fn org_container(&self) -> Value {
        json!({"id": self.id, "type": "orgs", "attributes": {"name": self.name}, "links": {"alt": format!("https://admin.atlassian.com/o/{}", self.id)}})
    }

    /// A workspace's site as the place an event happened (`container`).
    pub(super) fn site_container(&self, workspace: &Workspace) -> Value {
        let host = host(workspace);
        json!({"id": workspace.id, "type": "sites", "attributes": {"siteHostName": format!("https://{host}"), "siteName": workspace.name, "name": workspace.name}, "links": {"alt": format!("https://{host}")}})
    }

    /// The role a group grants, if it grants one.
    pub(super) fn group_role(&self, group: usize) -> Option<&'static str> {
        let name = self.groups[group].name.as_str();
        GROUP_GRANTS
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, role, ..)| *role)
    }

    pub fn members_of(&self, group: usize) -> impl Iterator<Item = &User> {
        self.users.iter().filter(move |u| u.groups.contains(&group))
    }

    /// The organization as a role's resource.
    pub fn ari(&self) -> String {
        format!("ari:cloud:platform::org/{}", self.id)
    }

    /// The roles a group grants, one entry per resource.
    pub fn group_roles(&self, group: usize) -> Vec<GroupRole> {
        let name = self.groups[group].name.as_str();
        let Some((_, role, target, default)) = GROUP_GRANTS.iter().find(|(n, ..)| *n == name)
        else {
            return Vec::new();
        };
        let on = |resource_id: String, resource_owner: &'static str| GroupRole {
            resource_id,
            resource_owner,
            roles: vec![*role],
            default_role: default.then_some(*role),
        };
        let grants = match target {
            Target::Org => vec![on(self.ari(), "platform")],
            Target::Sites => self
                .workspaces
                .iter()
                .filter(|w| w.host_url.is_some())
                .map(|w| on(w.id.clone(), w.type_key))
                .collect(),
            Target::Products(keys) => self
                .workspaces
                .iter()
                .filter(|w| keys.contains(&w.type_key))
                .map(|w| on(w.id.clone(), w.type_key))
                .collect(),
        };
        grants
            .into_iter()
            .filter_map(|mut grant| {
                grant.roles.retain(|role| {
                    !self.group_grants_revoked.iter().any(|(g, resource, r)| {
                        *g == group && *resource == grant.resource_id && r == role
                    })
                });
                if grant
                    .default_role
                    .is_some_and(|d| !grant.roles.contains(&d))
                {
                    grant.default_role = None;
                }
                (!grant.roles.is_empty()).then_some(grant)
            })
            .collect()
    }

    /// A user's roles: platform roles held directly, roles their groups
    /// grant, and product access given to them directly; one entry per
    /// resource and role, with every way it was assigned.
    pub fn user_roles(&self, user: &User) -> Vec<UserRole> {
        let mut roles: Vec<UserRole> = Vec::new();
        let mut add = |resource_id: String,
                       resource_owner: &'static str,
                       platform: bool,
                       role: &'static str,
                       method: &'static str| {
            match roles
                .iter_mut()
                .find(|r| r.resource_id == resource_id && r.role == role)
            {
                Some(found) if !found.methods.contains(&method) => found.methods.push(method),
                Some(_) => {}
                None => roles.push(UserRole {
                    resource_id,
                    resource_owner,
                    directory: (!platform).then_some(user.directory),
                    role,
                    methods: vec![method],
                }),
            }
        };
        for &role in &user.platform_roles {
            if role == "atlassian/site-admin" {
                for w in self
                    .workspaces
                    .iter()
                    .filter(|w| w.host_url.is_some() && !user.site_admin_revoked.contains(&w.id))
                {
                    add(w.id.clone(), w.type_key, true, role, "direct");
                }
            } else {
                add(self.ari(), "platform", true, role, "direct");
            }
        }
        for &group in &user.groups {
            for grant in self.group_roles(group) {
                let platform = grant.resource_owner == "platform"
                    || grant.roles.contains(&"atlassian/site-admin");
                for role in grant.roles {
                    add(
                        grant.resource_id.clone(),
                        grant.resource_owner,
                        platform,
                        role,
                        "group_direct",
                    );
                }
            }
        }
        for access in &user.product_access {
            let w = &self.workspaces[access.workspace];
            add(w.id.clone(), w.type_key, false, "atlassian/user", "direct");
        }
        roles
    }
}

/// A workspace's host name (Bitbucket's have none of their own).
fn host(workspace: &Workspace) -> String {
    workspace
        .host_url
        .clone()
        .unwrap_or_else(|| format!("bitbucket.org/{}", workspace.name))
}

fn workspaces(g: &mut Gen, now: DateTime<Utc>) -> Vec<Workspace> {
    let main_site = g.uuid();
    // name, type key, product name, ARI product, status, realm, sandbox, (usage, capacity)
    type Seed = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<(i64, i64)>,
    );
    let rows: [Seed; 8] = [
        (
            "acme",
            "jira-software",
            "Jira",
            "jira",
            "online",
            "us",
            "NONE",
            None,
        ),
        (
            "acme",
            "confluence",
            "Confluence",
            "confluence",
            "online",
            "us",
            "NONE",
            None,
        ),
        (
            "acme-support",
            "jira-servicedesk",
            "Jira Service Management",
            "jira",
            "online",
            "us",
            "NONE",
            None,
        ),
        (
            "acme-eu",
            "jira-software",
            "Jira",
            "jira",
            "online",
            "eu",
            "NONE",
            None,
        ),
        (
            "acme-code",
            "bitbucket",
            "Bitbucket",
            "bitbucket",
            "online",
            "us",
            "NONE",
            Some((41, 100)),
        ),
        (
            "acme-ops", "opsgenie", "Opsgenie", "opsgenie", "online", "us", "NONE", None,
        ),
        (
            "acme-sandbox",
            "confluence",
            "Confluence",
            "confluence",
            "offline",
            "us",
            "CHILD",
            None,
        ),
        (
            "acme-status",
            "statuspage",
            "Statuspage",
            "statuspage",
            "deprecated",
            "us",
            "NONE",
            None,
        ),
    ];
    rows.iter()
        .enumerate()
        .map(
            |(i, (name, type_key, type_name, ari_product, status, realm, sandbox, usage))| {
                let site = if i < 2 { main_site.clone() } else { g.uuid() };
                let resource = if *ari_product == "bitbucket" {
                    "workspace"
                } else {
                    "site"
                };
                let regions = if *realm == "eu" {
                    vec!["eu-central-1", "eu-west-1"]
                } else {
                    vec!["us-east-1"]
                };
                Workspace {
                    id: format!("ari:cloud:{ari_product}::{resource}/{site}"),
                    name: name.to_string(),
                    type_key,
                    type_name,
                    host_url: (*ari_product != "bitbucket")
                        .then(|| format!("{name}.atlassian.net")),
                    status,
                    realm,
                    regions,
                    sandbox,
                    created_at: g.before(now, 1500),
                    created_by: Some(format!("ari:cloud:identity::user/712020:{}", g.uuid())),
                    usage: usage.map(|u| u.0),
                    capacity: usage.map(|u| u.1),
                }
            },
        )
        .collect()
}

fn users(g: &mut Gen, spec: &OrgSpec, groups: &[Group], workspace_count: usize) -> Vec<User> {
    let mut seen = std::collections::HashSet::new();
    let mut users = Vec::with_capacity(spec.users);
    for i in 0..spec.users {
        let first = g.pick(FIRST);
        let last = g.pick(LAST);
        let outside = i > 0 && g.chance(18);
        let domain = if outside {
            g.pick(OUTSIDE)
        } else {
            g.pick(&CLAIMED[..3]).0
        };
        let mut local = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
        if !seen.insert(format!("{local}@{domain}")) {
            local = format!("{local}{i}");
            seen.insert(format!("{local}@{domain}"));
        }
        let managed = !outside;
        let directory = usize::from(outside && g.chance(80));
        // The first user is the org's owner: active, managed, an org admin.
        let (account_status, membership_status, status) = if i == 0 {
            ("active", "active", "active")
        } else {
            match g.rng.random_range(0..100) {
                0..4 => ("active", "suspended", "suspended"),
                4..8 => ("inactive", "active", "deactivated"),
                8..10 => ("closed", "no_membership", "for_deletion"),
                10..12 => ("active", "active", "not_invited"),
                _ => ("active", "active", "active"),
            }
        };
        let mfa_enabled = match g.rng.random_range(0..100) {
            _ if i == 0 => Some(true),
            0..4 => None,
            n if managed => Some(n >= 16),
            n => Some(n >= 50),
        };
        let place = g.pick(PLACES);
        let platform_roles = match i {
            0 => vec!["atlassian/org-admin", "atlassian/site-admin"],
            _ if i % 97 == 13 => vec!["atlassian/org-admin"],
            _ if i % 41 == 7 => vec!["atlassian/site-admin"],
            _ if i % 89 == 5 => vec!["atlassian/user-access-admin"],
            _ => Vec::new(),
        };
        let mut product_access = Vec::new();
        if status != "not_invited" {
            let mut ws: Vec<usize> = (0..workspace_count).collect();
            ws.shuffle(&mut g.rng);
            let n = g.rng.random_range(1..=4);
            for &workspace in ws.iter().take(n) {
                let last_active = (!g.chance(15)).then(|| g.before(spec.now, 200));
                product_access.push(ProductAccess {
                    workspace,
                    last_active,
                });
            }
            product_access.sort_by_key(|p| p.workspace);
        }
        let mut member_of: Vec<usize> = Vec::new();
        // Admin groups are given below, to the admins only.
        let eligible: Vec<usize> = (0..groups.len())
            .filter(|&gi| {
                groups[gi].directory == directory
                    && !matches!(
                        groups[gi].name.as_str(),
                        "org-admins" | "site-admins" | "legacy-admins"
                    )
            })
            .collect();
        if !eligible.is_empty() {
            let n = g.rng.random_range(1..=4).min(eligible.len());
            member_of.extend(eligible.choose_multiple(&mut g.rng, n).copied());
        }
        if platform_roles.contains(&"atlassian/org-admin") {
            member_of.push(0);
        }
        if platform_roles.contains(&"atlassian/site-admin") {
            member_of.push(1);
        }
        member_of.sort_unstable();
        member_of.dedup();
        users.push(User {
            account_id: g.account_id(),
            name: format!("{first} {last}"),
            nickname: first.to_string(),
            email: format!("{local}@{domain}"),
            email_verified: i == 0 || g.chance(96),
            account_status,
            membership_status,
            status,
            claim_status: if managed { "managed" } else { "unmanaged" },
            management_source: match (managed, g.rng.random_range(0..10)) {
                (_, 0) => None,
                (true, _) => Some("synced"),
                (false, _) => Some("invited"),
            },
            mfa_enabled,
            added_to_org: g.before(spec.now, 1500),
            job_title: (!g.chance(10)).then(|| g.pick(TITLES)),
            department: (!g.chance(10)).then(|| g.pick(DEPARTMENTS)),
            organization: managed.then_some("Acme Corporation"),
            location: (!g.chance(20)).then_some(place.0),
            time_zone: place.3,
            directory,
            platform_roles,
            site_admin_revoked: Vec::new(),
            product_access,
            groups: member_of,
        });
    }
    // The owner created the organization: nobody joined before them. And
    // nobody used a product before they joined.
    if let Some(first) = users.iter().map(|u| u.added_to_org).min() {
        users[0].added_to_org = first - Duration::days(1);
    }
    for user in &mut users {
        let joined = user.added_to_org;
        for access in &mut user.product_access {
            access.last_active = access.last_active.map(|t| t.max(joined));
        }
    }
    users
}

fn policies(g: &mut Gen, now: DateTime<Utc>, workspaces: &[Workspace]) -> Vec<Policy> {
    let mut policy =
        |kind, name, status, rule: Value, resources: Vec<(String, &'static str)>, updated: bool| {
            let created_at = g.before(now, 900);
            let updated_at =
                updated.then(|| created_at + Duration::days(g.rng.random_range(1..60)));
            Policy {
                id: g.uuid(),
                kind,
                name,
                status,
                rule,
                resources,
                created_at,
                updated_at,
            }
        };
    vec![
        policy(
            "ip-allowlist",
            "Office and VPN networks",
            "enabled",
            json!({"in": ["203.0.113.0/24", "198.51.100.0/24"]}),
            vec![
                (workspaces[0].id.clone(), "applied"),
                (workspaces[1].id.clone(), "applied"),
            ],
            true,
        ),
        policy(
            "data-residency",
            "EU data residency",
            "enabled",
            json!({"in": ["eu"]}),
            vec![(workspaces[3].id.clone(), "applied")],
            false,
        ),
        policy(
            "data-residency",
            "US data residency",
            "enabled",
            json!({"in": ["us"]}),
            vec![
                (workspaces[0].id.clone(), "applied"),
                (workspaces[2].id.clone(), "applying"),
            ],
            true,
        ),
        policy(
            "data-security",
            "Block public links",
            "disabled",
            json!({"in": ["public-links"]}),
            vec![],
            true,
        ),
        policy(
            "ip-allowlist",
            "Contractor network (draft)",
            "disabled",
            json!({"in": ["192.0.2.0/24"]}),
            vec![],
            false,
        ),
    ]
}

/// The everyday events of the 90 days before now: sessions, tokens,
/// invitations, policies, ... (history.rs writes the grants and removals of
/// roles, memberships and product access). Admins act once they hold their
/// role. Unsorted, not yet processed.
fn events(g: &mut Gen, spec: &OrgSpec, org: &Org, tenures: &[Tenure]) -> Vec<Event> {
    // Who holds a platform role now, and since when.
    let admins: Vec<(usize, DateTime<Utc>)> = (0..org.users.len())
        .filter_map(|i| {
            let since = tenures
                .iter()
                .filter(|t| t.user == i && t.until.is_none())
                .map(|t| t.from)
                .min()?;
            Some((i, since))
        })
        .collect();
    let everyday: Vec<&(&str, u32, &str, &str)> = ACTIONS
        .iter()
        .filter(|a| !HISTORY_ACTIONS.contains(&a.0))
        .collect();
    let total_weight: u32 = everyday.iter().map(|a| a.1).sum();
    let is_self_service = |action: &str| {
        matches!(
            action,
            "user_login" | "user_logout" | "password_change" | "twosv_enabled_for_user"
        )
    };
    // Who was deactivated, and when, is the state's and history.rs's: a
    // draw of a deactivation becomes another admin action that takes the
    // same draws after it (on no group), from a generator of its own, so
    // that every other event stays what the seed gave.
    let instead: Vec<(&str, u32)> = everyday
        .iter()
        .filter(|a| a.0 != DEACTIVATED && !is_self_service(a.0) && !a.0.contains("group"))
        .map(|a| (a.0, a.1))
        .collect();
    let mut redraw = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x3c6e_f372_fe94_f82b);
    // The sessions drawn: (index, from a stray address?), for `sessions`.
    let mut sessions_drawn: Vec<(usize, bool)> = Vec::new();
    let mut events = Vec::with_capacity(spec.events);
    for _ in 0..spec.events {
        let mut roll = g.rng.random_range(0..total_weight);
        let mut action = everyday
            .iter()
            .find(|a| {
                let hit = roll < a.1;
                roll = roll.saturating_sub(a.1);
                hit
            })
            .map_or("user_login", |a| a.0);
        if action == DEACTIVATED {
            action = instead
                .choose_weighted(&mut redraw, |a| a.1)
                .map_or("user_invited", |a| a.0);
        }
        let subject = &org.users[g.rng.random_range(0..org.users.len())];
        let self_service = is_self_service(action);
        // The time first: who could act then depends on it.
        let time = g.before(spec.now, 90);
        let actor = if self_service {
            subject
        } else {
            let able: Vec<usize> = admins
                .iter()
                .filter(|(_, since)| *since <= time)
                .map(|(i, _)| *i)
                .collect();
            able.choose(&mut g.rng).map_or(subject, |&i| &org.users[i])
        };
        let auth = (!self_service && g.chance(20)).then(|| {
            (
                "api-token",
                format!("asp_{:016x}", g.rng.random::<u64>() >> 8),
            )
        });
        // Each actor mostly works from one address; a few events come from elsewhere.
        let stray = g.chance(3);
        let location = if stray {
            let place = PLACES[g.rng.random_range(0..PLACES.len())];
            Location {
                ip: format!(
                    "198.18.{}.{}",
                    g.rng.random_range(0..256),
                    g.rng.random_range(1..255)
                ),
                city: place.0,
                region: place.1,
                country: place.2,
            }
        } else {
            usual_location(&actor.account_id)
        };
        let mut context = vec![org.user_object(subject)];
        let mut message = format!("{} for {}", action.replace('_', " "), subject.email);
        if action.contains("group") && !subject.groups.is_empty() {
            let group = subject.groups[g.rng.random_range(0..subject.groups.len())];
            context.insert(0, org.group_object(group));
            message = format!(
                "{} {} ({})",
                action.replace('_', " "),
                subject.email,
                org.groups[group].name
            );
        }
        let site = &org.workspaces[g.rng.random_range(0..org.workspaces.len())];
        let container = if action.starts_with("policy") || action.starts_with("domain") {
            org.org_container()
        } else {
            org.site_container(site)
        };
        if self_service {
            sessions_drawn.push((events.len(), stray));
        }
        events.push(Event {
            id: g.uuid(),
            time,
            processed_at: time,
            action,
            actor_id: actor.account_id.clone(),
            actor_name: actor.name.clone(),
            actor_email: Some(actor.email.clone()),
            auth,
            context,
            container: vec![container],
            location: (!g.chance(4)).then_some(location),
            message,
        });
    }
    sessions(spec, org, &mut events, &sessions_drawn);
    events
}

/// Sessions (logins, logouts, a user's own password and 2SV changes) agree
/// with the state: each is within its user's `session_span`, so nobody
/// deactivated, deleted or never invited has one after that, nobody
/// inactive for 90 days has one in the log, and (logins enough drawn)
/// everyone active in a product in the 90 days logged in then. A session
/// drawn for someone who could not have it goes, first, to someone active
/// in the 90 days who has no login yet (a login, in their span), else to
/// someone who could have it at its time, else to anyone at a time they
/// could. Its draws are a generator's own, so the other events stay.
fn sessions(spec: &OrgSpec, org: &Org, events: &mut Vec<Event>, drawn: &[(usize, bool)]) {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(spec.seed ^ 0xbb67_ae85_84ca_a73b),
    };
    let start = spec.now - Duration::days(90);
    let index: std::collections::HashMap<&str, usize> = org
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.account_id.as_str(), i))
        .collect();
    // Each user's span within the 90 days.
    let spans: Vec<Option<(DateTime<Utc>, DateTime<Utc>)>> = org
        .users
        .iter()
        .map(|u| {
            let (from, to) = u.session_span()?;
            let from = from.max(start);
            (from <= to).then_some((from, to))
        })
        .collect();
    let within = |user: usize, time: DateTime<Utc>| {
        spans[user].is_some_and(|(from, to)| from <= time && time <= to)
    };
    let mut logged_in = vec![false; org.users.len()];
    let mut misplaced = Vec::new();
    for &(at, stray) in drawn {
        let event = &events[at];
        match index.get(event.actor_id.as_str()) {
            Some(&user) if within(user, event.time) => {
                logged_in[user] |= event.action == "user_login";
            }
            _ => misplaced.push((at, stray)),
        }
    }
    let mut not_yet = (0..org.users.len()).filter(|&u| spans[u].is_some() && !logged_in[u]);
    let able: Vec<usize> = (0..org.users.len())
        .filter(|&u| spans[u].is_some())
        .collect();
    let mut gone = Vec::new();
    for (at, stray) in misplaced {
        let event = &mut events[at];
        let first_login = (event.action == "user_login")
            .then(|| not_yet.next())
            .flatten();
        // (user, the time they had it; None: a time of their span)
        let to = match first_login {
            Some(user) => Some((user, None)),
            None => {
                let then: Vec<usize> = able
                    .iter()
                    .copied()
                    .filter(|&u| within(u, event.time))
                    .collect();
                match then.choose(&mut g.rng) {
                    Some(&user) => Some((user, Some(event.time))),
                    None => able.choose(&mut g.rng).map(|&user| (user, None)),
                }
            }
        };
        let Some((user, (from, until), time)) =
            to.and_then(|(user, time)| Some((user, spans[user]?, time)))
        else {
            // Nobody could have had a session: it goes.
            gone.push(at);
            continue;
        };
        let time = time.unwrap_or_else(|| g.between(from, until));
        let u = &org.users[user];
        event.time = time;
        event.processed_at = time;
        event.actor_id = u.account_id.clone();
        event.actor_name = u.name.clone();
        event.actor_email = Some(u.email.clone());
        event.context = vec![org.user_object(u)];
        event.message = format!("{} for {}", event.action.replace('_', " "), u.email);
        if !stray && event.location.is_some() {
            event.location = Some(usual_location(&u.account_id));
        }
    }
    // `gone` is in order.
    let mut at = 0;
    events.retain(|_| {
        at += 1;
        gone.binary_search(&(at - 1)).is_err()
    });
}

/// When the API processed each event (newest first): seconds after it
/// happened for most, hours or days for a few; never after now. From a
/// generator of its own.
fn process(spec: &OrgSpec, events: &mut [Event]) {
    let mut lag = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x9e37_79b9_7f4a_7c15);
    for event in events {
        let ms: i64 = match lag.random_range(0..1000) {
            0..5 => lag.random_range(86_400_000..3 * 86_400_000),
            5..25 => lag.random_range(3_600_000..12 * 3_600_000),
            _ => lag.random_range(500..30_000),
        };
        event.processed_at = (event.time + Duration::milliseconds(ms)).min(spec.now);
    }
}

/// An actor's usual place and address (each works mostly from one).
pub(super) fn usual_location(account_id: &str) -> Location {
    let hash = account_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let place = PLACES[hash as usize % PLACES.len()];
    Location {
        ip: format!("203.0.113.{}", hash % 250 + 1),
        city: place.0,
        region: place.1,
        country: place.2,
    }
}

/// The label of the admin API key the emulator's key stands for: the
/// unscoped key orgsql is given, which the audit log names as the actor of
/// every write made with it (`Org::writer_key`).
pub const WRITER_KEY_LABEL: &str = "orgsql-audit";

/// Token labels, as people name them.
const TOKEN_LABELS: &[&str] = &[
    "jira-cli",
    "backup-script",
    "ci-deploy",
    "confluence-export",
    "zapier",
    "terraform",
    "reporting",
    "old laptop",
];

/// API tokens and admin API keys, from a generator of their own (the rest
/// of the org stays what the seed always gave). Every token an `api-token`
/// audit event names is a real token of its actor, used last at that
/// event's time; the other managed users' tokens cover what auditors look
/// for: never used, stale, without expiry or expiring years out, blocked,
/// owned by people who are no longer active.
fn credentials(spec: &OrgSpec, org: &mut Org, tenures: &[Tenure]) {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(spec.seed ^ 0x00c0_ffee_7013_2e45),
    };
    let now = spec.now;
    let index: std::collections::HashMap<String, usize> = org
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.account_id.clone(), i))
        .collect();
    // The tokens the audit log has seen, one per actor who used one.
    let mut by_actor: std::collections::BTreeMap<usize, usize> = std::collections::BTreeMap::new();
    let mut tokens: Vec<ApiToken> = Vec::new();
    let mut unlisted: std::collections::HashMap<usize, String> = std::collections::HashMap::new();
    // Oldest first, so each token's last use is its newest event.
    for event in org.events.iter_mut().rev() {
        let Some((_, token_id)) = event.auth.as_mut() else {
            continue;
        };
        let Some(&actor) = index.get(&event.actor_id) else {
            continue;
        };
        if org.users[actor].claim_status != "managed" {
            // Not a managed account: its token is not in the org's listing.
            let id = unlisted
                .entry(actor)
                .or_insert_with(|| format!("asp_{:016x}", g.rng.random::<u64>() >> 8));
            *token_id = id.clone();
            continue;
        }
        let t = *by_actor.entry(actor).or_insert_with(|| {
            tokens.push(ApiToken {
                id: format!("asp_{:016x}", g.rng.random::<u64>() >> 8),
                label: "automation".to_string(),
                owner: actor,
                created_at: event.time - Duration::days(g.rng.random_range(5..200)),
                last_active: None,
                expires_at: (!g.chance(30))
                    .then(|| now + Duration::days(g.rng.random_range(30..300))),
                blocked: false,
                scopes: Vec::new(),
                created_by: Some(actor),
            });
            tokens.len() - 1
        });
        *token_id = tokens[t].id.clone();
        tokens[t].last_active = Some(event.time);
    }
    for (owner, user) in org.users.iter().enumerate() {
        if user.claim_status != "managed" || !(owner == 0 || g.chance(25)) {
            continue;
        }
        for _ in 0..g.rng.random_range(1..=2) {
            let created_at = g.before(now, 400);
            let last_active = match g.rng.random_range(0..100) {
                0..25 => None,
                25..50 => Some(g.before(now - Duration::days(91), 200).max(created_at)),
                _ => Some(g.before(now, 60).max(created_at)),
            };
            let expires_at = match g.rng.random_range(0..100) {
                0..20 => None,
                20..30 => Some(now + Duration::days(g.rng.random_range(400..700))),
                30..40 => Some(now - Duration::days(g.rng.random_range(1..30))),
                _ => Some(now + Duration::days(g.rng.random_range(30..365))),
            };
            tokens.push(ApiToken {
                id: format!("asp_{:016x}", g.rng.random::<u64>() >> 8),
                label: g.pick(TOKEN_LABELS).to_string(),
                owner,
                created_at,
                last_active,
                expires_at,
                blocked: g.chance(8),
                scopes: if g.chance(30) {
                    vec!["read:jira-work", "read:confluence-content.summary"]
                } else {
                    Vec::new()
                },
                created_by: (!g.chance(10)).then_some(owner),
            });
        }
    }
    org.api_tokens = tokens;
    // Admin API keys: one of each kind an auditor asks about.
    let org_admins: Vec<usize> = (0..org.users.len())
        .filter(|&i| org.users[i].platform_roles.contains(&"atlassian/org-admin"))
        .collect();
    // The legacy integration's key is the org admin's who was removed
    // (history.rs), made while they were one.
    let former = tenures
        .iter()
        .find(|t| t.role == ORG_ADMIN && t.until.is_some());
    let former_admin = former.map_or_else(
        || {
            (1..org.users.len())
                .find(|&i| org.users[i].claim_status == "managed" && !org_admins.contains(&i))
                .unwrap_or(0)
        },
        |t| t.user,
    );
    let key = |g: &mut Gen,
               label: &'static str,
               scopes: Vec<&'static str>,
               expires_in_days: Option<i64>,
               created_by: usize,
               revoked: bool| OrgApiKey {
        id: g.uuid(),
        label,
        created_at: now - Duration::days(g.rng.random_range(60..500)),
        last_active: Some(g.before(now, 20)),
        expires_at: expires_in_days.map(|d| now + Duration::days(d)),
        scopes,
        created_by,
        revoked: revoked.then(|| (0, now - Duration::days(g.rng.random_range(1..40)))),
    };
    org.api_keys = vec![
        key(
            &mut g,
            "directory-sync",
            vec!["read:directories:admin", "read:users:admin"],
            Some(200),
            0,
            false,
        ),
        key(
            &mut g,
            "legacy-integration",
            Vec::new(),
            None,
            former_admin,
            false,
        ),
        key(
            &mut g,
            "siem-export",
            vec!["read:events:admin"],
            Some(300),
            0,
            false,
        ),
        key(&mut g, WRITER_KEY_LABEL, Vec::new(), Some(90), 0, false),
        key(&mut g, "old-provisioning", Vec::new(), None, 0, true),
        key(
            &mut g,
            "expired-report",
            vec!["read:events:admin"],
            Some(-10),
            0,
            false,
        ),
    ];
    if let Some((from, until)) = former.and_then(|t| Some((t.from, t.until?))) {
        for key in org
            .api_keys
            .iter_mut()
            .filter(|k| k.created_by == former_admin)
        {
            key.created_at = g.between(from, until);
        }
    }
}

/// Every string in a JSON value, renamed.
fn rename_in(value: &mut Value, rename: &impl Fn(&mut String)) {
    match value {
        Value::String(text) => rename(text),
        Value::Array(items) => items.iter_mut().for_each(|v| rename_in(v, rename)),
        Value::Object(fields) => fields.values_mut().for_each(|v| rename_in(v, rename)),
        _ => {}
    }
}
