-- id: groups_with_roles_no_members
-- title: Groups that grant roles have members
-- severity: medium
-- rationale: An empty group that still grants roles (often admin) is a dormant privilege: anyone who can add members to it gets the role, and nobody reviews a group with no one in it.
-- remediation: Remove the role assignments from the empty group, or delete the group. If it is still needed, document its owner and purpose.
-- frameworks: soc2:CC6.3, iso27001:A.5.18, nist800-53:AC-2, cis:6.8
-- population: groups that grant roles
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT g.org_id, g.group_id FROM groups g JOIN group_role_assignments r USING (org_id, group_id))
WITH grants AS (
  SELECT g.org_id, g.group_id, g.name, g.user_count,
         string_agg(DISTINCT CASE r.role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(r.role, '/', 2) END, ', '
                    ORDER BY CASE r.role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(r.role, '/', 2) END) AS roles,
         count(DISTINCT r.resource_id) AS resources
  FROM groups g
  JOIN group_role_assignments r USING (org_id, group_id)
  GROUP BY g.org_id, g.group_id, g.name, g.user_count
),
members AS (
  SELECT org_id, group_id, count(*) AS n FROM group_members GROUP BY org_id, group_id
)
SELECT
  gr.name AS resource,
  CASE WHEN coalesce(gr.user_count, 0) = 0 OR m.n IS NULL THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN coalesce(gr.user_count, 0) = 0 OR m.n IS NULL
      THEN 'Group has no members yet grants ' || gr.roles || ' on ' || gr.resources || ' resource(s)'
    ELSE 'Group grants ' || gr.roles || ' to its ' || gr.user_count || ' member(s)'
  END AS reason,
  gr.group_id,
  gr.roles,
  gr.user_count
FROM grants gr
LEFT JOIN members m ON m.org_id = gr.org_id AND m.group_id = gr.group_id
ORDER BY status, resource;
