-- Users holding an organization or site admin group membership whose
-- two-step verification is off or unknown.
SELECT u.email, u.status, u.mfa_enabled, m.group_name
FROM users u
JOIN group_members m USING (org_id, account_id)
WHERE m.group_name IN ('org-admins', 'site-admins', 'jira-administrators', 'confluence-administrators')
  AND u.status = 'active'
  AND (u.mfa_enabled IS NULL OR NOT u.mfa_enabled)
ORDER BY m.group_name, u.email;
