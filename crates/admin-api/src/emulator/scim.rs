//! The SCIM 2.0 API of the organization's identity providers
//! (`/scim/directory/{directoryId}/Users|Groups`), each directory with its
//! own token, and the drift between the identity provider and the
//! organization the compliance pack's identity-provider controls look for,
//! planted where each can be found (see `provision`).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::org::{Gen, Org, OrgSpec, ScimDirectory, ScimGroup, ScimUser};

/// The SCIM token of directory number `index` of an organization made from `seed`.
fn token(seed: u64, index: usize) -> String {
    format!("scim-token-{seed}-dir{}", index + 1)
}

/// Both directories are provisioned by an identity provider. The employees'
/// (the first) holds a SCIM user for each of its accounts and a SCIM group
/// for each of its synced groups, with the same members, except for what is
/// planted here, each kind in the fewest accounts that show it:
/// - two active accounts with product access whose SCIM user is
///   deprovisioned (`active: false`), and one managed active account the
///   identity provider has no record of;
/// - two SCIM users linked to no account;
/// - one synced group whose SCIM group lacks one of its Atlassian members
///   and lists one SCIM user who is not an Atlassian member;
/// - two managed accounts on a claimed domain created by invitation
///   (`management_source: invited`) while the directory provisions;
/// - one person with two accounts: the contractors' directory (the second)
///   holds, beside three contractors, a SCIM user with the externalId of an
///   employee, linked to a contractor's account.
pub(super) fn provision(spec: &OrgSpec, org: &mut Org) {
    let mut g = Gen {
        rng: ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5c1a),
    };
    let created = spec.now - Duration::days(400);
    let candidates: Vec<usize> = (1..org.users.len())
        .filter(|&i| {
            let u = &org.users[i];
            u.claim_status == "managed"
                && u.status == "active"
                && u.directory == 0
                && u.platform_roles.is_empty()
                && !u.product_access.is_empty()
        })
        .collect();
    let deprovisioned: Vec<usize> = candidates.iter().take(2).copied().collect();
    let absent = candidates.get(2).copied();
    for &i in candidates.iter().skip(3).take(2) {
        org.users[i].management_source = Some("invited");
    }
    let mut employees = ScimDirectory {
        directory: 0,
        token: token(spec.seed, 0),
        users: Vec::new(),
        groups: Vec::new(),
    };
    // The SCIM user of each account, by the account's index.
    let mut of_user: Vec<Option<String>> = vec![None; org.users.len()];
    for (i, user) in org.users.iter().enumerate() {
        if user.directory != 0 || Some(i) == absent {
            continue;
        }
        let id = g.uuid();
        of_user[i] = Some(id.clone());
        employees.users.push(ScimUser {
            id,
            external_id: format!("00u{i:06}"),
            user_name: user.email.clone(),
            email: user.email.clone(),
            display_name: user.name.clone(),
            active: !matches!(user.status, "deactivated" | "for_deletion")
                && !deprovisioned.contains(&i),
            account_id: Some(user.account_id.clone()),
            created,
        });
    }
    for (n, (email, name)) in [
        ("new.starter@acme.com", "New Starter"),
        ("returning.contractor@acme.io", "Returning Contractor"),
    ]
    .into_iter()
    .enumerate()
    {
        employees.users.push(ScimUser {
            id: g.uuid(),
            external_id: format!("00uunlinked{n}"),
            user_name: email.to_string(),
            email: email.to_string(),
            display_name: name.to_string(),
            active: true,
            account_id: None,
            created,
        });
    }
    let mut drift_planted = false;
    for (gi, group) in org.groups.iter().enumerate() {
        if !group.external_synced || group.directory != 0 {
            continue;
        }
        let members: Vec<usize> = (0..org.users.len())
            .filter(|&i| org.users[i].groups.contains(&gi))
            .collect();
        let mut scim_members: Vec<String> =
            members.iter().filter_map(|&i| of_user[i].clone()).collect();
        // The first group other than the admins' with two or more members.
        if !drift_planted && gi > 1 && scim_members.len() >= 2 {
            scim_members.remove(0);
            let outsider = (1..org.users.len()).find(|&i| {
                !members.contains(&i)
                    && of_user[i].is_some()
                    && org.users[i].status == "active"
                    && !deprovisioned.contains(&i)
            });
            if let Some(id) = outsider.and_then(|i| of_user[i].clone()) {
                scim_members.push(id);
            }
            drift_planted = true;
        }
        employees.groups.push(ScimGroup {
            id: g.uuid(),
            external_id: format!("00g{gi:04}"),
            name: group.name.clone(),
            members: scim_members,
        });
    }
    let mut contractors = ScimDirectory {
        directory: 1,
        token: token(spec.seed, 1),
        users: Vec::new(),
        groups: Vec::new(),
    };
    let outside: Vec<usize> = (1..org.users.len())
        .filter(|&i| org.users[i].directory == 1)
        .collect();
    for &i in outside.iter().take(3) {
        let user = &org.users[i];
        contractors.users.push(ScimUser {
            id: g.uuid(),
            external_id: format!("00c{i:06}"),
            user_name: user.email.clone(),
            email: user.email.clone(),
            display_name: user.name.clone(),
            active: !matches!(user.status, "deactivated" | "for_deletion"),
            account_id: Some(user.account_id.clone()),
            created,
        });
    }
    // The same person as an employee and as a contractor: the employee's
    // externalId, a contractor's account.
    let employee = candidates.get(5).copied();
    let contractor = outside
        .iter()
        .skip(3)
        .copied()
        .find(|&i| org.users[i].status == "active");
    if let (Some(e), Some(c)) = (employee, contractor) {
        let user = &org.users[c];
        contractors.users.push(ScimUser {
            id: g.uuid(),
            external_id: format!("00u{e:06}"),
            user_name: user.email.clone(),
            email: user.email.clone(),
            display_name: org.users[e].name.clone(),
            active: true,
            account_id: Some(user.account_id.clone()),
            created,
        });
    }
    org.scim = vec![employees, contractors];
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A SCIM user as the API shows it (the documented ScimUser).
pub(super) fn user_json(base_url: &str, directory_id: &str, u: &ScimUser) -> Value {
    let (given, family) = u
        .display_name
        .split_once(' ')
        .unwrap_or((&u.display_name, ""));
    let mut schemas = vec![
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ];
    let mut json = json!({
        "userName": u.user_name,
        "emails": [{"value": u.email, "type": "work", "primary": true}],
        "externalId": u.external_id,
        "name": {"formatted": u.display_name, "givenName": given, "familyName": family},
        "displayName": u.display_name,
        "meta": {
            "resourceType": "User",
            "location": format!("{base_url}/scim/directory/{directory_id}/Users/{}", u.id),
            "lastModified": time(u.created),
            "created": time(u.created),
        },
        "groups": [],
        "id": u.id,
        "active": u.active,
    });
    if let Some(account) = &u.account_id {
        schemas.insert(0, "urn:scim:schemas:extension:atlassian-external:1.0");
        json["urn:scim:schemas:extension:atlassian-external:1.0"] =
            json!({"atlassianAccountId": account});
    }
    json["schemas"] = json!(schemas);
    json
}

/// A SCIM group as the API shows it (the documented ScimGroup).
pub(super) fn group_json(
    base_url: &str,
    directory_id: &str,
    group: &ScimGroup,
    users: &[ScimUser],
) -> Value {
    let members: Vec<Value> = group
        .members
        .iter()
        .map(|id| {
            let display = users
                .iter()
                .find(|u| &u.id == id)
                .map(|u| u.display_name.clone());
            json!({
                "type": "User",
                "value": id,
                "display": display,
                "$ref": format!("{base_url}/scim/directory/{directory_id}/Users/{id}"),
            })
        })
        .collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": group.id,
        "externalId": group.external_id,
        "displayName": group.name,
        "members": members,
        "meta": {
            "resourceType": "Group",
            "location": format!("{base_url}/scim/directory/{directory_id}/Groups/{}", group.id),
            "lastModified": "2025-10-27T09:00:00.000Z",
            "created": "2025-10-27T09:00:00.000Z",
        },
    })
}
