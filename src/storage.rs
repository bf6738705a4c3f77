//! Object storage: where an export can be written and a snapshot read
//! besides a local folder: `s3://`, `gs://`, `az://` and `abfss://`
//! prefixes (a `file://` URL is a local path).
//!
//! Credentials are the ones each cloud's own tools use, read by the
//! `object_store` crate: the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`),
//! the machine's or workload's role, and for S3 also the shared profile
//! files (`~/.aws/credentials`, `~/.aws/config`, `AWS_PROFILE`), read here
//! because the crate does not. Nothing here prints a builder or a key:
//! errors say what failed, where, and what to do.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, RetryConfig};

/// A file's version as a store told it (its ETag, or its generation): a
/// write conditioned on it fails when another writer wrote the file since.
pub use object_store::UpdateVersion;
use url::Url;

/// The schemes of the object stores orgsql can use.
pub const SCHEMES: [&str; 7] = ["s3", "s3a", "gs", "az", "abfs", "abfss", "azure"];

static RETRY: OnceLock<RetryConfig> = OnceLock::new();

/// Retries of a storage request and the longest time they may take, from
/// the command line (`--max-retries`, `--max-wait`); set once, before any
/// store is made.
pub fn set_retries(max_retries: u32, max_wait: Duration) {
    let _ = RETRY.set(RetryConfig {
        max_retries: max_retries as usize,
        retry_timeout: max_wait,
        ..RetryConfig::default()
    });
}

fn retry() -> RetryConfig {
    RETRY.get().cloned().unwrap_or_default()
}

/// The scheme of `text` when it is a URL (`s3://...`).
fn scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    (!scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric())).then_some(scheme)
}

/// Where an export is written or a snapshot read, as the user named it
/// (`--out`, `--snapshot`, `--attach`, `diff`, `--baseline`, `--against`),
/// decided once when the command line is read: a local folder (a path, or a
/// `file://` URL) or a prefix in object storage. Parsing makes no store:
/// the retry settings are not known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Folder(PathBuf),
    /// A prefix's URL, ending with `/`.
    Bucket(Url),
}

impl std::str::FromStr for Location {
    type Err = StorageError;

    /// Another scheme is refused rather than taken for a folder named
    /// `http:`, and `s3:/bucket` is a typo, not a folder named `s3:`.
    fn from_str(text: &str) -> std::result::Result<Self, StorageError> {
        let bad = |what: String| StorageError(format!("{text}: {what}"));
        match scheme(text).map(str::to_ascii_lowercase).as_deref() {
            None => {
                let first = text
                    .split('/')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if let Some(scheme) = first.strip_suffix(':').filter(|s| SCHEMES.contains(s)) {
                    return Err(bad(format!("did you mean {scheme}://...?")));
                }
                Ok(Location::Folder(PathBuf::from(text)))
            }
            Some("file") => Url::parse(text)
                .ok()
                .and_then(|url| url.to_file_path().ok())
                .map(Location::Folder)
                .ok_or_else(|| bad("not a file:// URL of an absolute path".to_string())),
            Some(s) if SCHEMES.contains(&s) => {
                let with_slash = match text.ends_with('/') {
                    true => text.to_string(),
                    false => format!("{text}/"),
                };
                let url = Url::parse(&with_slash).map_err(|e| bad(format!("not a URL: {e}")))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(bad("names no bucket (s3://BUCKET/prefix/)".to_string()));
                }
                Ok(Location::Bucket(url))
            }
            Some(other) => Err(bad(format!(
                "orgsql reads and writes {other}:// nowhere; use a folder, file://, s3://, \
                 gs://, az:// or abfss://"
            ))),
        }
    }
}

impl std::fmt::Display for Location {
    /// The folder's path, or the prefix's URL without its last `/`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Folder(path) => write!(f, "{}", path.display()),
            Location::Bucket(url) => write!(f, "{}", url.as_str().trim_end_matches('/')),
        }
    }
}

impl From<&std::path::Path> for Location {
    fn from(folder: &std::path::Path) -> Self {
        Location::Folder(folder.to_path_buf())
    }
}

