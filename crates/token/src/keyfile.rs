//! Persistence of secret material: created with mode 0600 and never
//! overwritten in place; only a key rotation replaces a file, atomically.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::TokenError;

fn io_err(path: &Path, source: std::io::Error) -> TokenError {
    TokenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Returns the bytes of `path`, or generates them with `generate`, writes them
/// to a newly created file (mode 0600, parent directories 0700) and returns
/// them. An existing file is never replaced, whatever its content.
///
/// The new file appears whole: the bytes are written to a temporary file of
/// this process's own, synced, then hard-linked to `path` (which fails if
/// `path` exists), so a running hub that reloads the directory never reads a
/// half-written key, and of two processes creating the same file one wins.
pub(crate) fn read_or_create(
    path: &Path,
    generate: impl FnOnce() -> Result<Vec<u8>, TokenError>,
) -> Result<Vec<u8>, TokenError> {
    match fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(path, e)),
    }
    let fresh = generate()?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| io_err(parent, e))?;
    }
    let tmp = unique_temporary(path)?;
    write_new(&tmp, &fresh)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_parent(path)?;
            Ok(fresh)
        }
        // Another process won the race: use its file instead of clobbering it.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            fs::read(path).map_err(|e| io_err(path, e))
        }
        Err(e) => Err(io_err(path, e)),
    }
}

/// `{path}.{pid}.{random}.tmp`: a name no other process writing `path` uses.
fn unique_temporary(path: &Path) -> Result<std::path::PathBuf, TokenError> {
    let mut suffix = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut suffix)
        .map_err(|_| TokenError::KeyGeneration)?;
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        crate::b64url(&suffix)
    ));
    Ok(name.into())
}

/// Creates `path` (mode 0600; it must not exist) holding `bytes`, synced. A
/// failed write removes what it created.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), TokenError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    if let Err(e) = file.write_all(bytes).and_then(|()| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io_err(path, e));
    }
    Ok(())
}

/// Replaces `path` with `bytes` atomically: written to a temporary file next to
/// it (mode 0600), synced, then renamed over it, so a reader or a crash sees
/// the old content or the new, never a partial key.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> Result<(), TokenError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    // A leftover from a crash was ours; create_new below must own the file.
    match fs::remove_file(tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(tmp, e)),
    }
    write_new(tmp, bytes)?;
    rename(tmp, path)
}

/// Renames `from` to `to` (replacing it) and makes the change durable.
pub(crate) fn rename(from: &Path, to: &Path) -> Result<(), TokenError> {
    fs::rename(from, to).map_err(|e| io_err(to, e))?;
    sync_parent(to)
}

/// Deletes `path` and makes the deletion durable.
pub(crate) fn remove(path: &Path) -> Result<(), TokenError> {
    fs::remove_file(path).map_err(|e| io_err(path, e))?;
    sync_parent(path)
}

/// fsync of the directory holding `path`: a rename or unlink is durable only then.
fn sync_parent(path: &Path) -> Result<(), TokenError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_err(parent, e))
}
