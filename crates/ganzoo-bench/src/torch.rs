//! The PyTorch reference (`throughput.py --worker CASE` from
//! `../shared/bench/torchref`), run as a child process like ganzoo's own workers.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::model::BenchModel;
use crate::throughput::{Target, TimingPlan};
use crate::{BenchError, Result};

/// Where the reference lives and which Python runs it.
#[derive(Debug, Clone)]
pub struct TorchRef {
    pub python: PathBuf,
    pub dir: PathBuf,
    pub threads: usize,
}

/// The fields of a reference result line that the report uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TorchThroughput {
    pub case: String,
    pub batch: usize,
    pub gen_iters_per_s: f64,
    pub peak_rss_mb: f64,
    pub other_cpu_frac: f64,
    pub threads: usize,
    pub torch: String,
}

impl TorchRef {
    fn script(&self) -> PathBuf {
        self.dir.join("throughput.py")
    }

    /// Checks the script and the interpreter exist before anything is timed.
    pub fn check(&self) -> Result<()> {
        let script = self.script();
        if !script.is_file() {
            return Err(BenchError::Worker(format!("{}: PyTorch reference script not found", script.display())));
        }
        let out = Command::new(&self.python).args(["-c", "import torch"]).output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(BenchError::Worker(format!(
                "{}: cannot import torch ({}); see ../shared/bench/torchref/README.md",
                self.python.display(),
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("")
            ))),
            Err(e) => Err(BenchError::Io { what: format!("running {}", self.python.display()), source: e }),
        }
    }

    /// Runs the reference case of `model` in a fresh process, on `target`'s device and batch.
    pub fn measure(&self, model: BenchModel, plan: TimingPlan, seed: u64, target: Target) -> Result<TorchThroughput> {
        let threads = self.threads.to_string();
        let batch = target.batch.unwrap_or(0).to_string();
        let out = Command::new(&self.python)
            .arg(self.script())
            .args(["--worker", model.torch_case(), "--threads", &threads, "--seed", &seed.to_string()])
            .args(["--device", target.device_name(), "--batch", &batch])
            .args(["--repeats", &plan.repeats.to_string(), "--target-s", &plan.target_s.to_string()])
            .args(["--warmup-s", &plan.warmup_s.to_string()])
            .env("OMP_NUM_THREADS", &threads)
            .env("MKL_NUM_THREADS", &threads)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| BenchError::Io { what: format!("running {}", self.python.display()), source: e })?;
        parse_last_line(&out.stdout, &out.stderr, out.status.success(), &self.script())
    }
}

/// The last stdout line of a worker, as JSON.
pub fn parse_last_line<T: serde::de::DeserializeOwned>(
    stdout: &[u8],
    stderr: &[u8],
    success: bool,
    what: &Path,
) -> Result<T> {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().rev().find(|l| l.trim_start().starts_with('{'));
    match (success, last) {
        (true, Some(line)) => serde_json::from_str(line)
            .map_err(|e| BenchError::Worker(format!("{}: unreadable result line ({e}): {line}", what.display()))),
        _ => Err(BenchError::Worker(format!(
            "{} failed:\n{}",
            what.display(),
            String::from_utf8_lossy(stderr)
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        ))),
    }
}
