//! `ganzoo bench`: each model timed in a fresh worker process (so peak memory is
//! its own), the PyTorch reference beside it in alternating rounds when asked, then
//! the per-layer convolution timings; tables or JSON lines.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ganzoo_bench::feature_parity::feature_parity;
use ganzoo_bench::norms;
use ganzoo_bench::op_parity;
use ganzoo_bench::ops::{self, OpTiming};
use ganzoo_bench::parity::{self, Losses};
use ganzoo_bench::report::{self, Setting};
use ganzoo_bench::rounds::{self, Comparison, Round, Side};
use ganzoo_bench::torch::{parse_last_line, TorchRef, TorchThroughput};
use ganzoo_bench::{system, throughput, BenchModel, Target, Throughput, TimingPlan};
use ganzoo_kernels::isa::{self, Isa};
use ganzoo_models::KernelBackend;
use ganzoo_train::budget::MemoryLimit;
use ganzoo_train::device::DeviceSpec;

use crate::cli::{open_device, BenchArgs, CudaConvArg, PrecisionArg};
use crate::output::emit;

pub fn run(args: BenchArgs, limit: MemoryLimit) -> Result<()> {
    let parity_only = [(args.tolerance.is_some(), "--tolerance"), (args.drift.is_some(), "--drift")];
    if let (None, Some(flag)) = (args.parity, crate::commands::first_given(&parity_only)) {
        bail!("{flag} bounds --parity's comparison; without --parity nothing is compared");
    }
    let plan = timing_plan(&args)?;
    let target = target(&args)?;
    check_memory(&args, limit)?;
    if let Some(path) = &args.write {
        if !args.cuda_conv.is_empty() && !target.cuda() {
            bail!("--cuda-conv with --write needs --device cuda: the CPU's table has no convolution variants");
        }
        crate::commands::data::refuse_run_file(path)?;
        report::check_writable(path)?;
    }
    ganzoo_models::set_kernel_backend(args.kernels);
    let threads = args.threads.unwrap_or_else(system::cpus).max(1);
    match (args.worker, args.parity) {
        (Some(model), Some(steps)) => {
            let l = parity::losses(model, args.seed, steps, target).with_context(|| format!("training {model}"))?;
            return emit(&format!("{}\n", serde_json::to_string(&l)?));
        }
        (Some(model), None) => {
            tracing::info!(model = model.name(), device = %args.device, "timing in a worker process");
            let mut t =
                throughput::measure(model, plan, args.seed, target).with_context(|| format!("benchmarking {model}"))?;
            t.peak_heap_mb = Some(crate::allocator::peak_live_bytes() as f64 / (1u64 << 20) as f64);
            return emit(&format!("{}\n", serde_json::to_string(&t)?));
        }
        (None, Some(steps)) => return parities(&args, target, steps, threads),
        (None, None) => {}
    }
    let torch = match &args.torch {
        Some(python) => {
            let dir = std::fs::canonicalize(&args.torchref)
                .with_context(|| format!("{}: PyTorch reference directory", args.torchref.display()))?;
            Some(TorchRef { python: python.clone(), dir, threads, held_to: held_to() })
        }
        None => None,
    };
    let torch_isa = match &torch {
        Some(t) => describe_hold(&t.check()?, t.held_to),
        None => String::new(),
    };
    let rounds = args.rounds.unwrap_or(if torch.is_some() { 3 } else { 1 });
    let models = if args.models.is_empty() { BenchModel::ALL.to_vec() } else { args.models.clone() };
    let variants = variants(&args);
    // Per model, a comparison per variant.
    let mut compared: Vec<Vec<Comparison>> = Vec::new();
    if !args.ops_only {
        let width = model_column(&variants);
        if !args.json {
            emit(&table_header(&torch_isa, target, width))?;
            if target.cuda() {
                let convolutions: Vec<&str> = variants.iter().map(|&v| cuda_convolutions(v).0).collect();
                let (gpu, (products, _)) = (gpu_label(target), cuda_precision());
                emit(&format!(
                    "device: {gpu} (ganzoo and PyTorch); it/s below are the GPU's; ganzoo's f32 products: {products}; \
                     its convolutions: {}\n",
                    convolutions.join("; ")
                ))?;
            }
        }
        for model in models {
            match &torch {
                Some(t) => compared.push(compare(model, t, (rounds, plan, target), &args, (threads, &variants))?),
                None => {
                    for round in 0..rounds {
                        for &v in &variants {
                            let ours = worker(model, &args, threads, v)?;
                            let label = row_label(&ours.model, v);
                            emit(&if args.json {
                                json_line(&ours, round, v)?
                            } else {
                                table_row((round, &label, width), &ours, None)
                            })?;
                        }
                    }
                }
            }
        }
    }
    if !args.skip_ops {
        per_layer(&args, torch.as_ref().map(|t| (t, torch_isa.as_str())), target)?;
    }
    if let Some(path) = &args.write {
        for (i, &v) in variants.iter().enumerate() {
            let tables: Vec<Comparison> = compared.iter().map(|c| c[i].clone()).collect();
            write_report(path, (&tables, v), args.kernels, (threads, rounds), torch_isa.clone(), target)?;
        }
    }
    Ok(())
}

