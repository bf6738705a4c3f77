-- id: workspaces_without_data_residency
-- title: Online Jira and Confluence sites are pinned to a data residency region
-- severity: low
-- rationale: Data residency keeps product data in the region your contracts, GDPR transfer assessments or customers require. A site without a policy may be stored or moved anywhere Atlassian hosts.
-- remediation: Add the site to the data residency policy of the required region (Security > Data residency) and follow the move until it is applied. Record why a site is exempt.
-- frameworks: soc2:C1.1, iso27001:A.5.23, nist800-53:SA-9(5), cis:3.1
-- population: online Jira and Confluence sites
-- population-sql: SELECT count(*) FROM workspaces w WHERE w.status = 'online' AND (w.type_key LIKE 'jira%' OR w.type_key = 'confluence')
WITH coverage AS (
  SELECT r.org_id, r.resource_id,
         string_agg(p.name, ', ' ORDER BY p.name) FILTER (WHERE r.application_status = 'applied') AS applied,
         string_agg(p.name || ' is ' || coalesce(r.application_status, 'in an unknown state'), ', ' ORDER BY p.name)
           FILTER (WHERE r.application_status IS DISTINCT FROM 'applied') AS pending
  FROM policy_resources r
  JOIN policies p ON p.org_id = r.org_id AND p.policy_id = r.policy_id
  WHERE r.policy_type = 'data-residency' AND p.status = 'enabled'
  GROUP BY r.org_id, r.resource_id
)
SELECT
  w.name || ' (' || w.type_key || ')' AS resource,
  CASE WHEN c.applied IS NOT NULL THEN 'ok' ELSE 'alarm' END AS status,
  CASE
    WHEN c.applied IS NOT NULL THEN 'Data pinned by ' || c.applied
    WHEN c.pending IS NOT NULL THEN 'Data residency not in effect yet: ' || c.pending
    ELSE 'No enabled data residency policy covers this site'
  END AS reason,
  w.workspace_id,
  w.host_url
FROM workspaces w
LEFT JOIN coverage c ON c.org_id = w.org_id AND c.resource_id = w.workspace_id
WHERE w.status = 'online'
  AND (w.type_key LIKE 'jira%' OR w.type_key = 'confluence')
ORDER BY status, resource;
