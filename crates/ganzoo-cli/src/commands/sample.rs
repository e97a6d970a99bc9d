//! `ganzoo sample`: grids, scatter plots or raw `.npy` samples from a trained run.

use anyhow::{bail, Context};
use ganzoo_data::grid::save_tensor_grid;
use ganzoo_data::npy::{write_npy_f32, NpyWriter};
use ganzoo_train::budget::{sampling_bytes, MemoryLimit};
use ganzoo_train::plot::toy_surface_png;
use ganzoo_train::TrainedGenerator;

use crate::cli::{open_device, SampleArgs};
use crate::commands::data::output_kind;
use crate::output::emit;
use crate::signals::StopFlag;

/// Generated samples at a time when writing `.npy`: memory stays bounded whatever `--n`.
const CHUNK: usize = 1024;

pub fn run(args: SampleArgs, limit: MemoryLimit) -> anyhow::Result<()> {
    let device = open_device(args.device)?;
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let kind = output_kind(&args.out, &["png", "npy"], args.overwrite)?;
    let mut gen = TrainedGenerator::load_at(&args.run, args.step, &device)
        .with_context(|| format!("cannot load the run {}", args.run.display()))?;
    if let Some(precision) = args.precision {
        gen = gen.with_precision(precision.into());
    }
    let toy = gen.sample_shape.len() == 1;
    if args.interpolate && toy {
        bail!("--interpolate makes image grids; this run trained on 2-D points");
    }
    let n = if args.interpolate { 64 } else { args.n };
    let numel: u128 = gen.sample_shape.iter().map(|&d| d as u128).product();
    let whole = kind == "png" || args.interpolate;
    // A picture holds every sample at once (f32, u8 pixels and the image); .npy a chunk at a time.
    let (held, batch) = if whole { (n as u128 * numel * 12, n) } else { (0, n.min(CHUNK)) };
    let needed = held + sampling_bytes(&gen.config, &gen.sample_shape, batch);
    limit.check(format!("{n} samples as .{kind}"), needed, "lower --n, or write .npy (streamed)")?;
    let mut shape = vec![n];
    shape.extend(&gen.sample_shape);
    if !whole {
        let stop = StopFlag::install()?;
        let mut writer = NpyWriter::create(&args.out, &shape)?;
        gen.sample_chunks(n, args.seed, CHUNK, |chunk| -> anyhow::Result<()> {
            stop.check()?;
            Ok(writer.write(&chunk.flatten_all()?.to_vec1::<f32>()?)?)
        })?;
        writer.finish()?;
        return emit(&format!("wrote {shape:?} samples to {}\n", args.out.display()));
    }
    let samples = if args.interpolate { gen.interpolate(8, 8, args.seed)? } else { gen.sample(n, args.seed)? };
    match (kind.as_str(), toy) {
        ("npy", _) => write_npy_f32(&args.out, samples.dims(), &samples.flatten_all()?.to_vec1::<f32>()?)?,
        (_, true) => {
            let title = format!("{} generated points (seed {})", samples.dim(0)?, args.seed);
            let png = toy_surface_png(None, &device, &[], &samples.flatten_all()?.to_vec1::<f32>()?, &title)?;
            ganzoo_data::partial::write_whole(&args.out, &png)?
        }
        _ => save_tensor_grid(&samples, 8, &args.out)?,
    }
    emit(&format!("wrote {:?} samples to {}\n", samples.dims(), args.out.display()))
}
