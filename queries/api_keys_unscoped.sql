-- id: api_keys_unscoped
-- title: Organization API keys are limited to scopes
-- severity: medium
-- rationale: An API key without scopes can do everything an organization admin can. Integrations rarely need that: a scoped key limits what a leaked key can do.
-- remediation: Create a key with only the scopes the integration needs, move the integration to it, and revoke the unscoped key (keep unscoped keys only for APIs that refuse scoped ones).
-- frameworks: soc2:CC6.3, iso27001:A.5.17, iso27001:A.8.2, nist800-53:AC-6, cis:6.8
-- population: unrevoked, unexpired API keys
-- population-sql: SELECT count(*) FROM api_keys k WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
SELECT
  k.key_id AS resource,
  CASE WHEN NOT k.scoped THEN 'alarm' ELSE 'ok' END AS status,
  coalesce(k.label, 'Unlabelled key') || CASE
    WHEN NOT k.scoped THEN ' has no scopes: it can do anything an org admin can'
    ELSE ' is limited to ' || k.scopes
  END AS reason,
  k.label,
  k.scopes
FROM api_keys k
WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
ORDER BY status, resource;
