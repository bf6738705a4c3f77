-- id: user_added
-- title: A user was added to or invited into the organization
-- severity: low
-- rationale: Every new account is a new way in; an addition nobody expected is the first sign of an account made for misuse.
-- remediation: Confirm the user was meant to join (a ticket, an HR record); remove or suspend the account otherwise.
-- frameworks: soc2:CC6.2, iso27001:A.5.16, nist800-53:AC-2, cis:5.1
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
    'user_invited',
    'user_created',
    'user_invite_to_org',
    'user_re_invited',
    'user_re_invited_to_org',
    'gsync_user_invite',
    'scim_unmanaged_user_created'
)
