-- id: synced_groups_grant_admin
-- title: Admin roles are not granted through groups synced from the identity provider
-- severity: medium
-- rationale: Membership of a synced group is decided in the identity provider, so anyone who can edit that group there (helpdesk, an IdP admin, a stolen SCIM token) can create Atlassian admins without an Atlassian audit trail of the decision.
-- remediation: Grant admin roles through groups managed in Atlassian, or put the synced admin group under the same change control and review as Atlassian admin rights.
-- frameworks: soc2:CC6.3, iso27001:A.8.2, nist800-53:AC-6, cis:6.7
-- population: groups that grant admin roles
-- population-sql: SELECT count(*) FROM (SELECT DISTINCT g.org_id, g.group_id FROM groups g JOIN group_role_assignments r USING (org_id, group_id)
-- population-sql: WHERE r.role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin'))
WITH admin_groups AS (
  SELECT g.org_id, g.group_id, g.name, g.external_synced, g.managed_by, g.user_count,
         string_agg(DISTINCT CASE r.role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(r.role, '/', 2) END, ', '
                    ORDER BY CASE r.role WHEN 'atlassian/admin' THEN 'product-admin' ELSE split_part(r.role, '/', 2) END) AS roles
  FROM groups g
  JOIN group_role_assignments r USING (org_id, group_id)
  WHERE r.role IN ('atlassian/org-admin', 'atlassian/site-admin', 'atlassian/admin', 'atlassian/user-access-admin')
  GROUP BY g.org_id, g.group_id, g.name, g.external_synced, g.managed_by, g.user_count
)
SELECT
  name AS resource,
  CASE WHEN external_synced OR managed_by = 'external' THEN 'alarm' ELSE 'ok' END AS status,
  CASE
    WHEN external_synced OR managed_by = 'external'
      THEN 'Group synced from the identity provider grants ' || roles || ' to its ' || coalesce(user_count, 0) || ' member(s)'
    ELSE 'Group managed in Atlassian grants ' || roles
  END AS reason,
  group_id,
  roles,
  managed_by
FROM admin_groups
ORDER BY status, resource;