/// `rounds` rounds of `model` against the PyTorch reference, each side a fresh
/// process, in the order [`rounds::order`] gives (ganzoo's side: each of `variants` in
/// turn, all against the round's one PyTorch run); each round's lines as it ends, then
/// (for several rounds) the median ratios. A comparison per variant.
fn compare(
    model: BenchModel,
    torch: &TorchRef,
    (rounds, plan, target): (usize, TimingPlan, Target),
    args: &BenchArgs,
    (threads, variants): (usize, &[Option<CudaConvArg>]),
) -> Result<Vec<Comparison>> {
    let reference = || {
        quiet(args);
        torch.measure(model, plan, args.seed, target).with_context(|| format!("PyTorch reference of {model}"))
    };
    let ganzoo = || variants.iter().map(|&v| worker(model, args, threads, v)).collect::<Result<Vec<_>>>();
    let width = model_column(variants);
    let mut compared: Vec<Comparison> =
        variants.iter().map(|_| Comparison { rounds: Vec::with_capacity(rounds) }).collect();
    for r in 0..rounds {
        let first = rounds::order(r)[0];
        let (ours, theirs) = if first == Side::Ganzoo {
            let ours = ganzoo()?;
            (ours, reference()?)
        } else {
            let theirs = reference()?;
            (ganzoo()?, theirs)
        };
        for ((ours, &v), c) in ours.into_iter().zip(variants).zip(&mut compared) {
            let round = Round { ours, theirs: theirs.clone() };
            let label = row_label(&round.ours.model, v);
            emit(&if args.json {
                json_round(r, &round, first, v)?
            } else {
                table_row((r, &label, width), &round.ours, Some(&round.theirs))
            })?;
            c.rounds.push(round);
        }
    }
    if rounds > 1 {
        for (c, &v) in compared.iter().zip(variants) {
            emit(&if args.json { json_summary(c, v)? } else { table_summary(c, &row_label(c.model(), v)) })?;
        }
    }
    Ok(compared)
}

/// The convolution implementations each model is timed with: `--cuda-conv`'s, else
/// `[None]`, the one GANZOO_CUDA_CONV chooses.
fn variants(args: &BenchArgs) -> Vec<Option<CudaConvArg>> {
    if args.cuda_conv.is_empty() {
        return vec![None];
    }
    if !args.device.is_cuda() {
        tracing::warn!("--cuda-conv on the CPU: every variant runs the same CPU kernels");
    }
    args.cuda_conv.iter().map(|&v| Some(v)).collect()
}

/// A table row's first column: the model, and the variant where `--cuda-conv` names one.
fn row_label(model: &str, variant: Option<CudaConvArg>) -> String {
    variant.map_or_else(|| model.to_string(), |v| format!("{model} {}", v.name()))
}

/// The width of a table's first column: the longest model name (`wgan-gp32`) and, with
/// `--cuda-conv`, the longest variant (`cudnn-graph-any`).
fn model_column(variants: &[Option<CudaConvArg>]) -> usize {
    if variants.iter().any(Option::is_some) {
        26
    } else {
        10
    }
}

/// How f32 products ran on CUDA, and the suffix of the GPU table's key: exact f32 (no
/// suffix; PyTorch then keeps its default, TF32 in cuDNN's convolutions), exact on both
/// sides under `NVIDIA_TF32_OVERRIDE=0` (the CUDA libraries' own switch, which PyTorch's
/// obey too; `-exact`), TF32 in the convolutions only, as PyTorch's default (`-tf32conv`),
/// or in every product (`-tf32`).
fn cuda_precision() -> (&'static str, &'static str) {
    if std::env::var("NVIDIA_TF32_OVERRIDE").as_deref() == Ok("0") {
        ("exact f32, PyTorch's too (NVIDIA_TF32_OVERRIDE=0)", "-exact")
    } else if candle_core::cuda::gemm_reduced_precision_f32() {
        ("TF32 allowed", "-tf32")
    } else if ganzoo_kernels::conv_tf32() {
        ("TF32 in the convolutions, as PyTorch's default", "-tf32conv")
    } else {
        ("exact f32", "")
    }
}

