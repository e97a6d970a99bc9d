//! A run directory: `config.toml`, `metrics.jsonl`, `samples/`, `curves.png`,
//! `quality.png`, `report.html`, `warnings.log`, `train.log`, `tb/`, `checkpoints/`, the
//! marker `.ganzoo-run` and the writer's `.lock`.
//!
//! A user's files are never deleted: `--overwrite` replaces only a folder that is
//! recognisably a ganzoo run (its marker, or — for runs older than the marker — a
//! readable `config.toml` beside nothing but a run's own entries), and removes only
//! the entries a run writes ([`RUN_FILES`], and inside `samples/` and `checkpoints/`
//! only the names the trainer gives). Anything else there stays. A writer holds the
//! run's [`RunLock`] from creation to the end of training.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::TrainConfig;
use crate::error::io_err;
use crate::lock::{RunLock, LOCK_FILE};
use crate::metrics::Metrics;
use crate::{Result, TrainError};

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.jsonl";
/// Written into every run directory when it is created; what makes a folder a run.
pub const MARKER_FILE: &str = ".ganzoo-run";
/// The entries of a run directory that a run writes (files, or folders holding only its own files).
pub const RUN_FILES: &[&str] = &[
    MARKER_FILE,
    CONFIG_FILE,
    "config.toml.tmp",
    METRICS_FILE,
    "metrics.jsonl.tmp",
    "curves.png",
    "curves.png.tmp",
    "quality.png",
    "quality.png.tmp",
    "report.html",
    "report.html.tmp",
    "ending.json",
    "ending.json.tmp",
    crate::data_record::DATA_FILE,
    "data.json.tmp",
    "warnings.log",
    "train.log",
    "tb",
    "samples",
    "checkpoints",
];

#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
    /// Held by a writer; `None` for readers.
    lock: Option<Arc<RunLock>>,
    /// This process made the folder itself (so it may remove it again).
    made_folder: bool,
}

/// What a folder holds, as far as `--out` is concerned.
enum Contents {
    Missing,
    Empty,
    Run,
    Other(Vec<String>),
}

