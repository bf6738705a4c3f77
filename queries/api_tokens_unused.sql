-- id: api_tokens_unused
-- title: API tokens are in use, or removed
-- severity: medium
-- rationale: A token nobody uses still opens the organization to whoever finds it (old laptops, scripts, CI logs). A token unused for 90 days, or never used a month after it was made, is a key lying around.
-- remediation: Revoke the token (Settings > API tokens in admin.atlassian.com, or ask its owner). Create tokens when they are needed, with an expiry.
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2(3), cis:5.3
-- population: unblocked, unexpired API tokens
-- population-sql: SELECT count(*) FROM api_tokens t WHERE (t.status IS DISTINCT FROM 'BLOCKED') AND (t.expires_at IS NULL OR t.expires_at > now())
-- param: unused_days integer 90 Days since a token was last used after which it counts as unused
-- param: never_used_days integer 30 Days a never-used token may exist before it counts as unused
SELECT
  t.token_id AS resource,
  CASE
    WHEN t.last_active_at < now() - interval '${unused_days} days' THEN 'alarm'
    WHEN t.last_active_at IS NULL AND t.created_at < now() - interval '${never_used_days} days' THEN 'alarm'
    ELSE 'ok'
  END AS status,
  CASE
    WHEN t.last_active_at IS NULL
      THEN 'Never used since it was made on ' || CAST(CAST(t.created_at AS DATE) AS VARCHAR)
    ELSE 'Last used on ' || CAST(CAST(t.last_active_at AS DATE) AS VARCHAR)
  END || ' (' || coalesce(t.label, 'no label') || ', owned by '
    || coalesce(t.owner_email, t.account_id) || ')' AS reason,
  t.label,
  t.account_id,
  t.created_at,
  t.last_active_at
FROM api_tokens t
WHERE (t.status IS DISTINCT FROM 'BLOCKED')
  AND (t.expires_at IS NULL OR t.expires_at > now())
ORDER BY status, resource;
