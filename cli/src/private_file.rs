//! Small owner-only files, read with a size limit and written whole.
//!
//! A file is written to a temporary file in the same directory, created with
//! mode 0600 and `create_new` (never an existing file, never a symlink),
//! written, fsynced, then put under its real name in one step: a hard link
//! that fails if the name exists ([`TempFile::place_new`]) or a rename that
//! replaces it ([`TempFile::replace`]). A reader never sees half a file.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of the files written here: read and write for the owner only.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Mode of a directory created to hold them.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// What [`read_at_most`] found.
#[derive(Debug)]
pub struct Contents {
    /// The first `limit + 1` bytes at most: more than `limit` means the file
    /// is too large.
    pub bytes: Vec<u8>,
    /// The permission bits (`0o777` part of the mode).
    pub mode: u32,
}

/// Reads a regular file, at most `limit + 1` bytes of it; `None` if it does
/// not exist.
pub fn read_at_most(path: &Path, limit: usize) -> io::Result<Option<Contents>> {
    // Non-blocking, so that a FIFO put under the name cannot hang us; it is
    // refused below like any file that is not regular.
    let nonblock = i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0);
    let file = match OpenOptions::new().read(true).custom_flags(nonblock).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    let take = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(take).read_to_end(&mut bytes)?;
    Ok(Some(Contents { bytes, mode: meta.permissions().mode() & 0o777 }))
}

/// The directory a file lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Creates `dir` and its missing parents with mode 0700 (less the umask).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(PRIVATE_DIR_MODE).create(dir)
}

/// A fully written temporary file beside its target; removed when dropped
/// unless it was renamed into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    renamed: bool,
}

impl TempFile {
    /// Writes `bytes` to a new owner-only temporary file in the directory of
    /// `target` and fsyncs it.
    pub fn write(target: &Path, bytes: &[u8]) -> io::Result<Self> {
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let unique = crate::client::random_u64();
        let path =
            parent_dir(target).join(format!(".{name}.tmp-{}-{unique:016x}", std::process::id()));
        let mut file =
            OpenOptions::new().write(true).create_new(true).mode(PRIVATE_FILE_MODE).open(&path)?;
        // From here on `Drop` removes it.
        let temp = Self { path, renamed: false };
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(temp)
    }

    /// Gives the file its real name only if that name is free: fails with
    /// [`io::ErrorKind::AlreadyExists`] otherwise, leaving the existing file
    /// as it was. Of two processes racing, exactly one succeeds.
    pub fn place_new(self, target: &Path) -> io::Result<()> {
        std::fs::hard_link(&self.path, target)?;
        sync_dir(parent_dir(target));
        Ok(())
    }

    /// Gives the file its real name, replacing any file of that name.
    pub fn replace(mut self, target: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.renamed = true;
        sync_dir(parent_dir(target));
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.renamed {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove a temporary file");
            }
        }
    }
}

/// Makes a new name in `dir` durable. The file itself is already synced, so
/// a failure here is only logged.
fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the directory");
    }
}

/// `chmod 600 PATH`, the fix for a file others may access.
pub fn chmod_600_hint(path: &Path) -> String {
    format!("chmod 600 {}", shell_word(&path.display().to_string()))
}

/// `text` as one word for a POSIX shell: as it is when that is safe, else in
/// single quotes.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain { text.to_owned() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}
