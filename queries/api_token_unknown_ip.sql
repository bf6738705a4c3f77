-- id: api_token_unknown_ip
-- title: API tokens are used only from known networks
-- severity: high
-- rationale: An API token acting from an address that no person of the organization has used is the typical sign of a leaked token (scripts, CI logs, laptops). Token actions skip two-step verification.
-- remediation: Confirm the automation behind each address. Revoke and rotate the token if nobody owns it, and restrict admin API access with an IP allowlist.
-- frameworks: soc2:CC7.2, iso27001:A.8.16, nist800-53:AU-6, nist800-53:SI-4, cis:8.11
-- population: addresses API tokens acted from in the last ${recent_days} days
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT org_id, ip FROM events
-- population-sql: WHERE time >= now() - interval '${recent_days} days' AND actor_auth_type = 'api-token' AND ip IS NOT NULL)
-- param: window_days integer 90 Days of sessions that make an address known
-- param: recent_days integer 30 Days of token use that are checked
WITH ev AS (
  SELECT org_id, time, action, actor_email, actor_auth_type, actor_token_id, ip, country
  FROM events
  WHERE time >= now() - interval '${window_days} days'
),
known AS (
  SELECT DISTINCT org_id, ip FROM ev
  WHERE ip IS NOT NULL AND (actor_auth_type IS NULL OR actor_auth_type NOT LIKE '%token%')
)
SELECT
  t.ip AS resource,
  'alarm' AS status,
  count(*) || ' API-token action(s) in the last ' || ${recent_days} || ' days from an address (' || coalesce(max(t.country), 'unknown country')
    || ') that no interactive session used in ' || ${window_days} || ' days, by '
    || string_agg(DISTINCT coalesce(t.actor_email, 'unknown actor'), ', ') AS reason,
  min(t.time) AS first_seen,
  max(t.time) AS last_seen,
  string_agg(DISTINCT t.action, ', ') AS actions,
  string_agg(DISTINCT t.actor_token_id, ', ') AS token_ids
FROM ev t
WHERE t.actor_auth_type = 'api-token'
  AND t.time >= now() - interval '${recent_days} days'
  AND t.ip IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM known k WHERE k.org_id = t.org_id AND k.ip = t.ip)
GROUP BY t.org_id, t.ip
ORDER BY status, resource;
