-- id: accounts_inactive_in_idp
-- title: Active managed accounts are active in the identity provider's export
-- severity: high
-- rationale: The identity provider is where joiners and leavers are recorded. A managed account that is active here while the identity provider's export (--idp) shows its person inactive, or does not list them, escaped the provisioning that should have closed it. This is the same test as accounts_inactive_in_scim, made from an export where no SCIM token is at hand.
-- remediation: Deactivate the account, or, if the person is still here, add them to the identity provider so it governs the account. Check the export is the whole directory (a filtered export makes people look absent).
-- frameworks: soc2:CC6.2, iso27001:A.5.16, nist800-53:AC-2, cis:5.3
-- population: active managed accounts
-- population-sql: SELECT count(*) FROM users WHERE status = 'active' AND claim_status = 'managed'
-- requires: idp_users
SELECT coalesce(u.email, u.account_id) AS resource,
       'alarm' AS status,
       CASE WHEN i.email IS NULL
            THEN 'Active here, but the identity provider''s export does not list the email'
            ELSE 'Active here, but ' || i.idp_status || ' (inactive) in the identity provider''s export, line ' || CAST(i.line AS VARCHAR)
       END AS reason,
       u.account_id,
       u.name
FROM users u
LEFT JOIN idp_users i ON lower(i.email) = lower(u.email)
WHERE u.status = 'active'
  AND u.claim_status = 'managed'
  AND (i.email IS NULL OR i.status = 'inactive')
ORDER BY status, resource
