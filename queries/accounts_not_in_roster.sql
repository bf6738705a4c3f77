-- id: accounts_not_in_roster
-- title: Every active account on a verified domain belongs to someone in the HR roster
-- severity: medium
-- rationale: An account on the company's own domains should belong to a person HR knows. One that matches nobody in the roster is an orphan: a leaver HR already removed, a shared or service mailbox, a duplicate or misspelt account, or a person hired outside the process, and nobody reviews its access.
-- remediation: Find the owner of each account. Deactivate orphans and leftovers; give shared and service accounts a named owner (or replace them with API tokens of a person); fix the roster or the address where they disagree.
-- frameworks: soc2:CC6.2, iso27001:A.5.16, iso27001:A.5.18, nist800-53:AC-2, cis:5.1
-- population: active accounts on verified domains
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT u.org_id, u.account_id FROM users u
-- population-sql: JOIN domains d ON d.org_id = u.org_id AND d.claim_status = 'verified' AND (lower(split_part(u.email, '@', 2)) = lower(d.name) OR lower(split_part(u.email, '@', 2)) LIKE '%.' || lower(d.name))
-- population-sql: WHERE u.status = 'active')
-- requires: roster
WITH on_verified AS (
  SELECT u.org_id, u.account_id, u.email, u.claim_status,
         array_agg(lower(d.name) ORDER BY length(d.name) DESC)[1] AS domain
  FROM users u
  JOIN domains d
    ON d.org_id = u.org_id
   AND d.claim_status = 'verified'
   AND (lower(split_part(u.email, '@', 2)) = lower(d.name)
        OR lower(split_part(u.email, '@', 2)) LIKE '%.' || lower(d.name))
  WHERE u.status = 'active'
    AND NOT EXISTS (SELECT 1 FROM roster r WHERE lower(r.email) = lower(u.email))
  GROUP BY u.org_id, u.account_id, u.email, u.claim_status
),
products AS (
  SELECT o.org_id, o.account_id, count(*) AS n
  FROM on_verified o JOIN user_product_access p USING (org_id, account_id)
  GROUP BY o.org_id, o.account_id
)
SELECT
  o.email AS resource,
  'alarm' AS status,
  'Active account on verified domain ' || o.domain || ' matches nobody in the roster' AS reason,
  o.account_id,
  o.claim_status,
  coalesce(p.n, 0) AS products
FROM on_verified o
LEFT JOIN products p ON p.org_id = o.org_id AND p.account_id = o.account_id
ORDER BY status, resource;
