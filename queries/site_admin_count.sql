-- id: site_admin_count
-- title: Only a limited number of users hold the site admin role
-- severity: medium
-- rationale: Site admins manage users, groups and product access of every site they hold. The role is often handed out and rarely taken back, so its holders should be few and known.
-- remediation: Review each site admin. Remove the role from those who do not administer sites, and grant product admin roles for product-only administration.
-- frameworks: soc2:CC6.3, iso27001:A.8.2, nist800-53:AC-6(5), cis:5.4
-- as-of: grants
-- population: site-admins
-- population-sql: SELECT count(*) FROM (SELECT org_id, account_id FROM user_role_assignments
-- population-sql: WHERE role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
-- population-sql: GROUP BY org_id, account_id HAVING count(*) FILTER (WHERE role = 'atlassian/site-admin') > 0)
-- param: max_site_admins integer 10 The most users that may hold site-admin
WITH admin_roles AS (
  SELECT org_id, account_id, role, resource_id, assignment_methods
  FROM user_role_assignments
  WHERE role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
),
holders AS (
  SELECT org_id, account_id,
         string_agg(DISTINCT assignment_methods, ',') FILTER (WHERE role = 'atlassian/site-admin') AS assignment_methods
  FROM admin_roles
  GROUP BY org_id, account_id
  HAVING count(*) FILTER (WHERE role = 'atlassian/site-admin') > 0
),
counted AS (
  SELECT h.*, count(*) OVER (PARTITION BY org_id) AS holders FROM holders h
)
SELECT
  coalesce(u.email, c.account_id) AS resource,
  CASE WHEN c.holders > ${max_site_admins} THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN c.holders > ${max_site_admins} THEN c.holders || ' users hold site-admin, more than the ${max_site_admins} allowed: confirm this one needs it'
    ELSE 'One of ' || c.holders || ' site-admins (at most ${max_site_admins} allowed)'
  END AS reason,
  c.account_id,
  u.status AS user_status,
  c.assignment_methods
FROM counted c
LEFT JOIN users u USING (org_id, account_id)
ORDER BY status, resource;
