//! Printing results to stdout and notes to stderr without panicking when the reader
//! goes away (`ganzoo data info mnist | head`), and the commands printed for the user to run next.

use std::io::Write;

/// Writes `text` to stdout; a closed pipe is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Writes `line` to stderr; a closed or failing stderr drops it. `eprintln!` panics
/// there, and a panic in training loses everything since the last checkpoint for a
/// message nobody can read (`ganzoo train … 2>&1 | head`, a terminal gone).
pub fn note(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}").and_then(|()| err.flush());
}

/// How the user runs ganzoo, for the commands printed to run next: `cargo xtask` sets
/// `GANZOO_PROGRAM` to itself (its users may have no `ganzoo` on their PATH).
pub fn program() -> String {
    std::env::var("GANZOO_PROGRAM").ok().filter(|p| !p.trim().is_empty()).unwrap_or_else(|| "ganzoo".into())
}

/// `path` as one shell word: quoted unless every character is one a shell takes as is.
pub fn shell_word(path: &std::path::Path) -> String {
    let s = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c);
    match s.is_empty() || !s.chars().all(plain) {
        true => format!("'{}'", s.replace('\'', "'\\''")),
        false => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_only_where_a_shell_needs_it() {
        assert_eq!(shell_word(std::path::Path::new("runs/dcgan-mnist")), "runs/dcgan-mnist");
        assert_eq!(shell_word(std::path::Path::new("my runs/a")), "'my runs/a'");
        assert_eq!(shell_word(std::path::Path::new("it's")), "'it'\\''s'");
        assert_eq!(shell_word(std::path::Path::new("$HOME;x")), "'$HOME;x'");
    }
}
