-- id: admin_grant_by_unexpected_actor
-- title: An admin role granted by an actor who is not a managed account or not an admin
-- severity: critical
-- rationale: Only the organization's own admins, on accounts it manages, should hand out admin roles. A grant by an account on a domain the organization does not manage, or by one that holds no admin role, points to a compromised or forgotten account, a misused API token, or a role granted and taken back to hide it. The actor is judged as the users and role tables show it when the poll runs, not as it was when it acted.
-- remediation: Confirm the grant with the actor's owner and the admin team; revoke the role and the actor's access if nobody approved it, and review what the actor changed since.
-- frameworks: soc2:CC6.2, soc2:CC6.3, soc2:CC7.2, iso27001:A.5.18, iso27001:A.8.2, nist800-53:AC-2, nist800-53:AC-6, cis:5.4, cis:6.8
-- One alert per event (key: the event id). The grants taken: an org admin
-- added, a group granted admin access (both always an admin role), and a
-- role granted to a user or a group (user_granted_role, group_granted_role:
-- the log does not name the role, so each counts, and the reason says so).
-- An actor is managed when `users` has it with claim_status 'managed', an
-- admin when `user_role_assignments` gives it (directly or by a group) an
-- org, site, product or user access admin role.
WITH grants AS (
  SELECT org_id, event_id, time, action, actor_id, actor_email, actor_name, actor_auth_type, message
  FROM new_events
  WHERE lower(action) IN (
      'added_org_admin',
      'group_granted_admin_access',
      'user_granted_role',
      'group_granted_role'
  )
),
-- Joined from the grants, so only their actors are looked up.
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
-- Who got it: the group, else the user.
granted_to AS (
  SELECT event_id,
         coalesce(max(coalesce(name, object_id)) FILTER (WHERE object_type = 'groups'),
                  max(coalesce(name, object_id)) FILTER (WHERE object_type = 'users')) AS name
  FROM new_event_context
  WHERE role = 'context'
  GROUP BY event_id
)
SELECT coalesce(t.name, g.event_id) AS resource,
       'alarm' AS status,
       CASE WHEN lower(g.action) IN ('user_granted_role', 'group_granted_role')
            THEN 'A role (the log does not name it)' ELSE 'An admin role' END
         || ' granted by ' || coalesce(g.actor_email, g.actor_name, g.actor_id, 'an actor the log does not name')
         || ', who now is '
         || CASE
              WHEN u.account_id IS NULL THEN 'not a user of the organization''s directories'
              WHEN u.claim_status IS DISTINCT FROM 'managed' THEN 'not a managed account'
              ELSE 'a managed account'
            END
         || CASE WHEN a.account_id IS NULL THEN ' and holds no admin role' ELSE ' and an admin' END
         || CASE WHEN g.actor_auth_type = 'api-token' THEN ' (with an API token)' ELSE '' END
         || ': ' || coalesce(g.message, '') AS reason,
       g.event_id AS key,
       g.time AS event_time,
       g.action,
       g.actor_id,
       g.actor_email,
       u.claim_status AS actor_claim_status,
       a.account_id IS NOT NULL AS actor_is_admin
FROM grants g
LEFT JOIN granted_to t ON t.event_id = g.event_id
LEFT JOIN actor_admin a ON a.org_id = g.org_id AND a.account_id = g.actor_id
LEFT JOIN actor_user u ON u.org_id = g.org_id AND u.account_id = g.actor_id
WHERE a.account_id IS NULL
   OR u.claim_status IS DISTINCT FROM 'managed'
