-- id: offboarding_deactivation_time
-- title: Leavers' managed accounts are deactivated within days of their end date
-- severity: high
-- rationale: Offboarding is timely only when the account stops working soon after the person leaves. The HR roster's end date and the account's deactivation date (from the user's details) measure it per person: the evidence for a "deactivate within N days" commitment.
-- remediation: Deactivate the account of every leaver still active; for the late ones, find where the HR-to-IT hand-off waited and shorten it (an identity provider that deprovisions on the HR termination does it at once).
-- frameworks: soc2:CC6.2, soc2:CC6.3, iso27001:A.5.18, iso27001:A.6.5, nist800-53:AC-2, nist800-53:PS-4, cis:5.3, cis:6.2
-- population: leavers in the roster with a managed account
-- population-sql: SELECT count(*) FROM roster r JOIN users u ON lower(u.email) = lower(r.email)
-- population-sql: WHERE r.end_date < current_date AND u.claim_status = 'managed'
-- param: within_days integer 1 Days after the end date by which the account must be deactivated
-- requires: roster
-- A leaver is someone whose end date has passed. In time: deactivated no
-- later than the end date plus within_days (a deactivation before the end
-- date is in time). user_details is read only for the leavers' accounts.
WITH leavers AS (
  SELECT u.org_id, u.account_id, u.email, u.status, r.end_date
  FROM roster r
  JOIN users u ON lower(u.email) = lower(r.email)
  WHERE r.end_date < current_date
    AND u.claim_status = 'managed'
),
judged AS (
  SELECT l.*, d.deactivated_on,
         CAST(l.end_date AS TIMESTAMP) + interval '${within_days} days' AS due
  FROM leavers l
  LEFT JOIN user_details d ON d.org_id = l.org_id AND d.account_id = l.account_id
)
SELECT
  email AS resource,
  CASE WHEN deactivated_on IS NOT NULL AND deactivated_on <= due THEN 'ok' ELSE 'alarm' END AS status,
  'Left on ' || CAST(end_date AS VARCHAR) || CASE
    WHEN deactivated_on IS NULL THEN ' and the account is not deactivated (it is ' || coalesce(status, 'of unknown status') || ')'
    WHEN deactivated_on <= due THEN '; deactivated on ' || to_char(deactivated_on, '%Y-%m-%d')
    ELSE '; deactivated only on ' || to_char(deactivated_on, '%Y-%m-%d') || ', '
      || CAST(date_part('day', deactivated_on - CAST(end_date AS TIMESTAMP)) AS BIGINT) || ' days later'
  END AS reason,
  account_id,
  end_date,
  deactivated_on
FROM judged
ORDER BY status, resource;
