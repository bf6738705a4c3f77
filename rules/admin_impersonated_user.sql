-- id: admin_impersonated_user
-- title: An admin logged in as another user
-- severity: high
-- rationale: Logging in as another user lets an admin act with that user's access and under that user's name; it is meant for troubleshooting, and a misused or compromised admin account can use it to reach data unseen.
-- remediation: Confirm with the admin why, and that the user knew; review what was done in that session.
-- frameworks: soc2:CC6.1, soc2:CC7.2, iso27001:A.8.2, iso27001:A.8.15, nist800-53:AC-6(9), nist800-53:AU-6, cis:8.2
-- One alert per event (key: the event id). The action key
-- user_logged_in_as_user is in the event-actions list the Admin API
-- returned in 2021 (USER_LOGGED_IN_AS_USER, recorded by go-atlassian), and
-- Panther's Atlassian rule for impersonation matches it, reading the user
-- logged in as from the event's context.
SELECT coalesce(o.name, o.object_id, e.event_id) AS resource,
       'alarm' AS status,
       coalesce(e.actor_email, e.actor_name, e.actor_id, 'an actor the log does not name')
         || ' logged in as ' || coalesce(o.name, o.object_id, 'a user the log does not name')
         || ': ' || coalesce(e.message, '') AS reason,
       e.event_id AS key,
       e.time AS event_time,
       e.action,
       e.actor_id,
       e.actor_email,
       o.object_id AS user_account_id
FROM new_events e
LEFT JOIN new_event_context o
  ON o.event_id = e.event_id AND o.role = 'context' AND o.object_type = 'users'
WHERE lower(e.action) = 'user_logged_in_as_user'