/// How ganzoo's convolutions ran on CUDA, and the suffix of the GPU table's key: cuDNN or
/// the columns by size (the default; no suffix), cuDNN with the heuristics' deterministic
/// algorithm (`-cudnn`) or any (`-cudnn-any`), the same through cuDNN's graph API
/// (`-cudnn-graph`, `-cudnn-graph-any`), the fastest of cuDNN and the columns by timing
/// (`-timed`), the columns (`-columns`), or Candle's conv2d (`-gemm`);
/// `variant`'s (`--cuda-conv`), else GANZOO_CUDA_CONV's.
fn cuda_convolutions(variant: Option<CudaConvArg>) -> (&'static str, &'static str) {
    use ganzoo_kernels::CudaConv;
    let as_gemm = variant.map_or_else(ganzoo_models::backend::cuda_convolutions_as_gemm, |v| v == CudaConvArg::Gemm);
    if as_gemm {
        return ("as Candle's im2col + cuBLAS conv2d (GANZOO_CUDA_CONV=gemm)", "-gemm");
    }
    let conv = variant.map_or_else(ganzoo_kernels::cuda_conv, |v| ganzoo_kernels::cuda_conv_for(v.name()));
    let suffix = match conv {
        CudaConv::Auto => "",
        CudaConv::Cudnn => "-cudnn",
        CudaConv::CudnnAny => "-cudnn-any",
        CudaConv::CudnnGraph => "-cudnn-graph",
        CudaConv::CudnnGraphAny => "-cudnn-graph-any",
        CudaConv::Columns => "-columns",
        CudaConv::Timed => "-timed",
    };
    (conv.name(), suffix)
}

/// The cuDNN workspace bound where `GANZOO_CUDNN_WORKSPACE_MIB` moved it from its
/// default (`ganzoo_kernels::cudnn_workspace_bytes`): its description and the GPU table
/// key's suffix (`-ws4096`); else nothing.
fn cudnn_workspace() -> (String, String) {
    match ganzoo_kernels::cudnn_workspace_bytes() {
        ganzoo_kernels::cuda_conv::WORKSPACE_BYTES => (String::new(), String::new()),
        bytes => (format!(" (cuDNN workspace up to {} MiB)", bytes >> 20), format!("-ws{}", bytes >> 20)),
    }
}

/// `CUDA GPU N` for the target's GPU.
fn gpu_label(target: Target) -> String {
    match target.device {
        DeviceSpec::Cuda(n) => format!("CUDA GPU {n}"),
        DeviceSpec::Cpu => "the CPU".into(),
    }
}

/// `--device` and `--batch`, checked before anything runs (a CUDA device must exist).
fn target(args: &BenchArgs) -> Result<Target> {
    if args.device.is_cuda() {
        open_device(args.device)?;
    }
    if args.batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    Ok(Target { device: args.device, batch: args.batch, precision: args.precision.into() })
}

/// Refuses, before anything is allocated, a batch whose models or layers would not fit
/// in `limit` (host memory).
fn check_memory(args: &BenchArgs, limit: MemoryLimit) -> Result<()> {
    let hint = "use a smaller --batch, or --max-memory to raise the limit";
    if !args.ops_only {
        let models = match args.worker {
            Some(model) => vec![model],
            None if args.models.is_empty() => BenchModel::ALL.to_vec(),
            None => args.models.clone(),
        };
        for model in models {
            let config = model.config(args.seed, args.batch)?;
            limit.check(format!("bench {model} at batch {}", config.batch_size), model.bytes(&config), hint)?;
        }
    }
    if !args.skip_ops && args.worker.is_none() && args.parity.is_none() {
        let batch = args.batch.unwrap_or(64);
        let convs = ops::dcgan_layers(batch)?.iter().map(|l| l.bytes()).max().unwrap_or(0);
        let largest = norms::dcgan_norms(batch).iter().map(|l| l.bytes()).fold(convs, u128::max);
        limit.check(format!("the per-layer timings at batch {batch}"), largest, hint)?;
    }
    Ok(())
}

/// Most repeats, rounds and --parity steps; longest time of any timing flag (most threads:
/// [`crate::pool::MOST_THREADS`]).
/// Far beyond any sensible run, and what a typo (an extra digit, a negative number
/// read as 2⁶⁴ − 1) gets refused by, before anything is allocated or waited for.
const MOST_COUNT: usize = 1_000;
const MOST_STEPS: usize = 100_000;
const MOST_SECONDS: f64 = 86_400.0;

/// Every count and time flag, checked once (--threads and --parity too); the timing plan.
fn timing_plan(args: &BenchArgs) -> Result<TimingPlan> {
    let seconds = |v: f64| (0.0..=MOST_SECONDS).contains(&v);
    let count = |n: usize| (1..=MOST_COUNT).contains(&n);
    if !count(args.repeats) || !seconds(args.target_s) || args.target_s == 0.0 || !seconds(args.warmup_s) {
        bail!(
            "--repeats must lie in 1..={MOST_COUNT}, --target-s and --warmup-s in seconds up to {MOST_SECONDS} (a day), \
             --target-s above 0"
        );
    }
    if args.rounds.is_some_and(|r| !count(r)) {
        bail!("--rounds must lie in 1..={MOST_COUNT}");
    }
    if !seconds(args.wait_quiet_s) {
        bail!("--wait-quiet-s must be a number of seconds from 0 to {MOST_SECONDS} (a day)");
    }
    if args.threads.is_some_and(|t| !(1..=crate::pool::MOST_THREADS).contains(&t)) {
        bail!("--threads must lie in 1..={}", crate::pool::MOST_THREADS);
    }
    if args.parity.is_some_and(|n| !(1..=MOST_STEPS).contains(&n)) {
        bail!("--parity takes 1..={MOST_STEPS} steps");
    }
    Ok(TimingPlan { warmup_s: args.warmup_s, target_s: args.target_s, repeats: args.repeats })
}

