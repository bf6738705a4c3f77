-- id: scim_group_members_differ
-- title: Synced groups have the members the identity provider pushes
-- severity: medium
-- rationale: A group the identity provider pushes should hold exactly its members: access granted through it is then governed where joiners, movers and leavers are recorded. A member here the identity provider does not list (added by hand, or left behind) or one it lists who is missing here (a failed sync) means the group grants access nobody approved, or withholds it.
-- remediation: Remove the members the identity provider does not list, or add them there if they belong; re-sync the group for members missing here. Groups are matched by name with the SCIM group, and members by the account each SCIM user is linked to.
-- frameworks: soc2:CC6.3, iso27001:A.5.18, nist800-53:AC-2, cis:6.1
-- population: memberships of groups the identity provider pushes
-- population-sql: SELECT count(*) FROM group_members m JOIN (SELECT DISTINCT org_id, name FROM scim_groups) g
-- population-sql: ON g.org_id = m.org_id AND g.name = m.group_name
-- requires: scim
WITH synced AS (
  SELECT DISTINCT org_id, name FROM scim_groups
),
pushed AS (
  SELECT DISTINCT m.org_id, m.group_name, s.account_id
  FROM scim_group_members m
  JOIN scim_users s
    ON s.org_id = m.org_id AND s.directory_id = m.directory_id AND s.scim_id = m.scim_id
  WHERE s.account_id IS NOT NULL
),
here AS (
  SELECT DISTINCT m.org_id, m.group_name, m.account_id
  FROM group_members m
  JOIN synced g ON g.org_id = m.org_id AND g.name = m.group_name
),
differ AS (
  SELECT coalesce(h.org_id, p.org_id) AS org_id,
         coalesce(h.group_name, p.group_name) AS group_name,
         coalesce(h.account_id, p.account_id) AS account_id,
         h.account_id IS NULL AS only_pushed
  FROM here h
  FULL OUTER JOIN pushed p
    ON p.org_id = h.org_id AND p.group_name = h.group_name AND p.account_id = h.account_id
  WHERE h.account_id IS NULL OR p.account_id IS NULL
)
SELECT d.group_name || ': ' || coalesce(u.email, d.account_id) AS resource,
       'alarm' AS status,
       CASE WHEN d.only_pushed
            THEN 'The identity provider lists this member of the group; the group here does not have them'
            ELSE 'A member of the group here that the identity provider does not list'
       END AS reason,
       d.group_name,
       d.account_id
FROM differ d
LEFT JOIN users u ON u.org_id = d.org_id AND u.account_id = d.account_id
ORDER BY status, resource
