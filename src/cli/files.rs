//! Writing files, never half: `COPY ... TO`, `--output`, reports and
//! `orgsql export` write beside the target and rename onto it only when the
//! whole result is in, so a failed query leaves no partial file and an
//! existing file untouched.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::parquet::arrow::ArrowWriter;

use super::output::{self, Format};

/// A path to write instead of `target`, renamed onto it by `commit`; removed
/// when dropped uncommitted.
pub struct AtomicPath {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl AtomicPath {
    /// The temporary path sits in the target's directory (so the rename is
    /// atomic) and keeps its extension (DataFusion infers formats from it).
    pub fn new(target: &Path) -> std::io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = target.file_name().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} names no file", target.display()),
            )
        })?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = format!(
            ".{}.orgsql-{}-{n}",
            name.to_string_lossy(),
            std::process::id()
        );
        if let Some(ext) = target.extension() {
            temp_name.push('.');
            temp_name.push_str(&ext.to_string_lossy());
        }
        let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
        let temp = dir.map_or_else(|| PathBuf::from(&temp_name), |d| d.join(&temp_name));
        Ok(Self {
            temp,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    pub fn temp(&self) -> &Path {
        &self.temp
    }

    /// Put the finished file (or directory) in place of the target.
    pub fn commit(mut self) -> std::io::Result<()> {
        if self.temp.is_dir() && self.target.is_dir() {
            // A directory cannot be renamed onto a full one: swap them.
            let old = self.temp.with_extension("old");
            std::fs::rename(&self.target, &old)?;
            std::fs::rename(&self.temp, &self.target)?;
            let _ = std::fs::remove_dir_all(old);
        } else {
            std::fs::rename(&self.temp, &self.target)?;
        }
        self.committed = true;
        Ok(())
    }
}

impl AtomicPath {
    /// Put a finished folder in place of a target that is absent or an
    /// empty folder; a full one (another run's, say) is never replaced.
    pub fn commit_new(mut self) -> std::io::Result<()> {
        std::fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicPath {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

pub use crate::error::io_at;

/// Whether `path` may be replaced by a COPY's new file or folder: it is
/// absent, a file (the user named it), or an empty folder. A full folder
/// only with `overwrite`, and only if all it holds is what a COPY writes
/// (DataFusion's `<16 letters and digits>_<n>.<ext>` files, in `key=value`
/// partition folders): a folder of other files is never deleted.
pub fn replaceable(path: &Path, overwrite: bool) -> std::result::Result<(), String> {
    if !path.is_dir() {
        return Ok(());
    }
    let mut entries = Vec::new();
    let mut foreign = Vec::new();
    fn walk(dir: &Path, top: &Path, entries: &mut Vec<String>, foreign: &mut Vec<String>) {
        let Ok(read) = std::fs::read_dir(dir) else {
            foreign.push(dir.strip_prefix(top).unwrap_or(dir).display().to_string());
            return;
        };
        for entry in read.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            let shown = path
                .strip_prefix(top)
                .unwrap_or(&path)
                .display()
                .to_string();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if is_dir && name.contains('=') {
                walk(&path, top, entries, foreign);
            } else if !is_dir && is_copy_output(&name) {
                entries.push(shown);
            } else {
                foreign.push(if is_dir { format!("{shown}/") } else { shown });
            }
        }
    }
    walk(path, path, &mut entries, &mut foreign);
    if entries.is_empty() && foreign.is_empty() {
        return Ok(());
    }
    let listed = |names: &mut Vec<String>| {
        names.sort();
        let more = names.len().saturating_sub(3);
        let mut text = names.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        output::visible(&text).into_owned()
    };
    if !foreign.is_empty() {
        return Err(format!(
            "{} is a folder holding files that COPY did not write ({}); nothing there is              replaced: write to a new or empty folder",
            path.display(),
            listed(&mut foreign)
        ));
    }
    if !overwrite {
        return Err(format!(
            "{} is a folder already holding {} files ({}); to replace them, add              OPTIONS ('overwrite' 'true'), or write to a new or empty folder",
            path.display(),
            entries.len(),
            listed(&mut entries)
        ));
    }
    Ok(())
}

/// A file name as DataFusion's writers name a folder's files:
/// `<16 letters and digits>_<part>.<extension>`.
fn is_copy_output(name: &str) -> bool {
    let Some((id, rest)) = name.split_once('_') else {
        return false;
    };
    let Some((part, extension)) = rest.split_once('.') else {
        return false;
    };
    id.len() == 16
        && id.chars().all(|c| c.is_ascii_alphanumeric())
        && !part.is_empty()
        && part.chars().all(|c| c.is_ascii_digit())
        && !extension.is_empty()
}

/// Write the file `path` through `write`, atomically.
pub fn write_atomically(path: &Path, write: impl FnOnce(File) -> Result<()>) -> Result<()> {
    if path.is_dir() {
        return Err(DataFusionError::Execution(format!(
            "{} is a folder: name a file to write",
            path.display()
        )));
    }
    let atomic = AtomicPath::new(path).map_err(io_at(path))?;
    write(File::create(atomic.temp()).map_err(io_at(path))?)?;
    atomic.commit().map_err(io_at(path))
}

/// `--output FILE`: the result in `format` (Parquet too), written atomically.
pub fn write_file(
    path: &Path,
    format: Format,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<()> {
    write_atomically(path, |file| {
        match format {
            Format::Parquet => {
                let mut writer = ArrowWriter::try_new(file, schema.clone(), None)?;
                for batch in batches {
                    writer.write(batch)?;
                }
                writer.close()?;
            }
            other => {
                let mut out = BufWriter::new(file);
                output::print(&mut out, other, schema, batches, None)?;
                out.flush().map_err(io_at(path))?;
            }
        }
        Ok(())
    })
}

/// `--output FILE`, and whether `--format` was given beside it.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub path: Option<PathBuf>,
    /// `--format` (of the command run) was given, not defaulted: only then
    /// may it disagree with the file's extension.
    pub format_given: bool,
}

impl Output {
    /// The format to write in: `given`, or what the file's extension names
    /// (`output_format`); decided before anything runs.
    pub fn format<F: clap::ValueEnum + Copy + PartialEq>(
        &self,
        given: F,
        extensions: &[(&str, F)],
    ) -> std::result::Result<F, String> {
        match &self.path {
            Some(path) => output_format(given, self.format_given, path, extensions),
            None => Ok(given),
        }
    }
}

/// The format to write `--output path` in: the one its extension names (of
/// `extensions`), else `given`. A `--format` given on the command line that
/// names another is refused rather than writing, say, a text table into
/// `u.parquet`.
fn output_format<F: clap::ValueEnum + Copy + PartialEq>(
    given: F,
    explicit: bool,
    path: &Path,
    extensions: &[(&str, F)],
) -> std::result::Result<F, String> {
    let name = |format: F| {
        format
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let named = extensions
        .iter()
        .find(|(e, _)| Some(*e) == extension.as_deref())
        .map(|(_, format)| *format);
    match named {
        None => Ok(given),
        Some(format) if !explicit || format == given => Ok(format),
        Some(format) => Err(format!(
            "--output {}: the file's extension says {} and --format says {}: \
             make them agree (or drop --format)",
            path.display(),
            name(format),
            name(given)
        )),
    }
}
