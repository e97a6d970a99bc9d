//! Files written whole: through a temporary name in the same folder, renamed into place
//! only once complete, so a failure (disk full, a signal) never leaves half a file where
//! a good one was.

use std::path::Path;

use crate::{EvalError, Result};

/// Writes `path` by calling `write` on a temporary path beside it, then renaming.
pub fn write_whole(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let done = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| EvalError::File { path: path.to_path_buf(), detail: e.to_string() })
    });
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}
