-- id: api_token_activity_unlisted
-- title: Every API token that acts in the organization can be listed
-- severity: high
-- rationale: The organization lists only its managed accounts' API tokens (and its service accounts'). A token of an unmanaged account acts with its owner's roles yet appears in no inventory: nobody can see its age, expiry or scopes, nor revoke it from the organization. Activity by such tokens is access the credential inventory does not cover.
-- remediation: Claim the owner's domain (or move the person to a managed account) so their tokens can be listed and revoked; otherwise remove the account's admin roles, and ask the owner to revoke the token.
-- frameworks: soc2:CC6.1, soc2:CC6.2, iso27001:A.5.16, iso27001:A.5.17, nist800-53:IA-5, nist800-53:AC-2, cis:5.1, cis:6.2
-- population: accounts that acted with an API token in the last ${window_days} days
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT org_id, actor_id FROM events
-- population-sql: WHERE time >= now() - interval '${window_days} days' AND actor_auth_type = 'api-token')
-- param: window_days integer 90 Days of the audit log that are checked
-- One row per account. A token is listed when api_tokens or
-- service_account_tokens has its id; an event without a token id counts as
-- unlisted (nobody can tell which token it was).
WITH token_events AS (
  SELECT org_id, actor_id, actor_email, actor_name, actor_token_id, time
  FROM events
  WHERE time >= now() - interval '${window_days} days'
    AND actor_auth_type = 'api-token'
),
listed AS (
  SELECT org_id, token_id FROM api_tokens
  UNION
  SELECT org_id, token_id FROM service_account_tokens
),
per_account AS (
  SELECT e.org_id, e.actor_id,
         max(coalesce(e.actor_email, e.actor_name, e.actor_id)) AS who,
         count(*) AS n,
         count(*) FILTER (WHERE l.token_id IS NULL) AS unlisted,
         count(DISTINCT e.actor_token_id) FILTER (WHERE l.token_id IS NULL) AS unlisted_tokens,
         max(e.time) FILTER (WHERE l.token_id IS NULL) AS last_unlisted
  FROM token_events e
  LEFT JOIN listed l ON l.org_id = e.org_id AND l.token_id = e.actor_token_id
  GROUP BY e.org_id, e.actor_id
)
SELECT
  a.who AS resource,
  CASE WHEN a.unlisted > 0 THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN a.unlisted > 0 THEN a.unlisted || ' of ' || a.n || ' API-token action(s) in the last ${window_days} days by '
      || a.unlisted_tokens || ' token(s) the organization cannot list ('
      || CASE
           WHEN u.account_id IS NULL THEN 'an account not in the organization''s directories'
           WHEN u.claim_status IS DISTINCT FROM 'managed' THEN 'an unmanaged account'
           ELSE 'a managed account whose token is not in the listing'
         END
      || '), last on ' || to_char(a.last_unlisted, '%Y-%m-%d')
    ELSE a.n || ' API-token action(s) in the last ${window_days} days, every token listed'
  END AS reason,
  a.actor_id AS account_id,
  u.claim_status,
  a.unlisted AS unlisted_actions,
  a.last_unlisted
FROM per_account a
LEFT JOIN users u ON u.org_id = a.org_id AND u.account_id = a.actor_id
ORDER BY status, resource;