impl Location {
    /// The folder `relative` (a manifest's `/`-separated path) inside this one.
    pub fn join(&self, relative: &str) -> Self {
        match self {
            Location::Folder(path) => Location::Folder(
                relative
                    .split('/')
                    .filter(|part| !part.is_empty())
                    .fold(path.clone(), |path, part| path.join(part)),
            ),
            Location::Bucket(url) => Location::Bucket(
                url.join(&format!("{}/", relative.trim_matches('/')))
                    .unwrap_or_else(|_| url.clone()),
            ),
        }
    }

    /// The file `relative` inside this folder: its path, or its URL.
    pub fn file(&self, relative: &str) -> String {
        match self {
            Location::Folder(_) => self.join(relative).to_string(),
            Location::Bucket(url) => format!("{url}{}", relative.trim_start_matches('/')),
        }
    }

    /// The local folder, when it is one.
    pub fn folder(&self) -> Option<&std::path::Path> {
        match self {
            Location::Folder(path) => Some(path),
            Location::Bucket(_) => None,
        }
    }

    /// The prefix in object storage, with its store, when it is one.
    pub fn remote(&self) -> Result<Option<Remote>> {
        match self {
            Location::Folder(_) => Ok(None),
            Location::Bucket(url) => Remote::at(url).map(Some),
        }
    }

    /// The file `relative` inside this folder, or `None` when there is none.
    pub async fn read(&self, relative: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Location::Folder(_) => {
                let path = self.file(relative);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(bad(&path, e)),
                }
            }
            Location::Bucket(url) => Remote::at(url)?.get(relative).await,
        }
    }
}

fn bad(location: &str, what: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("{location}: {what}"))
}

/// A store for the bucket (or container) of `url`, from the environment.
pub fn store_for(url: &Url) -> Result<Arc<dyn ObjectStore>> {
    use object_store::aws::AmazonS3Builder;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::gcp::GoogleCloudStorageBuilder;
    let built: object_store::Result<Arc<dyn ObjectStore>> = match url.scheme() {
        "s3" | "s3a" => aws_profile(AmazonS3Builder::from_env())
            .map_err(|e| bad(url.as_str(), e))?
            .with_url(url.as_str())
            .with_retry(retry())
            .build()
            .map(|s| Arc::new(s) as _),
        "gs" => GoogleCloudStorageBuilder::from_env()
            .with_url(url.as_str())
            .with_retry(retry())
            .build()
            .map(|s| Arc::new(s) as _),
        "az" | "abfs" | "abfss" | "azure" => MicrosoftAzureBuilder::from_env()
            .with_url(url.as_str())
            .with_retry(retry())
            .build()
            .map(|s| Arc::new(s) as _),
        other => return Err(bad(url.as_str(), format!("no object store for {other}://"))),
    };
    // A builder's error names a missing setting, never a key's value.
    built.map_err(|e| bad(url.as_str(), format!("cannot set up access: {e}")))
}

