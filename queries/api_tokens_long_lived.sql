-- id: api_tokens_long_lived
-- title: API tokens expire within a year
-- severity: medium
-- rationale: A token without an expiry, or one that expires years from now, stays valid long after the person or the script that needed it is gone.
-- remediation: Replace the token with one that expires within a year, and revoke the old one. Require an expiry for new tokens where the organization's policy allows it.
-- frameworks: soc2:CC6.1, iso27001:A.5.17, nist800-53:IA-5, cis:6.2
-- population: unblocked, unexpired API tokens
-- population-sql: SELECT count(*) FROM api_tokens t WHERE (t.status IS DISTINCT FROM 'BLOCKED') AND (t.expires_at IS NULL OR t.expires_at > now())
-- param: max_lifetime_days integer 365 The furthest a token may expire from today, in days
SELECT
  t.token_id AS resource,
  CASE
    WHEN t.expires_at IS NULL OR t.expires_at > now() + interval '${max_lifetime_days} days' THEN 'alarm'
    ELSE 'ok'
  END AS status,
  CASE
    WHEN t.expires_at IS NULL THEN 'Never expires'
    ELSE 'Expires on ' || CAST(CAST(t.expires_at AS DATE) AS VARCHAR)
  END || ' (' || coalesce(t.label, 'no label') || ', owned by '
    || coalesce(t.owner_email, t.account_id) || ')' AS reason,
  t.label,
  t.account_id,
  t.expires_at
FROM api_tokens t
WHERE (t.status IS DISTINCT FROM 'BLOCKED')
  AND (t.expires_at IS NULL OR t.expires_at > now())
ORDER BY status, resource;
