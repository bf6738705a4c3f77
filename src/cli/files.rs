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

/// An I/O error, naming the path it happened at.
pub fn io_at(path: &Path) -> impl Fn(std::io::Error) -> DataFusionError + Copy + '_ {
    move |e| DataFusionError::Execution(format!("{}: {e}", path.display()))
}

/// Write the file `path` through `write`, atomically.
pub fn write_atomically(path: &Path, write: impl FnOnce(File) -> Result<()>) -> Result<()> {
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
