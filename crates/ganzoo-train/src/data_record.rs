//! `RUN/data.json`: the images a run trained on — the folder they were read from, their
//! count, shape and digest — so that `train --resume` and `eval --run` read them from
//! there again without `--data-dir`, and a resume on other images (another copy of the
//! data set, a folder since edited) is refused instead of silently changing the data order.
//! The trainer writes and checks it; the folder is added by the caller that found it.

use std::path::{Path, PathBuf};

use ganzoo_data::ImageDataset;
use serde::{Deserialize, Serialize};

use crate::error::io_err;
use crate::run_dir::write_atomic;
use crate::{Result, TrainError};

pub const DATA_FILE: &str = "data.json";

/// The most bytes a `data.json` may have (ganzoo's are under 1 KiB).
const DATA_FILE_BYTES: u64 = 64 << 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRecord {
    /// The folder a known data set's training files were read from, absolute (none for an
    /// image folder, which its `folder:PATH` names).
    pub dir: Option<PathBuf>,
    pub count: usize,
    /// Channels, height, width, as stored (before any `--image-size` resize).
    pub shape: [usize; 3],
    /// [`ImageDataset::digest`] as 16 hex digits.
    pub digest: String,
}

impl DataRecord {
    /// The record of `train`, read from `dir`.
    pub fn of(train: &ImageDataset, dir: Option<&Path>) -> Self {
        let s = train.shape();
        Self {
            dir: dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf())),
            count: train.len(),
            shape: [s.channels, s.height, s.width],
            digest: format!("{:016x}", train.digest()),
        }
    }

    /// Writes `RUN/data.json` (atomically).
    pub fn write(&self, run: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| TrainError::Config(e.to_string()))?;
        write_atomic(&run.join(DATA_FILE), format!("{text}\n").as_bytes())
    }

    /// `RUN/data.json`, or `None` where the run has none (toys, runs older than the file).
    pub fn read(run: &Path) -> Result<Option<Self>> {
        let path = run.join(DATA_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text =
            ganzoo_data::regular_file::read_to_string(&path, DATA_FILE_BYTES, "data record").map_err(io_err(&path))?;
        let record = serde_json::from_str(&text)
            .map_err(|e| TrainError::Checkpoint { path: path.clone(), detail: format!("is not a data record: {e}") })?;
        Ok(Some(record))
    }

    /// The recorded folder, where it still exists: where to look for the data first.
    pub fn existing_dir(&self) -> Option<&Path> {
        self.dir.as_deref().filter(|d| d.is_dir())
    }

    /// `10000 images of 1x28x28 (digest c78bd1bb3e27655d) from /data/mnist`.
    pub fn describe(&self) -> String {
        let [c, h, w] = self.shape;
        let at = self.dir.as_ref().map_or(String::new(), |d| format!(" from {}", d.display()));
        format!("{} images of {c}x{h}x{w} (digest {}){at}", self.count, self.digest)
    }

    /// Refuses these images (a trainer's, to start or resume `run` with) where `run`
    /// records others; `Ok(true)` where it records these, `Ok(false)` where it records none.
    pub fn check_run(&self, run: &Path) -> Result<bool> {
        match Self::read(run)? {
            Some(then) => then.check(self, run).map(|()| true),
            None => Ok(false),
        }
    }

    /// Refuses `now` (the images read for a resume) unless they are the recorded ones.
    pub fn check(&self, now: &Self, run: &Path) -> Result<()> {
        if (now.count, now.shape, &now.digest) == (self.count, self.shape, &self.digest) {
            return Ok(());
        }
        Err(TrainError::Refused {
            path: run.to_path_buf(),
            detail: format!(
                "trained on {}, but the data read now is {}: resuming would change the data order; {}",
                self.describe(),
                now.describe(),
                match &self.dir {
                    Some(d) => format!("pass --data-dir {}", d.display()),
                    None => "restore the images the run trained on".into(),
                }
            ),
        })
    }
}
