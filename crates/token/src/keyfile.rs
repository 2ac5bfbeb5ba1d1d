//! Persistence of secret material: created once with mode 0600, never
//! overwritten.

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
    // create_new: if another process won the race, use its file instead of
    // clobbering it.
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return fs::read(path).map_err(|e| io_err(path, e));
        }
        Err(e) => return Err(io_err(path, e)),
    };
    if let Err(e) = file.write_all(&fresh).and_then(|()| file.sync_all()) {
        // We created the file exclusively, so removing our partial write is safe.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(io_err(path, e));
    }
    Ok(fresh)
}
