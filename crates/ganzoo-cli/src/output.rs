//! Printing results to stdout without panicking when the reader goes away
//! (`ganzoo data info mnist | head`).

use std::io::Write;

/// Writes `text` to stdout; a closed pipe is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
