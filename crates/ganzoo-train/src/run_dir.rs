//! A run directory: `config.toml`, `metrics.jsonl`, `samples/`, `curves.png`,
//! `train.log` and `checkpoints/`. Existing runs are never overwritten unless asked.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::TrainConfig;
use crate::error::io_err;
use crate::metrics::Metrics;
use crate::{Result, TrainError};

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.jsonl";

#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates a new run at `path`; an existing non-empty folder is an error unless `overwrite`.
    pub fn create(path: &Path, overwrite: bool) -> Result<Self> {
        let occupied = path.is_dir() && std::fs::read_dir(path).map_err(io_err(path))?.next().is_some();
        if path.exists() && !path.is_dir() {
            return Err(TrainError::Config(format!("{} exists and is not a folder", path.display())));
        }
        if occupied {
            if !overwrite {
                return Err(TrainError::Config(format!(
                    "{} already holds a run: pass --resume {0} to continue it, --overwrite to replace it, or another --out",
                    path.display()
                )));
            }
            std::fs::remove_dir_all(path).map_err(io_err(path))?;
        }
        std::fs::create_dir_all(path.join("samples")).map_err(io_err(path))?;
        Ok(Self { path: path.to_path_buf() })
    }

    /// Writes the resolved configuration as `config.toml`.
    pub fn save_config(&self, config: &TrainConfig) -> Result<()> {
        let text = config.to_toml()?;
        std::fs::write(self.config_path(), text).map_err(io_err(self.config_path()))
    }

    /// Opens an existing run, reading its configuration.
    pub fn open(path: &Path) -> Result<(Self, TrainConfig)> {
        let run = Self { path: path.to_path_buf() };
        let cfg = run.config_path();
        if !cfg.is_file() {
            return Err(TrainError::Config(format!("{} is not a run directory (no {CONFIG_FILE})", path.display())));
        }
        let text = std::fs::read_to_string(&cfg).map_err(io_err(&cfg))?;
        let config = TrainConfig::from_toml(&text)
            .map_err(|e| TrainError::Checkpoint { path: cfg.clone(), detail: e.to_string() })?;
        Ok((run, config))
    }

    /// `base`, or `base-2`, `base-3`, … : the first name not yet taken.
    pub fn fresh_path(base: &Path) -> PathBuf {
        let mut candidate = base.to_path_buf();
        let mut n = 2;
        while candidate.exists() {
            candidate = PathBuf::from(format!("{}-{n}", base.display()));
            n += 1;
        }
        candidate
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

    /// Metrics up to `iteration`; later lines (written after the checkpoint a run
    /// resumes from) are dropped from the file too.
    pub fn metrics_until(&self, iteration: u64) -> Result<Vec<Metrics>> {
        let path = self.path.join(METRICS_FILE);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&path).map_err(io_err(&path))?;
        let kept: Vec<Metrics> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Metrics>(l).ok())
            .filter(|m| m.iteration <= iteration)
            .collect();
        let body: String = kept.iter().filter_map(|m| serde_json::to_string(m).ok()).map(|l| l + "\n").collect();
        std::fs::write(&path, body).map_err(io_err(&path))?;
        Ok(kept)
    }
}
