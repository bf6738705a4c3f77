-- id: unmanaged_accounts_with_access
-- title: Unmanaged accounts have no product access
-- severity: medium
-- rationale: Accounts outside the organization's claimed domains (personal or partner addresses) are not under its authentication policies, password rules, SSO or offboarding, yet can read and change product data.
-- remediation: Move the person to a managed account (claim their domain or invite their work address), or remove the product access. For partners, use a dedicated, reviewed group with an expiry.
-- frameworks: soc2:CC6.1, iso27001:A.5.16, nist800-53:AC-2, cis:5.1
-- population: active users
-- population-sql: SELECT count(*) FROM users WHERE status = 'active'
WITH unmanaged AS (
  SELECT org_id, account_id, coalesce(email, account_id) AS who, mfa_enabled
  FROM users
  WHERE claim_status = 'unmanaged' AND status = 'active'
)
SELECT
  u.who AS resource,
  'alarm' AS status,
  'Unmanaged account with access to ' || count(*) || ' product site(s)'
    || CASE
         WHEN u.mfa_enabled THEN ''
         WHEN u.mfa_enabled IS NULL THEN ', two-step verification unknown'
         ELSE ', no two-step verification'
       END AS reason,
  u.account_id,
  string_agg(coalesce(w.name || ' ' || w.type_key, p.product_id), ', '
             ORDER BY coalesce(w.name || ' ' || w.type_key, p.product_id)) AS products
FROM unmanaged u
JOIN user_product_access p USING (org_id, account_id)
LEFT JOIN workspaces w ON w.org_id = p.org_id AND w.workspace_id = p.product_id
GROUP BY u.org_id, u.who, u.account_id, u.mfa_enabled
ORDER BY status, resource;
