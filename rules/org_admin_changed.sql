-- id: org_admin_changed
-- title: Organization admin granted or removed
-- severity: critical
-- rationale: An org admin controls every user, policy and key of the organization; a grant is the change attackers and insiders want most.
-- remediation: Confirm the grant with the admin who made it; revoke it at admin.atlassian.com if it was not approved.
-- frameworks: soc2:CC6.2, soc2:CC7.2, iso27001:A.8.2, nist800-53:AC-2, nist800-53:AU-6, cis:5.4
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
    'added_org_admin',
    'removed_org_admin'
)
