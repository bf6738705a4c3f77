-- id: managed_users_without_auth_policy
-- title: Every managed user is under an authentication policy
-- severity: medium
-- rationale: An authentication policy is how the organization sets SSO, two-step verification and session length for its people. A managed account under none gets whatever the defaults are, which no review has approved, and it is the evidence auditors ask for under access control (who logs in how).
-- remediation: Add the users to the right authentication policy (Security > Authentication policies in admin.atlassian.com), and make sure new accounts land in a default policy.
-- frameworks: soc2:CC6.1, iso27001:A.5.17, iso27001:A.8.5, nist800-53:IA-2, nist800-53:AC-2, cis:6.3, cis:5.1
-- population: active managed users
-- population-sql: SELECT count(*) FROM users WHERE claim_status = 'managed' AND status = 'active'
SELECT
  coalesce(u.email, u.account_id) AS resource,
  'alarm' AS status,
  CASE WHEN p.account_id IS NULL THEN 'Managed user the authentication-policy lookup did not return: under no policy, as far as the API says'
       ELSE 'Managed user under no authentication policy' END AS reason,
  u.account_id
FROM users u
LEFT JOIN user_auth_policies p USING (org_id, account_id)
WHERE u.claim_status = 'managed'
  AND u.status = 'active'
  AND p.policy_id IS NULL
ORDER BY status, resource;