fn quiet(args: &BenchArgs) {
    if args.wait_quiet_s > 0.0 {
        let (waited, busy) =
            system::wait_quiet(Duration::try_from_secs_f64(args.wait_quiet_s).unwrap_or(Duration::MAX));
        if busy >= 0.10 {
            tracing::warn!("machine still {:.0}% busy after {waited:.0} s: timings may be low", busy * 100.0);
        }
    }
}

/// Times `model` in a fresh process of this binary, with `variant`'s convolutions.
fn worker(model: BenchModel, args: &BenchArgs, threads: usize, variant: Option<CudaConvArg>) -> Result<Throughput> {
    quiet(args);
    let timing = [("--repeats", args.repeats.to_string()), ("--target-s", args.target_s.to_string())];
    let extra = [timing.as_slice(), &[("--warmup-s", args.warmup_s.to_string())]].concat();
    spawn(model, args, threads, (args.device, args.kernels, args.precision), (&extra, variant))
}

/// Runs `ganzoo bench --worker MODEL` on `device` with `kernels` in `precision` (and
/// `extra` flags; GANZOO_CUDA_CONV set to `variant`'s, else inherited) in a fresh
/// process; its last JSON line. What it logged is passed on to this process's stderr
/// (the timed convolutions' choices, cuDNN's warnings).
fn spawn<T: serde::de::DeserializeOwned>(
    model: BenchModel,
    args: &BenchArgs,
    threads: usize,
    (device, kernels, precision): (DeviceSpec, KernelBackend, PrecisionArg),
    (extra, variant): (&[(&str, String)], Option<CudaConvArg>),
) -> Result<T> {
    let exe = std::env::current_exe().context("locating the ganzoo binary")?;
    let precision = ganzoo_train::Precision::from(precision).name();
    let out = Command::new(&exe)
        .args(["bench", "--worker", model.name(), "--kernels", kernels.name(), "--seed", &args.seed.to_string()])
        .args(["--device", &device.to_string(), "--precision", precision])
        .args(args.batch.map(|b| ["--batch".to_string(), b.to_string()]).into_iter().flatten())
        .args(extra.iter().flat_map(|(k, v)| [k.to_string(), v.clone()]))
        .env("RAYON_NUM_THREADS", threads.to_string())
        .envs(variant.map(|v| ("GANZOO_CUDA_CONV", v.name())))
        .output()
        .with_context(|| format!("running {}", exe.display()))?;
    if out.status.success() {
        std::io::stderr().write_all(&out.stderr).context("passing on a worker's log")?;
    }
    Ok(parse_last_line(&out.stdout, &out.stderr, out.status.success(), &exe)?)
}

/// `bench --parity N`: every model's first N steps on the CPU with ganzoo's kernels
/// against --device with --kernels, each in its own process; a line per model.
fn parities(args: &BenchArgs, target: Target, steps: usize, threads: usize) -> Result<()> {
    let models = if args.models.is_empty() { BenchModel::ALL.to_vec() } else { args.models.clone() };
    // bf16's rounding moves the losses far more than f32's; the bounds sit above what
    // was measured (docs/performance.md, *Mixed precision (bf16)*).
    let (tolerance, drift) = match args.precision {
        PrecisionArg::F32 => (args.tolerance.unwrap_or(1e-3), args.drift.unwrap_or(0.05)),
        PrecisionArg::Bf16 => (args.tolerance.unwrap_or(2e-2), args.drift.unwrap_or(0.2)),
    };
    let mut failed = Vec::new();
    for model in models {
        let n = [("--parity", steps.to_string())];
        let reference = (DeviceSpec::Cpu, KernelBackend::Ganzoo, PrecisionArg::F32);
        let reference: Losses = spawn(model, args, threads, reference, (&n, None))?;
        let candidate: Losses = spawn(model, args, threads, (args.device, args.kernels, args.precision), (&n, None))?;
        let p = parity::compare(&reference, &candidate, tolerance, drift)?;
        let line = if args.json {
            serde_json::to_string(&p)? + "\n"
        } else {
            let verdict = p.first_over.map_or("ok".to_string(), |s| format!("over its bound at step {s}"));
            let diffs: Vec<String> = p.diffs.iter().map(|d| format!("{d:.1e}")).collect();
            let tight = if p.critic_steps == 1 { " and step 1" } else { "" };
            format!(
                "{:<10} {} against {}: first critic loss {:.1e}, differences by step {} (bounds {:.0e} on the first critic loss{tight}, {:.0e} after): {verdict}\n",
                p.model,
                p.candidate,
                p.reference,
                p.first_critic_diff,
                diffs.join(" "),
                p.tolerance,
                p.drift
            )
        };
        emit(&line)?;
        if !p.ok() {
            failed.push(format!("{} (losses over {tolerance} before a second update or {drift} after)", p.model));
        }
    }
    // The penalty's second-order gradient on the candidate, in this process (--kernels set).
    let on = format!("{} ({})", target.device_name(), args.kernels.name());
    for (critic, fd) in parity::penalty_check(target)? {
        let line = if args.json {
            let j = serde_json::json!({"penalty_check": critic, "on": on, "checked": fd.checked, "worst": fd.worst,
                "worst_at": fd.worst_at, "missing": fd.missing, "ok": fd.ok()});
            j.to_string() + "\n"
        } else {
            let verdict = if fd.ok() { "ok" } else { "FAILED" };
            format!(
                "penalty gradient, {critic} critic, {on}: {} weights against finite differences, worst at {:.2} of \
                 its tolerance ({}): {verdict}\n",
                fd.checked, fd.worst, fd.worst_at
            )
        };
        emit(&line)?;
        if !fd.ok() {
            failed.push(format!("the penalty gradient of the {critic} critic"));
        }
    }
    failed.extend(op_parities(args, target)?);
    for (critic, mp) in parity::mixed_precision_check(target)? {
        let ok = mp.within(parity::BF16_TOLERANCE);
        let line = if args.json {
            let j = serde_json::json!({"mixed_precision_check": critic, "on": on, "precision": target.precision.name(),
                "checked": mp.checked, "relative_error": mp.relative_error, "cosine": mp.cosine,
                "tolerance": parity::BF16_TOLERANCE, "missing": mp.missing, "ok": ok});
            j.to_string() + "\n"
        } else {
            format!(
                "penalty gradient, {critic} critic, {on}, {} activations: {} weights, {:.2e} apart from finite \
                 differences of the exact penalty in L2 (bound {}), cosine {:.5}: {}\n",
                target.precision.name(),
                mp.checked,
                mp.relative_error,
                parity::BF16_TOLERANCE,
                mp.cosine,
                if ok { "ok" } else { "FAILED" }
            )
        };
        emit(&line)?;
        if !ok {
            failed.push(format!("the {} penalty gradient of the {critic} critic", target.precision.name()));
        }
    }
    if !failed.is_empty() {
        bail!("parity failed: {}", failed.join("; "));
    }
    Ok(())
}

