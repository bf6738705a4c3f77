-- id: service_accounts_unowned_or_unused
-- title: Service accounts have an owner and are in use
-- severity: high
-- rationale: A service account acts with its own roles and credentials, outside any person's offboarding. One whose creator has left (or that names nobody) has no one to answer for it; one whose credentials nobody has used for months is an open door nobody watches.
-- remediation: Give each service account an owner who is an active member (recreate it under one, or record the owner and reassign it), and delete or disable service accounts unused for unused_days, revoking their tokens and OAuth clients.
-- frameworks: soc2:CC6.2, soc2:CC6.3, iso27001:A.5.16, iso27001:A.5.18, nist800-53:AC-2, nist800-53:AC-2(3), cis:5.1, cis:5.3
-- population: service accounts
-- population-sql: SELECT count(*) FROM service_accounts
-- param: unused_days integer 90 Days since any of its credentials was last used after which a service account counts as unused
-- The owner is its creator (created_by_id), while an active user. Its last
-- use is the latest of its API tokens' and OAuth clients' last use.
WITH used AS (
  SELECT org_id, service_account_id, max(last_active_at) AS last_used
  FROM (
    SELECT org_id, service_account_id, last_active_at FROM service_account_tokens
    UNION ALL
    SELECT org_id, service_account_id, last_active_at FROM service_account_oauth_clients
  ) c
  GROUP BY org_id, service_account_id
),
judged AS (
  SELECT s.org_id, s.service_account_id, s.name, s.status, s.created_by_id, s.created_at,
         o.email AS owner_email, o.status AS owner_status, u.last_used,
         o.account_id IS NULL OR o.status IS DISTINCT FROM 'active' AS unowned,
         u.last_used IS NULL OR u.last_used < now() - interval '${unused_days} days' AS unused
  FROM service_accounts s
  LEFT JOIN users o ON o.org_id = s.org_id AND o.account_id = s.created_by_id
  LEFT JOIN used u ON u.org_id = s.org_id AND u.service_account_id = s.service_account_id
)
SELECT
  coalesce(name, service_account_id) AS resource,
  CASE WHEN unowned OR unused THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN created_by_id IS NULL THEN 'No owner (the API names no creator)'
    WHEN owner_email IS NULL THEN 'No owner (its creator ' || created_by_id || ' is not a user of the organization)'
    WHEN unowned THEN 'No owner (its creator ' || owner_email || ' is ' || coalesce(owner_status, 'of unknown status') || ')'
    ELSE 'Owned by ' || owner_email
  END || '; ' || CASE
    WHEN last_used IS NULL THEN 'none of its credentials was ever used'
    WHEN unused THEN 'unused for ' || CAST(date_part('day', now() - last_used) AS BIGINT) || ' days (last used ' || to_char(last_used, '%Y-%m-%d') || ')'
    ELSE 'last used ' || to_char(last_used, '%Y-%m-%d')
  END AS reason,
  service_account_id,
  created_by_id,
  owner_email,
  last_used
FROM judged
ORDER BY status, resource;
