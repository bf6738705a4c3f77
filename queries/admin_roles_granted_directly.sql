-- id: admin_roles_granted_directly
-- title: Admin roles are granted through groups, not directly to users
-- severity: medium
-- rationale: Admin rights granted through a group are visible in one place and revoked by removing the user from the group (or by the identity provider). A direct grant is easy to miss in access reviews and outlives the group membership.
-- remediation: Grant org-admin, site-admin and product admin roles only through admin groups. Remove the direct grants (keep the group membership where the access is still needed).
-- frameworks: soc2:CC6.3, iso27001:A.5.15, iso27001:A.8.2, nist800-53:AC-2, nist800-53:AC-6, cis:6.8
-- as-of: grants
-- population: org, site and product admins
-- population-sql: SELECT count(*) FROM (SELECT org_id, account_id FROM user_role_assignments
-- population-sql: WHERE role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
-- population-sql: GROUP BY org_id, account_id HAVING count(*) FILTER (WHERE role <> 'atlassian/user-access-admin') > 0)
WITH admin_roles AS (
  SELECT org_id, account_id, role, resource_id, assignment_methods
  FROM user_role_assignments
  WHERE role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
),
direct AS (
  SELECT org_id, account_id,
         string_agg(DISTINCT CASE role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(role, '/', 2) END, ', '
                    ORDER BY CASE role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(role, '/', 2) END) AS roles,
         bool_and(array_has(string_to_array(assignment_methods, ','), 'group_direct')) AS also_through_group,
         count(DISTINCT resource_id) AS resources
  FROM admin_roles
  WHERE role <> 'atlassian/user-access-admin'
    AND array_has(string_to_array(assignment_methods, ','), 'direct')
  GROUP BY org_id, account_id
)
SELECT
  coalesce(u.email, d.account_id) AS resource,
  'alarm' AS status,
  CASE
    WHEN d.also_through_group THEN d.roles || ' granted directly as well as through a group: removing the group membership would not revoke it'
    ELSE d.roles || ' granted directly, not through any group'
  END AS reason,
  d.account_id,
  d.roles,
  d.resources
FROM direct d
LEFT JOIN users u USING (org_id, account_id)
ORDER BY status, resource;
