-- id: mfa_active_users
-- title: Active users have two-step verification
-- severity: high
-- rationale: An account protected by a password alone is taken over by phishing or password reuse. Two-step verification is the baseline control auditors expect for every active user.
-- remediation: Enforce two-step verification in an authentication policy for managed accounts, and require it (or SSO) for everyone else. Follow up on users whose status is unknown.
-- frameworks: soc2:CC6.1, iso27001:A.8.5, nist800-53:IA-2(2), cis:6.3
-- population: active users
-- population-sql: SELECT count(*) FROM users WHERE status = 'active'
SELECT
  coalesce(email, account_id) AS resource,
  'alarm' AS status,
  CASE
    WHEN mfa_enabled IS NULL THEN 'Active user whose two-step verification status is unknown'
    ELSE 'Active user without two-step verification'
  END AS reason,
  account_id,
  name,
  claim_status
FROM users
WHERE status = 'active'
  AND (mfa_enabled IS NULL OR NOT mfa_enabled)
ORDER BY status, resource;
