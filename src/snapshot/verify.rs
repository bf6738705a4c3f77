//! A snapshot's files against its manifest, which records each file's size
//! and sha256 (`TableEntry::files`): checked before a session reads them,
//! and all of them by `orgsql snapshot verify`.
//!
//! A session over a snapshot (`--snapshot`, `--attach`, `diff`, `check
//! --baseline`, `review verify --against`) reads exactly the files each
//! table lists (one dropped into a table's folder is not read), and checks
//! each before the table is registered:
//! - in a folder: its size, then its sha256, unless the verification record
//!   shows that this very file was hashed before (see `user_record`);
//! - in object storage: that it is there with the manifest's size (from one
//!   listing per organization). Its content is not read: hashing every
//!   object on every query would download the whole export each time. A
//!   same-size rewrite there is found by `orgsql snapshot verify URL`,
//!   which downloads and hashes every file.
//!
//! A check happens when the session opens: a file replaced while a session
//! runs is read as it is then.
//!
//! A table whose manifest entry lists no files was exported by an older
//! orgsql (or holds no rows): with rows, it is read as before, from its file
//! or folder, with a warning that it cannot be verified; without, it is an
//! empty table and nothing is read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::error::Result;
use serde::{Deserialize, Serialize};

use super::{Contents, FileDigest, MANIFEST, Manifest, Opened, SnapshotError, TableEntry, inside};
use crate::storage::{Location, Remote};

/// A file as the file system describes it: what must be unchanged for an
/// earlier hash of it to stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub bytes: u64,
    /// Its last modification, in ns since 1970.
    pub modified_ns: i64,
    /// Unix: its inode's last change (any write, rename, or a modification
    /// time set back), in ns; and the inode and device. Zero elsewhere.
    pub changed_ns: i64,
    pub inode: u64,
    pub device: u64,
}

impl Stamp {
    /// `None` for a time before 1970 or past 2262: such a file is hashed.
    pub fn of(meta: &std::fs::Metadata) -> Option<Self> {
        let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        let modified_ns = i64::try_from(modified.as_nanos()).ok()?;
        #[cfg(unix)]
        let (changed_ns, inode, device) = {
            use std::os::unix::fs::MetadataExt;
            let changed = meta
                .ctime()
                .checked_mul(1_000_000_000)?
                .checked_add(meta.ctime_nsec())?;
            (changed, meta.ino(), meta.dev())
        };
        #[cfg(not(unix))]
        let (changed_ns, inode, device) = (0, 0, 0);
        Some(Self {
            bytes: meta.len(),
            modified_ns,
            changed_ns,
            inode,
            device,
        })
    }
}

/// A file hashed before: as it was, and its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hashed {
    #[serde(flatten)]
    pub stamp: Stamp,
    pub sha256: String,
    /// When (RFC 3339, to the ns): a file hashed again gets a new time.
    pub hashed_at: String,
}

/// Whether a file must be hashed before it is read: unless it was hashed
/// before, exactly as it is now, with the sha256 the manifest records.
pub fn must_hash(known: Option<&Hashed>, now: Option<&Stamp>, recorded_sha256: &str) -> bool {
    !matches!(
        (known, now),
        (Some(known), Some(now)) if known.stamp == *now && known.sha256 == recorded_sha256
    )
}

/// A file changed this recently before it was hashed is not recorded.
const SETTLE_NS: i64 = 2_000_000_000;

/// Whether a file just hashed may go into the record. Not when it was
/// modified less than 2 s before hashing began: a write in the same clock
/// tick after the hash would leave its stamp as it was (git's "racy" case;
/// FAT's clock has 2 s steps). Such a file is hashed again next time.
pub fn may_record(stamp: &Stamp, hashing_began: SystemTime) -> bool {
    let began = hashing_began
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    began.is_some_and(|began| began - stamp.modified_ns >= SETTLE_NS)
}

/// The verification record, in a file: canonical path to the file as hashed.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub files: BTreeMap<String, Hashed>,
}