/// S3 credentials from the shared profile files when the environment has
/// none: `AWS_PROFILE` (else `default`) in `~/.aws/credentials` (or
/// `AWS_SHARED_CREDENTIALS_FILE`), and its region and endpoint from
/// `~/.aws/config` (or `AWS_CONFIG_FILE`).
fn aws_profile(
    mut builder: object_store::aws::AmazonS3Builder,
) -> std::result::Result<object_store::aws::AmazonS3Builder, String> {
    use object_store::aws::AmazonS3ConfigKey as Key;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
    let section = |path: Option<PathBuf>, names: &[String]| -> Vec<(String, String)> {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            return Vec::new();
        };
        let mut inside = false;
        let mut found = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                inside = names.iter().any(|n| n == name.trim());
            } else if inside && let Some((key, value)) = line.split_once('=') {
                found.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        found
    };
    let credentials = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".aws/credentials")));
    let config = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".aws/config")));
    let config_names = vec![format!("profile {profile}"), profile.clone()];
    let mut settings = section(config, &config_names);
    settings.extend(section(credentials, std::slice::from_ref(&profile)));
    // Keys in the environment come first, as for the AWS CLI; then the
    // profile; then the crate's chain (web identity, container, instance).
    let keyed = env("AWS_ACCESS_KEY_ID").is_some();
    if !keyed && env("AWS_PROFILE").is_some() {
        let has = |key: &str| settings.iter().any(|(k, _)| k == key);
        if settings.is_empty() {
            return Err(format!(
                "AWS_PROFILE {profile}: no such profile in ~/.aws/credentials or ~/.aws/config"
            ));
        }
        if !has("aws_access_key_id") {
            return Err(format!(
                "AWS_PROFILE {profile}: the profile holds no access key (SSO, role_arn and \
                 credential_process profiles are not read): run `aws configure \
                 export-credentials --profile {profile} --format env` and use those variables"
            ));
        }
    }
    for (key, value) in settings {
        let target = match key.as_str() {
            "aws_access_key_id" if !keyed => Key::AccessKeyId,
            "aws_secret_access_key" if !keyed => Key::SecretAccessKey,
            "aws_session_token" if !keyed => Key::Token,
            "region" if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() => {
                Key::Region
            }
            "endpoint_url"
                if env("AWS_ENDPOINT_URL").is_none() && env("AWS_ENDPOINT").is_none() =>
            {
                Key::Endpoint
            }
            _ => continue,
        };
        builder = builder.with_config(target, value);
    }
    Ok(builder)
}

/// The registry of every session: the store for a bucket is made the first
/// time a URL in it is used (`--snapshot s3://...`, `COPY ... TO 's3://...'`,
/// `SELECT * FROM 'gs://.../x.parquet'`). Stores are keyed by scheme, user
/// and host: `abfss://a@account...` and `abfss://b@account...` are two
/// containers (DataFusion's own registry drops the user part).
pub struct Stores {
    known: DefaultObjectStoreRegistry,
    made: std::sync::Mutex<std::collections::HashMap<String, Arc<dyn ObjectStore>>>,
}

impl Default for Stores {
    fn default() -> Self {
        Self {
            known: DefaultObjectStoreRegistry::new(),
            made: Default::default(),
        }
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys only: a store's own Debug can show a token.
        let made = self
            .made
            .lock()
            .map(|m| m.keys().cloned().collect::<Vec<_>>());
        f.debug_struct("Stores")
            .field("made", &made.unwrap_or_default())
            .finish()
    }
}

fn store_key(url: &Url) -> String {
    format!(
        "{}://{}@{}",
        url.scheme(),
        url.username(),
        url.host_str().unwrap_or_default()
    )
}

impl ObjectStoreRegistry for Stores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        if SCHEMES.contains(&url.scheme()) {
            return self
                .made
                .lock()
                .ok()
                .and_then(|mut made| made.insert(store_key(url), store));
        }
        self.known.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if let Some(store) = self
            .made
            .lock()
            .ok()
            .and_then(|mut made| made.remove(&store_key(url)))
        {
            return Ok(store);
        }
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        if !SCHEMES.contains(&url.scheme()) {
            return self.known.get_store(url).map_err(|_| {
                bad(
                    url.as_str(),
                    "orgsql reads and writes local files, s3://, gs://, az:// and abfss:// only",
                )
            });
        }
        let key = store_key(url);
        if let Some(store) = self.made.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(store);
        }
        let store = store_for(url)?;
        if let Ok(mut made) = self.made.lock() {
            made.insert(key, Arc::clone(&store));
        }
        Ok(store)
    }
}

/// A store whose files' sizes a manifest gave, by object path, with each
/// file's URL: a `head` of one of them (DataFusion asks it of every file a
/// table is given) is answered without a request, and every read of one
/// checks the size the service answers with: a file replaced or removed
/// since the export fails the query, naming it. Everything else goes to
/// the store. Reading a prefix is then the manifest and the files' own
/// reads: no listing, no request per file.
#[derive(Debug)]
pub struct KnownSizes {
    inner: Arc<dyn ObjectStore>,
    sizes: std::collections::HashMap<ObjectPath, (u64, String)>,
}

impl KnownSizes {
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        sizes: std::collections::HashMap<ObjectPath, (u64, String)>,
    ) -> Self {
        Self { inner, sizes }
    }
}

