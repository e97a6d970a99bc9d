//! The comparison tables of ganzoo against PyTorch, one per machine kind (on a CPU, the
//! instruction set the kernels ran at and the CPU model: AVX2 and AVX-512 machines
//! differ, and so do two AVX-512 CPUs; on a GPU, the batch, the GPU and whether TF32 was
//! allowed), each written
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

/// A table's key: what was measured (`avx512`; `avx512-as-avx2` when the kernels were
/// held lower; `cuda-b64`, `cuda-b256-tf32`; `-bf16` appended for bf16 activations) and
/// on what (the CPU model with its family and model numbers, or the GPU's name), since
/// one level differs by CPU — a Zen 4's 512-bit FMAs are double-pumped, a Zen 5's are
/// not, and PyTorch gains from that as much as ganzoo — and a batch by GPU. A `--` would
/// end the HTML comment the key sits in, so dashes never come in pairs.
pub fn table_key(label: &str, machine: &str) -> String {
    let mut key = format!("{label} on {machine}");
    while key.contains("--") {
        key = key.replace("--", "-");
    }
    key
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
    /// ganzoo's activations: `f32`, or `bf16` (mixed precision).
    pub precision: String,
    /// Rounds per model.
    pub rounds: usize,
    /// On CUDA: the GPU's name, how ganzoo's f32 products ran (exact or TF32) and its convolutions.
    pub gpu: Option<(String, String)>,
}

/// The Markdown section: setting, then one row per model.
pub fn section(setting: &Setting, models: &[Comparison]) -> String {
    let place = match &setting.gpu {
        Some((gpu, products)) => {
            format!("{gpu} (f32 products {products}; host {}, {} CPUs)", setting.cpu, setting.cpus)
        }
        None => format!("{} ({} CPUs, kernels at {})", setting.cpu, setting.cpus, setting.isa),
    };
    let mut s = format!(
        "{}\n\nMeasured {} on {place}, {} threads each; ganzoo {} (Candle {}, {} kernels{}), \
         PyTorch {} (CPU capability {}); {} alternating rounds per model, the ratio is the median of the rounds' ratios.\n\n",
        begin(&setting.kind),
        setting.date,
        setting.threads,
        setting.ganzoo,
        setting.candle,
        setting.kernels,
        if setting.precision == "f32" { String::new() } else { format!(", {} activations; PyTorch f32", setting.precision) },
        setting.torch,
        setting.torch_isa,
        setting.rounds
    );
    let gpu = setting.gpu.is_some();
    s.push_str("| model | batch | ganzoo it/s | PyTorch it/s | **ratio** | rounds' ratios (min–max) | ganzoo peak RSS MB | PyTorch peak RSS MB | other CPU (ganzoo / PyTorch) |");
    s.push_str(if gpu { " ganzoo peak GPU MB | PyTorch peak GPU MB |\n" } else { "\n" });
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    s.push_str(if gpu { " ---: | ---: |\n" } else { "\n" });
    let mb = |v: Option<f64>| v.map_or("?".to_string(), |v| format!("{v:.0}"));
    for c in models {
        let (lo, hi) = c.ratio_range();
        let (ours_other, theirs_other) = c.other_cpu_frac();
        s.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | **{:.2}** | {lo:.2}–{hi:.2} | {:.0} | {:.0} | {ours_other:.2} / {theirs_other:.2} |",
            c.model(),
            c.batch(),
            c.ours_iters_per_s(),
            c.theirs_iters_per_s(),
            c.ratio(),
            c.ours_peak_rss_mb(),
            c.theirs_peak_rss_mb(),
        ));
        let (ours_gpu, theirs_gpu) = c.peak_gpu_mb();
        s.push_str(&if gpu { format!(" {} | {} |\n", mb(ours_gpu), mb(theirs_gpu)) } else { "\n".into() });
    }
    s.push('\n');
    s.push_str(&end(&setting.kind));
    s.push('\n');
    s
}

/// Replaces the section of machine kind `kind` in `path` with `section` (appending it,
/// or creating the file, when there is none), keeping every byte around it as it was;
/// written to a temporary file, synced and renamed.
pub fn write_section(path: &Path, kind: &str, section: &str) -> Result<()> {
    let old = existing(path)?;
    let (begin, end) = (begin(kind), end(kind));
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            // What followed the old end marker (its line break, a blank line) stays.
            format!("{}{}{}", &old[..b], section.trim_end_matches('\n'), &old[e + end.len()..])
        }
        _ if old.is_empty() => section.to_string(),
        _ => format!("{}\n\n{section}", old.trim_end()),
    };
    Ok(ganzoo_data::partial::write_whole(path, new.as_bytes())?)
}

