-- id: scim_inactive_with_access
-- title: Users the identity provider deprovisioned hold no product access
-- severity: high
-- rationale: A SCIM user with active = false is a person the identity provider has turned off. If the account it is linked to is still active with product access, the leaver can still reach product data: the deprovisioning did not take effect here.
-- remediation: Deactivate the linked account and remove its product access; then find why the SCIM deactivation did not reach it (a failed sync, a relinked account).
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2(3), cis:6.2
-- population: deprovisioned SCIM users
-- population-sql: SELECT count(*) FROM scim_users WHERE active = false
-- requires: scim
WITH products AS (
  SELECT org_id, account_id, count(*) AS n,
         array_to_string(array_sort(array_agg(DISTINCT coalesce(product_key, product_id))), ', ') AS keys
  FROM user_product_access
  GROUP BY org_id, account_id
)
SELECT coalesce(s.email, s.user_name, s.scim_id) AS resource,
       'alarm' AS status,
       'Deprovisioned in the identity provider (active = false), yet the account is active with access to ' || CAST(p.n AS VARCHAR) || ' product(s): ' || p.keys AS reason,
       s.account_id,
       s.directory_id,
       s.scim_id
FROM scim_users s
JOIN users u ON u.org_id = s.org_id AND u.account_id = s.account_id
JOIN products p ON p.org_id = s.org_id AND p.account_id = s.account_id
WHERE s.active = false
  AND u.status = 'active'
ORDER BY status, resource
