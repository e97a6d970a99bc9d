//! Training throughput of one benchmark model in this process: full generator
//! iterations (critic steps + generator step) of the real [`Trainer`], timed the
//! way the PyTorch reference times them — warm-up, calibration to about
//! `target_s` per repeat, then the median of `repeats` rates.

use std::time::Instant;

use candle_core::Device;
use ganzoo_train::device::DeviceSpec;
use ganzoo_train::{Precision, RunDir, TrainConfig, Trainer};
use serde::{Deserialize, Serialize};

use crate::model::BenchModel;
use crate::system;
use crate::{BenchError, Result};

/// How long to warm up and to time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimingPlan {
    pub warmup_s: f64,
    pub target_s: f64,
    pub repeats: usize,
}

impl Default for TimingPlan {
    fn default() -> Self {
        Self { warmup_s: 3.0, target_s: 4.0, repeats: 5 }
    }
}

/// Where a benchmark runs, at which batch size (the reference case's by default) and
/// in which precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Target {
    pub device: DeviceSpec,
    pub batch: Option<usize>,
    pub precision: Precision,
}

impl Target {
    /// `cpu`, `cuda` or `cuda:N`, as both `ganzoo bench --device` and `throughput.py --device` spell it.
    pub fn device_name(self) -> String {
        self.device.to_string()
    }

    pub fn cuda(self) -> bool {
        self.device.is_cuda()
    }

    pub fn device(self) -> Result<Device> {
        Ok(self.device.open()?)
    }

    /// `model`'s benchmark configuration at this target's batch size and precision.
    pub fn config(self, model: BenchModel, seed: u64) -> Result<TrainConfig> {
        let mut config = model.config(seed, self.batch)?;
        config.precision = self.precision;
        Ok(config)
    }
}

/// One model's result; one JSON line of `ganzoo bench --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub model: String,
    pub batch: usize,
    /// Median generator iterations per second.
    pub iters_per_s: f64,
    pub iters_per_s_min: f64,
    pub iters_per_s_max: f64,
    pub ms_per_iter: f64,
    /// Real images consumed per second.
    pub images_per_s: f64,
    /// Samples through the critic per second (real, fake and interpolates).
    pub critic_images_per_s: f64,
    pub peak_rss_mb: f64,
    /// The most memory the process's live heap allocations held at once (host tensors,
    /// on the CPU the counterpart of `peak_gpu_mb`; below `peak_rss_mb`, which includes
    /// what the allocator keeps). Set by the `ganzoo` binary, whose allocator counts.
    #[serde(default)]
    pub peak_heap_mb: Option<f64>,
    /// On CUDA: the most memory live tensors held at once (the pool's high-water mark).
    #[serde(default)]
    pub peak_gpu_mb: Option<f64>,
    /// On CUDA: milliseconds an iteration kept the host busy, its time less the waits for
    /// the GPU (each iteration's statistics read back, each repeat's final
    /// synchronisation). Near `ms_per_iter`, the host's launches bound the speed; well
    /// below, the GPU's work does.
    #[serde(default)]
    pub host_ms_per_iter: Option<f64>,
    /// With `GANZOO_CUDA_GRAPHS=1`: how many of the steps' CUDA graphs replayed at the
    /// end (0: none, every step ran eagerly).
    #[serde(default)]
    pub cuda_graphs: Option<usize>,
    pub threads: usize,
    /// `cpu` or `cuda` (results saved before CUDA: `cpu`).
    #[serde(default = "cpu")]
    pub device: String,
    pub kernels: String,
    /// The activations' precision (results saved before it: f32).
    #[serde(default = "f32")]
    pub precision: String,
    /// The instruction set ganzoo's kernels ran at.
    #[serde(default)]
    pub isa: String,
    pub repeats: usize,
    pub iters_per_repeat: usize,
    pub warmup_iters: usize,
    /// Share of the machine's CPU time other processes used while timing.
    pub other_cpu_frac: f64,
}

fn cpu() -> String {
    "cpu".into()
}

fn f32() -> String {
    "f32".into()
}

/// Times `model`'s training iterations on `target`'s device. On a GPU each repeat ends
/// with the device synchronised, so queued work is counted.
pub fn measure(model: BenchModel, plan: TimingPlan, seed: u64, target: Target) -> Result<Throughput> {
    let config = target.config(model, seed)?;
    let images = model.synthetic_images(&config)?;
    let dir = tempfile::tempdir().map_err(|e| BenchError::Io { what: "temporary run directory".into(), source: e })?;
    let run = RunDir::create(&dir.path().join("run"), false)?;
    let device = target.device()?;
    let mut trainer = Trainer::new(config.clone(), images, run, device.clone())?;

    let start = Instant::now();
    let mut warmup_iters = 0;
    while warmup_iters < 3 || start.elapsed().as_secs_f64() < plan.warmup_s {
        trainer.train_iteration()?;
        warmup_iters += 1;
    }
    device.synchronize()?;
    let per_iter = start.elapsed().as_secs_f64() / warmup_iters as f64;
    let n = ((plan.target_s / per_iter).round() as usize).max(2);

    let mut host = std::time::Duration::ZERO;
    let (rates, others) = system::others_during(|| -> Result<Vec<f64>> {
        let mut rates = Vec::new();
        for _ in 0..plan.repeats.max(1) {
            let (t, waited) = (Instant::now(), trainer.waited());
            for _ in 0..n {
                trainer.train_iteration()?;
            }
            let synchronizing = Instant::now();
            device.synchronize()?;
            let elapsed = t.elapsed();
            host += elapsed.saturating_sub(trainer.waited() - waited + synchronizing.elapsed());
            rates.push(n as f64 / elapsed.as_secs_f64());
        }
        Ok(rates)
    });
    let mut rates = rates?;
    let host_ms_per_iter = device.is_cuda().then(|| host.as_secs_f64() * 1e3 / (n * rates.len()) as f64);
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let (real, critic) = model.images_per_iteration(&config);
    Ok(Throughput {
        model: model.name().into(),
        batch: config.batch_size,
        iters_per_s: median,
        iters_per_s_min: rates[0],
        iters_per_s_max: rates[rates.len() - 1],
        ms_per_iter: 1000.0 / median,
        images_per_s: median * real as f64,
        critic_images_per_s: median * critic as f64,
        peak_rss_mb: system::peak_rss_mb(),
        peak_heap_mb: None,
        peak_gpu_mb: ganzoo_train::device::peak_memory_in_use(&device).map(|b| b as f64 / (1u64 << 20) as f64),
        host_ms_per_iter,
        cuda_graphs: trainer.cuda_graphs_replaying(),
        threads: rayon::current_num_threads(),
        device: target.device_name(),
        kernels: ganzoo_models::kernel_backend().name().into(),
        precision: target.precision.name().into(),
        isa: ganzoo_kernels::isa::active().name().into(),
        repeats: rates.len(),
        iters_per_repeat: n,
        warmup_iters,
        other_cpu_frac: others,
    })
}