/// Checks, before a run spends its minutes timing, that [`write_section`] will be able
/// to write `path`: an existing file must be readable text, and its folder must take a
/// new file (a temporary one, made and removed here).
pub fn check_writable(path: &Path) -> Result<()> {
    existing(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let what = format!("writing {} into the folder {}", path.display(), dir.display());
    std::fs::read_dir(dir).map_err(|source| BenchError::Io { what: what.clone(), source })?;
    // A new name (never a file that was there), removed at once.
    let probe = dir.join(format!(".ganzoo-bench-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|source| BenchError::Io { what, source })?;
    std::fs::remove_file(&probe)
        .map_err(|source| BenchError::Io { what: format!("removing {}", probe.display()), source })
}

/// The text of `path`, or nothing when there is no such file. Anything but a regular
/// file is refused before it is opened: a FIFO would block the read, and the rename
/// that writes the table would replace a device such as `/dev/null`.
fn existing(path: &Path) -> Result<String> {
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() && !meta.is_dir() {
            let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
            return Err(BenchError::Io { what: format!("reading {}", path.display()), source });
        }
    }
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(BenchError::Io { what: format!("reading {}", path.display()), source }),
    }
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
    fn a_gpu_table_names_the_gpu_and_adds_its_memory_columns() {
        use crate::rounds::tests::{ours, theirs};
        use crate::rounds::Round;
        let mut round = Round { ours: ours(2.0, 300.0), theirs: theirs(1.0, 900.0) };
        (round.ours.peak_gpu_mb, round.theirs.peak_gpu_mb) = (Some(1234.4), Some(2048.0));
        let models = [Comparison { rounds: vec![round] }];
        let setting = |gpu: Option<(String, String)>| Setting {
            date: "2026-12-02".into(),
            cpu: "host".into(),
            cpus: 16,
            isa: "avx512".into(),
            kind: "cuda-b64 on NVIDIA H200".into(),
            threads: 16,
            ganzoo: "0.1.0".into(),
            candle: "0.11.1".into(),
            torch: "2.9".into(),
            torch_isa: "AVX512".into(),
            kernels: "ganzoo".into(),
            precision: "f32".into(),
            rounds: 1,
            gpu,
        };
        let cpu = section(&setting(None), &models);
        let gpu = section(&setting(Some(("NVIDIA H200".into(), "exact f32".into()))), &models);
        assert!(gpu.contains("on NVIDIA H200 (f32 products exact f32; host host, 16 CPUs)"), "{gpu}");
        assert!(gpu.contains("| 1234 | 2048 |") && !cpu.contains("GPU"), "{cpu}\n{gpu}");
        // Every row of each table has as many cells as its header.
        for table in [&cpu, &gpu] {
            let rows: Vec<usize> =
                table.lines().filter(|l| l.starts_with('|')).map(|l| l.matches('|').count()).collect();
            assert!(rows.len() == 3 && rows.iter().all(|&n| n == rows[0]), "{table}");
        }
    }

    #[test]
    fn each_machine_keys_a_table_of_its_own() {
        let zen4 = table_key("avx512", "AMD EPYC, family 25 model 17");
        let zen5 = table_key("avx512", "AMD EPYC, family 26 model 2");
        assert_eq!(zen5, "avx512 on AMD EPYC, family 26 model 2");
        assert_ne!(zen4, zen5);
        assert_ne!(table_key("cuda-b64", "NVIDIA H200"), table_key("cuda-b64", "NVIDIA H100 80GB HBM3"));
        assert_eq!(table_key("avx512-as-avx2", "CPU --- X"), "avx512-as-avx2 on CPU - X");
        // Two CPUs' tables in one file: writing one leaves the other.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perf.md");
        let table = |kind: &str, body: &str| format!("{}\n{body}\n{}\n", begin(kind), end(kind));
        write_section(&path, &zen4, &table(&zen4, "four")).unwrap();
        write_section(&path, &zen5, &table(&zen5, "five")).unwrap();
        write_section(&path, &zen4, &table(&zen4, "four again")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("five") && text.contains("four again") && text.find("four") < text.find("five"),
            "{text}"
        );
        assert_eq!(text.matches("four").count(), 1, "{text}");
    }

    #[test]
    fn a_path_that_cannot_be_written_is_refused_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let err = |path: &Path| check_writable(path).unwrap_err().to_string();
        let e = err(dir.path());
        assert!(e.contains(&format!("reading {}", dir.path().display())), "{e}");
        let missing = dir.path().join("no/such/folder/perf.md");
        assert!(err(&missing).contains(&missing.display().to_string()), "{}", err(&missing));
        let binary = dir.path().join("binary.md");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert!(err(&binary).contains("binary.md"), "{}", err(&binary));
        // A device is refused, not read and later replaced by the rename.
        assert!(
            err(Path::new("/dev/null")).contains("/dev/null: not a regular file"),
            "{}",
            err(Path::new("/dev/null"))
        );
        // A new file in an existing folder, or an existing text file, passes, and the
        // check leaves the folder and the file as they were.
        let text = dir.path().join("perf.md");
        check_writable(&text).unwrap();
        std::fs::write(&text, "# Performance\n").unwrap();
        check_writable(&text).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["binary.md", "perf.md"]);
        assert_eq!(std::fs::read_to_string(&text).unwrap(), "# Performance\n");
    }

    #[test]
    fn unix_times_become_calendar_dates() {
        assert_eq!(date_from_unix(0), "1970-01-01");
        assert_eq!(date_from_unix(951_782_400 + 86_399), "2000-02-29");
        assert_eq!(date_from_unix(1_795_651_200), "2026-11-26");
        assert!(today().as_str() >= "2026-01-01");
    }
}
