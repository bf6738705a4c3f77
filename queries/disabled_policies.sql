-- id: disabled_policies
-- title: Organization policies are enabled
-- severity: medium
-- rationale: A disabled IP allowlist, data residency or data security policy protects nothing, yet it is easy to read as a control in place. Drafts left disabled also hide who meant to enforce what.
-- remediation: Enable the policy (and apply it to the sites it should cover), or delete it if it is no longer wanted. Record the decision.
-- frameworks: soc2:CC6.6, iso27001:A.8.9, nist800-53:CM-6, cis:4.1
-- population: policies
-- population-sql: SELECT count(*) FROM policies
SELECT
  p.name || ' (' || p."type" || ')' AS resource,
  CASE WHEN p.status = 'enabled' THEN 'ok' ELSE 'alarm' END AS status,
  CASE
    WHEN p.status = 'enabled' THEN 'Policy is enabled'
    ELSE 'Policy is ' || coalesce(p.status, 'in an unknown state') || ' and enforces nothing (last changed '
         || to_char(coalesce(p.updated_at, p.created_at), '%Y-%m-%d') || ')'
  END AS reason,
  p.policy_id,
  p."type" AS policy_type,
  p.rule
FROM policies p
ORDER BY status, resource;
