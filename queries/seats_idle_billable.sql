-- id: seats_idle_billable
-- title: Billable seats are in use
-- severity: low
-- rationale: Every user with access to a product counts toward the bill, used or not, and access nobody uses is access nobody watches. A seat idle for 90 days is money and attack surface; admins and service accounts are held out (they are reviewed on their own).
-- remediation: Take the seat back: orgsql seats plan --idle-days 90 --out DIR writes the calls, orgsql review apply DIR --execute sends them. Or remove the product access in admin.atlassian.com.
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2(3), cis:5.3
-- population: billable seats of active people (admins and service accounts held out)
-- population-sql: SELECT count(*) FROM seats s WHERE s.billable AND s.status = 'active' AND NOT s.admin
-- population-sql: AND s.account_id NOT IN (SELECT account_id FROM service_accounts)
-- param: idle_days integer 90 Days without activity on the product after which a seat counts as idle
-- param: seat_price text none Monthly price of a seat: one number for every product (8.6), or per product key (jira-software:8.6,confluence:6.05); none: no cost shown
WITH priced AS (
  SELECT s.*,
    -- The price as text first: a number that does not parse fails the run.
    CAST(nullif(CASE
      WHEN '${seat_price}' IN ('', 'none') THEN ''
      WHEN strpos('${seat_price}', ':') = 0 THEN '${seat_price}'
      ELSE split_part(split_part(',' || replace('${seat_price}', ' ', '') || ',',
                                 ',' || s.product_key || ':', 2), ',', 1)
    END, '') AS DOUBLE) AS monthly_price
  FROM seats s
  WHERE s.billable AND s.status = 'active' AND NOT s.admin
    AND s.account_id NOT IN (SELECT account_id FROM service_accounts)
)
SELECT
  coalesce(p.email, p.account_id) || ' on ' || p.product_key || ' ' || p.site_id AS resource,
  CASE WHEN coalesce(p.last_active, p.added_to_org) < now() - interval '${idle_days} days'
       THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN p.last_active IS NULL
      THEN 'Never used since the account was added on ' || CAST(CAST(p.added_to_org AS DATE) AS VARCHAR)
    ELSE 'Last used on ' || CAST(CAST(p.last_active AS DATE) AS VARCHAR)
  END || ' (held by ' || p.grant_paths || ')'
    || CASE WHEN p.monthly_price IS NOT NULL
            THEN ', ' || CAST(p.monthly_price AS VARCHAR) || ' a month' ELSE '' END AS reason,
  p.account_id,
  p.product_key,
  p.site_id,
  p.last_active,
  p.grant_paths,
  p.monthly_price
FROM priced p
ORDER BY status, resource;
