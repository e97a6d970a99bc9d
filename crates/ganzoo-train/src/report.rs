//! `RUN_DIR/report.html`: one page that shows a run — status, warnings, the latest sample
//! grid and a timeline of them, the charts, the last metrics, checkpoints, wall time and
//! throughput, and the configuration. Images are linked relatively (the page travels
//! with its run directory); no network, no script. Written atomically by the trainer at
//! every log step and at the end, and by `ganzoo report` from what is on disk.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use crate::config::{DataSource, TrainConfig};
use crate::data_record::DataRecord;
use crate::html::{escape, page, table, url};
use crate::lock::RunLock;
use crate::metrics::Metrics;
use crate::run_dir::{write_atomic, RunDir, CONFIG_FILE};
use crate::{checkpoint, Result};

pub const REPORT_FILE: &str = "report.html";
/// How the last `Trainer::run` ended (finished, failed, interrupted); removed when
/// training starts again, so a report drawn later from disk says what the trainer's
/// own last page said.
pub const ENDING_FILE: &str = "ending.json";
/// Warnings a run raised (collapse, non-finite values), one line each, for the report.
pub const WARNINGS_FILE: &str = "warnings.log";
/// Sample grids the timeline shows at most (evenly spaced, first and last included).
const TIMELINE: usize = 12;
/// A page of a run still training reloads itself this often.
const REFRESH_S: u32 = 30;
/// Most of `warnings.log` a report reads.
const WARNINGS_BYTES: u64 = 64 << 10;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "lowercase")]
pub enum RunStatus {
    Training,
    Finished,
    /// Stopped by a signal after saving a checkpoint.
    Interrupted,
    Failed(String),
    /// Read from disk: no writer holds it and it has not reached its length.
    Stopped,
}

impl RunStatus {
    /// One line for people.
    pub fn text(&self) -> String {
        match self {
            Self::Training => "training".into(),
            Self::Finished => "finished".into(),
            Self::Interrupted => "interrupted (checkpoint saved; `ganzoo train --resume` continues it)".into(),
            Self::Failed(why) => format!("failed: {why}"),
            Self::Stopped => "stopped before its end (no process is training it)".into(),
        }
    }
}

/// What a report shows: read from a run directory ([`RunView::load`]), or lent by the
/// trainer (which rewrites the page at every log step without copying its history).
#[derive(Debug, Clone)]
pub struct RunView<'a> {
    pub name: String,
    pub path: PathBuf,
    pub config: Cow<'a, TrainConfig>,
    pub history: Cow<'a, [Metrics]>,
    pub status: RunStatus,
    /// Generator iterations of the whole run, where known.
    pub total_iters: Option<u64>,
}

impl RunView<'static> {
    /// A run as its files describe it (any run directory; takes no lock, writes nothing).
    pub fn load(path: &Path) -> Result<Self> {
        let (run, config) = RunDir::open(path)?;
        let history = run.read_metrics(u64::MAX)?;
        let last = history.last().map_or(0, |m| m.iteration);
        // Without a record of its ending (killed, or written before the record
        // existed), a run has finished if its last logged step reached its length.
        let status = if RunLock::is_held(path) {
            RunStatus::Training
        } else if let Some(ending) = read_ending(path) {
            ending
        } else if config.iters.is_some_and(|n| last >= n) || config.epochs.is_some_and(|e| epoch_of(&history) >= e) {
            RunStatus::Finished
        } else {
            RunStatus::Stopped
        };
        Ok(Self {
            name: run_name(path),
            path: path.to_path_buf(),
            total_iters: config.iters,
            config: Cow::Owned(config),
            history: Cow::Owned(history),
            status,
        })
    }
}

impl RunView<'_> {
    /// What each real example is, for rates.
    pub fn unit(&self) -> &'static str {
        unit_of(&self.config)
    }
}

fn epoch_of(history: &[Metrics]) -> u64 {
    history.last().map_or(0, |m| m.epoch.floor() as u64)
}

/// "images" or, for toys, "points".
pub fn unit_of(config: &TrainConfig) -> &'static str {
    match config.data {
        DataSource::Images(_) => "images",
        DataSource::Toy(_) => "points",
    }
}

/// A run's display name: its folder's name.
pub fn run_name(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    abs.file_name().map_or_else(|| abs.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Whether `status` is an ending [`save_ending`] records.
fn is_ending(status: &RunStatus) -> bool {
    matches!(status, RunStatus::Finished | RunStatus::Failed(_) | RunStatus::Interrupted)
}

/// The ending [`save_ending`] recorded, if it is readable (a damaged file is ignored).
fn read_ending(run: &Path) -> Option<RunStatus> {
    let text = read_bounded(&run.join(ENDING_FILE), WARNINGS_BYTES)?;
    serde_json::from_str(&text).ok().filter(is_ending)
}

/// Records how a call to `Trainer::run` ended (`Finished`, `Failed`, `Interrupted`);
/// any other status (a run starting) removes the record.
pub fn save_ending(run: &Path, status: &RunStatus) -> Result<()> {
    let path = run.join(ENDING_FILE);
    match status {
        s if is_ending(s) => {
            let json = serde_json::to_string(status).map_err(|e| crate::TrainError::Config(e.to_string()))?;
            write_atomic(&path, json.as_bytes())
        }
        _ => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::error::io_err(&path)(e)),
            _ => Ok(()),
        },
    }
}

