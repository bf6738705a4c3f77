//! Where the organization id and the API key come from.

use std::path::{Path, PathBuf};

use crate::api::ApiKey;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "missing {0}. Set ATLASSIAN_ORG_ID (or --org-id ID) and ATLASSIAN_API_KEY (or --api-key-file PATH) \
         for your organization, or add --demo to try orgsql on a built-in demo organization"
    )]
    Missing(&'static str),
    #[error("cannot read the API key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the API key file {0} is empty")]
    EmptyKeyFile(PathBuf),
    #[error(
        "the organization id {0:?} is not a UUID. It is the UUID in the address of your \
         organization in admin.atlassian.com: https://admin.atlassian.com/o/<org id>/overview"
    )]
    OrgIdNotUuid(String),
}

/// `8-4-4-4-12` hexadecimal digits, as organization ids are.
pub fn is_uuid(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(part, len)| part.len() == len && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The organization id and API key, from flags or the environment. The key is
/// never taken as a plain command-line value, where `ps` and shell history see it.
pub fn credentials(
    org_id: Option<String>,
    api_key_file: Option<&Path>,
    env_api_key: Option<String>,
) -> Result<(String, ApiKey), ConfigError> {
    let org_id = org_id
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let key = match api_key_file {
        Some(path) => Some(read_key_file(path)?),
        None => env_api_key
            .filter(|k| !k.trim().is_empty())
            .map(ApiKey::new),
    };
    if let Some(id) = &org_id
        && !is_uuid(id)
    {
        return Err(ConfigError::OrgIdNotUuid(id.clone()));
    }
    match (org_id, key) {
        (Some(org_id), Some(key)) => Ok((org_id, key)),
        (None, Some(_)) => Err(ConfigError::Missing("the organization id")),
        (Some(_), None) => Err(ConfigError::Missing("the API key")),
        (None, None) => Err(ConfigError::Missing("the organization id and the API key")),
    }
}

/// A key from a file (surrounding white space is not part of it).
fn read_key_file(path: &Path) -> Result<ApiKey, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::KeyFile {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Err(ConfigError::EmptyKeyFile(path.to_path_buf()));
    }
    Ok(ApiKey::new(text))
}

/// The second, scoped key (for the API Access API), from a file or
/// `ATLASSIAN_SCOPED_API_KEY`; never from the command line.
pub fn scoped_key(
    file: Option<&Path>,
    env_key: Option<String>,
) -> Result<Option<ApiKey>, ConfigError> {
    match file {
        Some(path) => Ok(Some(read_key_file(path)?)),
        None => Ok(env_key.filter(|k| !k.trim().is_empty()).map(ApiKey::new)),
    }
}
