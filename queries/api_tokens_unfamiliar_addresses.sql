-- id: api_tokens_unfamiliar_addresses
-- title: API tokens act only from addresses people use
-- severity: high
-- rationale: A token acting from an address that no interactive session of the organization used is the typical sign of a leaked token. Token actions skip two-step verification.
-- remediation: Ask the token's owner which automation runs from those addresses. Revoke and rotate the token if nobody does, and restrict admin API access with an IP allowlist.
-- frameworks: soc2:CC7.2, iso27001:A.8.16, nist800-53:SI-4, cis:8.11
-- population: API tokens used in the last ${window_days} days
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT t.org_id, t.token_id FROM api_tokens t
-- population-sql: JOIN events e ON e.org_id = t.org_id AND e.actor_token_id = t.token_id
-- population-sql: WHERE e.time >= now() - interval '${window_days} days' AND e.ip IS NOT NULL AND e.actor_auth_type = 'api-token')
-- param: window_days integer 90 Days of sessions and token use that are compared
WITH recent AS (
  SELECT org_id, time, actor_auth_type, actor_token_id, ip
  FROM events
  WHERE time >= now() - interval '${window_days} days' AND ip IS NOT NULL
),
people AS (
  SELECT DISTINCT org_id, ip FROM recent
  WHERE actor_auth_type IS NULL OR actor_auth_type NOT LIKE '%token%'
),
uses AS (
  SELECT r.org_id, r.actor_token_id AS token_id, r.ip, p.ip IS NULL AS unfamiliar
  FROM recent r
  LEFT JOIN people p ON p.org_id = r.org_id AND p.ip = r.ip
  WHERE r.actor_auth_type = 'api-token' AND r.actor_token_id IS NOT NULL
)
SELECT
  t.token_id AS resource,
  CASE WHEN bool_or(u.unfamiliar) THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN bool_or(u.unfamiliar) THEN 'Used in ${window_days} days from ' || count(DISTINCT u.ip) FILTER (WHERE u.unfamiliar)
      || ' address(es) no person used: '
      || string_agg(DISTINCT u.ip, ', ') FILTER (WHERE u.unfamiliar)
    ELSE 'Used only from addresses people use'
  END || ' (' || coalesce(max(t.label), 'no label') || ', owned by '
    || coalesce(max(t.owner_email), max(t.account_id)) || ')' AS reason,
  max(t.account_id) AS account_id
FROM api_tokens t
JOIN uses u ON u.org_id = t.org_id AND u.token_id = t.token_id
GROUP BY t.org_id, t.token_id
ORDER BY status, resource;
