-- id: inactive_users_with_access
-- title: Suspended and deactivated users hold no group memberships or roles
-- severity: medium
-- rationale: Offboarding is complete only when access is gone. A suspended or deactivated account that keeps its groups and roles gets all of it back the moment it is reactivated, and inflates access reviews.
-- remediation: Remove leavers from their groups and revoke their role assignments as part of offboarding (or delete the account). Reactivate only with fresh, reviewed access.
-- frameworks: soc2:CC6.2, soc2:CC6.3, iso27001:A.5.18, nist800-53:AC-2, cis:6.2
-- population: suspended and deactivated users
-- population-sql: SELECT count(*) FROM users WHERE status IN ('suspended', 'deactivated')
WITH gone AS (
  SELECT org_id, account_id, coalesce(email, account_id) AS who, status
  FROM users
  WHERE status IN ('suspended', 'deactivated')
),
memberships AS (
  SELECT g.org_id, g.account_id, count(*) AS n, string_agg(m.group_name, ', ' ORDER BY m.group_name) AS names
  FROM gone g JOIN group_members m USING (org_id, account_id)
  GROUP BY g.org_id, g.account_id
),
roles AS (
  SELECT g.org_id, g.account_id, count(*) AS n,
         count(*) FILTER (WHERE r.role <> 'atlassian/user') AS admin_n
  FROM gone g JOIN user_role_assignments r USING (org_id, account_id)
  GROUP BY g.org_id, g.account_id
)
SELECT
  g.who AS resource,
  CASE WHEN coalesce(m.n, 0) + coalesce(r.n, 0) > 0 THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN coalesce(m.n, 0) + coalesce(r.n, 0) = 0 THEN initcap(g.status) || ' user with no groups or roles'
    ELSE initcap(g.status) || ' user still in ' || coalesce(m.n, 0) || ' group(s) and holding '
         || coalesce(r.n, 0) || ' role assignment(s)'
         || CASE WHEN coalesce(r.admin_n, 0) > 0 THEN ', ' || r.admin_n || ' of them admin' ELSE '' END
  END AS reason,
  g.account_id,
  g.status AS user_status,
  m.names AS groups
FROM gone g
LEFT JOIN memberships m USING (org_id, account_id)
LEFT JOIN roles r USING (org_id, account_id)
ORDER BY status, resource;
