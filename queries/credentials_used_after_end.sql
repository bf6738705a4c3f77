-- id: credentials_used_after_end
-- title: API keys and tokens are not used after they are revoked or expire
-- severity: critical
-- rationale: A revoked or expired credential must stop working. One that was used after its revocation or expiry means the revocation did not take, the expiry is not enforced, or the last-use record is wrong; each needs an explanation, and the activity is unexplained access until then. The credential controls that judge valid credentials leave these out.
-- remediation: Find what the credential did after it ended (the audit log, by key or token id), confirm with Atlassian support that it is dead, rotate whatever it could read, and find the integration still presenting it.
-- frameworks: soc2:CC6.1, soc2:CC7.2, iso27001:A.5.17, iso27001:A.8.16, nist800-53:IA-5, nist800-53:AC-2, cis:6.2, cis:8.11
-- population: revoked or expired API keys and API tokens
-- population-sql: SELECT (SELECT count(*) FROM api_keys k WHERE k.revoked_at IS NOT NULL OR k.expires_at < now())
-- population-sql: + (SELECT count(*) FROM api_tokens t WHERE t.expires_at < now())
-- population-sql: + (SELECT count(*) FROM service_account_tokens s WHERE s.expires_at < now())
-- A credential ends at its revocation or its expiry, whichever came first.
WITH ended AS (
  SELECT k.key_id AS id, 'API key' AS kind, k.label, k.created_by_email AS who,
         k.revoked_at, k.expires_at, k.last_active_at
  FROM api_keys k
  WHERE k.revoked_at IS NOT NULL OR k.expires_at < now()
  UNION ALL
  SELECT t.token_id, 'API token', t.label, coalesce(t.owner_email, t.account_id),
         CASE WHEN false THEN t.expires_at END, t.expires_at, t.last_active_at
  FROM api_tokens t
  WHERE t.expires_at < now()
  UNION ALL
  SELECT s.token_id, 'Service account token', s.label, s.service_account_id,
         CASE WHEN false THEN s.expires_at END, s.expires_at, s.last_active_at
  FROM service_account_tokens s
  WHERE s.expires_at < now()
),
judged AS (
  SELECT *,
         CASE WHEN revoked_at IS NOT NULL AND (expires_at IS NULL OR revoked_at < expires_at)
              THEN 'revoked' ELSE 'expired' END AS how,
         CASE WHEN revoked_at IS NOT NULL AND (expires_at IS NULL OR revoked_at < expires_at)
              THEN revoked_at ELSE expires_at END AS ended_at
  FROM ended
)
SELECT
  id AS resource,
  CASE WHEN last_active_at > ended_at THEN 'alarm' ELSE 'ok' END AS status,
  kind || ' ' || coalesce(label, 'without a label') || ' (' || coalesce(who, 'owner unknown') || ') '
    || how || ' on ' || to_char(ended_at, '%Y-%m-%d')
    || CASE
         WHEN last_active_at > ended_at THEN ' and used after that, last on ' || to_char(last_active_at, '%Y-%m-%d')
         WHEN last_active_at IS NULL THEN ', never used'
         ELSE ', last used before that, on ' || to_char(last_active_at, '%Y-%m-%d')
       END AS reason,
  kind,
  label,
  how,
  ended_at,
  last_active_at
FROM judged
ORDER BY status, resource;
