-- id: admins_unmanaged_accounts
-- title: Administrators use managed accounts
-- severity: high
-- rationale: An admin on an unmanaged account (personal or partner address) is outside the organization's authentication policies, SSO and offboarding. If that mailbox is lost or taken over, so are the admin rights.
-- remediation: Give administrators admin roles only on accounts on a verified, claimed domain. Move the rights from the unmanaged account to a managed one and remove them from the unmanaged account.
-- frameworks: soc2:CC6.1, iso27001:A.5.16, iso27001:A.8.2, nist800-53:AC-2, nist800-53:IA-4, cis:5.1, cis:6.7
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
  CASE WHEN u.claim_status = 'managed' THEN 'ok' ELSE 'alarm' END AS status,
  CASE
    WHEN u.claim_status = 'managed' THEN 'Admin (' || a.roles || ') on a managed account'
    ELSE 'Admin (' || a.roles || ') on an unmanaged account'
  END AS reason,
  a.account_id,
  a.roles,
  u.status AS user_status
FROM admins a
JOIN users u USING (org_id, account_id)
WHERE u.status = 'active'
ORDER BY status, resource;
