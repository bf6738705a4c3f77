//! Where the organization id and the API key come from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::ApiKey;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "missing {0}. Set ATLASSIAN_ORG_ID (or --org-id ID) and ATLASSIAN_API_KEY (or --api-key-file PATH) \
         for your organization, or add --demo to try orgsql on a built-in demo organization"
    )]
    Missing(&'static str),
    #[error("cannot read the API key file {}: {source}", shown_path(path))]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the API key file {} is empty", shown_path(.0))]
    EmptyKeyFile(PathBuf),
    #[error(
        "{what} {} can be changed by other users (mode {mode:o}), and orgsql would trust what \
         they write; it is refused, as ssh refuses such files. Make it writable by you alone: \
         chmod go-w {}",
        shown_path(path),
        shown_path(path)
    )]
    WritableByOthers {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error(
        "the organization id {} is not a UUID. It is the UUID in the address of your \
         organization in admin.atlassian.com: https://admin.atlassian.com/o/<org id>/overview",
        shown_quoted(.0)
    )]
    OrgIdNotUuid(String),
    #[error("cannot read the config file {}: {source}", shown_path(path))]
    ConfigFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {} is not valid: {}", shown_path(path), shown(detail))]
    BadConfig { path: PathBuf, detail: String },
    #[error(
        "the config file {path} holds a key ({field} in connection {connection}): keys never go \
         in the config file. Say where the key comes from instead: api_key_env (a variable), \
         api_key_file (a file only you can read) or api_key_command (e.g. a password manager's CLI)"
    )]
    KeyInConfig {
        path: PathBuf,
        connection: String,
        field: &'static str,
    },
    #[error(
        "the config file {path} holds a SCIM token (connection {connection}, directory \
         {directory}): tokens never go in the config file. Say where it comes from instead: \
         token_env (a variable), token_file (a file only you can read) or token_command"
    )]
    ScimTokenInConfig {
        path: PathBuf,
        connection: String,
        directory: String,
    },
    #[error(
        "no connection {} in the config file {}; it has: {}",
        shown(name),
        shown_path(path),
        shown(&known.join(", "))
    )]
    NoConnection {
        path: PathBuf,
        name: String,
        known: Vec<String>,
    },
    #[error("the config file {0} has no connections; see the README's \"Several organizations\"")]
    NoConnections(PathBuf),
    #[error(
        "connection {connection}: say where its key comes from: api_key_env, api_key_file or api_key_command"
    )]
    NoKeySource { connection: String },
    #[error(
        "connection {connection}, SCIM directory {directory}: say where its token comes from: \
         token_env, token_file or token_command"
    )]
    NoScimTokenSource {
        connection: String,
        directory: String,
    },
    #[error(
        "connection {}: the environment variable {} that holds its key is not set",
        shown(connection),
        shown(var)
    )]
    KeyEnvUnset { connection: String, var: String },
    #[error(
        "connection {}: the api_key_command that gives its key failed: {detail}",
        shown(connection)
    )]
    KeyCommand { connection: String, detail: String },
    #[error(
        "connection {}: the command given for its key looks like a key itself (it is not \
         shown, nor run: a shell would print it back). Keys never go in the config file: put \
         the key in a file only you can read and name it in api_key_file, or give the command \
         that prints it (if this really is a command, write it as `exec <command>`)",
        shown(connection)
    )]
    KeyAsCommand { connection: String },
}

/// Whether `text` looks like an API key or token: a run of at least 24
/// characters of the alphabets keys are written in (letters, digits, `_`,
/// `-`, `=`, `+`), with upper case letters, lower case letters and digits
/// all in it, as a random key of that length nearly always has. A UUID
/// (no upper case), a variable's name (no lower case) or a file's name
/// seldom does.
pub fn looks_like_key(text: &str) -> bool {
    text.len() >= 24
        && text.chars().all(is_key_char)
        && text.chars().any(|c| c.is_ascii_uppercase())
        && text.chars().any(|c| c.is_ascii_lowercase())
        && text.chars().any(|c| c.is_ascii_digit())
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '=' | '+')
}

