-- id: unverified_domains
-- title: The organization's domains are verified
-- severity: medium
-- rationale: Only a verified domain lets the organization claim its accounts and enforce authentication policies, SSO and offboarding on them. An unverified or lapsed domain leaves those users unmanaged.
-- remediation: Finish verification (DNS TXT record or HTTPS file) for the domain, fix a missing or superseded token, or remove the domain if the company no longer owns it.
-- frameworks: soc2:CC6.1, iso27001:A.5.16, nist800-53:IA-4, cis:5.1
-- population: domains
-- population-sql: SELECT count(*) FROM domains
SELECT
  d.name AS resource,
  CASE WHEN d.claim_status = 'verified' THEN 'ok' ELSE 'alarm' END AS status,
  CASE
    WHEN d.claim_status = 'verified' THEN 'Domain verified by ' || coalesce(d.claim_type, 'an unknown method')
    ELSE 'Domain claim is ' || coalesce(replace(d.claim_status, '_', ' '), 'in an unknown state') || ': accounts on it cannot be claimed or governed'
  END AS reason,
  d.domain_id,
  d.claim_type,
  d.claim_status
FROM domains d
ORDER BY status, resource;