/// Every op off the CPU kernels on the candidate against them, then eval's feature
/// networks (with bf16 activations, every convolution with bf16 operands alone), a line
/// each (in this process, --kernels set); the ops over their bound.
fn op_parities(args: &BenchArgs, target: Target) -> Result<Vec<String>> {
    let on = format!("{} ({})", target.device_name(), args.kernels.name());
    let (ops, bound) = match target.precision.activations() {
        None => {
            let ops = [op_parity::op_parity(target, 2)?, feature_parity(target)?].concat();
            (ops, op_parity::tolerance(target.cuda() && ganzoo_kernels::conv_tf32()))
        }
        Some(dtype) => (op_parity::conv_parity_in(dtype, target, 2)?, op_parity::BF16_TOLERANCE),
    };
    let mut failed = Vec::new();
    for p in ops {
        let ok = p.worst() <= bound;
        let line = if args.json {
            let errors: serde_json::Map<String, serde_json::Value> =
                p.errors.iter().map(|(n, e)| (n.clone(), serde_json::json!(e))).collect();
            serde_json::json!({"op_parity": p.op, "on": on, "errors": errors, "tolerance": bound, "ok": ok}).to_string()
        } else {
            let errors: Vec<String> = p.errors.iter().map(|(n, e)| format!("{n} {e:.1e}")).collect();
            format!(
                "{:<40} {on} against the CPU kernels: {} (bound {bound:.0e}): {}",
                p.op,
                errors.join(", "),
                if ok { "ok" } else { "FAILED" }
            )
        };
        emit(&(line + "\n"))?;
        if !ok {
            failed.push(format!("{} ({:.1e} apart)", p.op, p.worst()));
        }
    }
    Ok(failed)
}

/// The table's header; `torch_isa` is PyTorch's capability line (empty without PyTorch),
/// `width` the first column's.
fn table_header(torch_isa: &str, target: Target, width: usize) -> String {
    let cuda = target.cuda();
    let (best, torch) = (Isa::detected(), !torch_isa.is_empty());
    let mut line = format!(
        "CPU: {} ({} CPUs, best instruction set {best}, kernels at {})\n",
        system::cpu_model(),
        system::cpus(),
        isa::active()
    );
    if torch {
        line.push_str(&format!("PyTorch: CPU capability {torch_isa}\n"));
    }
    if target.precision.activations().is_some() {
        let theirs = if torch { " (PyTorch: f32)" } else { "" };
        line.push_str(&format!("ganzoo's activations: {} on f32 weights{theirs}\n", target.precision.name()));
    }
    let mut h = format!(
        "{:<width$}{:>6}{:>6}{:>8}{:>10}{:>20}{:>9}{:>10}{:>11}{:>8}{:>7}",
        "model", "round", "batch", "isa", "it/s", "(min–max)", "ms/it", "real/s", "critic/s", "RSS MB", "other"
    );
    if torch {
        h.push_str(&format!("{:>11}{:>8}{:>9}", "torch it/s", "ratio", "torch MB"));
    }
    if cuda {
        h.push_str(&format!("{:>8}{}", "GPU MB", if torch { format!("{:>10}", "torch GPU") } else { String::new() }));
        h.push_str(&format!("{:>9}{:>8}", "host ms", "graphs"));
    }
    format!("{line}{h}\n{}\n", "-".repeat(h.chars().count()))
}