/// `text` as an error may show it: every run of key characters that looks
/// like a key (one pasted by mistake into `org_id`, `api_key_env`, ...)
/// replaced by a note, so that no error repeats it.
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if looks_like_key(run) {
            out.push_str("[a value that looks like a key, not shown]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_key_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn shown_path(path: &Path) -> String {
    shown(&path.display().to_string())
}

/// `text` quoted as Rust's `{:?}` quotes it, unless it looks like a key.
fn shown_quoted(text: &str) -> String {
    shown(&format!("{text:?}"))
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
    refuse_if_writable_by_others(path, "the key file")?;
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

/// A named connection of the config file, its keys read.
#[derive(Debug)]
pub struct Connection {
    pub name: String,
    pub org_id: String,
    pub api_key: ApiKey,
    pub scoped_api_key: Option<ApiKey>,
    /// `None`: the default (`--base-url`).
    pub base_url: Option<String>,
    /// Each SCIM directory's token (directory id, token), read.
    pub scim_tokens: Vec<(String, ApiKey)>,
}

/// The config file: named connections, each saying where its keys come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    connections: BTreeMap<String, ConnectionEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectionEntry {
    org_id: String,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    api_key_command: Option<String>,
    scoped_api_key_env: Option<String>,
    scoped_api_key_file: Option<PathBuf>,
    scoped_api_key_command: Option<String>,
    base_url: Option<String>,
    /// `[connections.NAME.scim."<directory id>"]`: where each SCIM
    /// directory's token comes from.
    #[serde(default)]
    scim: BTreeMap<String, ScimTokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScimTokenEntry {
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    token_command: Option<String>,
}

/// Where the config file is by default: `$XDG_CONFIG_HOME/orgsql/config.toml`,
/// else `~/.config/orgsql/config.toml`.
pub fn config_path() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("orgsql").join("config.toml"))
}

/// The connections `names` (all of them when `names` is empty), in the
/// order given (by name for all), their keys read. Files that others can
/// read add a line to `warnings`.
pub fn connections(
    path: &Path,
    names: &[String],
    warnings: &mut Vec<String>,
) -> Result<Vec<Connection>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ConfigFile {
        path: path.to_path_buf(),
        source,
    })?;
    refuse_if_writable_by_others(path, "the config file")?;
    warn_if_readable(path, "the config file", warnings);
    // The key itself is refused before anything else is read, so that no
    // error below can quote it.
    if let Ok(table) = text.parse::<toml::Table>()
        && let Some(toml::Value::Table(connections)) = table.get("connections")
    {
        for (name, entry) in connections {
            if let toml::Value::Table(entry) = entry
                && let Some(field) = ["api_key", "scoped_api_key", "key"]
                    .into_iter()
                    .find(|f| entry.contains_key(*f))
            {
                return Err(ConfigError::KeyInConfig {
                    path: path.to_path_buf(),
                    connection: name.clone(),
                    field,
                });
            }
            // A SCIM token written into the file is refused the same way.
            if let toml::Value::Table(entry) = entry
                && let Some(toml::Value::Table(scim)) = entry.get("scim")
                && let Some(directory) = scim.iter().find_map(|(directory, d)| {
                    matches!(d, toml::Value::Table(d) if d.contains_key("token") || d.contains_key("scim_token"))
                        .then(|| directory.clone())
                })
            {
                return Err(ConfigError::ScimTokenInConfig {
                    path: path.to_path_buf(),
                    connection: name.clone(),
                    directory,
                });
            }
        }
    }
    let file: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::BadConfig {
        path: path.to_path_buf(),
        // The message only: toml's rendering quotes the file's lines.
        detail: format!(
            "{}{}",
            e.message().trim(),
            e.span()
                .map(|span| format!(" (line {})", text[..span.start].lines().count().max(1)))
                .unwrap_or_default()
        ),
    })?;
    let folder = path.parent().unwrap_or(Path::new("."));
    let chosen: Vec<(&String, &ConnectionEntry)> = if names.is_empty() {
        file.connections.iter().collect()
    } else {
        names
            .iter()
            .map(|name| {
                file.connections
                    .get_key_value(name)
                    .ok_or_else(|| ConfigError::NoConnection {
                        path: path.to_path_buf(),
                        name: name.clone(),
                        known: file.connections.keys().cloned().collect(),
                    })
            })
            .collect::<Result<_, _>>()?
    };
    if chosen.is_empty() {
        return Err(ConfigError::NoConnections(path.to_path_buf()));
    }
    chosen
        .into_iter()
        .map(|(name, entry)| {
            let org_id = entry.org_id.trim().to_string();
            if !is_uuid(&org_id) {
                return Err(ConfigError::OrgIdNotUuid(org_id));
            }
            let source =
                |env: &Option<String>, file: &Option<PathBuf>, command: &Option<String>| {
                    KeySource::of(env, file, command, folder)
                };
            let key = source(
                &entry.api_key_env,
                &entry.api_key_file,
                &entry.api_key_command,
            )
            .ok_or_else(|| ConfigError::NoKeySource {
                connection: name.clone(),
            })?;
            let scoped = source(
                &entry.scoped_api_key_env,
                &entry.scoped_api_key_file,
                &entry.scoped_api_key_command,
            );
            let mut scim_tokens = Vec::new();
            for (directory, token) in &entry.scim {
                let what = format!("{name} (SCIM directory {directory})");
                let source = source(&token.token_env, &token.token_file, &token.token_command)
                    .ok_or_else(|| ConfigError::NoScimTokenSource {
                        connection: name.clone(),
                        directory: directory.clone(),
                    })?;
                scim_tokens.push((directory.trim().to_string(), source.read(&what, warnings)?));
            }
            Ok(Connection {
                name: name.clone(),
                org_id,
                api_key: key.read(name, warnings)?,
                scoped_api_key: scoped.map(|s| s.read(name, warnings)).transpose()?,
                base_url: entry.base_url.clone(),
                scim_tokens,
            })
        })
        .collect()
}

