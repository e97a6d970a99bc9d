//! The command-line grammar. Strings are turned into typed values here and
//! nowhere else: every argument is validated by its `FromStr` at parse time.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use ganzoo_bench::BenchModel;
use ganzoo_data::{DatasetSpec, ToyDistribution};
use ganzoo_models::KernelBackend;
use ganzoo_train::config::Preset;
use ganzoo_train::device::DeviceSpec;
use ganzoo_train::DataSource;

/// The version, and what the build can run on: `0.1.0 (cpu)`, `0.1.0 (cpu, cuda)` or
/// `0.1.0 (cpu, cuda, cudnn)`.
const VERSION: &str = match (cfg!(feature = "cudnn"), cfg!(feature = "cuda")) {
    (true, _) => concat!(env!("CARGO_PKG_VERSION"), " (cpu, cuda, cudnn)"),
    (false, true) => concat!(env!("CARGO_PKG_VERSION"), " (cpu, cuda)"),
    _ => concat!(env!("CARGO_PKG_VERSION"), " (cpu)"),
};

#[derive(Debug, Parser)]
#[command(name = "ganzoo", version = VERSION, about = "The classic GAN family on Candle")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Most memory a command may plan to use, e.g. 8G, 512M [default: the machine's available memory].
    /// Commands estimate what their sizes need first and refuse above it.
    #[arg(long, global = true, value_parser = parse_bytes)]
    pub max_memory: Option<u64>,
}

impl Cli {
    /// The process's arguments parsed, exiting with clap's message on a grammar error.
    /// Every (sub)command accepts negative numbers as values, so `--lr-g -1` reaches
    /// the validation that names the flag and its range instead of clap's
    /// "unexpected argument '-1'" with a tip that would make it a positional.
    pub fn parse_args() -> Self {
        let mut command = negative_numbers_everywhere(Self::command());
        let matches = command.clone().get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut command).exit())
    }
}

fn negative_numbers_everywhere(command: clap::Command) -> clap::Command {
    command.allow_negative_numbers(true).mut_subcommands(negative_numbers_everywhere)
}

