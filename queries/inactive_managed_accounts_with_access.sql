-- id: inactive_managed_accounts_with_access
-- title: Inactive managed accounts no longer hold product access
-- severity: medium
-- rationale: Dormant accounts that keep product access widen the attack surface, are rarely noticed when taken over, and are usually billable. Access reviews expect unused access to be removed. An account counts as inactive only when nothing shows it in use: no product activity, no action in the audit log (a login, an admin change) and no use of its API tokens.
-- remediation: Remove the product access (or deactivate the account) of managed accounts with no activity for inactive_days (90 by default), after confirming with their manager.
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2(3), cis:5.3
-- population: active managed accounts
-- population-sql: SELECT count(*) FROM managed_accounts m JOIN users u USING (org_id, account_id)
-- population-sql: WHERE m.account_status = 'active' AND u.status = 'active'
-- param: inactive_days integer 90 Days without product activity, audit-log action or API-token use after which an account counts as inactive
-- Last seen combines the three records of use: product activity
-- (managed_accounts.last_active), the account's own actions in the audit
-- log within the window (logins among them; read for the window only),
-- and its API tokens' last use.
WITH acted AS (
  SELECT org_id, actor_id AS account_id, max(time) AS last_action
  FROM events
  WHERE time >= now() - interval '${inactive_days} days'
  GROUP BY org_id, actor_id
),
token_use AS (
  SELECT org_id, account_id, max(last_active_at) AS last_token_use
  FROM api_tokens
  GROUP BY org_id, account_id
),
stale AS (
  SELECT m.org_id, m.account_id, coalesce(m.email, m.account_id) AS who, m.last_active, t.last_token_use
  FROM managed_accounts m
  JOIN users u ON u.org_id = m.org_id AND u.account_id = m.account_id
  LEFT JOIN acted a ON a.org_id = m.org_id AND a.account_id = m.account_id
  LEFT JOIN token_use t ON t.org_id = m.org_id AND t.account_id = m.account_id
  WHERE m.account_status = 'active'
    AND u.status = 'active'
    AND (m.last_active < now() - interval '${inactive_days} days'
         OR (m.last_active IS NULL AND u.added_to_org < now() - interval '${inactive_days} days'))
    AND a.last_action IS NULL
    AND (t.last_token_use IS NULL OR t.last_token_use < now() - interval '${inactive_days} days')
)
SELECT
  s.who AS resource,
  'alarm' AS status,
  CASE
    WHEN s.last_active IS NULL THEN 'No recorded product activity'
    ELSE 'Inactive for ' || CAST(date_part('day', now() - s.last_active) AS BIGINT)
         || ' days (last product activity ' || to_char(s.last_active, '%Y-%m-%d') || ')'
  END || ', no action in the audit log in ${inactive_days} days'
    || CASE WHEN s.last_token_use IS NULL THEN ''
            ELSE ', API tokens last used ' || to_char(s.last_token_use, '%Y-%m-%d') END
    || ', yet still has access to ' || count(*) || ' product(s)' AS reason,
  s.account_id,
  s.last_active,
  string_agg(p.product_name || ' (' || p.url || ')', ', ' ORDER BY p.product_name, p.url) AS products
FROM stale s
JOIN managed_account_product_access p USING (org_id, account_id)
GROUP BY s.org_id, s.who, s.account_id, s.last_active, s.last_token_use
ORDER BY status, resource;
