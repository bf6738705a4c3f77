-- id: api_credential_created
-- title: An API token or organization API key was created
-- severity: high
-- rationale: A token or key acts without a second factor, often for months; a new one may be an attacker's persistence.
-- remediation: Confirm who created it and for what; revoke it if nobody owns it.
-- frameworks: soc2:CC6.1, iso27001:A.5.17, nist800-53:IA-5, cis:6.2
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
  ON o.event_id = e.event_id AND o.role = 'context'
WHERE lower(e.action) IN (
    'api_token_created',
    'api_key_created'
)
