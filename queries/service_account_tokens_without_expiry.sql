-- id: service_account_tokens_without_expiry
-- title: Service account API tokens expire
-- severity: high
-- rationale: A service account's token is a password that no person's offboarding revokes. One that never expires outlives the integration that needed it and stays valid until someone remembers it.
-- remediation: Replace the token with one that expires (a year at most), move the integration to it, and revoke the old token.
-- frameworks: soc2:CC6.1, iso27001:A.5.17, nist800-53:IA-5, nist800-53:IA-5(1), cis:6.2, cis:5.2
-- population: unblocked service account tokens
-- population-sql: SELECT count(*) FROM service_account_tokens t WHERE t.status IS DISTINCT FROM 'BLOCKED'
SELECT
  t.token_id AS resource,
  CASE WHEN t.expires_at IS NULL THEN 'alarm' ELSE 'ok' END AS status,
  coalesce(t.label, 'Unlabelled token') || ' of service account ' || coalesce(s.name, t.service_account_id, 'unknown')
    || CASE WHEN t.expires_at IS NULL THEN ' never expires'
            ELSE ' expires on ' || to_char(t.expires_at, '%Y-%m-%d') END AS reason,
  t.service_account_id,
  s.name AS service_account,
  t.label,
  t.expires_at,
  t.last_active_at
FROM service_account_tokens t
LEFT JOIN service_accounts s ON s.org_id = t.org_id AND s.service_account_id = t.service_account_id
WHERE t.status IS DISTINCT FROM 'BLOCKED'
ORDER BY status, resource;
