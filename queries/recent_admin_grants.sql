-- id: recent_admin_grants
-- title: Admin grants in the last 7 days are reviewed
-- severity: high
-- rationale: New org admins, users added to admin groups and role grants are the changes an attacker or an insider makes first. Each should match an approved change request.
-- remediation: Match each grant to a ticket or approval. Revoke any that has none and investigate the actor (and the API token, when one was used).
-- frameworks: soc2:CC6.2, soc2:CC7.2, iso27001:A.8.2, iso27001:A.8.15, nist800-53:AU-6, cis:8.11
-- population: grant events in the last ${days} days
-- population-sql: SELECT count(*) FROM events WHERE time >= now() - interval '${days} days'
-- population-sql: AND action IN ('added_org_admin', 'group_granted_admin_access', 'user_granted_role', 'user_added_to_group')
-- param: days integer 7 How far back grants are reviewed, in days
WITH recent AS (
  SELECT org_id, event_id, time, action, actor_email, actor_auth_type, message
  FROM events
  WHERE time >= now() - interval '${days} days'
    AND action IN ('added_org_admin', 'group_granted_admin_access', 'user_granted_role', 'user_added_to_group')
),
event_groups AS (
  SELECT org_id, event_id, name AS group_name
  FROM event_context
  WHERE time >= now() - interval '${days} days'
    AND action = 'user_added_to_group'
    AND object_type = 'groups'
),
admin_groups AS (
  SELECT DISTINCT g.org_id, g.name
  FROM groups g
  JOIN group_role_assignments r USING (org_id, group_id)
  WHERE r.role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
)
SELECT
  e.message AS resource,
  CASE WHEN e.action = 'user_granted_role' THEN 'info' ELSE 'alarm' END AS status,
  CASE
    WHEN e.action = 'added_org_admin' THEN 'Organization admin added by '
    WHEN e.action = 'group_granted_admin_access' THEN 'Group granted admin access by '
    WHEN e.action = 'user_added_to_group' THEN 'User added to admin group ' || eg.group_name || ' by '
    ELSE 'Role granted (the log does not name it) by '
  END || coalesce(e.actor_email, 'an unknown actor')
    || CASE WHEN e.actor_auth_type = 'api-token' THEN ' with an API token' ELSE '' END
    || ' on ' || to_char(e.time, '%Y-%m-%d %H:%M UTC') AS reason,
  e.time,
  e.action,
  e.actor_email,
  e.event_id
FROM recent e
LEFT JOIN event_groups eg ON eg.org_id = e.org_id AND eg.event_id = e.event_id
-- A group of that name that grants admin in this organization (the same
-- name may be an admin group in another one).
LEFT JOIN admin_groups ag ON ag.org_id = eg.org_id AND ag.name = eg.group_name
WHERE e.action <> 'user_added_to_group'
   OR ag.name IS NOT NULL
ORDER BY status, resource;
