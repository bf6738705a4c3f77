-- id: users_outside_verified_domains
-- title: Active users have an email address on a verified domain
-- severity: low
-- rationale: Users whose address is not on one of the organization's verified domains are outsiders (personal mail, partners, typo or look-alike domains). Auditors expect each to be a known, justified guest.
-- remediation: Verify and claim the domain if it belongs to the company. Otherwise confirm the user is an approved external collaborator, or remove them.
-- frameworks: soc2:CC6.1, iso27001:A.5.16, nist800-53:AC-2, cis:5.1
-- population: active users
-- population-sql: SELECT count(*) FROM users WHERE status = 'active'
SELECT
  coalesce(u.email, u.account_id) AS resource,
  'alarm' AS status,
  CASE
    WHEN u.email IS NULL THEN 'Email address hidden: domain cannot be checked'
    ELSE 'Email domain ' || lower(split_part(u.email, '@', 2)) || ' is not a verified domain of the organization'
  END AS reason,
  u.account_id,
  u.claim_status
FROM users u
WHERE u.status = 'active'
  AND NOT EXISTS (
    SELECT 1 FROM domains d
    WHERE d.org_id = u.org_id
      AND d.claim_status = 'verified'
      AND (lower(split_part(u.email, '@', 2)) = lower(d.name)
           OR lower(split_part(u.email, '@', 2)) LIKE '%.' || lower(d.name))
  )
ORDER BY status, resource;