/// Where a connection's key comes from.
enum KeySource {
    Env(String),
    File(PathBuf),
    Command(String),
}

impl KeySource {
    /// The first one given: an environment variable, a file (relative to
    /// the config file's folder; `~/` is the home folder), a command.
    fn of(
        env: &Option<String>,
        file: &Option<PathBuf>,
        command: &Option<String>,
        folder: &Path,
    ) -> Option<Self> {
        if let Some(var) = env {
            return Some(KeySource::Env(var.clone()));
        }
        if let Some(path) = file {
            let home = std::env::var_os("HOME").map(PathBuf::from);
            let path = match (path.strip_prefix("~"), home) {
                (Ok(rest), Some(home)) => home.join(rest),
                _ => folder.join(path),
            };
            return Some(KeySource::File(path));
        }
        command.clone().map(KeySource::Command)
    }

    fn read(&self, connection: &str, warnings: &mut Vec<String>) -> Result<ApiKey, ConfigError> {
        match self {
            KeySource::Env(var) => std::env::var(var)
                .ok()
                .filter(|k| !k.trim().is_empty())
                .map(ApiKey::new)
                .ok_or_else(|| ConfigError::KeyEnvUnset {
                    connection: connection.to_string(),
                    var: var.clone(),
                }),
            KeySource::File(path) => {
                let key = read_key_file(path)?;
                warn_if_readable(path, "the key file", warnings);
                Ok(key)
            }
            KeySource::Command(command) => {
                if looks_like_key(command.trim()) {
                    return Err(ConfigError::KeyAsCommand {
                        connection: connection.to_string(),
                    });
                }
                let failed = |detail: String| ConfigError::KeyCommand {
                    connection: connection.to_string(),
                    detail,
                };
                // Its stderr and stdin stay the user's (a password manager
                // may ask to unlock); only its output is the key.
                let output = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stdin(std::process::Stdio::inherit())
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| failed(format!("it could not start: {e}")))?;
                if !output.status.success() {
                    return Err(failed(format!("it ended with {}", output.status)));
                }
                let key = String::from_utf8(output.stdout)
                    .map_err(|_| failed("its output is not text".to_string()))?;
                if key.trim().is_empty() {
                    return Err(failed("its output is empty".to_string()));
                }
                Ok(ApiKey::new(key))
            }
        }
    }
}

/// Refuses `path` when users other than its owner can write it: they
/// could point orgsql elsewhere, or at a command (`api_key_command` runs
/// through `sh -c`), or swap the key. As ssh does with its files.
fn refuse_if_writable_by_others(path: &Path, what: &'static str) -> Result<(), ConfigError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o022 != 0 {
                return Err(ConfigError::WritableByOthers {
                    what,
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
    }
    Ok(())
}

/// A warning when users other than the owner can read `path`.
pub fn warn_if_readable(path: &Path, what: &str, warnings: &mut Vec<String>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o044 != 0 {
                warnings.push(format!(
                    "{what} {} can be read by other users (mode {mode:o}); \
                     make it yours alone: chmod 600 {}",
                    shown_path(path),
                    shown_path(path)
                ));
            }
        }
    }
}
