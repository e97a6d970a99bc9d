//! `ganzoo figures NAME… | all`: the papers' figures as PNG charts and CSV numbers
//! (crate `ganzoo-figures`), every name and every file checked before any is computed.
//! mode-coverage, which trains 18 runs by default, is made last, under the stop signals:
//! a first one stops its run in progress with a checkpoint, and `--resume` continues.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use ganzoo_figures::mode_coverage::{Budget, DEFAULT};
use ganzoo_figures::{make, Existing, Figure, FigureError, Options};
use ganzoo_train::{Metrics, Observer};

use crate::cli::FiguresArgs;
use crate::commands::first_given;
use crate::output::{emit, program, shell_word};
use crate::signals::{StopNotice, StopSignals};

pub fn run(args: FiguresArgs) -> anyhow::Result<ExitCode> {
    let figures = figures(&args.names)?;
    let budget = budget(&args, &figures)?;
    let existing = match (args.overwrite, args.resume) {
        (true, _) => Existing::Replace,
        (_, true) => Existing::Resume,
        _ => Existing::Refuse,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let options = Options { out: args.out.clone(), seed: args.seed, existing, budget, stop: Arc::clone(&stop) };
    ganzoo_figures::check_outputs(&figures, &options)?;
    for figure in figures {
        // Only mode-coverage trains long enough to stop cleanly; the others are killed
        // by a signal as before (their files are written whole or not at all).
        let signals = (figure == Figure::ModeCoverage).then(|| StopSignals::install(Arc::clone(&stop))).transpose()?;
        let notice = signals.as_ref().map(|_| StopNotice::watch(Arc::clone(&stop)));
        let made = make(figure, &options, &mut RunLines);
        drop(notice);
        let made = match (made, &signals) {
            (Err(e @ FigureError::Stopped { .. }), Some(signals)) => {
                emit(&format!("{e}; continue with: {}\n", continue_command(&args, budget)))?;
                return Ok(ExitCode::from(signals.exit_status()));
            }
            (made, _) => made.with_context(|| format!("figure {}", figure.name()))?,
        };
        let (png, csv) = (made.png.display(), made.csv.display());
        match made.kept {
            true => emit(&format!("{}: kept {png} and {csv} (made before)\n", figure.name()))?,
            false => emit(&format!("{}: {png} and {csv}\n  {}\n", figure.name(), made.summary))?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// mode-coverage's budget: the flags over [`DEFAULT`], checked; refused by name when
/// mode-coverage is not among `figures` (no other figure trains runs to budget).
fn budget(args: &FiguresArgs, figures: &[Figure]) -> anyhow::Result<Budget> {
    let given = [
        (args.iters.is_some(), "--iters"),
        (args.eval_every.is_some(), "--eval-every"),
        (args.seeds.is_some(), "--seeds"),
    ];
    if let (false, Some(flag)) = (figures.contains(&Figure::ModeCoverage), first_given(&given)) {
        anyhow::bail!("{flag} sets mode-coverage's runs, and mode-coverage is not among the figures asked for");
    }
    let budget = Budget {
        iters: args.iters.unwrap_or(DEFAULT.iters),
        eval_every: args.eval_every.unwrap_or(DEFAULT.eval_every),
        seeds: args.seeds.unwrap_or(DEFAULT.seeds),
    };
    budget.check(args.seed)?;
    Ok(budget)
}

/// The figures named (`all`: every one), each once, mode-coverage last.
fn figures(names: &[String]) -> anyhow::Result<Vec<Figure>> {
    let named: Vec<Figure> = if names.iter().any(|n| n == "all") {
        Figure::ALL.to_vec()
    } else {
        names.iter().map(|n| n.parse().map_err(anyhow::Error::msg)).collect::<anyhow::Result<_>>()?
    };
    // A name given twice is made once (the second would find the first's files).
    let mut figures = Vec::new();
    for figure in named {
        if !figures.contains(&figure) {
            figures.push(figure);
        }
    }
    figures.sort_by_key(|&f| f == Figure::ModeCoverage);
    Ok(figures)
}

/// The command that continues a stopped mode-coverage: the same figures, folder and budget.
fn continue_command(args: &FiguresArgs, budget: Budget) -> String {
    format!(
        "{} figures {} --out {} --seed {} --iters {} --eval-every {} --seeds {} --resume",
        program(),
        args.names.join(" "),
        shell_word(&args.out),
        args.seed,
        budget.iters,
        budget.eval_every,
        budget.seeds
    )
}

/// mode-coverage's runs, a line on stderr as each starts (a run takes about a minute).
struct RunLines;

impl Observer for RunLines {
    fn on_metrics(&mut self, _: &Metrics, _: u64) {}
    fn on_message(&mut self, message: &str) {
        crate::output::note(message);
    }
}