impl std::fmt::Display for KnownSizes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (sizes known for {} files)",
            self.inner,
            self.sizes.len()
        )
    }
}

/// A file a manifest lists that is not as it says.
fn not_as_listed(url: &str, what: String) -> object_store::Error {
    object_store::Error::Generic {
        store: "snapshot",
        source: format!(
            "{url} {what}: the snapshot is not as exported; `orgsql snapshot verify` lists \
             every difference"
        )
        .into(),
    }
}

#[async_trait::async_trait]
impl ObjectStore for KnownSizes {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        let plain_head = options.head
            && options.range.is_none()
            && options.version.is_none()
            && options.if_match.is_none()
            && options.if_none_match.is_none()
            && options.if_modified_since.is_none()
            && options.if_unmodified_since.is_none();
        let Some((size, url)) = self.sizes.get(location) else {
            return self.inner.get_opts(location, options).await;
        };
        let size = *size;
        match plain_head {
            true => {
                use futures::StreamExt;
                Ok(object_store::GetResult {
                    payload: object_store::GetResultPayload::Stream(
                        futures::stream::empty().boxed(),
                    ),
                    meta: object_store::ObjectMeta {
                        location: location.clone(),
                        last_modified: chrono::DateTime::UNIX_EPOCH,
                        size,
                        e_tag: None,
                        version: None,
                    },
                    range: 0..0,
                    attributes: Default::default(),
                })
            }
            false => match self.inner.get_opts(location, options).await {
                Ok(found) if found.meta.size != size => Err(not_as_listed(
                    url,
                    format!(
                        "has changed since the export ({} bytes where the manifest records \
                         {size})",
                        found.meta.size
                    ),
                )),
                Err(object_store::Error::NotFound { .. }) => {
                    Err(not_as_listed(url, "is missing".to_string()))
                }
                other => other,
            },
        }
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<ObjectPath>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<ObjectPath>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A prefix in object storage, as a folder: files are named relative to it.
/// (Its `Debug` shows the URL only: a store's can show a token.)
#[derive(Clone)]
pub struct Remote {
    /// The prefix's URL, ending with `/`.
    url: Url,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Remote({})", self.url)
    }
}

impl Remote {
    /// The prefix `url` names (`s3://bucket/some/prefix/`, ending with
    /// `/`), with a store for its bucket.
    pub fn at(url: &Url) -> Result<Self> {
        Self::in_store(url, store_for(url)?)
    }

    /// The prefix `url` names, in a store made elsewhere (by an embedding
    /// program, or a test, with settings of its own).
    pub fn in_store(url: &Url, store: Arc<dyn ObjectStore>) -> Result<Self> {
        // The URL's path is percent-encoded (a space is %20): the object
        // path is what it encodes.
        let prefix = ObjectPath::from_url_path(url.path().trim_matches('/'))
            .map_err(|e| bad(url.as_str(), format!("not a storage path: {e}")))?;
        Ok(Self {
            url: url.clone(),
            store,
            prefix,
        })
    }

    /// The prefix's URL, ending with `/`.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// The folder `relative` inside this one.
    pub fn join(&self, relative: &str) -> Self {
        let mut joined = self.clone();
        joined.url = self
            .url
            .join(&format!("{}/", relative.trim_matches('/')))
            .unwrap_or_else(|_| self.url.clone());
        joined.prefix = self.path(relative);
        joined
    }

    /// The URL of the file `relative` inside this folder.
    pub fn location(&self, relative: &str) -> String {
        format!("{}{}", self.url, relative.trim_start_matches('/'))
    }

    fn path(&self, relative: &str) -> ObjectPath {
        relative
            .split('/')
            .filter(|part| !part.is_empty())
            .fold(self.prefix.clone(), object_store::path::Path::join)
    }

    /// The file `relative`, or `None` when there is none.
    pub async fn get(&self, relative: &str) -> Result<Option<Vec<u8>>> {
        let location = self.location(relative);
        match self.store.get(&self.path(relative)).await {
            Ok(found) => found
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| explain("reading", &location, e)),
            Err(object_store::Error::NotFound { source, .. })
                if !source.to_string().contains("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(explain("reading", &location, e)),
        }
    }

