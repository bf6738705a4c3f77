-- id: workspaces_without_ip_allowlist
-- title: Online workspaces are covered by an enabled IP allowlist
-- severity: medium
-- rationale: Without an IP allowlist a stolen session or password works from anywhere. Allowlisting the office and VPN networks contains leaked credentials and is a common requirement of security baselines.
-- remediation: Add the workspace to an enabled IP allowlist policy (Security > IP allowlists) and check that the policy reaches the applied state.
-- frameworks: soc2:CC6.6, iso27001:A.8.20, nist800-53:SC-7, cis:13.4
-- population: online workspaces
-- population-sql: SELECT count(*) FROM workspaces w WHERE w.status = 'online'
WITH coverage AS (
  SELECT r.org_id, r.resource_id,
         string_agg(p.name, ', ' ORDER BY p.name) FILTER (WHERE r.application_status = 'applied') AS applied,
         string_agg(p.name || ' is ' || coalesce(r.application_status, 'in an unknown state'), ', ' ORDER BY p.name)
           FILTER (WHERE r.application_status IS DISTINCT FROM 'applied') AS pending
  FROM policy_resources r
  JOIN policies p ON p.org_id = r.org_id AND p.policy_id = r.policy_id
  WHERE r.policy_type = 'ip-allowlist' AND p.status = 'enabled'
  GROUP BY r.org_id, r.resource_id
)
SELECT
  w.name || ' (' || w.type_key || ')' AS resource,
  CASE WHEN c.applied IS NOT NULL THEN 'ok' ELSE 'alarm' END AS status,
  CASE
    WHEN c.applied IS NOT NULL THEN 'Covered by IP allowlist ' || c.applied
    WHEN c.pending IS NOT NULL THEN 'No IP allowlist in effect yet: ' || c.pending
    ELSE 'No enabled IP allowlist policy covers this workspace'
  END AS reason,
  w.workspace_id,
  w.host_url
FROM workspaces w
LEFT JOIN coverage c ON c.org_id = w.org_id AND c.resource_id = w.workspace_id
WHERE w.status = 'online'
ORDER BY status, resource;
