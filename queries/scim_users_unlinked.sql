-- id: scim_users_unlinked
-- title: Every SCIM user is linked to an account
-- severity: medium
-- rationale: A user the identity provider pushed that is linked to no Atlassian account (Atlassian's ACCESS-1396) is provisioning that did not happen: the person may have been given an unmanaged account by invitation instead, outside the identity provider's control, or a leaver's deprovisioning has nothing to reach. The admin UI does not show these; only the SCIM API does.
-- remediation: Find why the link failed (an email that differs, an account created before the directory, a conflicting account) and link or recreate the record; remove records of people who should not be provisioned.
-- frameworks: soc2:CC6.1, iso27001:A.5.16, nist800-53:IA-4, cis:5.1
-- population: SCIM users
-- population-sql: SELECT count(*) FROM scim_users
-- requires: scim
SELECT coalesce(s.email, s.user_name, s.scim_id) AS resource,
       'alarm' AS status,
       CASE WHEN s.account_id IS NULL
            THEN 'The identity provider pushed this user, but it is linked to no account'
            ELSE 'Linked to account ' || s.account_id || ', which the organization does not have'
       END AS reason,
       s.directory_id,
       s.scim_id,
       s.external_id,
       s.active
FROM scim_users s
LEFT JOIN users u ON u.org_id = s.org_id AND u.account_id = s.account_id
WHERE u.account_id IS NULL
ORDER BY status, resource