/// `ganzoo report RUN`: redraws a run's charts from its `metrics.jsonl` and rewrites its
/// report, holding the run's lock meanwhile (a run still training is refused: it
/// rewrites both itself). Returns the report's path.
pub fn rewrite(path: &Path) -> Result<PathBuf> {
    let view = RunView::load(path)?;
    let (mut run, _) = RunDir::open(path)?;
    run.lock()?;
    crate::plot::write_charts(path, &view.history, view.unit())?;
    write_report(&view)?;
    Ok(path.join(REPORT_FILE))
}

/// Rewrites a run's `report.html` (not its charts) where no process is writing the run:
/// `Ok(false)` where one is (a run training rewrites its page itself).
pub fn refresh(path: &Path) -> Result<bool> {
    let view = RunView::load(path)?;
    let (mut run, _) = RunDir::open(path)?;
    match run.try_lock() {
        Err(crate::TrainError::InUse { .. }) => Ok(false),
        Err(e) => Err(e),
        Ok(()) => write_report(&view).map(|()| true),
    }
}

/// Writes `report.html` into the run (atomically).
pub fn write_report(view: &RunView<'_>) -> Result<()> {
    write_atomic(&view.path.join(REPORT_FILE), report_html(view)?.as_bytes())
}

/// The page, as text.
pub fn report_html(view: &RunView<'_>) -> Result<String> {
    let dir = &view.path;
    let mut body = format!("<h1>{}</h1>\n<p class=\"sub\">{}</p>\n", escape(&view.name), escape(&headline(view)));
    body += &warnings_html(dir, &view.status)?;
    body += &samples_html(dir)?;
    body += "<h2>Training curves</h2>\n";
    body += &image_or_note(dir, "curves.png", "training curves", "no curves yet (drawn after the first log step)");
    if view.history.iter().any(|m| m.eval.is_some()) {
        body += "<h2>Sample quality</h2>\n";
        body += &image_or_note(dir, "quality.png", "sample quality over training", "not drawn yet");
    }
    body += &metrics_html(view);
    body += &crate::evaluations::html(dir);
    body += &checkpoints_html(dir)?;
    let config_text = crate::config::read_config_text(&dir.join(CONFIG_FILE)).unwrap_or_default();
    body += &format!("<h2>Configuration</h2>\n<pre>{}</pre>\n", escape(&config_text));
    // What it trained on, where recorded (image runs since data.json; unreadable: left out,
    // as the page shows a run whatever its files).
    if let Ok(Some(data)) = DataRecord::read(dir) {
        body += &format!("<h2>Data</h2>\n<p>{}</p>\n", escape(&data.describe()));
    }
    let refresh = (view.status == RunStatus::Training).then_some(REFRESH_S);
    Ok(page(&format!("{} — ganzoo run", view.name), refresh, &body))
}

/// `dcgan on mnist · finished · iteration 2000 / 2000 · epoch 3.1 · 4m 10s · 812 images/s`.
fn headline(view: &RunView<'_>) -> String {
    let c = &view.config;
    let mut parts = vec![format!("{} on {}", c.family.name(), c.data), view.status.text()];
    if let Some(m) = view.history.last() {
        let total = view.total_iters.map_or(String::new(), |t| format!(" / {t}"));
        parts.push(format!("iteration {}{total}", m.iteration));
        if matches!(c.data, DataSource::Images(_)) {
            parts.push(format!("epoch {:.2}", m.epoch));
        }
        parts.push(format!("wall time {}", duration(m.wall_time_s)));
        let seen = mean_rate(&view.history);
        parts.push(format!("{seen:.0} {} / s on average", view.unit()));
    }
    parts.push(format!("seed {}", c.seed));
    parts.join(" · ")
}

/// Real examples per second over the whole run: each log step's rate weighted by its time.
pub fn mean_rate(history: &[Metrics]) -> f64 {
    let (mut seen, mut time, mut prev) = (0.0, 0.0, 0.0);
    for m in history {
        let dt = (m.wall_time_s - prev).max(0.0);
        (seen, time, prev) = (seen + m.images_per_s * dt, time + dt, m.wall_time_s);
    }
    if time > 0.0 {
        seen / time
    } else {
        0.0
    }
}

