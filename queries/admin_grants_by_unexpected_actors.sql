-- id: admin_grants_by_unexpected_actors
-- title: Admin roles are granted only by admins on managed accounts
-- severity: critical
-- rationale: Only the organization's own admins, on accounts it manages, should hand out admin roles. A grant by an account on a domain the organization does not manage, or by one that holds no admin role, points to a compromised or forgotten account, a misused API token, or a role granted and taken back to hide it. The watch rule admin_grant_by_unexpected_actor judges each new event; this control judges the log's last ${window_days} days. The actor is judged as the users and role tables show it now, not as it was when it acted.
-- remediation: Confirm each grant with the actor's owner and the admin team; revoke the role and the actor's access if nobody approved it, and review what the actor changed since.
-- frameworks: soc2:CC6.2, soc2:CC6.3, soc2:CC7.2, iso27001:A.5.18, iso27001:A.8.2, nist800-53:AC-2, nist800-53:AC-6, cis:5.4, cis:6.8
-- population: grant events in the last ${window_days} days
-- population-sql: SELECT count(*) FROM events WHERE time >= now() - interval '${window_days} days'
-- population-sql: AND lower(action) IN ('added_org_admin', 'group_granted_admin_access', 'user_granted_role', 'group_granted_role')
-- param: window_days integer 90 Days of the audit log that are checked
-- One row per grant event whose actor is unexpected (key: the event id),
-- the logic of rules/admin_grant_by_unexpected_actor.sql over `events`: an
-- org admin added, a group granted admin access (always an admin role),
-- and a role granted to a user or a group (the log does not name the
-- role, so each counts, and the reason says so). An actor is managed when
-- `users` has it with claim_status 'managed', an admin when
-- `user_role_assignments` gives it an org, site, product or user access
-- admin role.
WITH grants AS (
  SELECT org_id, event_id, time, action, actor_id, actor_email, actor_name, actor_auth_type, message
  FROM events
  WHERE time >= now() - interval '${window_days} days'
    AND lower(action) IN ('added_org_admin', 'group_granted_admin_access', 'user_granted_role', 'group_granted_role')
),
actor_admin AS (
  SELECT DISTINCT r.org_id, r.account_id
  FROM grants g
  JOIN user_role_assignments r ON r.org_id = g.org_id AND r.account_id = g.actor_id
  WHERE r.role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
),
actor_user AS (
  SELECT DISTINCT u.org_id, u.account_id, u.claim_status
  FROM grants g
  JOIN users u ON u.org_id = g.org_id AND u.account_id = g.actor_id
),
granted_to AS (
  SELECT org_id, event_id,
         coalesce(max(coalesce(name, object_id)) FILTER (WHERE object_type = 'groups'),
                  max(coalesce(name, object_id)) FILTER (WHERE object_type = 'users')) AS name
  FROM event_context
  WHERE time >= now() - interval '${window_days} days'
    AND lower(action) IN ('added_org_admin', 'group_granted_admin_access', 'user_granted_role', 'group_granted_role')
    AND role = 'context'
  GROUP BY org_id, event_id
)
SELECT g.event_id AS resource,
       'alarm' AS status,
       CASE WHEN lower(g.action) IN ('user_granted_role', 'group_granted_role')
            THEN 'A role (the log does not name it)' ELSE 'An admin role' END
         || ' granted to ' || coalesce(t.name, 'someone the log does not name')
         || ' on ' || to_char(g.time, '%Y-%m-%d')
         || ' by ' || coalesce(g.actor_email, g.actor_name, g.actor_id, 'an actor the log does not name')
         || ', who now is '
         || CASE
              WHEN u.account_id IS NULL THEN 'not a user of the organization''s directories'
              WHEN u.claim_status IS DISTINCT FROM 'managed' THEN 'not a managed account'
              ELSE 'a managed account'
            END
         || CASE WHEN a.account_id IS NULL THEN ' and holds no admin role' ELSE ' and an admin' END
         || CASE WHEN g.actor_auth_type = 'api-token' THEN ' (with an API token)' ELSE '' END AS reason,
       g.time AS event_time,
       g.action,
       g.actor_id,
       g.actor_email,
       u.claim_status AS actor_claim_status,
       a.account_id IS NOT NULL AS actor_is_admin
FROM grants g
LEFT JOIN granted_to t ON t.org_id = g.org_id AND t.event_id = g.event_id
LEFT JOIN actor_admin a ON a.org_id = g.org_id AND a.account_id = g.actor_id
LEFT JOIN actor_user u ON u.org_id = g.org_id AND u.account_id = g.actor_id
WHERE a.account_id IS NULL
   OR u.claim_status IS DISTINCT FROM 'managed'
ORDER BY status, resource;
