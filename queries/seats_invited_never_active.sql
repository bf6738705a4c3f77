-- id: seats_invited_never_active
-- title: People given a seat use it
-- severity: low
-- rationale: Atlassian bills people invited who never accepted as well as those who did. An account added weeks ago that has never been active on any product holds seats for nothing, and an invitation nobody took up is an open door.
-- remediation: Ask whether the person still needs access; if not, take the seats back (orgsql seats plan, then review apply --execute) or remove the user from the organization.
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2(3), cis:5.3
-- population: billable seats of accounts never active on any product
-- population-sql: SELECT count(*) FROM seats s WHERE s.billable AND s.invited_never_active
-- param: never_active_days integer 30 Days since the account was added after which a never-used seat counts
SELECT
  coalesce(s.email, s.account_id) || ' on ' || s.product_key || ' ' || s.site_id AS resource,
  CASE WHEN s.added_to_org < now() - interval '${never_active_days} days' THEN 'alarm' ELSE 'ok' END AS status,
  'Added on ' || coalesce(CAST(CAST(s.added_to_org AS DATE) AS VARCHAR), 'an unknown day')
    || ', never active on any product (' || coalesce(s.management_source, 'source unknown')
    || ', held by ' || s.grant_paths || ')' AS reason,
  s.account_id,
  s.product_key,
  s.site_id,
  s.added_to_org,
  s.grant_paths
FROM seats s
WHERE s.billable AND s.invited_never_active
ORDER BY status, resource;
