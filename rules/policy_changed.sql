-- id: policy_changed
-- title: An authentication, security or data policy changed
-- severity: high
-- rationale: Policies enforce SSO, two-step verification, session length, IP allowlists and data security for everyone they cover; one change weakens them all.
-- remediation: Review the change with the admin who made it; restore the previous setting if it was not approved.
-- frameworks: soc2:CC6.6, soc2:CC8.1, iso27001:A.8.9, nist800-53:CM-6, cis:4.1
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
  ON o.event_id = e.event_id AND o.role = 'context' AND o.object_type = 'policies'
WHERE lower(e.action) IN (
    'policy_created',
    'policy_updated',
    'policy_deleted',
    'policy_disabled',
    'policy_enforced',
    'auth_policy_created',
    'auth_policy_updated',
    'auth_policy_deleted',
    'auth_policy_type_updated',
    'default_auth_policy_updated',
    'password_policy_changed',
    'saml_policy_changed',
    'saml_policy_deleted',
    'set_session_policy',
    'twosv_enforced',
    'domain_auth_policy_changed',
    'domain_auth_policy_deleted',
    'user_auth_policy_changed',
    'user_auth_policy_deleted'
)
