//! The comparison tables of ganzoo against PyTorch, one per machine kind (the
//! instruction set the kernels ran at: AVX2 and AVX-512 machines differ), each written
//! into a Markdown file between its two markers so that the prose around it and the
//! other kinds' tables survive each new run.

use std::path::Path;

use crate::rounds::Comparison;
use crate::{BenchError, Result};

/// The line that opens the table of machine kind `kind`.
pub fn begin(kind: &str) -> String {
    format!("<!-- bench:begin {kind} (written by `cargo xtask bench --torch … --write`; do not edit) -->")
}

/// The line that closes it.
pub fn end(kind: &str) -> String {
    format!("<!-- bench:end {kind} -->")
}

/// The setting a comparison ran in.
#[derive(Debug, Clone)]
pub struct Setting {
    pub date: String,
    pub cpu: String,
    pub cpus: usize,
    /// The instruction set the kernels ran at (`GANZOO_ISA`'s level).
    pub isa: String,
    /// The table's key: the best instruction set the CPU has, or `BEST-as-USED` when
    /// `GANZOO_ISA` forced another level than the kernels pick.
    pub kind: String,
    pub threads: usize,
    pub ganzoo: String,
    pub candle: String,
    pub torch: String,
    /// The CPU capability PyTorch dispatched to, and how it was held there if it was.
    pub torch_isa: String,
    pub kernels: String,
    /// Rounds per model.
    pub rounds: usize,
}

/// The Markdown section: setting, then one row per model.
pub fn section(setting: &Setting, models: &[Comparison]) -> String {
    let mut s = format!(
        "{}\n\nMeasured {} on {} ({} CPUs, kernels at {}), {} threads each; ganzoo {} (Candle {}, {} kernels), \
         PyTorch {} (CPU capability {}); {} alternating rounds per model, the ratio is the median of the rounds' ratios.\n\n",
        begin(&setting.kind),
        setting.date,
        setting.cpu,
        setting.cpus,
        setting.isa,
        setting.threads,
        setting.ganzoo,
        setting.candle,
        setting.kernels,
        setting.torch,
        setting.torch_isa,
        setting.rounds
    );
    s.push_str("| model | batch | ganzoo it/s | PyTorch it/s | **ratio** | rounds' ratios (min–max) | ganzoo peak RSS MB | PyTorch peak RSS MB | other CPU (ganzoo / PyTorch) |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for c in models {
        let (lo, hi) = c.ratio_range();
        let (ours_other, theirs_other) = c.other_cpu_frac();
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | **{:.2}** | {lo:.2}–{hi:.2} | {:.0} | {:.0} | {ours_other:.2} / {theirs_other:.2} |\n",
            c.model(),
            c.batch(),
            c.ours_iters_per_s(),
            c.theirs_iters_per_s(),
            c.ratio(),
            c.ours_peak_rss_mb(),
            c.theirs_peak_rss_mb(),
        ));
    }
    s.push('\n');
    s.push_str(&end(&setting.kind));
    s.push('\n');
    s
}

/// Replaces the section of machine kind `kind` in `path` with `section` (appending it,
/// or creating the file, when there is none), keeping every byte around it as it was;
/// written to a temporary file and renamed.
pub fn write_section(path: &Path, kind: &str, section: &str) -> Result<()> {
    let io = |what: &str| {
        let what = format!("{what} {}", path.display());
        move |source| BenchError::Io { what, source }
    };
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("reading")(e)),
    };
    let (begin, end) = (begin(kind), end(kind));
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            // What followed the old end marker (its line break, a blank line) stays.
            format!("{}{}{}", &old[..b], section.trim_end_matches('\n'), &old[e + end.len()..])
        }
        _ if old.is_empty() => section.to_string(),
        _ => format!("{}\n\n{section}", old.trim_end()),
    };
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, new).map_err(io("writing"))?;
    std::fs::rename(&tmp, path).map_err(io("replacing"))
}

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
pub fn today() -> String {
    date_from_unix(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

/// A Unix time's UTC date as `YYYY-MM-DD`.
pub fn date_from_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The `candle-core` version recorded in the `Cargo.lock` at `lock`, if any.
pub fn candle_version(lock: &Path) -> String {
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.trim() == "name = \"candle-core\"" {
            if let Some(v) = lines.next().and_then(|v| v.trim().strip_prefix("version = ")) {
                return v.trim_matches('"').to_string();
            }
        }
    }
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_replaces_only_the_marked_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perf.md");
        std::fs::write(&path, "# Title\n\nprose\n").unwrap();
        let table = |kind: &str, body: &str| format!("{}\n{body}\n{}\n", begin(kind), end(kind));
        write_section(&path, "avx2", &table("avx2", "one")).unwrap();
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap() + "\nafter\n").unwrap();
        write_section(&path, "avx512", &table("avx512", "wide")).unwrap();
        write_section(&path, "avx2", &table("avx2", "two")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // The blank line between the replaced table and the prose after it stays.
        assert!(text.contains(&format!("{}\n\nafter\n", end("avx2"))), "{text}");
        assert!(text.starts_with("# Title\n\nprose\n\n") && text.contains("two") && !text.contains("one"), "{text}");
        assert!(text.find("two") < text.find("after") && text.contains("wide"), "{text}");
        assert!(text.trim_end().ends_with(&end("avx512")), "{text}");
    }

    #[test]
    fn unix_times_become_calendar_dates() {
        assert_eq!(date_from_unix(0), "1970-01-01");
        assert_eq!(date_from_unix(951_782_400 + 86_399), "2000-02-29");
        assert_eq!(date_from_unix(1_795_651_200), "2026-11-26");
        assert!(today().as_str() >= "2026-01-01");
    }
}
