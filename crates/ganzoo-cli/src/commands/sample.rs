//! `ganzoo sample`: grids, scatter plots or raw `.npy` samples from a trained run.

use anyhow::{bail, Context};
use candle_core::Device;
use ganzoo_data::grid::save_tensor_grid;
use ganzoo_data::npy::write_npy_f32;
use ganzoo_train::plot::toy_surface;
use ganzoo_train::TrainedGenerator;

use crate::cli::{DeviceKind, SampleArgs};
use crate::output::emit;

pub fn run(args: SampleArgs) -> anyhow::Result<()> {
    let device = match args.device {
        DeviceKind::Cpu => Device::Cpu,
        DeviceKind::Cuda => Device::new_cuda(0).context("cannot use CUDA")?,
    };
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let gen = TrainedGenerator::load(&args.run, &device)
        .with_context(|| format!("cannot load the run {}", args.run.display()))?;
    let toy = gen.sample_shape.len() == 1;
    if args.interpolate && toy {
        bail!("--interpolate makes image grids; this run trained on 2-D points");
    }
    let samples = if args.interpolate { gen.interpolate(8, 8, args.seed)? } else { gen.sample(args.n, args.seed)? };
    let ext = args.out.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("npy") => {
            let values: Vec<f32> = samples.flatten_all()?.to_vec1()?;
            write_npy_f32(&args.out, samples.dims(), &values)?;
        }
        Some("png") if toy => {
            let values: Vec<f32> = samples.flatten_all()?.to_vec1()?;
            toy_surface(None, &device, &[], &values, &args.out)?;
        }
        Some("png") => save_tensor_grid(&samples, 8, &args.out)?,
        _ => bail!("{}: write .png or .npy", args.out.display()),
    }
    emit(&format!("wrote {:?} samples to {}\n", samples.dims(), args.out.display()))
}
