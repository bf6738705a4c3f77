-- id: domain_changed
-- title: A domain was verified or removed
-- severity: medium
-- rationale: A verified domain makes its accounts managed by the organization; adding or losing one changes who the organization's policies reach.
-- remediation: Confirm the domain belongs to the company and the change was planned.
-- frameworks: soc2:CC6.1, iso27001:A.5.16, nist800-53:IA-4, cis:5.1
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
  ON o.event_id = e.event_id AND o.role = 'context' AND o.object_type = 'domains'
WHERE lower(e.action) IN (
    'domain_verification_completed',
    'domain_verification_removed',
    'domain_removed',
    'domain_deleted',
    'domain_added',
    'domain_claimed'
)