/// `8G`, `512M`, `1.5GiB`, `100000` (bytes): powers of 1024.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.trim().parse().map_err(|_| format!("'{s}' is not a size like 8G or 512M"))?;
    let shift = match unit.trim().to_ascii_lowercase().trim_end_matches("ib").trim_end_matches('b') {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(format!("'{s}': unknown unit (use K, M, G or T)")),
    };
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("'{s}' is not a usable memory size"));
    }
    Ok(bytes as u64)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect data sets and toy distributions.
    #[command(subcommand)]
    Data(DataCommand),
    /// Describe the networks of a GAN family.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Train a GAN; with no options, `train dcgan` trains DCGAN on MNIST.
    Train(Box<TrainArgs>),
    /// Sample from a trained run's generator.
    Sample(SampleArgs),
    /// Measure sample quality: of a run's latest generator, or of samples in a .npy file.
    Eval(EvalArgs),
    /// Time training iterations and convolution kernels, optionally against PyTorch
    /// (run it from a release build: `cargo xtask bench`).
    Bench(BenchArgs),
    /// The papers' figures recomputed: OUT/<name>.png (chart) and OUT/<name>.csv (numbers).
    Figures(FiguresArgs),
    /// Rewrite a run's report.html and charts from its files; with several runs, write
    /// one page comparing them (--out).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories (folders that `ganzoo train` wrote).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// With several runs: the comparison page to write (.html) [default: comparison.html].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the comparison page if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct FiguresArgs {
    /// Figures to make, or `all`: distances, critic-vs-discriminator, value-surfaces,
    /// clipped-weights, gradient-norms, generator-costs, mode-coverage.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Folder for the PNG and CSV files.
    #[arg(long, default_value = "figures")]
    pub out: PathBuf,
    /// Seed of every trained network and sample in the figures.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace figure files (and mode-coverage's runs) that exist already.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Keep the figures whose PNG and CSV exist already, made with these settings (OUT/figures.json
    /// records them), and continue mode-coverage's runs (each from its newest checkpoint) after a stop.
    #[arg(long)]
    pub resume: bool,
    /// mode-coverage: generator iterations of each run [default: 1000].
    #[arg(long)]
    pub iters: Option<u64>,
    /// mode-coverage: iterations between measurements [default: 100].
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// mode-coverage: runs (seeds) per family and toy [default: 3].
    #[arg(long)]
    pub seeds: Option<u64>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Models to time, comma-separated: gan, dcgan32, dcgan64, wgan32, wgan-gp32, toy [default: all]
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<BenchModel>,
    /// One JSON object per line instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Kernels of the models: ganzoo (ganzoo-kernels on the CPU; on CUDA its CUDA kernels
    /// for batch norm, leaky ReLU and optimisers, convolutions as gemm, the rest Candle's
    /// ops), candle (Candle's ops) or gemm (Candle's ops, every convolution as Candle's
    /// im2col + GEMM conv2d with ganzoo's gradients).
    #[arg(long, default_value = "ganzoo")]
    pub kernels: KernelBackend,
    /// Skip the per-layer convolution timings.
    #[arg(long)]
    pub skip_ops: bool,
    /// Only the per-layer convolution timings (with --torch, PyTorch's beside them).
    #[arg(long, conflicts_with = "skip_ops")]
    pub ops_only: bool,
    /// Timed repeats per model and round (their median is the round's rate; at most 1,000).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Seconds per timed repeat (this and every other time: at most a day).
    #[arg(long, default_value_t = 3.0)]
    pub target_s: f64,
    /// Rounds per model; with --torch each round times ganzoo and PyTorch back to
    /// back, in alternating order, and the median of the rounds' ratios is reported
    /// (at most 1,000) [default: 3 with --torch, else 1]
    #[arg(long)]
    pub rounds: Option<usize>,
    /// Seconds of warm-up before timing.
    #[arg(long, default_value_t = 3.0)]
    pub warmup_s: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Threads for ganzoo (rayon) and PyTorch, 1 to 1,024 [default: the machine's CPUs]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also run the PyTorch reference with this Python (a virtualenv with torch), and
    /// time each layer of the per-layer timings in PyTorch too. When GANZOO_ISA forces
    /// a level below the CPU's best, PyTorch is held to it too (ATEN_CPU_CAPABILITY,
    /// DNNL_MAX_CPU_ISA).
    #[arg(long)]
    pub torch: Option<PathBuf>,
    /// Directory of the PyTorch reference (throughput.py, models.py).
    #[arg(long, default_value = "../shared/bench/torchref")]
    pub torchref: PathBuf,
    /// Write the ganzoo/PyTorch table into this Markdown file (e.g. docs/performance.md),
    /// replacing this machine's table there; checked before anything is timed.
    #[arg(long, requires = "torch", conflicts_with = "ops_only")]
    pub write: Option<PathBuf>,
    /// Before each timed process, wait up to this many seconds for idle CPUs.
    #[arg(long, default_value_t = 120.0)]
    pub wait_quiet_s: f64,
    /// Where the models train and the layers run: cpu, or a CUDA GPU, cuda (GPU 0) or cuda:N
    /// (a build with the `cuda` feature); the PyTorch reference runs on the same device.
    #[arg(long, default_value_t = DeviceSpec::Cpu)]
    pub device: DeviceSpec,
    /// Every model's batch size (default: the reference case's; 64 for the per-layer
    /// timings), for ganzoo and PyTorch alike.
    #[arg(long)]
    pub batch: Option<usize>,
    /// ganzoo's activations in the models (the PyTorch reference stays f32; --write
    /// keys a bf16 table apart); with --parity, the candidate's (the CPU reference is f32).
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Instead of timing: train each model N (≤ 100,000) generator iterations from one seed on the
    /// CPU with ganzoo's kernels and on --device with --kernels, and compare the losses
    /// step by step (exit status 1 if a step is over its bound).
    #[arg(long, value_name = "N", conflicts_with_all = ["torch", "ops_only"])]
    pub parity: Option<usize>,
    /// --parity: the largest allowed |a − b| / max(1, |a|) of the first step's losses
    /// [default: 1e-3; 2e-2 with --precision bf16]
    #[arg(long)]
    pub tolerance: Option<f64>,
    /// --parity: the same bound for every later step (rounding differences grow)
    /// [default: 0.05; 0.2 with --precision bf16]
    #[arg(long)]
    pub drift: Option<f64>,
    /// On CUDA, time every model once per convolution implementation listed
    /// (comma-separated: auto, cudnn, cudnn-any, cudnn-graph, cudnn-graph-any, columns,
    /// timed, gemm; GANZOO_CUDA_CONV in
    /// its worker), each against the same PyTorch run, with a table each [default:
    /// GANZOO_CUDA_CONV's]. The per-layer timings follow GANZOO_CUDA_CONV, so this needs
    /// --skip-ops.
    #[arg(long, value_delimiter = ',', requires = "skip_ops", conflicts_with = "parity")]
    pub cuda_conv: Vec<CudaConvArg>,
    /// Time one model in this process and print its JSON line (used internally).
    #[arg(long, hide = true)]
    pub worker: Option<BenchModel>,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A preset: gan, gan-seed, dcgan, wgan, wgan-gp or wgan-gp-64 (taken from the run when resuming); or classifier, the
    /// domain classifier `eval` measures images with
    #[arg(required_unless_present_any = ["resume", "config"])]
    pub family: Option<TrainTarget>,
    /// mnist, fashion-mnist, cifar10, folder:PATH, 8gaussians, 25gaussians or swissroll [default: mnist]
    #[arg(long)]
    pub dataset: Option<DataSource>,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Passes over the training images [default: 5; gan trains 20,000 --iters, toys 2,000 (wgan-gp 3,000)]
    #[arg(long, conflicts_with = "iters")]
    pub epochs: Option<u64>,
    /// Generator iterations.
    #[arg(long)]
    pub iters: Option<u64>,
    /// [default: the preset's: 64; 100 for gan and gan-seed; 256 for wgan and wgan-gp on toys]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Fixes initialisation, data order, noise and every other random draw [default: 0]
    #[arg(long)]
    pub seed: Option<u64>,
    /// cpu, or a CUDA GPU: cuda (GPU 0) or cuda:N (a build with the `cuda` feature); a run
    /// resumes on any device.
    #[arg(long, default_value_t = DeviceSpec::Cpu)]
    pub device: DeviceSpec,
    /// Run directory [default: runs/<family>-<dataset>, numbered if taken].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace an existing run at --out.
    #[arg(long)]
    pub overwrite: bool,
    /// Start from a saved configuration (e.g. a run's config.toml); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue a run from its latest checkpoint.
    #[arg(long, conflicts_with_all = ["family", "config", "out"])]
    pub resume: Option<PathBuf>,
    /// Write no TensorBoard event files (by default the run's tb/ gets its metrics and
    /// sample grids: `tensorboard --logdir runs`).
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Print the configuration this command would train with (the preset, then --config,
    /// then the flags, validated) as config.toml records it, and exit: no data is read and
    /// no run is made. Save it, edit it, train from it with --config FILE.
    #[arg(long, conflicts_with_all = ["resume", "out", "overwrite", "device", "data_dir", "no_download", "mirror", "grayscale"])]
    pub print_config: bool,
    #[command(flatten)]
    pub recipe: RecipeArgs,
}

/// Overrides of the recipe's paper defaults.
#[derive(Debug, Args)]
pub struct RecipeArgs {
    /// Generator learning rate [default: the preset's: 2e-4 (gan, dcgan), 3e-4 (gan-seed),
    /// 5e-5 (wgan, RMSprop), 1e-4 (wgan-gp; on toys 1e-3 decaying to 0)]
    #[arg(long)]
    pub lr_g: Option<f64>,
    /// Discriminator (critic) learning rate [default: as --lr-g]
    #[arg(long)]
    pub lr_d: Option<f64>,
    /// Adam β₁ for both players [default: 0.5; 0.9 for gan-seed]
    #[arg(long)]
    pub beta1: Option<f64>,
    /// Adam β₂ for both players [default: 0.999; 0.9 for wgan-gp]
    #[arg(long)]
    pub beta2: Option<f64>,
    /// Both learning rates constant, or decaying linearly to 0 over the run (gan_cifar.py)
    #[arg(long, value_enum)]
    pub lr_decay: Option<LrDecayArg>,
    /// Critic steps per generator iteration [default: 5 for wgan and wgan-gp (wgan on images
    /// also 100 for its first 25 and every 500th iteration, as main.py), 1 for gan and dcgan]
    #[arg(long)]
    pub n_critic: Option<usize>,
    /// WGAN weight-clipping bound [default: 0.01]
    #[arg(long)]
    pub clip: Option<f64>,
    /// WGAN-GP penalty weight λ [default: 10; 0.1 on toys, as gan_toy.py]
    #[arg(long)]
    pub lambda: Option<f64>,
    /// Noise dimension [default: 100; 64 for gan and gan-seed; 2 on toys, the only size there]
    #[arg(long)]
    pub latent: Option<usize>,
    /// DCGAN generator width.
    #[arg(long)]
    pub ngf: Option<usize>,
    /// DCGAN discriminator width.
    #[arg(long)]
    pub ndf: Option<usize>,
    /// The networks [default: dcgan on images (seed-mlp for gan and gan-seed), toy-mlp on toys]
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// DCGAN generator normalisation: batch or none [default: batch]
    #[arg(long, value_enum)]
    pub generator_norm: Option<NormArg>,
    /// DCGAN critic normalisation [default: batch (dcgan, wgan), none (wgan-gp), layer-channel (wgan-gp-64)]
    #[arg(long, value_enum)]
    pub critic_norm: Option<NormArg>,
    /// The generator's loss in gan and dcgan [default: non-saturating]
    #[arg(long, value_enum)]
    pub generator_cost: Option<CostArg>,
    /// Target for real samples (0.9: one-sided label smoothing) [default: 0.9 for gan on images, else 1]
    #[arg(long)]
    pub real_label: Option<f64>,
    /// Lower real targets by U[0, x].
    #[arg(long)]
    pub label_noise: Option<f64>,
    /// Initial σ of noise added to the discriminator's inputs, decaying to 0.
    #[arg(long)]
    pub instance_noise: Option<f64>,
    /// Iterations between metrics lines (metrics.jsonl, TensorBoard, progress) [default: 10]
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Iterations between sample grids [default: 200; 500 on toys]
    #[arg(long)]
    pub sample_every: Option<u64>,
    /// Iterations between checkpoints [default: 500]
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Checkpoints kept, the newest (older ones are removed); 0 keeps every one, so that
    /// any of them can be sampled or evaluated later [default: 2]
    #[arg(long, value_name = "N")]
    pub keep_checkpoints: Option<usize>,
    /// Activations in f32, or bf16 on f32 master weights (mixed precision, for GPUs;
    /// on the CPU slower than f32) [default: f32]
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Measure sample quality every K iterations (a multiple of --log-every) into
    /// metrics.jsonl and quality.png: toys by mode counts and W1, MNIST and Fashion-MNIST
    /// by FID, KID, score, classes and precision / recall in the shipped classifier's features.
    #[arg(long)]
    pub eval_every: Option<u64>,
}

impl RecipeArgs {
    /// Each recipe flag with whether it was given, for refusing by name those that do
    /// not apply (a resumed run's, the classifier's).
    pub fn recipe_given(&self) -> [(bool, &'static str); 19] {
        [
            (self.lr_g.is_some(), "--lr-g"),
            (self.lr_d.is_some(), "--lr-d"),
            (self.beta1.is_some(), "--beta1"),
            (self.beta2.is_some(), "--beta2"),
            (self.lr_decay.is_some(), "--lr-decay"),
            (self.n_critic.is_some(), "--n-critic"),
            (self.clip.is_some(), "--clip"),
            (self.lambda.is_some(), "--lambda"),
            (self.latent.is_some(), "--latent"),
            (self.ngf.is_some(), "--ngf"),
            (self.ndf.is_some(), "--ndf"),
            (self.arch.is_some(), "--arch"),
            (self.generator_norm.is_some(), "--generator-norm"),
            (self.critic_norm.is_some(), "--critic-norm"),
            (self.generator_cost.is_some(), "--generator-cost"),
            (self.real_label.is_some(), "--real-label"),
            (self.label_noise.is_some(), "--label-noise"),
            (self.instance_noise.is_some(), "--instance-noise"),
            (self.precision.is_some(), "--precision"),
        ]
    }

    /// The flags that set how often a run logs, samples, saves and measures.
    pub fn schedule_given(&self) -> [(bool, &'static str); 5] {
        [
            (self.log_every.is_some(), "--log-every"),
            (self.sample_every.is_some(), "--sample-every"),
            (self.checkpoint_every.is_some(), "--checkpoint-every"),
            (self.keep_checkpoints.is_some(), "--keep-checkpoints"),
            (self.eval_every.is_some(), "--eval-every"),
        ]
    }
}

/// The device `--device` names, or an error that says what to do: a binary built without
/// the `cuda` feature says how to build one; a CUDA build without that GPU says what
/// Candle reported.
pub fn open_device(spec: DeviceSpec) -> anyhow::Result<candle_core::Device> {
    match spec {
        DeviceSpec::Cuda(_) if !cfg!(feature = "cuda") => anyhow::bail!(
            "this ganzoo was built without CUDA: build one with scripts/build-cuda.sh (cargo feature `cuda`), \
             or use --device cpu"
        ),
        _ => spec.open().map_err(|e| {
            // Candle's driver errors carry a backtrace after their first line.
            let e = e.to_string();
            anyhow::anyhow!(
                "no usable CUDA GPU for --device {spec} ({}); check that the NVIDIA driver is loaded, the GPU is \
                 visible (nvidia-smi, CUDA_VISIBLE_DEVICES) and the CUDA 13 libraries are on LD_LIBRARY_PATH",
                e.lines().next().unwrap_or_default().trim()
            )
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ArchArg {
    /// The seed's MLPs (LeakyReLU 0.2).
    SeedMlp,
    /// WassersteinGAN models/mlp.py: 3 ReLU layers of 512, no output activation.
    WganMlp,
    /// gan_toy.py's MLPs (2-D toys only).
    ToyMlp,
    Dcgan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LrDecayArg {
    Constant,
    Linear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    F32,
    Bf16,
}

impl From<PrecisionArg> for ganzoo_train::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => Self::F32,
            PrecisionArg::Bf16 => Self::Bf16,
        }
    }
}

/// A value of GANZOO_CUDA_CONV (`ganzoo_kernels::cuda_conv`; `gemm`: Candle's conv2d).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CudaConvArg {
    Auto,
    Cudnn,
    CudnnAny,
    CudnnGraph,
    CudnnGraphAny,
    Columns,
    Timed,
    Gemm,
}

impl CudaConvArg {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Cudnn => "cudnn",
            Self::CudnnAny => "cudnn-any",
            Self::CudnnGraph => "cudnn-graph",
            Self::CudnnGraphAny => "cudnn-graph-any",
            Self::Columns => "columns",
            Self::Timed => "timed",
            Self::Gemm => "gemm",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NormArg {
    Batch,
    /// Layer norm, scale and offset per element of (C, H, W).
    Layer,
    /// Layer norm, scale and offset per channel (tflib).
    LayerChannel,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CostArg {
    Minimax,
    NonSaturating,
    MaximumLikelihood,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// A run directory written by `train`.
    #[arg(long)]
    pub run: PathBuf,
    /// The checkpoint at this generator iteration (one the run keeps: train
    /// --keep-checkpoints) [default: the latest]
    #[arg(long, value_name = "ITERATION")]
    pub step: Option<u64>,
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// .png (grid, or scatter for toys) or .npy (raw samples)
    #[arg(long)]
    pub out: PathBuf,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// A grid of 8 walks of 8 steps between random latent points (always 64 images: not
    /// with --n).
    #[arg(long, conflicts_with = "n")]
    pub interpolate: bool,
    /// The generator's activations: f32, or bf16 on its f32 weights [default: the run's].
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value_t = DeviceSpec::Cpu)]
    pub device: DeviceSpec,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["run", "samples"])))]
pub struct EvalArgs {
    /// A run directory: its latest generator is sampled; the report goes to RUN/eval/step-N.json (with the settings given in the name).
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// With --run: the checkpoint at this generator iteration (one the run keeps: train
    /// --keep-checkpoints) [default: the latest]
    #[arg(long, value_name = "ITERATION", requires = "run")]
    pub step: Option<u64>,
    /// Samples from anywhere, as float32 .npy: N×2 toy points, or N×C×H×W images in [−1, 1].
    #[arg(long, requires = "dataset")]
    pub samples: Option<PathBuf>,
    /// What the samples imitate (with --samples): 8gaussians, 25gaussians, swissroll, or an
    /// image data set (mnist, fashion-mnist, cifar10). A run is measured against its own.
    #[arg(long, conflicts_with = "run")]
    pub dataset: Option<DataSource>,
    /// Samples to draw from the run's generator [default: 2000 for toys, 10000 for images].
    #[arg(long, conflicts_with = "samples")]
    pub n: Option<usize>,
    /// Seed of the generator's noise and of the fresh real samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// One JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The network image metrics are computed in: classifier (the data set's domain
    /// classifier; seconds for 10,000 images) or inception (pytorch-fid's InceptionV3,
    /// comparable with published FIDs; about 12 images/s on 2 CPU cores; needs N > 2048).
    #[arg(long, value_enum, default_value_t = FeatureKind::Classifier)]
    pub features: FeatureKind,
    /// The domain classifier whose features image metrics use: STEM.safetensors and
    /// STEM.json as `train classifier` writes them.
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// pytorch-fid's weights, pt_inception-2015-12-05-6726825d.pth (with --features
    /// inception) [default: found in ~/.cache/ganzoo or torch.hub's cache, else downloaded]
    #[arg(long)]
    pub inception_weights: Option<PathBuf>,
    /// The run's generator's activations (--run): f32, or bf16 on its f32 weights [default: the run's].
    #[arg(long, value_enum)]
    pub precision: Option<PrecisionArg>,
    /// Where a run's generator makes the samples and the image network (classifier or
    /// Inception) computes their features and the real images': cpu, cuda or cuda:N
    /// [default: cpu]
    #[arg(long)]
    pub device: Option<DeviceSpec>,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// The network image metrics are computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FeatureKind {
    Classifier,
    Inception,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Each network's layers, output shapes and parameter counts: a preset's on images,
    /// or a run's (from its config.toml).
    Summary {
        /// A preset as `train` names it; its networks on images of --image-size and --channels.
        #[arg(value_parser = preset_parser(), required_unless_present = "run", conflicts_with = "run")]
        preset: Option<Preset>,
        /// 28, 32 or 64 for DCGAN networks [default: the preset's: 64 for wgan-gp-64, else 28]
        #[arg(long, conflicts_with = "run")]
        image_size: Option<usize>,
        /// [default: 1]
        #[arg(long, conflicts_with = "run")]
        channels: Option<usize>,
        /// A run directory: the networks it trains, as its config.toml describes them
        /// (data shape, widths, normalisations, architecture).
        #[arg(long)]
        run: Option<PathBuf>,
    },
}

/// Parses a preset by the name `train` gives it.
fn preset_parser() -> impl clap::builder::TypedValueParser<Value = Preset> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Preset::ALL.map(Preset::name))
        .try_map(|name| Preset::ALL.into_iter().find(|p| p.name() == name).ok_or("not a preset"))
}