impl RunDir {
    /// Creates a new run at `path` and locks it. An existing folder must be empty, or
    /// be a ganzoo run and `overwrite` be given (its run files are then removed, other
    /// files kept); anything else is refused with what it holds.
    pub fn create(path: &Path, overwrite: bool) -> Result<Self> {
        let refuse = |m: String| Err(TrainError::Refused { path: path.to_path_buf(), detail: m });
        let made_folder = match classify(path)? {
            Contents::Missing => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                std::fs::create_dir(path).map_err(io_err(path))?;
                true
            }
            Contents::Empty => false,
            Contents::Run if !overwrite => {
                return refuse(format!(
                "already holds a run: pass --resume {0} to continue it, --overwrite to replace it, or another --out",
                path.display()
            ))
            }
            Contents::Run => false,
            Contents::Other(names) => {
                return refuse(format!(
                    "is not a ganzoo run and not empty (it holds {}); nothing there is replaced: choose another --out",
                    listing(&names)
                ))
            }
        };
        Self::claim(path, made_folder)
    }

    /// Creates a new run at `base`, or `base-2`, `base-3`, … : the first name free.
    /// Claiming the name is one `mkdir`, so two runs started at once never share it.
    pub fn create_numbered(base: &Path) -> Result<Self> {
        if let Some(parent) = base.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        for n in 1u64..=u64::MAX {
            let candidate = if n == 1 { base.to_path_buf() } else { PathBuf::from(format!("{}-{n}", base.display())) };
            match std::fs::create_dir(&candidate) {
                Ok(()) => return Self::claim(&candidate, true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&candidate)(e)),
            }
        }
        Err(TrainError::Refused { path: base.to_path_buf(), detail: "every numbered name is taken".into() })
    }

    /// Locks the folder `path`, clears an old run's files from it, and lays out a new
    /// run; on failure, undoes what it did.
    fn claim(path: &Path, made_folder: bool) -> Result<Self> {
        let mut run = Self { path: path.to_path_buf(), lock: None, made_folder };
        let lock = RunLock::acquire(path).inspect_err(|_| run.discard())?;
        run.lock = Some(Arc::new(lock));
        let prepared = run
            .remove_run_files()
            .and_then(|()| std::fs::write(path.join(MARKER_FILE), "ganzoo run\n").map_err(io_err(path)))
            .and_then(|()| std::fs::create_dir_all(path.join("samples")).map_err(io_err(path)));
        if let Err(e) = prepared {
            run.discard();
            return Err(e);
        }
        Ok(run)
    }

    /// Undoes [`create`](Self::create) after a refused start: removes the run files it
    /// wrote, and the folder if this process made it and nothing else is in it.
    pub fn discard(&mut self) {
        // Without the lock the folder may be another writer's: touch nothing in it.
        if self.lock.is_some() {
            let _ = self.remove_run_files();
            self.lock = None;
            let _ = std::fs::remove_file(self.path.join(LOCK_FILE));
        }
        if self.made_folder {
            let _ = std::fs::remove_dir(&self.path);
        }
    }

    /// Opens an existing run for reading (no lock), with its configuration.
    pub fn open(path: &Path) -> Result<(Self, TrainConfig)> {
        let run = Self { path: path.to_path_buf(), lock: None, made_folder: false };
        let cfg = run.config_path();
        if !cfg.is_file() {
            let what = match std::fs::metadata(path) {
                Err(_) => "does not exist".to_string(),
                Ok(m) if !m.is_dir() => "is a file, not a run directory (the folder `ganzoo train` wrote)".to_string(),
                Ok(_) => format!("is not a run directory (no {CONFIG_FILE})"),
            };
            return Err(TrainError::Config(format!("{} {what}", path.display())));
        }
        let text = crate::config::read_config_text(&cfg).map_err(io_err(&cfg))?;
        let config = TrainConfig::from_toml(&text)
            .map_err(|e| TrainError::Checkpoint { path: cfg.clone(), detail: e.to_string() })?;
        Ok((run, config))
    }

    /// Opens an existing run to continue writing it: as [`open`](Self::open), plus the lock.
    pub fn open_for_writing(path: &Path) -> Result<(Self, TrainConfig)> {
        let (mut run, config) = Self::open(path)?;
        run.lock()?;
        Ok((run, config))
    }

    /// Takes the run's writer lock (waiting a [`MOMENT`](crate::lock::MOMENT) where it is
    /// held), unless this value already holds it.
    pub fn lock(&mut self) -> Result<()> {
        if self.lock.is_none() {
            self.lock = Some(Arc::new(RunLock::acquire(&self.path)?));
        }
        Ok(())
    }

    /// As [`lock`](Self::lock), without waiting.
    pub fn try_lock(&mut self) -> Result<()> {
        if self.lock.is_none() {
            self.lock = Some(Arc::new(RunLock::try_acquire(&self.path)?));
        }
        Ok(())
    }

    /// Removes what an interrupted write left behind, and only names the run writes
    /// that way: the temporary copies of the top-level files (`config.toml.tmp`,
    /// `curves.png.tmp`, …), `samples/iter-*.png.tmp` / `.partial`,
    /// `eval/step-*.json.tmp`, and `checkpoints/*.tmp`, `*.old`, `latest.tmp`.
    pub fn clean_leftovers(&self) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        remove_files(&self.path, |n| n.ends_with(".tmp") && RUN_FILES.contains(&n), &mut removed)?;
        let partial = |n: &str| n.ends_with(".tmp") || n.ends_with(".partial");
        remove_files(&self.samples_dir(), |n| partial(n) && is_own_sample(n), &mut removed)?;
        // An evaluation writing its report now holds `eval/.lock`: its `.tmp` is no leftover.
        let eval = self.path.join(crate::evaluations::EVAL_DIR);
        if !RunLock::is_held(&eval) {
            remove_files(&eval, |n| n.starts_with("step-") && n.ends_with(".json.tmp"), &mut removed)?;
        }
        let root = crate::checkpoint::checkpoints_dir(&self.path);
        for name in entry_names(&root)? {
            if crate::checkpoint::is_leftover(&name) {
                let p = root.join(&name);
                remove_entry(&p)?;
                removed.push(p);
            }
        }
        Ok(removed)
    }

    /// Writes the resolved configuration as `config.toml` (atomically: a temporary file, then a rename).
    pub fn save_config(&self, config: &TrainConfig) -> Result<()> {
        write_atomic(&self.config_path(), config.to_toml()?.as_bytes())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    pub fn samples_dir(&self) -> PathBuf {
        self.path.join("samples")
    }

    /// Appends one metrics line.
    pub fn append_metrics(&self, m: &Metrics) -> Result<()> {
        let path = self.path.join(METRICS_FILE);
        let line = serde_json::to_string(m).map_err(|e| TrainError::Config(e.to_string()))?;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        writeln!(f, "{line}").map_err(io_err(&path))
    }

    /// Appends one line to `warnings.log` (what the report shows as warnings).
    pub fn append_warning(&self, line: &str) -> Result<()> {
        let path = self.path.join(crate::report::WARNINGS_FILE);
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        writeln!(f, "{}", line.replace('\n', " ")).map_err(io_err(&path))
    }

    /// Metrics up to `iteration`, in order. Lines past `iteration` are left in the file:
    /// [`truncate_metrics`](Self::truncate_metrics) drops them once a resume has succeeded.
    pub fn read_metrics(&self, iteration: u64) -> Result<Vec<Metrics>> {
        let path = self.path.join(METRICS_FILE);
        let mut kept: Vec<Metrics> = Vec::new();
        for_each_metrics_line(&path, |line| {
            if let Ok(m) = serde_json::from_slice::<Metrics>(line) {
                if m.iteration <= iteration {
                    kept.push(m);
                }
            }
        })?;
        if let Some(w) = kept.windows(2).find(|w| w[1].iteration <= w[0].iteration) {
            return Err(TrainError::Checkpoint {
                path,
                detail: format!(
                    "metrics are out of order (iteration {} follows {}); was the run written by two processes?",
                    w[1].iteration, w[0].iteration
                ),
            });
        }
        Ok(kept)
    }

    /// Drops `metrics.jsonl`'s lines past `iteration`, and a last line cut short by an
    /// interrupted append; every other line stays byte for byte (a whole last line only
    /// gains its newline). The file is rewritten (atomically) only if something changes.
    /// Lines are never re-serialised: a parsed value need not print back as it was
    /// written, and fields this version does not know would be lost.
    pub fn truncate_metrics(&self, iteration: u64) -> Result<()> {
        let path = self.path.join(METRICS_FILE);
        let (mut kept, mut changed) = (Vec::new(), false);
        for_each_metrics_line(&path, |line| {
            let whole = line.ends_with(b"\n");
            match serde_json::from_slice::<Metrics>(line) {
                Ok(m) if m.iteration > iteration => changed = true,
                Err(_) if !whole => changed = true,
                _ => {
                    kept.extend_from_slice(line);
                    if !whole {
                        kept.push(b'\n');
                        changed = true;
                    }
                }
            }
        })?;
        match changed {
            true => write_atomic(&path, &kept),
            false => Ok(()),
        }
    }

    /// Removes the entries a run writes (see the module doc); everything else stays.
    fn remove_run_files(&self) -> Result<()> {
        let mut kept = Vec::new();
        for name in entry_names(&self.path)? {
            let p = self.path.join(&name);
            match (own_entries(&name), name.as_str()) {
                (Some(own), _) => remove_owned_children(&p, own)?,
                (None, n) if RUN_FILES.contains(&n) => remove_entry(&p)?,
                (None, LOCK_FILE) => {}
                _ => kept.push(name),
            }
        }
        if !kept.is_empty() {
            tracing::warn!(run = %self.path.display(), "kept files that are not the run's own: {}", listing(&kept));
        }
        Ok(())
    }
}

