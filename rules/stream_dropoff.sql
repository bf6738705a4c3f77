-- id: stream_dropoff
-- title: The audit stream is failing or silent
-- severity: high
-- rationale: Every other rule reads the audit stream: while it cannot be read, or brings nothing, nothing alerts, which is what an attacker who revoked the key or a broken network would want.
-- remediation: For a failing stream, read the error (key revoked or expired, the organization's API access changed, the network); for a silent one, confirm in admin.atlassian.com that the audit log still records.
-- frameworks: soc2:CC7.2, iso27001:A.8.15, nist800-53:AU-5, cis:8.2
-- param: failing_minutes integer 15 Minutes the stream may fail to be read before it alarms
-- param: silent_minutes integer 1440 Minutes without a newly processed event before it alarms
-- Read on every poll, even one that failed (stream_health is watch's own
-- record, no request). One alert per outage: the key is when it began.
SELECT 'org ' || org_id AS resource,
       'alarm' AS status,
       CASE WHEN ok
         THEN 'no event processed since '
              || CAST(coalesce(last_processed_at, watching_since) AS VARCHAR)
         ELSE 'the stream has failed since ' || CAST(failing_since AS VARCHAR) || ': '
              || coalesce(error, 'no error given')
       END AS reason,
       CASE WHEN ok
         THEN 'silent:' || CAST(coalesce(last_processed_at, watching_since) AS VARCHAR)
         ELSE 'failing:' || CAST(failing_since AS VARCHAR)
       END AS key,
       polled_at
FROM stream_health
WHERE (NOT ok AND failing_since <= polled_at - interval '${failing_minutes} minutes')
   OR (ok AND coalesce(last_processed_at, watching_since)
              <= polled_at - interval '${silent_minutes} minutes')
