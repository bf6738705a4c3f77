-- id: admins_without_strong_auth_policy
-- title: Administrators are under an authentication policy that enforces SSO and two-step verification
-- severity: high
-- rationale: Whether an admin has two-step verification turned on today is not a control; an authentication policy that enforces single sign-on and two-step verification is. An admin under a policy that enforces neither, or under no policy of the organization (an unmanaged account), can log in with a password alone.
-- remediation: Move every admin into an authentication policy that enforces SSO (with MFA at the identity provider) and two-step verification; move admins on unmanaged accounts to managed ones, or remove their admin roles.
-- frameworks: soc2:CC6.1, iso27001:A.5.17, iso27001:A.8.5, nist800-53:IA-2(1), nist800-53:IA-2(2), cis:6.3, cis:6.5
-- population: active admins
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT r.org_id, r.account_id FROM user_role_assignments r JOIN users u USING (org_id, account_id) WHERE r.role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin') AND u.status = 'active')
WITH admins AS (
  SELECT org_id, account_id,
         string_agg(DISTINCT CASE role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(role, '/', 2) END, ', '
                    ORDER BY CASE role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(role, '/', 2) END) AS roles
  FROM user_role_assignments
  WHERE role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
  GROUP BY org_id, account_id
)
SELECT
  coalesce(u.email, a.account_id) AS resource,
  CASE WHEN p.sso_enforced AND p.two_step_enforced THEN 'ok' ELSE 'alarm' END AS status,
  'Admin (' || a.roles || ') ' || CASE
    WHEN u.claim_status IS DISTINCT FROM 'managed'
      THEN 'on an unmanaged account: no authentication policy of the organization applies'
    WHEN p.policy_id IS NULL THEN 'under no authentication policy'
    ELSE 'under ' || coalesce(p.policy_name, p.policy_id) || ', which '
      || CASE
           WHEN p.sso_enforced AND p.two_step_enforced THEN 'enforces SSO and two-step verification'
           WHEN p.sso_enforced THEN 'enforces SSO but not two-step verification'
           WHEN p.two_step_enforced THEN 'enforces two-step verification but not SSO'
           WHEN p.sso_enforced IS NULL OR p.two_step_enforced IS NULL THEN 'may not enforce SSO and two-step verification (the API does not say)'
           ELSE 'enforces neither SSO nor two-step verification'
         END
  END AS reason,
  a.account_id,
  a.roles,
  u.claim_status,
  p.policy_name,
  p.sso_enforced,
  p.two_step_enforced
FROM admins a
JOIN users u USING (org_id, account_id)
LEFT JOIN user_auth_policies p USING (org_id, account_id)
WHERE u.status = 'active'
ORDER BY status, resource;