/// What `train` trains: a GAN family, or the domain classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainTarget {
    /// ganzoo's MLP GAN (the seed's networks, a recipe that covers every digit).
    Gan,
    /// The seed's MLP GAN exactly as it was (LeakyReLU, Adam 3e-4, β = (0.9, 0.999)).
    GanSeed,
    /// DCGAN (Radford et al.; pytorch/examples).
    Dcgan,
    /// WGAN with weight clipping (WassersteinGAN main.py; gan_toy.py on toys).
    Wgan,
    /// WGAN-GP (improved_wgan_training gan_mnist.py / gan_cifar.py: unnormalised critic).
    WganGp,
    /// WGAN-GP at 64×64 with gan_64x64.py's per-channel layer-norm critic.
    #[value(name = "wgan-gp-64")]
    WganGp64,
    /// A small CNN on the data set's labels, the feature extractor of image metrics.
    Classifier,
}

impl TrainTarget {
    /// The GAN recipe, unless this is the classifier.
    pub fn preset(self) -> Option<Preset> {
        match self {
            Self::Gan => Some(Preset::Gan),
            Self::GanSeed => Some(Preset::GanSeed),
            Self::Dcgan => Some(Preset::Dcgan),
            Self::Wgan => Some(Preset::Wgan),
            Self::WganGp => Some(Preset::WganGp),
            Self::WganGp64 => Some(Preset::WganGp64),
            Self::Classifier => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Count, shape, value range and class histogram of each split.
    Info {
        /// mnist, fashion-mnist, cifar10 or folder:PATH
        dataset: DatasetSpec,
        #[command(flatten)]
        source: SourceArgs,
    },
    /// Draw points from a 2-D toy distribution into an N×2 float32 .npy file.
    Sample {
        /// 8gaussians, 25gaussians, swissroll or parallel-line:THETA
        toy: ToyDistribution,
        #[arg(long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        out: PathBuf,
        /// Replace OUT if it exists.
        #[arg(long)]
        overwrite: bool,
    },
    /// An 8×8 grid of real training images as PNG.
    Grid {
        dataset: DatasetSpec,
        #[command(flatten)]
        source: SourceArgs,
        /// Pick the 64 images at random with this seed instead of taking the first 64.
        #[arg(long)]
        seed: Option<u64>,
        #[arg(long)]
        out: PathBuf,
        /// Replace OUT if it exists.
        #[arg(long)]
        overwrite: bool,
    },
}

/// Where a data set is found or downloaded from, and how folders are read.
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Data root (default: $GANZOO_DATA, else ./data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Fail instead of downloading a missing data set.
    #[arg(long)]
    pub no_download: bool,
    /// Base URL to download from instead of the canonical mirrors.
    #[arg(long)]
    pub mirror: Option<String>,
    /// Side of the square images: folders are read at this size [default: 64];
    /// for training, images are resized to it.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Read folder images as grayscale.
    #[arg(long)]
    pub grayscale: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use ganzoo_data::{DatasetSpec, KnownDataset, ToyDistribution};
    use ganzoo_train::config::{Arch, Constraint, NormName, Objective, Optimizer, Preset};
    use ganzoo_train::{DataSource, TrainConfig};

    /// The defaults `train --help` states for one preset, in the help's own words
    /// (rewritten here by hand from the doc comments above, not from the presets).
    fn stated(p: Preset, toy: bool) -> String {
        use Preset::*;
        let batch = match (p, toy) {
            (Gan | GanSeed, _) => 100,
            (Wgan | WganGp, true) => 256,
            _ => 64,
        };
        let length = match (p, toy) {
            (WganGp, true) => "iters 3000",
            (_, true) => "iters 2000",
            (Gan, false) => "iters 20000",
            _ => "epochs 5",
        };
        let lr = match (p, toy) {
            (Gan | Dcgan, _) => "0.0002",
            (GanSeed, _) => "0.0003",
            (Wgan, _) => "0.00005",
            (WganGp, true) => "0.001 decaying",
            (WganGp | WganGp64, _) => "0.0001",
        };
        let betas = match p {
            Wgan => "RMSprop",
            GanSeed => "0.9 0.999",
            WganGp | WganGp64 => "0.5 0.9",
            _ => "0.5 0.999",
        };
        let n_critic = match (p, toy) {
            (Wgan, false) => "5, 100 first 25 and every 500",
            (Wgan | WganGp | WganGp64, _) => "5",
            _ => "1",
        };
        let latent = match (p, toy) {
            (_, true) => 2,
            (Gan | GanSeed, false) => 64,
            _ => 100,
        };
        let arch = match (p, toy) {
            (_, true) => "toy-mlp",
            (Gan | GanSeed, false) => "seed-mlp",
            _ => "dcgan",
        };
        // The MLPs have no normalisation to set.
        let critic_norm = match (p, arch) {
            (_, "toy-mlp" | "seed-mlp") => "n/a",
            (WganGp64, _) => "layer-channel",
            (WganGp, _) => "none",
            _ => "batch",
        };
        let constraint = match (p, toy) {
            (Wgan, _) => "clip 0.01",
            (WganGp | WganGp64, true) => "lambda 0.1",
            (WganGp | WganGp64, false) => "lambda 10",
            _ => "none",
        };
        let real_label = if p == Gan && !toy { 0.9 } else { 1.0 };
        let every = if toy { "10 500 500" } else { "10 200 500" };
        format!("{batch} | {length} | {lr} | {betas} | {n_critic} | {latent} | {arch} | {critic_norm} | {constraint} | {real_label} | {every}")
    }

    /// The same facts read from the preset itself.
    fn actual(c: &TrainConfig) -> String {
        let length = match (c.epochs, c.iters) {
            (Some(e), None) => format!("epochs {e}"),
            (None, Some(n)) => format!("iters {n}"),
            _ => "?".into(),
        };
        let (lr, betas) = match c.optimizer_g {
            Optimizer::Adam { lr, beta1, beta2 } => (lr, format!("{beta1} {beta2}")),
            Optimizer::RmsProp { lr } | Optimizer::RmsPropTf { lr } => (lr, "RMSprop".into()),
        };
        let lr = match c.lr_decay {
            ganzoo_train::config::LrDecay::Linear => format!("{lr} decaying"),
            ganzoo_train::config::LrDecay::Constant => format!("{lr}"),
        };
        let n_critic = match c.schedule.warmup {
            Some(w) => format!("{}, {} first {} and every {}", c.schedule.n_critic, w.n_critic, w.first_iters, w.every),
            None => c.schedule.n_critic.to_string(),
        };
        let arch = match c.arch {
            Arch::ToyMlp => "toy-mlp",
            Arch::SeedMlp => "seed-mlp",
            Arch::Dcgan => "dcgan",
            _ => "other",
        };
        let critic_norm = match c.critic_norm {
            _ if c.arch != Arch::Dcgan => "n/a",
            NormName::LayerChannel => "layer-channel",
            NormName::None => "none",
            NormName::Batch => "batch",
            NormName::Layer => "layer",
        };
        let constraint = match c.objective {
            Objective::Wasserstein { constraint: Constraint::Clip { value, .. } } => format!("clip {value}"),
            Objective::Wasserstein { constraint: Constraint::Penalty { lambda } } => format!("lambda {lambda}"),
            Objective::CrossEntropy { .. } => "none".into(),
        };
        let every = format!("{} {} {}", c.log_every, c.sample_every, c.checkpoint_every);
        format!(
            "{} | {length} | {lr} | {betas} | {n_critic} | {} | {arch} | {critic_norm} | {constraint} | {} | {every}",
            c.batch_size, c.latent, c.tricks.real_label
        )
    }

    /// `train --help` states each recipe flag's default per preset; a preset changed
    /// without its help would tell users a value they do not get.
    #[test]
    fn train_help_states_the_presets_defaults() {
        let images = DataSource::Images(DatasetSpec::Known(KnownDataset::Mnist));
        let toy = DataSource::Toy(ToyDistribution::EightGaussians);
        for p in Preset::ALL {
            for (data, is_toy) in [(images.clone(), false), (toy.clone(), true)] {
                let c = TrainConfig::from_preset(p, data);
                // A DCGAN generator starts with batch norm (the help's "[default: batch]");
                // the MLPs, which refuse the flag, have none.
                let generator = if c.arch == Arch::Dcgan { NormName::Batch } else { NormName::None };
                assert_eq!(c.generator_norm, generator);
                let on = if is_toy { "a toy" } else { "images" };
                assert_eq!(actual(&c), stated(p, is_toy), "{} on {on}", p.name());
            }
        }
    }
}