/// A round's row, `label` (the model, perhaps with its variant) in a first column `width` wide.
fn table_row((round, label, width): (usize, &str, usize), t: &Throughput, theirs: Option<&TorchThroughput>) -> String {
    let mut r = format!(
        "{:<width$}{:>6}{:>6}{:>8}{:>10.3}{:>20}{:>9.1}{:>10.0}{:>11.0}{:>8.0}{:>7.2}",
        label,
        round,
        t.batch,
        t.isa,
        t.iters_per_s,
        format!("({:.3}–{:.3})", t.iters_per_s_min, t.iters_per_s_max),
        t.ms_per_iter,
        t.images_per_s,
        t.critic_images_per_s,
        t.peak_rss_mb,
        t.other_cpu_frac
    );
    if let Some(p) = theirs {
        r.push_str(&format!(
            "{:>11.3}{:>8.2}{:>9.0}",
            p.gen_iters_per_s,
            t.iters_per_s / p.gen_iters_per_s,
            p.peak_rss_mb
        ));
    }
    if t.device.starts_with("cuda") {
        let mb = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        r.push_str(&format!("{:>8}", mb(t.peak_gpu_mb)));
        if let Some(p) = theirs {
            r.push_str(&format!("{:>10}", mb(p.peak_gpu_mb)));
        }
        r.push_str(&format!("{:>9}", t.host_ms_per_iter.map_or("-".to_string(), |v| format!("{v:.2}"))));
        // The steps' CUDA graphs replaying (GANZOO_CUDA_GRAPHS; "-" where not asked for).
        r.push_str(&format!("{:>8}", t.cuda_graphs.map_or("-".to_string(), |n| n.to_string())));
    }
    r + "\n"
}

fn table_summary(c: &Comparison, label: &str) -> String {
    let (lo, hi) = c.ratio_range();
    format!(
        "{label:<10} median of {} rounds: ganzoo {:.3} it/s, PyTorch {:.3} it/s, ratio {:.2} (rounds {lo:.2}–{hi:.2})\n",
        c.rounds.len(),
        c.ours_iters_per_s(),
        c.theirs_iters_per_s(),
        c.ratio()
    )
}

/// `line` with `"cuda_conv"`, the variant (`--cuda-conv`) it belongs to, if any.
fn with_variant(mut line: serde_json::Value, variant: Option<CudaConvArg>) -> String {
    if let Some(v) = variant {
        line["cuda_conv"] = v.name().into();
    }
    line.to_string() + "\n"
}

/// ganzoo's result line, with its round (and variant).
fn json_line(t: &Throughput, round: usize, variant: Option<CudaConvArg>) -> Result<String> {
    let mut v = serde_json::to_value(t)?;
    v["round"] = round.into();
    v["cpu"] = system::cpu_model().into();
    Ok(with_variant(v, variant))
}

/// A round's two lines, in the order they were measured; with a variant, the reference's
/// line repeated for each, with that variant's ratio.
fn json_round(round: usize, r: &Round, first: Side, variant: Option<CudaConvArg>) -> Result<String> {
    let p = &r.theirs;
    let reference = serde_json::json!({
        "reference": "pytorch", "model": r.ours.model, "case": p.case, "batch": p.batch, "round": round,
        "iters_per_s": p.gen_iters_per_s, "peak_rss_mb": p.peak_rss_mb, "peak_gpu_mb": p.peak_gpu_mb,
        "threads": p.threads,
        "torch": p.torch, "other_cpu_frac": p.other_cpu_frac, "ratio": r.ratio(),
    });
    let (ours, theirs) = (json_line(&r.ours, round, variant)?, with_variant(reference, variant));
    Ok(if first == Side::Ganzoo { ours + &theirs } else { theirs + &ours })
}

/// The model's line over all rounds: medians, the rounds' ratio range, peak memory.
fn json_summary(c: &Comparison, variant: Option<CudaConvArg>) -> Result<String> {
    let images_per_iter = c.rounds.first().map_or(0.0, |r| r.ours.images_per_s / r.ours.iters_per_s);
    let (lo, hi) = c.ratio_range();
    let line = serde_json::json!({
        "summary": true, "model": c.model(), "batch": c.batch(), "rounds": c.rounds.len(),
        "iters_per_s": c.ours_iters_per_s(), "images_per_s": c.ours_iters_per_s() * images_per_iter,
        "peak_rss_mb": c.ours_peak_rss_mb(), "torch_iters_per_s": c.theirs_iters_per_s(),
        "torch_peak_rss_mb": c.theirs_peak_rss_mb(), "ratio": c.ratio(), "ratio_min": lo, "ratio_max": hi,
    });
    Ok(with_variant(line, variant))
}

