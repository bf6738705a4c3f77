-- id: workspaces_not_online
-- title: No offline or deprecated workspaces linger in the organization
-- severity: low
-- rationale: Offline, deprecated and forgotten sandbox workspaces still hold product data and user access, but fall out of monitoring, patching and access reviews.
-- remediation: Decide for each: bring it back into service and under the same policies, or export what must be kept and delete the workspace (and revoke its access).
-- frameworks: soc2:CC6.1, iso27001:A.5.9, nist800-53:CM-8, cis:1.1
-- population: workspaces
-- population-sql: SELECT count(*) FROM workspaces
SELECT
  w.name || ' (' || w.type_key || ')' AS resource,
  CASE WHEN w.status = 'online' THEN 'ok' ELSE 'alarm' END AS status,
  CASE
    WHEN w.status = 'online' THEN 'Workspace is online'
    ELSE 'Workspace is ' || coalesce(w.status, 'in an unknown state')
         || CASE WHEN w.sandbox_type = 'CHILD' THEN ' (a sandbox)' ELSE '' END
         || ' but still part of the organization'
  END AS reason,
  w.workspace_id,
  w.host_url,
  w.status AS workspace_status
FROM workspaces w
ORDER BY status, resource;
