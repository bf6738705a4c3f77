-- id: product_access_changed
-- title: Product access granted or revoked
-- severity: medium
-- rationale: Product access decides who reads and changes the organization's data; changes outside the joiner-mover-leaver process go unreviewed.
-- remediation: Check the change against an approved request; revert it otherwise.
-- frameworks: soc2:CC6.2, soc2:CC6.3, iso27001:A.5.18, nist800-53:AC-2, cis:6.1
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
    'user_granted_product_access',
    'user_revoked_product_access',
    'group_granted_product_access',
    'group_revoked_product_access'
)
