//! Files written whole ([`ganzoo_data::partial`]): through `PATH.partial`, created new,
//! synced and renamed into place only once complete, so a failure (disk full, a signal)
//! never leaves half a file where a good one was, and no file or link of the user's by
//! the temporary name is ever followed, truncated or renamed away.

use std::path::Path;

use crate::{EvalError, Result};

/// Writes `bytes` to `path` whole.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    ganzoo_data::partial::write_whole(path, bytes)
        .map_err(|e| EvalError::File { path: path.to_path_buf(), detail: e.to_string() })
}
