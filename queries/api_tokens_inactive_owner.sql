-- id: api_tokens_inactive_owner
-- title: API tokens belong to active users
-- severity: high
-- rationale: Suspending or deactivating a person is meant to end their access. A valid token they still own keeps acting for them, without two-step verification, for as long as it lives.
-- remediation: Revoke the tokens of every user who is not active, as a step of offboarding.
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2(3), nist800-53:IA-5, cis:6.2
-- population: unblocked, unexpired API tokens
-- population-sql: SELECT count(*) FROM api_tokens t WHERE (t.status IS DISTINCT FROM 'BLOCKED') AND (t.expires_at IS NULL OR t.expires_at > now())
SELECT
  t.token_id AS resource,
  CASE WHEN u.status IS DISTINCT FROM 'active' THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN u.account_id IS NULL THEN 'Owner ' || t.account_id || ' is no longer in the directory'
    ELSE 'Owner ' || coalesce(u.email, u.account_id) || ' is ' || coalesce(u.status, 'of unknown status')
  END || ' (' || coalesce(t.label, 'no label') || ')' AS reason,
  t.label,
  t.account_id,
  u.status AS owner_status
FROM api_tokens t
LEFT JOIN users u ON u.org_id = t.org_id AND u.account_id = t.account_id
WHERE (t.status IS DISTINCT FROM 'BLOCKED')
  AND (t.expires_at IS NULL OR t.expires_at > now())
ORDER BY status, resource;
