-- id: admin_group_member_added
-- title: A user added to a group that grants an admin role
-- severity: high
-- rationale: A group that grants an admin role makes every member an admin; adding a member grants admin without an admin grant event, where a review of admin grants does not look.
-- remediation: Confirm the user needs the admin role the group grants; remove them from the group otherwise, and grant admin roles directly to named people.
-- frameworks: soc2:CC6.2, soc2:CC6.3, iso27001:A.5.18, iso27001:A.8.2, nist800-53:AC-2, nist800-53:AC-6, cis:5.4, cis:6.8
-- One alert per event (key: the event id). The group is the event's
-- context group, matched by id; it grants an admin role (org, site,
-- product or user access admin) if `group_role_assignments` says so when
-- the poll runs (a group given its admin role after the event counts too;
-- one that lost it does not).
WITH added AS (
  SELECT e.org_id, e.event_id, e.time, e.action, e.actor_id, e.actor_email, e.actor_name, e.message,
         g.object_id AS group_id, g.name AS group_name
  FROM new_events e
  JOIN new_event_context g
    ON g.event_id = e.event_id AND g.role = 'context' AND g.object_type = 'groups'
  WHERE lower(e.action) = 'user_added_to_group'
),
-- Joined from the events, so only their groups are looked up.
admin_roles AS (
  SELECT r.org_id, r.group_id,
         string_agg(DISTINCT r.role, ', ') AS roles
  FROM added a
  JOIN group_role_assignments r ON r.org_id = a.org_id AND r.group_id = a.group_id
  WHERE r.role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
  GROUP BY r.org_id, r.group_id
)
SELECT coalesce(u.name, u.object_id, a.event_id) AS resource,
       'alarm' AS status,
       coalesce(u.name, u.object_id, 'a user the log does not name')
         || ' added to ' || coalesce(a.group_name, a.group_id)
         || ', which now grants ' || r.roles
         || ', by ' || coalesce(a.actor_email, a.actor_name, a.actor_id, 'an actor the log does not name')
         || ': ' || coalesce(a.message, '') AS reason,
       a.event_id AS key,
       a.time AS event_time,
       a.action,
       a.actor_id,
       a.actor_email,
       a.group_id,
       a.group_name,
       r.roles AS group_admin_roles
FROM added a
JOIN admin_roles r ON r.org_id = a.org_id AND r.group_id = a.group_id
LEFT JOIN new_event_context u
  ON u.event_id = a.event_id AND u.role = 'context' AND u.object_type = 'users'
