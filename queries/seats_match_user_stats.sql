-- id: seats_match_user_stats
-- title: Seat counts agree with the API's own role counts
-- severity: low
-- rationale: There is no billing API: seats are counted from the roles. The count of accounts holding each product role in the seats view should equal what users/stats says for the same scope (every directory); a difference means the seats, and what they cost, are not the whole story. A site in productAccess without a role is counted as atlassian/user here.
-- remediation: Look at the role that differs: an account the listing left out, a role given where the bulk listing does not show it (read that account's role assignments), or a site given by a group's admin role and listed in productAccess.
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2, cis:5.1
-- population: product roles counted by users/stats or held in seats
-- population-sql: SELECT count(*) FROM (SELECT value FROM org_user_stats WHERE kind = 'role' AND value IN ('atlassian/user', 'atlassian/admin', 'atlassian/guest', 'atlassian/customer', 'atlassian/contributor', 'atlassian/basic', 'atlassian/stakeholder')
-- population-sql: UNION SELECT unnest(string_to_array(roles, ',')) FROM seats WHERE roles IS NOT NULL UNION SELECT 'atlassian/user' FROM seats WHERE via_product_access)
WITH held AS (
  SELECT org_id, account_id, unnest(string_to_array(roles, ',')) AS role FROM seats WHERE roles IS NOT NULL
  UNION ALL
  SELECT org_id, account_id, 'atlassian/user' AS role FROM seats WHERE via_product_access
),
counted AS (
  SELECT org_id, role, count(DISTINCT account_id) AS accounts FROM held GROUP BY org_id, role
),
api AS (
  SELECT org_id, value AS role, user_count FROM org_user_stats
  WHERE kind = 'role' AND value IN ('atlassian/user', 'atlassian/admin', 'atlassian/guest', 'atlassian/customer',
                                    'atlassian/contributor', 'atlassian/basic', 'atlassian/stakeholder')
)
SELECT
  coalesce(c.role, a.role) AS resource,
  CASE WHEN coalesce(c.accounts, 0) = coalesce(a.user_count, 0) THEN 'ok' ELSE 'alarm' END AS status,
  CAST(coalesce(c.accounts, 0) AS VARCHAR) || ' account(s) hold it in seats, users/stats counts '
    || CAST(coalesce(a.user_count, 0) AS VARCHAR) AS reason,
  c.accounts AS seat_accounts,
  a.user_count AS api_count
FROM counted c
FULL OUTER JOIN api a ON a.org_id = c.org_id AND a.role = c.role
ORDER BY status, resource;
