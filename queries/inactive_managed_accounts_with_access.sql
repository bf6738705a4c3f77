-- id: inactive_managed_accounts_with_access
-- title: Inactive managed accounts no longer hold product access
-- severity: medium
-- rationale: Dormant accounts that keep product access widen the attack surface, are rarely noticed when taken over, and are usually billable. Access reviews expect unused access to be removed.
-- remediation: Remove the product access (or deactivate the account) of managed accounts with no activity for inactive_days (90 by default), after confirming with their manager.
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2(3), cis:5.3
-- population: active managed accounts
-- population-sql: SELECT count(*) FROM managed_accounts m JOIN users u USING (org_id, account_id)
-- population-sql: WHERE m.account_status = 'active' AND u.status = 'active'
-- param: inactive_days integer 90 Days without product activity after which an account counts as inactive
WITH stale AS (
  SELECT m.org_id, m.account_id, coalesce(m.email, m.account_id) AS who, m.last_active
  FROM managed_accounts m
  JOIN users u USING (org_id, account_id)
  WHERE m.account_status = 'active'
    AND u.status = 'active'
    AND (m.last_active < now() - interval '${inactive_days} days'
         OR (m.last_active IS NULL AND u.added_to_org < now() - interval '${inactive_days} days'))
)
SELECT
  s.who AS resource,
  'alarm' AS status,
  CASE
    WHEN s.last_active IS NULL THEN 'No recorded activity, yet still has access to '
    ELSE 'Inactive for ' || CAST(date_part('day', now() - s.last_active) AS BIGINT)
         || ' days (last active ' || to_char(s.last_active, '%Y-%m-%d') || '), yet still has access to '
  END || count(*) || ' product(s)' AS reason,
  s.account_id,
  s.last_active,
  string_agg(p.product_name || ' (' || p.url || ')', ', ' ORDER BY p.product_name, p.url) AS products
FROM stale s
JOIN managed_account_product_access p USING (org_id, account_id)
GROUP BY s.org_id, s.who, s.account_id, s.last_active
ORDER BY status, resource;