    /// The size and sha256 (lowercase hex) of the file `relative`, read as a
    /// stream (never whole in memory), or `None` when there is none.
    pub async fn digest(&self, relative: &str) -> Result<Option<(u64, String)>> {
        use futures::StreamExt;
        let location = self.location(relative);
        let found = match self.store.get(&self.path(relative)).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { source, .. })
                if !source.to_string().contains("NoSuchBucket") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(explain("reading", &location, e)),
        };
        let mut stream = found.into_stream();
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| explain("reading", &location, e))?;
            context.update(&chunk);
            bytes += chunk.len() as u64;
        }
        let sha256 = context
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Some((bytes, sha256)))
    }

    /// The rows the Parquet file `relative` (of `bytes` bytes) holds, from
    /// its footer (a read of its end). `Ok(Err)`: it is no Parquet file, and
    /// why; `Err`: it could not be read.
    pub async fn parquet_rows(
        &self,
        relative: &str,
        bytes: u64,
    ) -> Result<std::result::Result<u64, String>> {
        use datafusion::parquet::errors::ParquetError;
        use datafusion::parquet::file::metadata::ParquetMetaDataReader;
        let (path, location) = (self.path(relative), self.location(relative));
        if bytes < 12 {
            return Ok(Err(format!("{bytes} bytes: too few for a Parquet file")));
        }
        // Its last 64 KiB hold the footer of most files; else as much as
        // the footer says it needs.
        let mut suffix = bytes.min(64 << 10);
        let mut reader = ParquetMetaDataReader::new();
        loop {
            let tail = self
                .store
                .get_range(&path, bytes - suffix..bytes)
                .await
                .map_err(|e| explain("reading", &location, e))?;
            match reader.try_parse_sized(&tail, bytes) {
                Ok(()) => break,
                Err(ParquetError::NeedMoreData(needed)) if (needed as u64) > suffix => {
                    suffix = needed as u64;
                }
                Err(e) => {
                    return Ok(Err(format!(
                        "not a Parquet file as orgsql writes them: {e}"
                    )));
                }
            }
        }
        let rows = reader
            .finish()
            .map(|metadata| metadata.file_metadata().num_rows())
            .map_err(|e| format!("not a Parquet file as orgsql writes them: {e}"));
        Ok(rows.and_then(|rows| {
            u64::try_from(rows)
                .map_err(|_| "its footer states a negative number of rows".to_string())
        }))
    }

    /// The file `relative` and the version read, or `None` when there is none.
    pub async fn get_versioned(&self, relative: &str) -> Result<Option<(Vec<u8>, UpdateVersion)>> {
        let location = self.location(relative);
        match self.store.get(&self.path(relative)).await {
            Ok(found) => {
                let version = UpdateVersion {
                    e_tag: found.meta.e_tag.clone(),
                    version: found.meta.version.clone(),
                };
                let bytes = found
                    .bytes()
                    .await
                    .map_err(|e| explain("reading", &location, e))?;
                Ok(Some((bytes.to_vec(), version)))
            }
            Err(object_store::Error::NotFound { source, .. })
                if !source.to_string().contains("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(explain("reading", &location, e)),
        }
    }

    /// The version of the file `relative` now, or `None` when there is none.
    pub async fn version(&self, relative: &str) -> Result<Option<UpdateVersion>> {
        match self.store.head(&self.path(relative)).await {
            Ok(meta) => Ok(Some(UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            })),
            Err(object_store::Error::NotFound { source, .. })
                if !source.to_string().contains("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(explain("reading", &self.location(relative), e)),
        }
    }

    /// The files directly in this folder (not below), by name, with their
    /// versions: one listing (and a request per file where the listing
    /// gives no version). Also says the bucket is there and may be listed.
    pub async fn versions(&self) -> Result<BTreeMap<String, UpdateVersion>> {
        let listed = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| explain("listing", self.url(), e))?;
        let mut versions = BTreeMap::new();
        for meta in listed.objects {
            let Some(name) = meta.location.filename().map(str::to_string) else {
                continue;
            };
            let version = match (meta.e_tag, meta.version) {
                // A listing without ETags (some S3-compatible servers):
                // each file's own.
                (None, None) => match self.version(&name).await? {
                    Some(version) => version,
                    None => continue,
                },
                (e_tag, version) => UpdateVersion { e_tag, version },
            };
            versions.insert(name, version);
        }
        Ok(versions)
    }

    /// Write `bytes` as the file `relative`, whole or not at all, only if
    /// it is still as `read` (`None`: only if there is none). `Ok(None)`:
    /// another writer wrote (or removed) it since, and nothing was written.
    pub async fn put_if(
        &self,
        relative: &str,
        bytes: Vec<u8>,
        read: Option<&UpdateVersion>,
    ) -> Result<Option<UpdateVersion>> {
        let mode = match read {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        match self
            .store
            .put_opts(&self.path(relative), PutPayload::from(bytes), mode.into())
            .await
        {
            Ok(put) => Ok(Some(UpdateVersion::from(put))),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(None),
            Err(e) => Err(explain("writing", &self.location(relative), e)),
        }
    }

    /// Upload the local file `from` as `relative`: in parts when it is
    /// large, and visible only once complete. An upload that fails, or that
    /// `stop` interrupts (Ctrl-C), is aborted: no object, and no parts left
    /// stored (and billed) in the bucket.
    pub async fn upload(
        &self,
        relative: &str,
        from: PathBuf,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<()> {
        let location = self.location(relative);
        let stopped = || bad(&location, "not uploaded: the export was interrupted");
        let mut file = tokio::fs::File::open(&from)
            .await
            .map_err(|e| bad(&from.display().to_string(), e))?;
        let first = read_part(&mut file, &from).await?;
        if first.len() < UPLOAD_PART {
            // One request: the object appears whole or not at all.
            let path = self.path(relative);
            let put = self.store.put(&path, first.into());
            return tokio::select! {
                put = put => put.map(|_| ()).map_err(|e| explain("writing", &location, e)),
                () = interrupted(stop) => Err(stopped()),
            };
        }
        if *stop.borrow() {
            return Err(stopped());
        }
        let mut upload = self
            .store
            .put_multipart(&self.path(relative))
            .await
            .map_err(|e| explain("writing", &location, e))?;
        use futures::StreamExt;
        let mut sending: futures::stream::FuturesUnordered<object_store::UploadPart> =
            futures::stream::FuturesUnordered::new();
        let parts = async {
            let mut part = first;
            while !part.is_empty() {
                if sending.len() >= PARTS_IN_FLIGHT
                    && let Some(sent) = sending.next().await
                {
                    sent.map_err(|e| explain("writing", &location, e))?;
                }
                sending.push(upload.put_part(part.into()));
                part = read_part(&mut file, &from).await?;
            }
            while let Some(sent) = sending.next().await {
                sent.map_err(|e| explain("writing", &location, e))?;
            }
            Ok(())
        };
        let sent: Result<()> = tokio::select! {
            sent = parts => sent,
            () = interrupted(stop) => Err(stopped()),
        };
        // Parts on their way end first (sent or failed): one the service
        // stored after the abort would be kept, and billed.
        while sending.next().await.is_some() {}
        let completed = match sent {
            Ok(()) => upload
                .complete()
                .await
                .map(|_| ())
                .map_err(|e| explain("writing", &location, e)),
            Err(e) => Err(e),
        };
        if let Err(e) = completed {
            // The parts sent so far are discarded, not kept and billed.
            return match upload.abort().await {
                Ok(()) => Err(e),
                Err(abort) => Err(e.context(format!(
                    "its parts could not be discarded ({abort}): the bucket's lifecycle rule \
                     for incomplete multipart uploads removes them, or `aws s3api \
                     list-multipart-uploads` lists them"
                ))),
            };
        }
        Ok(())
    }

    /// The size of the file `relative`, or `None` when there is none.
    pub async fn size(&self, relative: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(relative)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { source, .. })
                if !source.to_string().contains("NoSuchBucket") =>
            {
                Ok(None)
            }
            Err(e) => Err(explain("reading", &self.location(relative), e)),
        }
    }

    /// The files below `relative`, relative to this folder, with their sizes.
    pub async fn list(&self, relative: &str) -> Result<Vec<(String, u64)>> {
        use futures::TryStreamExt;
        let below = self.path(relative);
        let found: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&below))
            .try_collect()
            .await
            .map_err(|e| explain("listing", &self.location(relative), e))?;
        Ok(found
            .into_iter()
            .filter_map(|meta| {
                let parts = meta.location.prefix_match(&self.prefix)?;
                let path = parts
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                Some((path, meta.size))
            })
            .collect())
    }

    /// Remove the file `relative`.
    pub async fn delete(&self, relative: &str) -> Result<()> {
        self.store
            .delete(&self.path(relative))
            .await
            .map_err(|e| explain("deleting", &self.location(relative), e))
    }
}