/// Whether `path` is a folder holding a ganzoo run (its marker, or an older run's files).
pub fn is_run(path: &Path) -> bool {
    matches!(classify(path), Ok(Contents::Run))
}

/// The run folder whose own entry `path` names — a file at its top ([`RUN_FILES`]), a
/// sample grid, a checkpoint or a file in one, an event file or an `eval --run` report,
/// by the names the run gives them — if any. A command's output there would be replaced or
/// removed by the run (training, `--overwrite`, `report`), or would replace the run's own.
pub fn owner_of(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    // Resolved (`..`, links); a run's `eval/` or `tb/` may not be made yet.
    let parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(_) => {
            let above = parent.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            std::fs::canonicalize(above).ok()?.join(parent.file_name()?)
        }
    };
    if (RUN_FILES.contains(&name) || name == LOCK_FILE) && is_run(&parent) {
        return Some(parent);
    }
    let own = own_entries(parent.file_name()?.to_str()?).is_some_and(|own| own(name));
    let run = parent.parent()?;
    if own && is_run(run) {
        return Some(run.to_path_buf());
    }
    // Anything inside one of its checkpoints (`checkpoints/step-N/…`).
    let in_checkpoint = run.file_name().is_some_and(|n| n == "checkpoints")
        && crate::checkpoint::is_own_entry(parent.file_name()?.to_str()?);
    let run = run.parent()?;
    (in_checkpoint && is_run(run)).then(|| run.to_path_buf())
}

