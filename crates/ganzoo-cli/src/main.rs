//! `ganzoo`: the command-line tool. Parsing lives in [`cli`], each command in [`commands`].

// The grammar's doc comments are `--help` text, where `<name>` is a placeholder, not HTML.
#![allow(rustdoc::invalid_html_tags)]

mod allocator;
mod cli;
mod commands;
mod logfile;
mod output;
mod pool;
mod progress;
mod signals;

fn main() -> std::process::ExitCode {
    allocator::keep_freed_memory();
    pool::limit_candle_spinning();
    let cli = cli::Cli::parse_args();
    logfile::init();
    // The kernels' instruction set, checked once here (kernels would only warn).
    if let Err(e) = ganzoo_kernels::isa::from_env().and_then(ganzoo_kernels::isa::set) {
        output::note(&format!("error: GANZOO_ISA: {e}"));
        return std::process::ExitCode::FAILURE;
    }
    if let Err(e) = tf32_from_env() {
        output::note(&format!("error: GANZOO_TF32: {e}"));
        return std::process::ExitCode::FAILURE;
    }
    if let Err(e) = pool::check_thread_count() {
        output::note(&format!("error: {e}"));
        return std::process::ExitCode::FAILURE;
    }
    match pool::run_in_pool(|| commands::run(cli.command, cli.max_memory)) {
        Ok(code) => code,
        Err(e) if e.downcast_ref::<signals::Stopped>().is_some() => {
            output::note(&e.to_string());
            e.downcast_ref::<signals::Stopped>().map_or(std::process::ExitCode::FAILURE, |s| s.0.into())
        }
        Err(e) => {
            output::note(&format!("error: {}", chain(&e)));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `GANZOO_TF32=1` lets every f32 matrix product on CUDA (convolutions, linear
/// layers) use TF32 tensor cores; `conv` only the convolutions, as PyTorch does by
/// default (`cudnn.allow_tf32` on, `cuda.matmul.allow_tf32` off); `0` or unset keeps
/// them exact f32. No effect on the CPU.
fn tf32_from_env() -> Result<(), String> {
    match std::env::var("GANZOO_TF32").as_deref() {
        Ok("1") => candle_core::cuda::set_gemm_reduced_precision_f32(true),
        Ok("conv") => ganzoo_kernels::set_conv_tf32(true),
        Ok("0") | Err(std::env::VarError::NotPresent) => {}
        Ok(other) => return Err(format!("'{other}': expected 1, conv or 0")),
        Err(e) => return Err(e.to_string()),
    }
    Ok(())
}

/// The error and its causes joined by `: `, skipping a cause its parent's message
/// already ends with (several error types print their source themselves).
fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}
