-- id: api_keys_creator_not_admin
-- title: Organization API keys were made by current org admins
-- severity: medium
-- rationale: A key made by someone who is no longer an org admin (moved on, or left) has no one accountable for it, and keeps the power its maker had.
-- remediation: Have a current org admin take over the integration with a key of their own, and revoke the old key.
-- frameworks: soc2:CC6.2, iso27001:A.5.17, iso27001:A.5.18, nist800-53:AC-2, nist800-53:IA-5, cis:6.2
-- population: unrevoked API keys
-- population-sql: SELECT count(*) FROM api_keys k WHERE k.revoked_at IS NULL
-- An admin who is suspended or deactivated holds the role but cannot act:
-- not accountable either.
WITH admins AS (
  SELECT DISTINCT r.org_id, r.account_id
  FROM user_role_assignments r JOIN users u USING (org_id, account_id)
  WHERE r.role = 'atlassian/org-admin' AND u.status = 'active'
)
SELECT
  k.key_id AS resource,
  CASE WHEN a.account_id IS NULL THEN 'alarm' ELSE 'ok' END AS status,
  coalesce(k.label, 'Unlabelled key') || ' was made by '
    || coalesce(k.created_by_email, k.created_by_name, k.created_by_id, 'someone unknown')
    || CASE WHEN a.account_id IS NULL THEN ', who is not an active org admin now' ELSE ', an org admin' END AS reason,
  k.label,
  k.created_by_id
FROM api_keys k
LEFT JOIN admins a ON a.org_id = k.org_id AND a.account_id = k.created_by_id
WHERE k.revoked_at IS NULL
ORDER BY status, resource;