const RECORD_VERSION: u32 = 1;
/// The record forgets the files hashed longest ago beyond this many.
const RECORD_MAX: usize = 20_000;

static RECORD_AT: OnceLock<PathBuf> = OnceLock::new();

/// Keep the verification record at `path` from now on in this process (the
/// binary: `user_record()`). Without one, each file is hashed once a
/// process; a library user's home is not written to unasked.
pub fn remember_in(path: PathBuf) {
    let _ = RECORD_AT.set(path);
}

/// Where the user's verification record is: `$XDG_CACHE_HOME/orgsql/`,
/// else `~/.cache/orgsql/`, file `verified.json`.
///
/// Why there: the record lets a query on a large export skip hashing a file
/// hashed before, so it is worth what its writers are.
/// - Not in the snapshot's folder: whoever can replace a file there could
///   edit a record beside it to match. The user's cache is the user's own;
///   its folder is made private (0700, the file 0600), and a record that
///   group or others may write is neither trusted nor written.
/// - Keyed by the file's canonical path; valid only while its size,
///   modification time and (Unix) inode change time, inode and device are
///   as when hashed. A file written over, replaced, or given its old
///   modification time back (`touch -d`) no longer matches: the change
///   time cannot be set back.
/// - A file changed under 2 s before it was hashed is not recorded
///   (`may_record`).
/// - A record that cannot be read or written is no error: every file is
///   hashed, as without one.
pub fn user_record() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let cache =
        absolute("XDG_CACHE_HOME").or_else(|| absolute("HOME").map(|h| h.join(".cache")))?;
    Some(cache.join("orgsql").join("verified.json"))
}

/// Whether only its owner may write `path` (a symbolic link is not followed:
/// it is refused).
fn private(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o022 == 0 && !meta.file_type().is_symlink()
    }
    #[cfg(not(unix))]
    {
        !meta.file_type().is_symlink()
    }
}

