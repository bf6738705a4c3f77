-- id: accounts_inactive_in_scim
-- title: Active managed accounts are active in the identity provider (SCIM)
-- severity: high
-- rationale: The identity provider is where joiners and leavers are recorded. A managed account that is active here while the identity provider has deprovisioned its person, or has no record of it at all, escaped the provisioning that should have closed it: a leaver who can still sign in, or an account nobody's offboarding will reach.
-- remediation: Deactivate the account, or, if the person is still here, provision them in the identity provider so its directory governs the account. Find why the deprovisioning did not reach Atlassian (a failed SCIM sync, an account linked to the wrong record).
-- frameworks: soc2:CC6.2, iso27001:A.5.16, nist800-53:AC-2, cis:5.3
-- population: active managed accounts
-- population-sql: SELECT count(*) FROM users WHERE status = 'active' AND claim_status = 'managed'
-- requires: scim
WITH linked AS (
  -- Every SCIM record of the account, in every directory with a token.
  SELECT org_id, account_id, bool_or(active) AS any_active
  FROM scim_users
  WHERE account_id IS NOT NULL
  GROUP BY org_id, account_id
)
SELECT coalesce(u.email, u.account_id) AS resource,
       'alarm' AS status,
       CASE WHEN l.account_id IS NULL
            THEN 'Active here, but no SCIM directory has a record linked to the account'
            ELSE 'Active here, but deprovisioned (active = false) in the identity provider'
       END AS reason,
       u.account_id,
       u.name
FROM users u
LEFT JOIN linked l ON l.org_id = u.org_id AND l.account_id = u.account_id
WHERE u.status = 'active'
  AND u.claim_status = 'managed'
  AND (l.account_id IS NULL OR NOT l.any_active)
ORDER BY status, resource