/// `1h 02m`, `4m 10s`, `12.3 s`.
fn duration(s: f64) -> String {
    let whole = s.max(0.0) as u64;
    match whole {
        0..60 => format!("{s:.1} s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        _ => format!("{}h {:02}m", whole / 3600, whole % 3600 / 60),
    }
}

/// `path`'s first `max` bytes as text (lossy); `None` if it cannot be read or is not a
/// regular file (a FIFO would hang the report).
fn read_bounded(path: &Path, max: u64) -> Option<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let (file, _) = ganzoo_data::regular_file::open(path, "run").ok()?;
    file.take(max).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn warnings_html(dir: &Path, status: &RunStatus) -> Result<String> {
    let mut out = String::new();
    if let RunStatus::Failed(why) = status {
        out += &format!("<div class=\"warn bad\"><b>Training failed.</b> {}</div>\n", escape(why));
    }
    if let Some(text) = read_bounded(&dir.join(WARNINGS_FILE), WARNINGS_BYTES) {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            out += &format!("<div class=\"warn\">{}</div>\n", escape(line));
        }
    }
    Ok(out)
}

/// Sample grids in `samples/` as `(iteration, relative path)`, oldest first.
pub fn sample_files(dir: &Path) -> Result<Vec<(u64, String)>> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join("samples")) else { return Ok(found) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(it) = crate::record::sample_iteration(&name) {
            found.push((it, format!("samples/{name}")));
        }
    }
    found.sort();
    Ok(found)
}

fn samples_html(dir: &Path) -> Result<String> {
    let files = sample_files(dir)?;
    let Some((last_it, last)) = files.last() else {
        return Ok("<h2>Samples</h2>\n<p>No samples yet.</p>\n".into());
    };
    let mut out = format!(
        "<h2>Samples</h2>\n<figure><img class=\"latest\" src=\"{}\" alt=\"samples at iteration {last_it}\">\
         <figcaption>latest: iteration {last_it}</figcaption></figure>\n",
        url(last)
    );
    if files.len() > 1 {
        out += "<h3>Over training</h3>\n<div class=\"timeline\">\n";
        for i in evenly_spaced(files.len(), TIMELINE) {
            let (it, rel) = &files[i];
            out += &format!(
                "<figure><img src=\"{}\" alt=\"samples at iteration {it}\"><figcaption>iteration {it}</figcaption></figure>\n",
                url(rel)
            );
        }
        out += "</div>\n";
    }
    Ok(out)
}

/// At most `k` indices of `0..n`, evenly spaced, the first and the last included.
pub fn evenly_spaced(n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        return (0..n).collect();
    }
    let mut picked: Vec<usize> = (0..k).map(|j| (j * (n - 1) + (k - 1) / 2) / (k - 1)).collect();
    picked.dedup();
    picked
}

fn image_or_note(dir: &Path, file: &str, alt: &str, missing: &str) -> String {
    if dir.join(file).is_file() {
        format!("<img src=\"{}\" alt=\"{}\">\n", url(file), escape(alt))
    } else {
        format!("<p>{}</p>\n", escape(missing))
    }
}

fn metrics_html(view: &RunView<'_>) -> String {
    let Some(m) = view.history.last() else { return "<h2>Last metrics</h2>\n<p>None logged yet.</p>\n".into() };
    let cells = |rows: Vec<(String, f64)>| -> Vec<Vec<String>> {
        rows.into_iter().map(|(k, v)| vec![escape(&k), format!("{}", Number(v))]).collect()
    };
    let is_eval = |k: &str| k.starts_with("eval/");
    let train = m.scalars(view.unit()).into_iter().filter(|(k, _)| !is_eval(k)).collect();
    let mut out = format!("<h2>Last metrics (iteration {})</h2>\n", m.iteration);
    out += &table(&["metric", "value"], &cells(train));
    if let Some(e) = view.history.iter().rev().find(|m| m.eval.is_some()) {
        let eval = e.scalars(view.unit()).into_iter().filter(|(k, _)| is_eval(k)).collect();
        out += &format!("<h3>Last evaluation (iteration {})</h3>\n", e.iteration);
        out += &table(&["measure", "value"], &cells(eval));
    }
    out
}

/// A number as people read it: integers whole, others to five significant digits.
pub struct Number(pub f64);

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 1e15 {
            write!(f, "{v:.0}")
        } else if v != 0.0 && (v.abs() < 1e-3 || v.abs() >= 1e6) {
            write!(f, "{v:.4e}")
        } else {
            let decimals = (4 - v.abs().log10().floor() as i32).clamp(0, 8) as usize;
            write!(f, "{v:.decimals$}")
        }
    }
}

fn checkpoints_html(dir: &Path) -> Result<String> {
    let root = checkpoint::checkpoints_dir(dir);
    let latest = checkpoint::read_pointer(&root.join("latest")).unwrap_or_default();
    let mut rows = Vec::new();
    if let Ok(names) = checkpoint::complete_steps(&root) {
        for name in &names {
            let bytes: u64 = std::fs::read_dir(root.join(name))
                .map(|es| es.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
                .unwrap_or(0);
            let mark = if latest.trim() == name { "latest" } else { "" };
            rows.push(vec![escape(&format!("checkpoints/{name}")), crate::error::gib(bytes), mark.into()]);
        }
    }
    if rows.is_empty() {
        return Ok("<h2>Checkpoints</h2>\n<p>None yet.</p>\n".into());
    }
    Ok(format!("<h2>Checkpoints</h2>\n{}", table(&["folder", "size", ""], &rows)))
}
