-- id: org_admin_count
-- title: Only a named few users hold the organization admin role
-- severity: high
-- rationale: Organization admins control every product, user, policy and API key of the organization. Each extra holder is another account whose takeover compromises everything.
-- remediation: Keep org-admin to a named few (2 or 3 break-glass and owner accounts). Give day-to-day administrators user-access-admin or product admin roles instead.
-- frameworks: soc2:CC6.3, iso27001:A.8.2, nist800-53:AC-6(5), cis:5.4
-- as-of: grants
-- population: org-admins
-- population-sql: SELECT count(*) FROM (SELECT org_id, account_id FROM user_role_assignments
-- population-sql: WHERE role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
-- population-sql: GROUP BY org_id, account_id HAVING count(*) FILTER (WHERE role = 'atlassian/org-admin') > 0)
-- param: max_org_admins integer 3 The most users that may hold org-admin
WITH admin_roles AS (
  SELECT org_id, account_id, role, resource_id, assignment_methods
  FROM user_role_assignments
  WHERE role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
),
holders AS (
  SELECT org_id, account_id,
         string_agg(DISTINCT assignment_methods, ',') FILTER (WHERE role = 'atlassian/org-admin') AS assignment_methods
  FROM admin_roles
  GROUP BY org_id, account_id
  HAVING count(*) FILTER (WHERE role = 'atlassian/org-admin') > 0
),
counted AS (
  SELECT h.*, count(*) OVER (PARTITION BY org_id) AS holders FROM holders h
)
SELECT
  coalesce(u.email, c.account_id) AS resource,
  CASE WHEN c.holders > ${max_org_admins} THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN c.holders > ${max_org_admins} THEN c.holders || ' users hold org-admin, more than the ${max_org_admins} allowed: confirm this one needs it'
    ELSE 'One of ' || c.holders || ' org-admins (at most ${max_org_admins} allowed)'
  END AS reason,
  c.account_id,
  u.status AS user_status,
  c.assignment_methods
FROM counted c
LEFT JOIN users u USING (org_id, account_id)
ORDER BY status, resource;
