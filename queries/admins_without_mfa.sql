-- id: admins_without_mfa
-- title: Administrators have two-step verification
-- severity: critical
-- rationale: An administrator account without two-step verification is one phished password away from control of users, products or the whole organization.
-- remediation: Turn on two-step verification (or SSO with MFA at the identity provider) for every admin now, and enforce it with an authentication policy that covers all admin accounts.
-- frameworks: soc2:CC6.1, iso27001:A.8.2, iso27001:A.8.5, nist800-53:IA-2(1), cis:6.5
-- population: active admins
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT r.org_id, r.account_id FROM user_role_assignments r JOIN users u USING (org_id, account_id) WHERE r.role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin') AND u.status = 'active')
WITH admin_roles AS (
  SELECT org_id, account_id, role, resource_id, assignment_methods
  FROM user_role_assignments
  WHERE role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
),
admins AS (
  SELECT org_id, account_id,
         string_agg(DISTINCT CASE role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(role, '/', 2) END, ', '
                    ORDER BY CASE role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(role, '/', 2) END) AS roles
  FROM admin_roles
  GROUP BY org_id, account_id
)
SELECT
  coalesce(u.email, a.account_id) AS resource,
  CASE WHEN u.mfa_enabled THEN 'ok' ELSE 'alarm' END AS status,
  CASE
    WHEN u.mfa_enabled THEN 'Admin (' || a.roles || ') with two-step verification'
    WHEN u.mfa_enabled IS NULL THEN 'Admin (' || a.roles || ') whose two-step verification status is unknown'
    ELSE 'Admin (' || a.roles || ') without two-step verification'
  END AS reason,
  a.account_id,
  a.roles,
  u.claim_status
FROM admins a
JOIN users u USING (org_id, account_id)
WHERE u.status = 'active'
ORDER BY status, resource;
