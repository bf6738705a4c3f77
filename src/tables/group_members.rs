//! `group_members`: one row per (group, user). The API has no members
//! endpoint, so this is `users/search` with the `groups` expansion.

use crate::row;

use super::filters::Filter;
use super::provider::{Fetch, FromPage, Origin, Resource, Scan};
use super::users::{ApiUser, UserGroup, users_search};
use super::Label;

pub struct GroupMembers;

/// A user's expanded `groups[].id` is an ARI; group search gives the bare UUID.
const GROUP_ARI_PREFIX: &str = "ari:cloud:identity::group/";

row! {
    GroupMemberRow(origin, account_id: &str, group: UserGroup) {
        group_id: key = group
            .id
            .strip_prefix(GROUP_ARI_PREFIX)
            .unwrap_or(&group.id)
            .to_string(),
            "Group id (bare UUID, joins groups.group_id)";
        account_id: key = account_id.to_string(), "Member's account id (joins users.account_id)";
        group_name: text = group.name, "Group name";
    }
}

impl Resource for GroupMembers {
    type Data = Vec<ApiUser>;
    type Row = GroupMemberRow;

    const NAME: &'static str = "group_members";
    const DESCRIPTION: &'static str = "Group memberships: one row per user in a group";
    const KEY: &'static [&'static str] = &["group_id", "account_id"];
    const LABELS: &'static [Label] = &[Label::email("account_id"), Label::own("group", "group_name")];
    /// account_id narrows to those users; group_id to the members of those
    /// groups (their other groups are filtered out again by DataFusion).
    const FILTERS: &'static [Filter] = &[
        Filter::values("account_id", "accountIds", 10),
        Filter::values("group_id", "groupIds", 10),
    ];

    fn fetch(scan: &Scan) -> Fetch {
        users_search(&scan.without_limit(), &["groups"]).into()
    }
}

impl FromPage<Vec<ApiUser>> for GroupMemberRow {
    fn push_rows(origin: &Origin, data: Vec<ApiUser>, rows: &mut Vec<GroupMemberRow>) {
        for user in data {
            for group in user.groups {
                rows.push(GroupMemberRow::new(origin, &user.account_id, group));
            }
        }
    }
}
