//! The command-line grammar. Strings are turned into typed values here and
//! nowhere else: every argument is validated by its `FromStr` at parse time.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ganzoo_data::{DatasetSpec, ToyDistribution};

#[derive(Debug, Parser)]
#[command(name = "ganzoo", version, about = "The classic GAN family on Candle")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect data sets and toy distributions.
    #[command(subcommand)]
    Data(DataCommand),
    /// Describe the networks of a GAN family.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Each network's layers, output shapes and parameter counts.
    Summary {
        family: GanFamily,
        /// 28, 32 or 64 (DCGAN families).
        #[arg(long, default_value_t = 28)]
        image_size: usize,
        #[arg(long, default_value_t = 1)]
        channels: usize,
    },
}

/// The four GAN families of the zoo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GanFamily {
    /// The seed's MLP GAN.
    Gan,
    Dcgan,
    /// DCGAN networks with a batch-norm critic and weight clipping.
    Wgan,
    /// DCGAN generator, layer-norm critic.
    WganGp,
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
    },
}

/// Where a data set is found or downloaded from, and how folders are read.
#[derive(Debug, Args)]
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
    /// Side of the square images read from a folder.
    #[arg(long, default_value_t = 64)]
    pub image_size: usize,
    /// Read folder images as grayscale.
    #[arg(long)]
    pub grayscale: bool,
}
