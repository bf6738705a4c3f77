-- id: users_email_not_verified
-- title: Active users have a verified email address
-- severity: low
-- rationale: An unverified address may not belong to the person using the account, so password resets, notifications and domain-based claiming cannot be trusted for it.
-- remediation: Ask the user to verify the address (or resend the verification). Suspend accounts whose address stays unverified and cannot be tied to a known person.
-- frameworks: soc2:CC6.1, iso27001:A.5.16, nist800-53:IA-4, cis:5.1
-- population: active users
-- population-sql: SELECT count(*) FROM users WHERE status = 'active'
SELECT
  coalesce(email, account_id) AS resource,
  'alarm' AS status,
  'Active ' || coalesce(claim_status, '') || ' account whose email address is not verified' AS reason,
  account_id,
  name,
  claim_status
FROM users
WHERE status = 'active'
  AND NOT email_verified
ORDER BY status, resource;