impl Record {
    /// The record at `path`; empty when there is none, or it cannot be
    /// trusted or read.
    pub fn load(path: &Path) -> Self {
        let trusted = path.parent().is_some_and(private) && private(path);
        let parsed = trusted
            .then(|| std::fs::read(path).ok())
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok());
        match parsed {
            Some(record) if record.version == RECORD_VERSION => record,
            _ => Record::default(),
        }
    }

    /// Add `hashed` to the record at `path` (as it is on disk now: another
    /// process may have added to it), forgetting files that are gone.
    /// Written beside it and renamed over it: never half.
    fn add(path: &Path, hashed: Vec<(String, Hashed)>) -> std::io::Result<()> {
        let folder = path
            .parent()
            .ok_or_else(|| std::io::Error::other("the record's path names no folder"))?;
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(folder)?;
        if !private(folder) || (path.exists() && !private(path)) {
            return Err(std::io::Error::other(
                "others may write there; nothing recorded",
            ));
        }
        let mut record = Record::load(path);
        record.version = RECORD_VERSION;
        record.files.extend(hashed);
        record.files.retain(|file, _| Path::new(file).is_file());
        if record.files.len() > RECORD_MAX {
            let mut times: Vec<&str> = record
                .files
                .values()
                .map(|h| h.hashed_at.as_str())
                .collect();
            times.sort_unstable();
            let oldest_kept = times[times.len() - RECORD_MAX].to_string();
            record.files.retain(|_, h| h.hashed_at >= oldest_kept);
        }
        let text = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let temp = folder.join(format!(
            ".verified.json.{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&temp)
            .and_then(|mut file| file.write_all(&text).and_then(|()| file.sync_all()))
            .and_then(|()| std::fs::rename(&temp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written
    }
}

/// Files this process hashed (or found in the record), by canonical path:
/// a session that opens a snapshot twice (`check` of several organizations,
/// `review verify --against`) hashes each file once.
static CHECKED: Mutex<BTreeMap<PathBuf, (Stamp, String)>> = Mutex::new(BTreeMap::new());

/// The size and sha256 of a local file, read in blocks.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buffer = vec![0; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = std::io::Read::read(&mut file, &mut buffer)?;
        if n == 0 {
            break;
        }
        context.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((bytes, super::hex(context.finish().as_ref())))
}

/// Checks local files against their digests, with what the record knows,
/// and adds what it hashed to the record when done.
pub struct Checker {
    record: Option<PathBuf>,
    known: Record,
    hashed: Vec<(String, Hashed)>,
    /// Folders' canonical paths, found once: a snapshot's files share a
    /// few folders, and resolving each file's path whole (a system call per
    /// component) was most of the cost of checking it.
    folders: BTreeMap<PathBuf, Option<PathBuf>>,
}

impl Checker {
    /// With the process's record (`remember_in`), if any.
    /// Without one, every file is hashed once a process.
    pub fn new() -> Self {
        let record = RECORD_AT.get().cloned();
        let known = record.as_deref().map(Record::load).unwrap_or_default();
        Self {
            record,
            known,
            hashed: Vec::new(),
            folders: BTreeMap::new(),
        }
    }

    /// The canonical path of the file `path`, of which `meta` is the
    /// `symlink_metadata`: its folder's (resolved once per folder) and its
    /// name, when it is no symbolic link itself; else resolved whole.
    fn canonical(&mut self, path: &Path, meta: &std::fs::Metadata) -> Option<PathBuf> {
        let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
            return std::fs::canonicalize(path).ok();
        };
        if meta.file_type().is_symlink() || folder.as_os_str().is_empty() {
            return std::fs::canonicalize(path).ok();
        }
        Some(self.canonical_folder(folder)?.join(name))
    }

    fn canonical_folder(&mut self, folder: &Path) -> Option<PathBuf> {
        if let Some(known) = self.folders.get(folder) {
            return known.clone();
        }
        // A folder that is no symbolic link: its parent's path (resolved
        // once for all its folders) and its name, one system call.
        let parent = folder.parent().filter(|p| !p.as_os_str().is_empty());
        let resolved = match (parent, folder.file_name()) {
            (Some(parent), Some(name))
                if std::fs::symlink_metadata(folder).is_ok_and(|m| m.file_type().is_dir()) =>
            {
                self.canonical_folder(parent).map(|p| p.join(name))
            }
            _ => std::fs::canonicalize(folder).ok(),
        };
        self.folders.insert(folder.to_path_buf(), resolved.clone());
        resolved
    }

    /// Whether the local file `path` is as `recorded`: `Err` says how not
    /// ("is missing", "has changed since the export (...)").
    pub fn check(&mut self, path: &Path, recorded: &FileDigest) -> Result<(), String> {
        let linked = std::fs::symlink_metadata(path);
        let meta = match &linked {
            Ok(link) if !link.file_type().is_symlink() => Ok(link.clone()),
            _ => std::fs::metadata(path),
        };
        let meta = match meta {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => return Err("is not a file".to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("is missing".to_string());
            }
            Err(e) => return Err(format!("cannot be read: {e}")),
        };
        if meta.len() != recorded.bytes {
            return Err(format!(
                "has changed since the export ({} bytes where the manifest records {})",
                meta.len(),
                recorded.bytes
            ));
        }
        let stamp = Stamp::of(&meta);
        let canonical = match &linked {
            Ok(link) => self.canonical(path, link),
            Err(_) => std::fs::canonicalize(path).ok(),
        };
        if let (Some(stamp), Some(canonical)) = (stamp, &canonical) {
            let seen = CHECKED
                .lock()
                .ok()
                .and_then(|checked| checked.get(canonical).cloned());
            if seen.is_some_and(|(s, sha)| s == stamp && sha == recorded.sha256) {
                return Ok(());
            }
            let key = canonical.to_string_lossy();
            if !must_hash(
                self.known.files.get(key.as_ref()),
                Some(&stamp),
                &recorded.sha256,
            ) {
                remember_here(canonical, stamp, &recorded.sha256);
                return Ok(());
            }
        }
        let sha256 = self.hash(path, stamp, canonical)?;
        if sha256 != recorded.sha256 {
            return Err(format!(
                "has changed since the export (sha256 {sha256} was {})",
                recorded.sha256
            ));
        }
        Ok(())
    }

    /// Hash `path` (as `stamp` said it was) and remember it when it did
    /// not change meanwhile: here, and in the record if it has settled.
    fn hash(
        &mut self,
        path: &Path,
        stamp: Option<Stamp>,
        canonical: Option<PathBuf>,
    ) -> Result<String, String> {
        let began = SystemTime::now();
        let (bytes, sha256) = hash_file(path).map_err(|e| format!("cannot be read: {e}"))?;
        let after = std::fs::metadata(path).ok().and_then(|m| Stamp::of(&m));
        if let (Some(stamp), Some(canonical)) = (stamp, canonical)
            && after == Some(stamp)
            && bytes == stamp.bytes
        {
            remember_here(&canonical, stamp, &sha256);
            if may_record(&stamp, began) {
                let hashed_at =
                    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                self.hashed.push((
                    canonical.to_string_lossy().into_owned(),
                    Hashed {
                        stamp,
                        sha256: sha256.clone(),
                        hashed_at,
                    },
                ));
            }
        }
        Ok(sha256)
    }

    /// The size and sha256 of `path` as it is now, hashed whatever the
    /// record says (`snapshot verify`, a review's evidence).
    fn hash_afresh(&mut self, path: &Path) -> std::io::Result<(u64, String)> {
        let meta = std::fs::metadata(path)?;
        let stamp = Stamp::of(&meta);
        let canonical = std::fs::canonicalize(path).ok();
        let sha256 = self
            .hash(path, stamp, canonical)
            .map_err(std::io::Error::other)?;
        Ok((meta.len(), sha256))
    }

    /// Add what was hashed to the record. If it cannot be written, the
    /// next session hashes again: never an error.
    pub fn finish(self) {
        if let Some(path) = &self.record
            && !self.hashed.is_empty()
            && let Err(e) = Record::add(path, self.hashed)
        {
            tracing::debug!("verification record {}: {e}", path.display());
        }
    }
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

fn remember_here(canonical: &Path, stamp: Stamp, sha256: &str) {
    if let Ok(mut checked) = CHECKED.lock() {
        checked.insert(canonical.to_path_buf(), (stamp, sha256.to_string()));
    }
}

/// The sizes of the files below an organization's folder in object
/// storage, relative to it (one listing).
pub(super) async fn remote_sizes(remote: &Remote) -> Result<BTreeMap<String, u64>> {
    Ok(remote.list("").await?.into_iter().collect())
}

/// The files of `table` (in `folder`, of the snapshot `top`) a session
/// reads, each checked first: exactly those the manifest lists, or none
/// (an empty table). A table listing none, with rows, is read unverified
/// and named in `unverified`. `remote`: the organization's folder is in
/// object storage, where a file is read as the manifest lists it (its
/// size too) without a request to look first: one missing, or of another
/// size, fails the query that reads it.
pub(super) fn readable(
    top: &Location,
    folder: &Location,
    table: &TableEntry,
    remote: bool,
    checker: &mut Checker,
    unverified: &mut Vec<String>,
) -> Result<Vec<String>> {
    let path = inside(folder, &table.path, &table.name)?;
    let utf8 = |place: &Location| -> Result<String> {
        match place {
            Location::Folder(path) => path
                .to_str()
                .map(str::to_string)
                .ok_or_else(|| SnapshotError::NotUtf8(path.display().to_string()).into()),
            Location::Bucket(_) => Ok(place.to_string()),
        }
    };
    if table.files.is_empty() {
        if table.rows == 0 {
            return Ok(Vec::new());
        }
        unverified.push(table.name.clone());
        return Ok(match remote {
            true if !table.path.ends_with(".parquet") => {
                // A prefix is not listed for a folder's files: the
                // manifest must name them.
                return Err(SnapshotError::Unlisted {
                    dir: folder.clone(),
                    table: table.name.clone(),
                }
                .into());
            }
            false if !path.folder().is_some_and(Path::is_file) => {
                // A folder of partitions is read recursively; the partition
                // column was only the folder name, so the files hold
                // exactly the table's columns.
                vec![format!("{}/", utf8(&path)?)]
            }
            _ => vec![utf8(&path)?],
        });
    }
    let mut paths = Vec::new();
    for file in &table.files {
        let place = inside(folder, &file.path, &table.name)?;
        let problem = match (remote, place.folder()) {
            // Object storage: read as listed (`snapshot verify` hashes it).
            (true, _) => None,
            (false, Some(path)) => checker.check(path, file).err(),
            (false, None) => Some("is in object storage, but not read as such".to_string()),
        };
        let shown = match remote {
            true => folder.file(&file.path),
            false => utf8(&place)?,
        };
        if let Some(what) = problem {
            return Err(SnapshotError::NotAsExported {
                file: shown,
                table: table.name.clone(),
                what,
                top: top.clone(),
            }
            .into());
        }
        paths.push(shown);
    }
    Ok(paths)
}

/// Tell the reader, every time, that some tables cannot be verified.
pub(super) fn warn_unverified(folder: &Location, tables: &[String]) {
    if tables.is_empty() {
        return;
    }
    let message = format!(
        "{}: the manifest lists no files for {} (an export by an older orgsql): read as they \
         are, unverified; export again with this orgsql to have every file checked",
        folder.file(MANIFEST),
        tables.join(", ")
    );
    eprintln!("warning: {}", crate::text::visible(&message));
}

/// What `orgsql snapshot verify` found: every file of every table of every
/// organization, hashed, and every table's rows counted from its files.
#[derive(Debug, Default)]
pub struct Report {
    pub orgs: usize,
    pub tables: usize,
    pub files: usize,
    /// The bytes of the files found, hashed.
    pub bytes: u64,
    /// The rows the Parquet footers of the tables' files hold (of tables
    /// whose files are all as exported: only those are counted).
    pub rows: u64,
    /// The sha256 of the snapshot's (top) manifest.json as read.
    pub manifest_sha256: String,
    /// A line each: a file changed, missing or added, or a table that
    /// cannot be verified. None: intact.
    pub problems: Vec<String>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems, a line each, then what they mean.
    pub fn write(&self, out: &mut dyn Write, dir: &Location) -> std::io::Result<()> {
        for problem in &self.problems {
            writeln!(out, "{}", crate::text::visible(problem))?;
        }
        let orgs = if self.orgs > 1 {
            format!(" of {} organizations", self.orgs)
        } else {
            String::new()
        };
        if self.intact() {
            writeln!(
                out,
                "{dir}: intact: {} files ({} bytes, {} rows) of {} tables{orgs}, each file's size \
                 and sha256 as its manifest records it, each table's rows as many as its files hold",
                self.files, self.bytes, self.rows, self.tables
            )
        } else {
            writeln!(
                out,
                "{dir}: {} problem(s) in {} files of {} tables{orgs}: the snapshot is not as \
                 exported; restore those files or export again",
                self.problems.len(),
                self.files,
                self.tables
            )
        }
    }
}

/// Every file below `path` (itself, if a file), relative to `folder` with
/// `/` between names; none if there is nothing there.
fn files_below(folder: &Path, path: &Path, found: &mut Vec<String>) -> std::io::Result<()> {
    if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            files_below(folder, &entry?.path(), found)?;
        }
    } else if path.exists() {
        found.push(
            path.strip_prefix(folder)
                .unwrap_or(path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
        );
    }
    Ok(())
}

/// Check every file of the snapshot at `dir` (a folder, or a prefix in
/// object storage, whose files are downloaded to be hashed) against its
/// manifest. Problems name the table and the file, relative to `dir`.
pub async fn verify(dir: &Location) -> Result<Report> {
    let bytes = super::manifest_bytes(dir).await?;
    let contents = Contents::parse(dir, &bytes)?;
    let several = matches!(contents, Contents::Several(_));
    let mut orgs = Vec::new();
    for (_, relative, folder) in contents.org_dirs(dir)? {
        // Of several organizations, one whose manifest cannot be read is a
        // problem of the snapshot; the others are still checked.
        let manifest = match Manifest::read(&folder).await {
            Ok(manifest) => Ok(manifest),
            Err(e) if several => Err(crate::error::message(&e)),
            Err(e) => return Err(e),
        };
        orgs.push((relative, folder, manifest));
    }
    verify_each(orgs, super::sha256(&bytes)).await
}

/// `verify`, of a snapshot whose manifests were read already.
pub async fn verify_opened(opened: &Opened) -> Result<Report> {
    let orgs = opened
        .contents
        .org_dirs(&opened.dir)?
        .into_iter()
        .zip(&opened.orgs)
        .map(|((_, relative, folder), (_, _, manifest))| (relative, folder, Ok(manifest.clone())))
        .collect();
    verify_each(orgs, opened.manifest_sha256.clone()).await
}

/// Each organization's files (its folder relative to the snapshot's, the
/// folder, its manifest or why it could not be read) against its manifest.
async fn verify_each(
    orgs: Vec<(String, Location, std::result::Result<Manifest, String>)>,
    manifest_sha256: String,
) -> Result<Report> {
    let mut checker = Checker::new();
    let mut report = Report {
        manifest_sha256,
        ..Report::default()
    };
    let result = async {
        for (relative, folder, manifest) in orgs {
            report.orgs += 1;
            // Of several organizations, a path shows its organization's folder.
            let prefix = match relative.is_empty() {
                true => String::new(),
                false => format!("{relative}/"),
            };
            let manifest = match manifest {
                Ok(manifest) => manifest,
                Err(e) => {
                    report.problems.push(format!("{prefix}{MANIFEST}: {e}"));
                    continue;
                }
            };
            verify_org(&folder, &prefix, &manifest, &mut checker, &mut report).await?;
        }
        Ok(())
    }
    .await;
    checker.finish();
    result.map(|()| report)
}

/// A table counted, and whether its files can be checked; if not, the
/// problem (outside the folder, or no file recorded) is said.
fn checkable(folder: &Location, table: &TableEntry, report: &mut Report) -> bool {
    report.tables += 1;
    let name = &table.name;
    if let Err(e) = inside(folder, &table.path, name) {
        let message = crate::error::message(&e);
        report.problems.push(format!("{name}: {message}"));
        return false;
    }
    if table.files.is_empty() && table.rows > 0 {
        report.problems.push(unverifiable(name));
        return false;
    }
    true
}

/// Where an organization's files are: on disk, or in a prefix with the
/// sizes of its files (one listing).
enum Place<'a> {
    Disk(&'a Path),
    Bucket(Remote, BTreeMap<String, u64>),
}

/// A manifest's tables against the files in its folder, each hashed: on
/// disk (a file that cannot be read is a problem), or in object storage (one
/// listing, then each listed file downloaded; a failed request stops).
async fn verify_org(
    folder: &Location,
    prefix: &str,
    manifest: &Manifest,
    checker: &mut Checker,
    report: &mut Report,
) -> Result<()> {
    let place = match folder {
        Location::Folder(local) => Place::Disk(local),
        Location::Bucket(url) => {
            let remote = Remote::at(url)?;
            let sizes = remote_sizes(&remote).await?;
            Place::Bucket(remote, sizes)
        }
    };
    for table in &manifest.tables {
        let name = &table.name;
        if !checkable(folder, table, report) {
            continue;
        }
        // The rows the table's files hold, while every one could be counted.
        let mut rows = Some(0u64);
        for recorded in &table.files {
            report.files += 1;
            let shown = format!("{prefix}{}", recorded.path);
            if let Err(e) = inside(folder, &recorded.path, name) {
                report
                    .problems
                    .push(format!("{name}: {}", crate::error::message(&e)));
                rows = None;
                continue;
            }
            let found = match &place {
                Place::Bucket(remote, _) => Ok(remote.digest(&recorded.path).await?),
                Place::Disk(local) => match checker.hash_afresh(&local.join(&recorded.path)) {
                    Ok(found) => Ok(Some(found)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(format!("cannot be read: {e}")),
                },
            };
            match &found {
                Ok(None) => report.problems.push(format!("{name}: {shown} is missing")),
                Ok(Some((bytes, sha256))) => {
                    report.bytes += bytes;
                    if let Some(what) = changed(*bytes, sha256, recorded) {
                        report.problems.push(format!("{name}: {shown} {what}"));
                    }
                }
                Err(what) => report.problems.push(format!("{name}: {shown}: {what}")),
            }
            // Only a file as exported is counted: one missing, unreadable
            // or changed is said above, and its table's rows not compared.
            let intact = matches!(&found, Ok(Some((bytes, sha256)))
                if changed(*bytes, sha256, recorded).is_none());
            let counted = match &place {
                _ if !intact => None,
                Place::Bucket(remote, _) => {
                    Some(remote.parquet_rows(&recorded.path, recorded.bytes).await?)
                }
                Place::Disk(local) => Some(parquet_rows(&local.join(&recorded.path))),
            };
            match counted {
                Some(Ok(n)) => rows = rows.map(|sum| sum + n),
                Some(Err(what)) => {
                    report.problems.push(format!(
                        "{name}: {shown}: its rows cannot be counted: {what}"
                    ));
                    rows = None;
                }
                None => rows = None,
            }
        }
        if let Some(counted) = rows {
            report.rows += counted;
            if counted != table.rows {
                report.problems.push(format!(
                    "{name}: its files hold {counted} rows where {prefix}{MANIFEST} records {}",
                    table.rows
                ));
            }
        }
        let mut present = Vec::new();
        match &place {
            Place::Bucket(_, sizes) => {
                let below = format!("{}/", table.path.trim_end_matches('/'));
                present.extend(
                    sizes
                        .keys()
                        .filter(|p| **p == table.path || p.starts_with(&below))
                        .cloned(),
                );
            }
            Place::Disk(local) => {
                if let Err(e) = files_below(local, &local.join(&table.path), &mut present) {
                    report
                        .problems
                        .push(format!("{name}: {prefix}{}: {e}", table.path));
                }
            }
        }
        added(name, prefix, table, present, report);
    }
    Ok(())
}

/// The rows a local Parquet file holds, from its footer; `Err` says why
/// they cannot be told.
pub fn parquet_rows(path: &Path) -> Result<u64, String> {
    use datafusion::parquet::file::metadata::ParquetMetaDataReader;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let metadata = ParquetMetaDataReader::new()
        .parse_and_finish(&file)
        .map_err(|e| format!("not a Parquet file as orgsql writes them: {e}"))?;
    u64::try_from(metadata.file_metadata().num_rows())
        .map_err(|_| "its footer states a negative number of rows".to_string())
}

fn unverifiable(table: &str) -> String {
    format!(
        "{table}: the manifest records no file digests (exported by an older orgsql): its \
         files cannot be verified; export again with this orgsql"
    )
}

/// How a file found differs from its record, if it does.
fn changed(bytes: u64, sha256: &str, recorded: &FileDigest) -> Option<String> {
    if sha256 == recorded.sha256 && bytes == recorded.bytes {
        None
    } else if bytes != recorded.bytes {
        Some(format!(
            "has changed since the export ({bytes} bytes, sha256 {sha256}; the manifest \
             records {} bytes, sha256 {})",
            recorded.bytes, recorded.sha256
        ))
    } else {
        Some(format!(
            "has changed since the export (sha256 {sha256} was {})",
            recorded.sha256
        ))
    }
}

/// Files in a table's place that its manifest entry does not list.
fn added(name: &str, prefix: &str, table: &TableEntry, present: Vec<String>, report: &mut Report) {
    for extra in present
        .iter()
        .filter(|f| !table.files.iter().any(|r| &r.path == *f))
    {
        report.problems.push(format!(
            "{name}: {prefix}{extra} was added after the export"
        ));
    }
}