/// Every DCGAN layer (at --batch, else 64) with both convolution backends on the
/// target's device, and with `torch` (the reference and the CPU capability it reported)
/// PyTorch's time for the same layer right after, on the same device.
fn per_layer(args: &BenchArgs, torch: Option<(&TorchRef, &str)>, target: Target) -> Result<()> {
    let (device, batch) = (target.device()?, args.batch.unwrap_or(64));
    if !args.json {
        let theirs = if torch.is_some() { format!("{:>18}{:>8}", "PyTorch ms GF/s", "vs PT") } else { String::new() };
        let machine = if target.cuda() {
            let (gpu, (convolutions, _)) = (gpu_label(target), cuda_convolutions(None));
            format!("{gpu}, ganzoo's convolutions {convolutions}, its batch norms its CUDA kernels")
        } else {
            format!("CPU: {}, ganzoo's kernels at {}", system::cpu_model(), isa::active())
        };
        emit(&format!(
            "\n{machine}\n{:<28}{:>10}{:>18}{:>18}{:>8}{theirs}\n",
            format!("layer (batch {batch})"),
            "pass",
            "ganzoo ms GF/s",
            "candle ms GF/s",
            "speedup"
        ))?;
    }
    let torch = torch.map(|(t, capability)| (t, capability, target));
    for layer in ops::dcgan_layers(batch)? {
        let time = |b| ops::time_layer(&layer, b, 1.0, &device);
        layer_rows(args, torch, &layer.name, ops::torch_spec(&layer), time)?;
    }
    // Each batch norm + activation of DCGAN-32, as the networks run them.
    for layer in norms::dcgan_norms(batch) {
        let time = |b| norms::time_norm(&layer, b, 1.0, &device);
        layer_rows(args, torch, &layer.name, layer.torch_spec(), time)?;
    }
    ganzoo_models::set_kernel_backend(args.kernels);
    Ok(())
}

/// One layer timed by `time` with ganzoo's and Candle's back ends, then (with `torch`:
/// the reference, its CPU capability, the target) by PyTorch from `spec`; its rows
/// (forward, backward).
fn layer_rows(
    args: &BenchArgs,
    torch: Option<(&TorchRef, &str, Target)>,
    name: &str,
    spec: serde_json::Value,
    time: impl Fn(KernelBackend) -> ganzoo_bench::Result<[OpTiming; 2]>,
) -> Result<()> {
    quiet_enough(args);
    let (g, c) = (time(KernelBackend::Ganzoo)?, time(KernelBackend::Candle)?);
    let theirs = match torch {
        Some((t, capability, target)) => {
            let got = t.time_specs(vec![spec], 1.0, target).with_context(|| format!("PyTorch's timings of {name}"))?;
            Some([0, 1].map(|i| g[i].other("pytorch", capability, got[i].ms)))
        }
        None => None,
    };
    for i in 0..2 {
        let t = theirs.as_ref().map(|t| &t[i]);
        emit(&if args.json { layer_json(&[Some(&g[i]), Some(&c[i]), t])? } else { layer_row(name, &g[i], &c[i], t) })?;
    }
    Ok(())
}

/// One table row of [`per_layer`]: ganzoo, Candle, and PyTorch when timed (GF/s `-`
/// for batch norms, which count no multiply-adds).
fn layer_row(name: &str, g: &OpTiming, c: &OpTiming, t: Option<&OpTiming>) -> String {
    let rate = |t: &OpTiming| if t.gflops > 0.0 { format!("{:>9.1}", t.gflops) } else { format!("{:>9}", "-") };
    let theirs = t.map_or(String::new(), |t| format!("{:>9.2}{}{:>8.2}", t.ms, rate(t), t.ms / g.ms));
    format!("{name:<28}{:>10}{:>9.2}{}{:>9.2}{}{:>8.2}{theirs}\n", g.pass, g.ms, rate(g), c.ms, rate(c), c.ms / g.ms)
}

/// The JSON lines of one layer's pass, one per backend timed.
fn layer_json(timings: &[Option<&OpTiming>]) -> Result<String> {
    let mut out = String::new();
    for t in timings.iter().flatten() {
        out.push_str(&serde_json::to_string(t)?);
        out.push('\n');
    }
    Ok(out)
}

/// A short wait between layers; the layer timings are relative, so less patience.
fn quiet_enough(args: &BenchArgs) {
    if args.wait_quiet_s > 0.0 {
        system::wait_quiet(Duration::from_secs_f64(args.wait_quiet_s.min(10.0)));
    }
}

/// The level PyTorch is held to: ganzoo's, when `GANZOO_ISA` moved ganzoo off the
/// level it picks by itself (so both run as on a CPU without the wider instructions).
fn held_to() -> Option<Isa> {
    let used = isa::active();
    (used != Isa::preferred()).then_some(used)
}

