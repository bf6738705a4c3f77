-- id: site_admin_count
-- title: No more than 10 users hold the site admin role
-- severity: medium
-- rationale: Site admins manage users, groups and product access of every site they hold. The role is often handed out and rarely taken back, so its holders should be few and known.
-- remediation: Review each site admin. Remove the role from those who do not administer sites, and grant product admin roles for product-only administration.
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
  SELECT h.*, count(*) OVER () AS holders FROM holders h
)
SELECT
  coalesce(u.email, c.account_id) AS resource,
  CASE WHEN c.holders > 10 THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN c.holders > 10 THEN c.holders || ' users hold site-admin, more than the 10 allowed: confirm this one needs it'
    ELSE 'One of ' || c.holders || ' site-admins (at most 10 allowed)'
  END AS reason,
  c.account_id,
  u.status AS user_status,
  c.assignment_methods
FROM counted c
LEFT JOIN users u USING (org_id, account_id)
ORDER BY status, resource;
