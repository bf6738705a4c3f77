-- id: twosv_disabled
-- title: Two-step verification disabled
-- severity: high
-- rationale: Without a second factor a stolen password is enough to sign in.
-- remediation: Ask the user why; turn two-step verification back on or enforce it with an authentication policy.
-- frameworks: soc2:CC6.1, iso27001:A.8.5, nist800-53:IA-2(1), cis:6.3
-- One alert per event (key: the event id).
SELECT coalesce(o.name, o.object_id, e.actor_id) AS resource,
       'alarm' AS status,
       e.action || ' by ' || coalesce(e.actor_email, e.actor_name, e.actor_id, 'unknown')
         || ': ' || coalesce(e.message, '') AS reason,
       e.event_id AS key,
       e.time AS event_time,
       e.action,
       e.actor_id,
       e.actor_email
FROM new_events e
LEFT JOIN new_event_context o
  ON o.event_id = e.event_id AND o.role = 'context' AND o.object_type = 'users'
WHERE lower(e.action) IN (
    'twosv_disabled_for_user',
    'twosv_unenforced'
)
