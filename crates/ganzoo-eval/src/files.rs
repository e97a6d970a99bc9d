//! Files written whole: through a temporary name in the same folder, renamed into place
//! only once complete, so a failure (disk full, a signal) never leaves half a file where
//! a good one was.

use std::path::Path;

use crate::{EvalError, Result};

/// Writes `path` by calling `write` on a temporary path beside it, then renaming; a
/// failed rename becomes `rename_err`. The temporary file is removed on failure.
pub fn write_whole_with<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
    rename_err: impl FnOnce(std::io::Error) -> E,
) -> std::result::Result<(), E> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let done = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(rename_err));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// [`write_whole_with`] for `ganzoo-eval`'s own files.
pub fn write_whole(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    write_whole_with(path, write, |e| EvalError::File { path: path.to_path_buf(), detail: e.to_string() })
}