/// Once `stop` says so (Ctrl-C, SIGTERM); never when its sender is gone.
pub async fn interrupted(stop: &tokio::sync::watch::Receiver<bool>) {
    let mut stop = stop.clone();
    if stop.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The size of a part of a large upload (S3 takes 5 MiB at least), and how
/// many parts of one file are sent at once.
const UPLOAD_PART: usize = 10 << 20;
const PARTS_IN_FLIGHT: usize = 4;

/// The next part of `file`: `UPLOAD_PART` bytes, fewer only at its end.
async fn read_part(file: &mut tokio::fs::File, from: &std::path::Path) -> Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut part = Vec::with_capacity(UPLOAD_PART);
    (&mut *file)
        .take(UPLOAD_PART as u64)
        .read_to_end(&mut part)
        .await
        .map_err(|e| bad(&from.display().to_string(), e))?;
    Ok(part)
}

/// A storage error as a user should read it: what was being done, where,
/// what went wrong, and what to do. The crate's errors name the request and
/// the service's answer, never a credential.
pub fn explain(doing: &str, location: &str, error: object_store::Error) -> DataFusionError {
    use object_store::Error as E;
    let text = error.to_string();
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_string());
    const DENIED: [&str; 8] = [
        "AccessDenied",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "NotSignedUp",
        "ExpiredToken",
        "InvalidToken",
        "AuthorizationHeaderMalformed",
        "AllAccessDisabled",
    ];
    let denied = matches!(
        error,
        E::PermissionDenied { .. } | E::Unauthenticated { .. }
    ) || code.as_deref().is_some_and(|c| DENIED.contains(&c))
        || text.contains("403 Forbidden")
        || text.contains("401 Unauthorized");
    let message = match (&error, code.as_deref()) {
        (_, Some("NoSuchBucket")) => format!(
            "{doing} {location}: no such bucket; check its name (and the region or endpoint: \
             AWS_REGION, AWS_ENDPOINT_URL)"
        ),
        (_, code) if denied => format!(
            "{doing} {location}: access denied{}: the credentials found (the environment, the \
             profile files, or the machine's role) are refused there, or may not do this",
            code.map(|c| format!(" ({c})")).unwrap_or_default()
        ),
        (E::NotFound { .. }, _) => format!("{doing} {location}: not found"),
        _ => {
            // The root cause says most (`Connection refused`); the crate's
            // own text says which request and after how many retries.
            let mut root: &dyn std::error::Error = &error;
            while let Some(next) = root.source() {
                root = next;
            }
            let root = root.to_string();
            let lower = format!("{text} {root}").to_lowercase();
            if lower.contains("169.254.") {
                // No key in the environment or a profile: the crate asked
                // the machine's metadata service, and nobody answered.
                return DataFusionError::External(Box::new(StorageError(format!(
                    "{doing} {location}: no usable credentials were found: set \
                     AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), \
                     GOOGLE_APPLICATION_CREDENTIALS, or AZURE_STORAGE_ACCOUNT_KEY, or run \
                     where a role provides them ({root})"
                ))));
            }
            if text.contains(&root) {
                format!("{doing} {location}: {text}")
            } else {
                format!("{doing} {location}: {root} ({text})")
            }
        }
    };
    DataFusionError::External(Box::new(StorageError(message)))
}

/// A storage failure, worded for the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StorageError(String);