/// How the run's own entries are told by name inside its folder `folder` (`samples/`,
/// `checkpoints/`, `tb/`, `eval/`, whose other entries are a user's); `None` for others.
/// The replaced run's evaluations (`eval --run`) are of its generator, so its own too.
fn own_entries(folder: &str) -> Option<fn(&str) -> bool> {
    match folder {
        "samples" => Some(is_own_sample),
        "checkpoints" => Some(crate::checkpoint::is_own_entry),
        "tb" => Some(|n| n.starts_with("events.out.tfevents.")),
        crate::evaluations::EVAL_DIR => Some(crate::evaluations::is_own_entry),
        _ => None,
    }
}

/// Whether `name` in `samples/` is a grid the trainer writes or its temporary form
/// (`.png.tmp`, `.png.partial`).
fn is_own_sample(name: &str) -> bool {
    let stem = name.strip_suffix(".tmp").or_else(|| name.strip_suffix(".partial")).unwrap_or(name);
    crate::record::sample_iteration(stem).is_some()
}

/// Whether `path` is missing, empty, a ganzoo run, or something else (with what it holds).
fn classify(path: &Path) -> Result<Contents> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::Missing),
        Err(e) => return Err(io_err(path)(e)),
    };
    if !meta.is_dir() {
        return Err(TrainError::Refused { path: path.to_path_buf(), detail: "exists and is not a folder".into() });
    }
    let names = entry_names(path)?;
    if names.is_empty() {
        return Ok(Contents::Empty);
    }
    let marked = path.join(MARKER_FILE).is_file();
    let legacy = names.iter().all(|n| RUN_FILES.contains(&n.as_str()) || n == LOCK_FILE)
        && crate::config::read_config_text(&path.join(CONFIG_FILE)).is_ok_and(|t| TrainConfig::from_toml(&t).is_ok());
    Ok(if marked || legacy { Contents::Run } else { Contents::Other(names) })
}

/// Removes the plain files in `dir` whose names `leftover` accepts, adding them to `removed`.
fn remove_files(dir: &Path, leftover: impl Fn(&str) -> bool, removed: &mut Vec<PathBuf>) -> Result<()> {
    for name in entry_names(dir)?.into_iter().filter(|n| leftover(n)) {
        let p = dir.join(&name);
        if p.is_file() {
            std::fs::remove_file(&p).map_err(io_err(&p))?;
            removed.push(p);
        }
    }
    Ok(())
}

