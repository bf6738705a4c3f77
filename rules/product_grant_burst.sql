-- id: product_grant_burst
-- title: More product grants by one actor in a short time than allowed
-- severity: high
-- rationale: Access granted in bulk skips the request-and-approval each grant should have; a burst from one actor is how a compromised admin account or a misconfigured sync spreads access before anyone looks.
-- remediation: Ask the actor what the grants were for; revoke those without an approved request, and check the actor's account and tokens if nobody expected them.
-- frameworks: soc2:CC6.2, soc2:CC6.3, soc2:CC7.2, iso27001:A.5.18, nist800-53:AC-2, nist800-53:SI-4, cis:6.1
-- param: grants integer 5 Product grants one actor may make within the window before it alerts
-- param: minutes integer 10 The window, in minutes (at most 24 hours: what recent_events keeps)
-- Counts over `recent_events` (the polls of the last 24 hours), so a burst
-- read by several polls or --once runs counts whole. For each grant, the
-- grants by its actor in the `${minutes}` minutes up to it (by event time,
-- the window sliding with each grant, so no fixed boundary splits a
-- burst); a burst is a run of grants each with more than `${grants}` in
-- its window, and alerts once, keyed by its actor and the grant that
-- first went over, when a grant of this poll falls in that grant's window.
WITH grants AS (
  SELECT org_id, event_id, time, actor_id, actor_email, actor_name
  FROM recent_events
  WHERE lower(action) IN ('user_granted_product_access', 'group_granted_product_access')
    AND actor_id IS NOT NULL
    AND time IS NOT NULL
),
counted AS (
  SELECT g.*,
         count(*) OVER (PARTITION BY org_id, actor_id ORDER BY time
                        RANGE BETWEEN INTERVAL '${minutes} minutes' PRECEDING AND CURRENT ROW) AS in_window
  FROM grants g
),
flagged AS (
  SELECT c.*, in_window > ${grants} AS over FROM counted c
),
runs AS (
  SELECT f.*,
         lag(over) OVER (PARTITION BY org_id, actor_id ORDER BY time, event_id) AS previous_over
  FROM flagged f
),
starts AS (
  SELECT * FROM runs WHERE over AND previous_over IS NOT TRUE
),
new_grants AS (
  SELECT org_id, actor_id, time
  FROM new_events
  WHERE lower(action) IN ('user_granted_product_access', 'group_granted_product_access')
)
SELECT coalesce(s.actor_email, s.actor_name, s.actor_id) AS resource,
       'alarm' AS status,
       CAST(s.in_window AS VARCHAR) || ' product grants by '
         || coalesce(s.actor_email, s.actor_name, s.actor_id)
         || ' in the ${minutes} minutes up to ' || to_char(s.time, '%Y-%m-%d %H:%M:%S UTC')
         || ' (at most ${grants} allowed)' AS reason,
       s.actor_id || ':' || s.event_id AS key,
       s.time AS burst_reached_at,
       s.in_window AS grants_in_window,
       s.actor_id,
       s.actor_email
FROM starts s
WHERE EXISTS (
  SELECT 1 FROM new_grants n
  WHERE n.org_id = s.org_id AND n.actor_id = s.actor_id
    AND n.time <= s.time AND n.time >= s.time - INTERVAL '${minutes} minutes'
)
