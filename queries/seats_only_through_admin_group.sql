-- id: seats_only_through_admin_group
-- title: Product seats are not given only by admin groups
-- severity: medium
-- rationale: A seat held only through a group that also grants an admin role cannot be taken back without taking the admin role too, and it hides who is an admin behind who is a user: product access should come from a user group, admin rights from a reviewed admin group.
-- remediation: Give the person product access through the product's user group (or directly); keep the admin group for the people who administer it, and review its members.
-- frameworks: soc2:CC6.3, iso27001:A.5.15, nist800-53:AC-6, cis:6.8
-- population: billable seats held through groups
-- population-sql: SELECT count(*) FROM seats s WHERE s.billable AND s.group_ids IS NOT NULL
SELECT
  coalesce(s.email, s.account_id) || ' on ' || s.product_key || ' ' || s.site_id AS resource,
  CASE WHEN s.only_through_admin_group THEN 'alarm' ELSE 'ok' END AS status,
  CASE WHEN s.only_through_admin_group
       THEN 'Held only through ' || s.grant_paths || ', which also grants an admin role'
       ELSE 'Held through ' || s.grant_paths END AS reason,
  s.account_id,
  s.product_key,
  s.site_id,
  s.roles,
  s.grant_paths
FROM seats s
WHERE s.billable AND s.group_ids IS NOT NULL
ORDER BY status, resource;