/// The names in a folder, sorted (none if it does not exist).
fn entry_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(entry.map_err(io_err(dir))?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Removes the children of `dir` whose names `owned` accepts, then `dir` if it is empty.
fn remove_owned_children(dir: &Path, owned: impl Fn(&str) -> bool) -> Result<()> {
    if std::fs::symlink_metadata(dir).map_err(io_err(dir))?.file_type().is_symlink() {
        return std::fs::remove_file(dir).map_err(io_err(dir));
    }
    if !dir.is_dir() {
        return remove_entry(dir);
    }
    for name in entry_names(dir)?.into_iter().filter(|n| owned(n)) {
        remove_entry(&dir.join(name))?;
    }
    if entry_names(dir)?.is_empty() {
        std::fs::remove_dir(dir).map_err(io_err(dir))?;
    }
    Ok(())
}

/// Removes a file, a symbolic link (not what it points to) or a folder the run wrote.
fn remove_entry(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    if meta.is_dir() {
        std::fs::remove_dir_all(path).map_err(io_err(path))
    } else {
        std::fs::remove_file(path).map_err(io_err(path))
    }
}

/// `a, b, c and 4 more`.
fn listing(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names.iter().take(SHOWN).map(String::as_str).collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        text += &format!(" and {} more", names.len() - SHOWN);
    }
    text
}

/// Longest `metrics.jsonl` line read: a line is a few hundred bytes; the bound keeps a
/// damaged file (one without line breaks) from deciding what is allocated.
const MAX_METRICS_LINE: usize = 1 << 20;

/// Calls `each` on every line of the metrics file `path` with its newline (the last one
/// may lack it), streamed: nothing if there is no file; an error naming the file if it is
/// not a regular file (a FIFO would hang the read, `/dev/zero` fill the memory) or has a
/// line longer than [`MAX_METRICS_LINE`].
fn for_each_metrics_line(path: &Path, mut each: impl FnMut(&[u8])) -> Result<()> {
    use std::io::{BufRead, Read};
    let file = match ganzoo_data::regular_file::open(path, "metrics") {
        Ok((file, _)) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(path)(e)),
    };
    let mut reader = std::io::BufReader::new(file);
    let mut line = Vec::new();
    for number in 1u64.. {
        line.clear();
        let limit = (MAX_METRICS_LINE + 1) as u64;
        if reader.by_ref().take(limit).read_until(b'\n', &mut line).map_err(io_err(path))? == 0 {
            return Ok(());
        }
        if line.len() > MAX_METRICS_LINE {
            let detail = format!("line {number} is longer than {MAX_METRICS_LINE} bytes: not a metrics file");
            return Err(io_err(path)(std::io::Error::new(std::io::ErrorKind::InvalidData, detail)));
        }
        each(&line);
    }
    Ok(())
}

/// Writes an evaluation's report `RUN/eval/NAME` (creating `eval/`) as [`write_atomic`]
/// does, holding `eval/.lock` meanwhile (waiting for it if need be): two evaluations of one
/// run writing at once, or a training start clearing leftovers, never share a `.tmp` file.
pub fn write_eval_report(run: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = run.join(crate::evaluations::EVAL_DIR);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let lock_path = dir.join(LOCK_FILE);
    let lock = std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&lock_path);
    // Held until `lock` is dropped, after the rename (the kernel also drops it on exit).
    let lock = lock.and_then(|f| f.lock().map(|()| f)).map_err(io_err(&lock_path))?;
    let written = write_atomic(&dir.join(name), bytes);
    drop(lock);
    written
}

/// Writes `bytes` to `path` through `path.tmp` (synced) and a rename, so a reader (or a
/// crash) sees the old file or the new one, never half of one; a failed write removes
/// the temporary file. For a run's own files only, whose `.tmp` names are the run's (a
/// killed write's is cleared on resume): a path a user chose goes through
/// `ganzoo_data::partial::write_whole`, which never replaces a file by its temporary name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written =
        crate::checkpoint::write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path).map_err(io_err(path)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
