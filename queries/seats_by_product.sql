-- id: seats_by_product
-- title: Seats per product: billable, idle, and what the idle ones cost
-- severity: low
-- rationale: What the organization pays for, per product, and how much of it nobody uses: the summary behind a seat reclaim. A product alarms when it has idle billable seats (admins and service accounts held out, as in seats_idle_billable).
-- remediation: Take the idle seats back (orgsql seats plan --idle-days 90 --out DIR, then review apply DIR --execute), or lower the tier at renewal.
-- frameworks: soc2:CC6.2, iso27001:A.5.18, nist800-53:AC-2(3), cis:5.3
-- population: products with billable seats
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT org_id, product_key FROM seats WHERE billable)
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
    END, '') AS DOUBLE) AS monthly_price,
    s.status = 'active' AND NOT s.admin AND sa.account_id IS NULL
      AND coalesce(s.last_active, s.added_to_org) < now() - interval '${idle_days} days' AS idle
  FROM seats s
  LEFT JOIN (SELECT DISTINCT org_id, account_id FROM service_accounts) sa
    ON sa.org_id = s.org_id AND sa.account_id = s.account_id
  WHERE s.billable
),
-- Per organization: of several, each pays for its own.
products AS (
  SELECT org_id, product_key,
    count(DISTINCT account_id) AS billable_accounts,
    count(*) AS billable_seats,
    count(*) FILTER (WHERE coalesce(idle, false)) AS idle_seats,
    sum(monthly_price) FILTER (WHERE coalesce(idle, false)) AS idle_monthly_cost
  FROM priced
  GROUP BY org_id, product_key
)
SELECT
  product_key AS resource,
  CASE WHEN idle_seats > 0 THEN 'alarm' ELSE 'ok' END AS status,
  CAST(billable_seats AS VARCHAR) || ' billable seat(s) (' || CAST(billable_accounts AS VARCHAR)
    || ' account(s)), ' || CAST(idle_seats AS VARCHAR) || ' idle ${idle_days}+ days'
    || CASE WHEN idle_monthly_cost IS NOT NULL
            THEN ', ' || CAST(round(idle_monthly_cost, 2) AS VARCHAR) || ' a month' ELSE '' END AS reason,
  billable_accounts,
  billable_seats,
  idle_seats,
  round(idle_monthly_cost, 2) AS idle_monthly_cost
FROM products
ORDER BY status, resource;
