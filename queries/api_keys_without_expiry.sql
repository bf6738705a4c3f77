-- id: api_keys_without_expiry
-- title: Organization API keys expire
-- severity: high
-- rationale: An admin API key reads (and may change) the whole organization. One that never expires outlives the integration and the people who made it, and nobody notices it is still valid.
-- remediation: Replace the key with one that has an expiry (a year at most), move the integration to it, and revoke the old key.
-- frameworks: soc2:CC6.1, iso27001:A.5.17, nist800-53:IA-5, cis:6.2
-- population: unrevoked API keys
-- population-sql: SELECT count(*) FROM api_keys k WHERE k.revoked_at IS NULL
SELECT
  k.key_id AS resource,
  CASE WHEN k.expires_at IS NULL THEN 'alarm' ELSE 'ok' END AS status,
  coalesce(k.label, 'Unlabelled key') || CASE
    WHEN k.expires_at IS NULL THEN ' never expires'
    ELSE ' expires on ' || CAST(CAST(k.expires_at AS DATE) AS VARCHAR)
  END || ' (made by ' || coalesce(k.created_by_email, k.created_by_id, 'unknown') || ')' AS reason,
  k.label,
  k.expires_at
FROM api_keys k
WHERE k.revoked_at IS NULL
ORDER BY status, resource;
