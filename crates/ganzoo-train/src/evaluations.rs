//! The reports `ganzoo eval --run` leaves in `RUN/eval/` (`step-N[-settings].json`, see
//! [`crate::run_dir::write_eval_report`]), read back for the run's page.

use std::path::Path;

use ganzoo_eval::EvalReport;

use crate::html::{escape, table, url};
use crate::report::Number;

pub const EVAL_DIR: &str = "eval";
/// The most bytes a report is read to (ganzoo's are under 2 KiB).
const REPORT_BYTES: u64 = 1 << 20;
/// Reports shown on the page, the latest by iteration: a folder of thousands stays a page.
pub const SHOWN: usize = 50;

/// The reports in `run/eval/` by iteration, then name (the last [`SHOWN`]): each read,
/// or why it could not be.
pub fn read_all(run: &Path) -> Vec<(String, std::result::Result<EvalReport, String>)> {
    let Ok(entries) = std::fs::read_dir(run.join(EVAL_DIR)) else { return Vec::new() };
    let mut names: Vec<(u64, String)> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .filter_map(|n| iteration_of(&n).map(|it| (it, n)))
        .collect();
    names.sort();
    let skip = names.len().saturating_sub(SHOWN);
    names.into_iter().skip(skip).map(|(_, name)| (name.clone(), read(&run.join(EVAL_DIR).join(name)))).collect()
}

/// Whether `name` in `eval/` is what `eval --run` writes there: a report
/// (`step-N….json`), its temporary file, or the folder's lock.
pub fn is_own_entry(name: &str) -> bool {
    let report = name.strip_suffix(".tmp").unwrap_or(name);
    name == crate::lock::LOCK_FILE || (report.ends_with(".json") && iteration_of(report).is_some())
}

/// The iteration in a report's name: `step-00002000-n500.json` → 2000.
fn iteration_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("step-")?;
    let digits = &rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())];
    (digits.len() >= 8).then(|| digits.parse().ok()).flatten()
}

fn read(path: &Path) -> std::result::Result<EvalReport, String> {
    let text = ganzoo_data::regular_file::read_to_string(path, REPORT_BYTES, "ganzoo eval report")
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("not an evaluation report: {e}"))
}

/// The page's section listing the reports; empty where there are none.
pub fn html(run: &Path) -> String {
    let reports = read_all(run);
    if reports.is_empty() {
        return String::new();
    }
    let rows: Vec<Vec<String>> = reports.iter().map(|(name, report)| row(name, report)).collect();
    format!(
        "<h2>Evaluations</h2>\n<p>What <code>ganzoo eval --run</code> measured (<code>eval/</code>; the latest \
         {SHOWN} by iteration).</p>\n{}",
        table(&["report", "samples", "of / in", "results", "reference"], &rows)
    )
}

fn row(name: &str, report: &std::result::Result<EvalReport, String>) -> Vec<String> {
    let link = format!("<a href=\"{}\">{}</a>", url(&format!("{EVAL_DIR}/{name}")), escape(name));
    let dash = || "—".to_string();
    let cells = match report {
        Ok(r @ EvalReport::Image(i)) => {
            [i.samples.to_string(), i.features.clone(), results(r), reference(r).unwrap_or_else(dash)]
        }
        Ok(r @ EvalReport::Toy(t)) => [t.samples.to_string(), t.toy.clone(), results(r), dash()],
        Err(e) => [dash(), dash(), format!("unreadable: {e}"), dash()],
    };
    std::iter::once(link).chain(cells.iter().map(|c| escape(c))).collect()
}

/// A report's numbers in a line: `FID 12.3 · KID 0.0101 · precision 0.61 · recall 0.58`,
/// or `W1 0.071 (real vs real 0.065) · modes 8 / 8`.
pub fn results(report: &EvalReport) -> String {
    let n = |v: f64| Number(v).to_string();
    match report {
        EvalReport::Image(r) => {
            format!("FID {} · KID {} · precision {} · recall {}", n(r.fid), n(r.kid.mean), n(r.precision), n(r.recall))
        }
        EvalReport::Toy(r) => {
            let modes = match (r.modes_covered, r.modes) {
                (Some(c), Some(m)) => format!(" · modes {c} / {m}"),
                _ => String::new(),
            };
            format!("W1 {} (real vs real {}){modes}", n(r.w1), n(r.w1_real_floor))
        }
    }
}

/// What an image report was measured against: the feature network (by name and weights)
/// and the real images (by fingerprint, split and resizing); `None` for toys and where
/// not recorded. Two reports' FIDs compare only where this is the same.
pub fn reference(report: &EvalReport) -> Option<String> {
    let EvalReport::Image(r) = report else { return None };
    let x = r.reference.as_ref()?;
    let resized = r.real_resized_to.map_or(String::new(), |s| format!(", resized to {s}×{s}"));
    let split = r.real_split.as_deref().unwrap_or("test");
    Some(format!("{} (network {}), real images {} ({split}{resized})", r.features, x.network, x.real))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_names_eval_writes_are_its_own() {
        assert_eq!(iteration_of("step-00002000-inception-n500.json"), Some(2000));
        assert_eq!(iteration_of("step-123456789.json"), Some(123_456_789));
        for own in ["step-00000030.json", "step-00000030-n500-s3.json", "step-00000030.json.tmp", ".lock"] {
            assert!(is_own_entry(own), "{own}");
        }
        for other in ["step-5.json", "step-.json", "summary.json", "step-00000030.csv", "notes.txt", "step-best.json"] {
            assert!(!is_own_entry(other), "{other}");
        }
    }
}