/// PyTorch's reported capability, with the environment that held it there.
fn describe_hold(capability: &str, held_to: Option<Isa>) -> String {
    match held_to {
        Some(isa) => {
            let env: Vec<String> = ganzoo_bench::torch::isa_env(isa).iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{capability}, held there by {}", env.join(" "))
        }
        None => capability.to_string(),
    }
}

/// The instruction-set part of this CPU's table key: the best level the CPU has, or
/// `BEST-as-USED` when `GANZOO_ISA` moved the kernels off the level they pick.
fn isa_label() -> String {
    let best = Isa::detected();
    match held_to() {
        None => best.name().into(),
        Some(used) => format!("{best}-as-{used}"),
    }
}

fn write_report(
    path: &std::path::Path,
    (compared, variant): (&[Comparison], Option<CudaConvArg>),
    kernels: KernelBackend,
    (threads, rounds): (usize, usize),
    torch_isa: String,
    target: Target,
) -> Result<()> {
    let ((products, suffix), (convolutions, conv_suffix)) = (cuda_precision(), cuda_convolutions(variant));
    let (workspace, ws_suffix) = cudnn_workspace();
    let gpu = if target.cuda() {
        let name = ganzoo_train::device::name(&target.device()?).unwrap_or_else(|| gpu_label(target));
        let replay = if ganzoo_train::replay::requested() { "; steps replayed as CUDA graphs" } else { "" };
        Some((name, format!("{products}; convolutions {convolutions}{workspace}{replay}")))
    } else {
        None
    };
    // On a GPU one table per batch, TF32 setting, convolutions and workspace bound: the
    // cases' own batches differ.
    let batch = compared.first().map_or(0, Comparison::batch);
    // Steps replayed as CUDA graphs are keyed apart (`-graphs`), whether or not every
    // recording worked (the rows' `graphs` column says).
    let graphs = if ganzoo_train::replay::requested() { "-graphs" } else { "" };
    let label =
        if target.cuda() { format!("cuda-b{batch}{suffix}{conv_suffix}{ws_suffix}{graphs}") } else { isa_label() };
    let label = match target.precision.activations() {
        Some(_) => format!("{label}-{}", target.precision.name()),
        None => label,
    };
    let cpu = system::cpu_model();
    let kind = report::table_key(&label, gpu.as_ref().map_or(&cpu, |(name, _)| name));
    let setting = Setting {
        date: report::today(),
        cpu,
        cpus: system::cpus(),
        isa: isa::active().name().into(),
        kind,
        threads,
        ganzoo: env!("CARGO_PKG_VERSION").into(),
        candle: report::candle_version(std::path::Path::new("Cargo.lock")),
        torch: compared.iter().flat_map(|c| c.rounds.first()).next().map_or("?".into(), |r| r.theirs.torch.clone()),
        torch_isa,
        kernels: kernels.name().into(),
        precision: target.precision.name().into(),
        rounds,
        gpu,
    };
    report::write_section(path, &setting.kind, &report::section(&setting, compared))?;
    tracing::info!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throughput(device: &str, host_ms_per_iter: Option<f64>, cuda_graphs: Option<usize>) -> Throughput {
        Throughput {
            model: "dcgan32".into(),
            batch: 64,
            iters_per_s: 160.0,
            iters_per_s_min: 150.0,
            iters_per_s_max: 170.0,
            ms_per_iter: 6.25,
            images_per_s: 10240.0,
            critic_images_per_s: 30720.0,
            peak_rss_mb: 500.0,
            peak_heap_mb: None,
            peak_gpu_mb: Some(68.0),
            host_ms_per_iter,
            cuda_graphs,
            threads: 16,
            device: device.into(),
            kernels: "ganzoo".into(),
            precision: "f32".into(),
            isa: "avx512".into(),
            repeats: 3,
            iters_per_repeat: 100,
            warmup_iters: 3,
            other_cpu_frac: 0.0,
        }
    }

    /// A GPU row ends with the host's milliseconds an iteration and the CUDA graphs
    /// replaying, under their headers; a CPU row has neither column.
    #[test]
    fn gpu_rows_show_the_hosts_share_of_an_iteration_under_their_header() {
        let cuda = Target { device: DeviceSpec::Cuda(0), ..Target::default() };
        let header = table_header("", cuda, 8);
        let head = header.lines().rev().nth(1).unwrap();
        let row = table_row((0, "dcgan32", 8), &throughput("cuda:0", Some(4.567), Some(2)), None);
        assert!(head.ends_with("  GPU MB  host ms  graphs"), "{head}");
        assert!(row.trim_end().ends_with("      68     4.57       2"), "{row}");
        assert_eq!(row.trim_end().chars().count(), head.chars().count());
        let missing = table_row((0, "dcgan32", 8), &throughput("cuda:0", None, None), None);
        assert!(missing.trim_end().ends_with("      68        -       -"), "{missing}");
        let cpu = table_row((0, "dcgan32", 8), &throughput("cpu", Some(4.567), Some(2)), None);
        assert!(!cpu.contains("4.57"), "{cpu}");
    }
}
