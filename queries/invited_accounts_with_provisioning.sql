-- id: invited_accounts_with_provisioning
-- title: Accounts on claimed domains come from the identity provider
-- severity: medium
-- rationale: Once an identity provider provisions the organization's users, an account on a claimed domain should be created by it. One created by invitation instead sits outside the identity provider's joiner and leaver process: nothing deprovisions it when the person leaves.
-- remediation: Provision the person in the identity provider and link the account to their SCIM user, or deactivate the account if nobody should have it. Restrict invitations to claimed domains in the user access settings.
-- frameworks: soc2:CC6.2, iso27001:A.5.16, nist800-53:AC-2(1), cis:5.6
-- population: managed accounts on claimed domains
-- population-sql: SELECT count(*) FROM users u WHERE u.claim_status = 'managed' AND u.status = 'active'
-- population-sql: AND lower(split_part(u.email, '@', 2)) IN (SELECT lower(name) FROM domains WHERE claim_status = 'verified')
-- A provisioning directory exists when a group is synced from an identity
-- provider: the control then needs no SCIM token.
SELECT u.email AS resource,
       'alarm' AS status,
       'On the claimed domain ' || lower(split_part(u.email, '@', 2)) || ', created by invitation while an identity provider provisions the organization' AS reason,
       u.account_id,
       u.name
FROM users u
WHERE u.claim_status = 'managed'
  AND u.status = 'active'
  AND u.management_source = 'invited'
  AND lower(split_part(u.email, '@', 2)) IN (SELECT lower(name) FROM domains WHERE claim_status = 'verified')
  AND EXISTS (SELECT 1 FROM groups g WHERE g.org_id = u.org_id AND g.external_synced)
ORDER BY status, resource
