-- id: leavers_with_access
-- title: People who have left, per the HR roster, hold no access
-- severity: high
-- rationale: The HR roster is the authority on who still works here. A person who has left (terminated, or past their end date) and still has an active account, product access, group memberships or a valid API token can keep using company systems, and offboarding that misses them is the classic access-review finding.
-- remediation: Deactivate the account, remove its product access and group memberships, and revoke its API tokens as soon as HR records the departure. Where the roster is wrong (a rehire, a changed end date), correct the roster.
-- frameworks: soc2:CC6.2, soc2:CC6.3, iso27001:A.5.18, iso27001:A.6.5, nist800-53:AC-2, nist800-53:PS-4, cis:5.3, cis:6.2
-- population: leavers in the roster with an account
-- population-sql: SELECT count(*) FROM roster r JOIN users u ON lower(u.email) = lower(r.email)
-- population-sql: WHERE r.end_date < current_date OR (r.end_date IS NULL AND lower(r.employment_status) = 'terminated')
-- requires: roster
WITH leavers AS (
  SELECT u.org_id, u.account_id, u.email, u.status AS account_status,
         r.employment_status, r.end_date
  FROM roster r
  JOIN users u ON lower(u.email) = lower(r.email)
  -- Left: an end date that has passed, or terminated with none given. A
  -- terminated person whose end date is still ahead is serving notice.
  WHERE r.end_date < current_date
     OR (r.end_date IS NULL AND lower(r.employment_status) = 'terminated')
),
products AS (
  SELECT l.org_id, l.account_id, count(*) AS n
  FROM leavers l JOIN user_product_access p USING (org_id, account_id)
  GROUP BY l.org_id, l.account_id
),
memberships AS (
  SELECT l.org_id, l.account_id, count(*) AS n
  FROM leavers l JOIN group_members m USING (org_id, account_id)
  GROUP BY l.org_id, l.account_id
),
tokens AS (
  SELECT l.org_id, l.account_id, count(*) AS n
  FROM leavers l JOIN api_tokens t USING (org_id, account_id)
  WHERE (t.status IS DISTINCT FROM 'BLOCKED')
    AND (t.expires_at IS NULL OR t.expires_at > now())
  GROUP BY l.org_id, l.account_id
),
judged AS (
  SELECT l.*,
         coalesce(p.n, 0) AS products,
         coalesce(m.n, 0) AS groups,
         coalesce(t.n, 0) AS api_tokens
  FROM leavers l
  LEFT JOIN products p ON p.org_id = l.org_id AND p.account_id = l.account_id
  LEFT JOIN memberships m ON m.org_id = l.org_id AND m.account_id = l.account_id
  LEFT JOIN tokens t ON t.org_id = l.org_id AND t.account_id = l.account_id
)
SELECT
  email AS resource,
  CASE WHEN account_status = 'active' OR products + groups + api_tokens > 0 THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN end_date IS NULL THEN 'Left on an unknown date'
    ELSE 'Left ' || CAST(end_date AS VARCHAR)
  END
  || CASE
       WHEN lower(employment_status) = 'terminated' THEN ' (terminated)'
       ELSE ' (end date passed, roster says ' || coalesce(employment_status, 'nothing') || ')'
     END
  || '; account ' || coalesce(account_status, 'of unknown status')
  || CASE WHEN products > 0 THEN ', ' || products || ' product(s)' ELSE '' END
  || CASE WHEN groups > 0 THEN ', ' || groups || ' group(s)' ELSE '' END
  || CASE WHEN api_tokens > 0 THEN ', ' || api_tokens || ' active API token(s)' ELSE '' END
  || CASE WHEN (account_status IS DISTINCT FROM 'active') AND products + groups + api_tokens = 0
          THEN ', no access remains' ELSE '' END AS reason,
  account_id,
  end_date AS left_on,
  employment_status,
  account_status,
  products,
  groups,
  api_tokens
FROM judged
ORDER BY status, resource;
