-- id: one_person_two_accounts
-- title: Each person of the identity provider has one account
-- severity: medium
-- rationale: When SCIM users with the same externalId (the identity provider's id for the person) or the same email are linked to different accounts, one person holds two accounts: access reviews see two people, and offboarding that closes one leaves the other.
-- remediation: Keep one account per person (usually the managed one), move what the other holds to it, and deactivate the other; fix the identity provider's duplicate assignment.
-- frameworks: soc2:CC6.1, iso27001:A.5.16, nist800-53:IA-4, cis:5.1
-- population: SCIM users linked to an account
-- population-sql: SELECT count(*) FROM scim_users WHERE account_id IS NOT NULL
-- requires: scim
WITH keyed AS (
  SELECT org_id, 'externalId ' || external_id AS person, account_id
  FROM scim_users WHERE external_id IS NOT NULL AND account_id IS NOT NULL
  UNION ALL
  SELECT org_id, 'email ' || lower(email) AS person, account_id
  FROM scim_users WHERE email IS NOT NULL AND account_id IS NOT NULL
)
SELECT person AS resource,
       'alarm' AS status,
       'One person of the identity provider, linked to ' || CAST(count(DISTINCT account_id) AS VARCHAR) || ' accounts: ' || array_to_string(array_sort(array_agg(DISTINCT account_id)), ', ') AS reason
FROM keyed
GROUP BY org_id, person
HAVING count(DISTINCT account_id) > 1
ORDER BY status, resource
