//! `ganzoo figures NAME… | all`: the papers' figures as PNG charts and CSV numbers
//! (crate `ganzoo-figures`), every name and every file checked before any is computed.

use anyhow::Context;
use ganzoo_figures::mode_coverage::Budget;
use ganzoo_figures::{make, Figure, Options};

use crate::cli::FiguresArgs;
use crate::output::emit;

pub fn run(args: FiguresArgs) -> anyhow::Result<()> {
    let named: Vec<Figure> = if args.names.iter().any(|n| n == "all") {
        Figure::ALL.to_vec()
    } else {
        args.names.iter().map(|n| n.parse().map_err(anyhow::Error::msg)).collect::<anyhow::Result<_>>()?
    };
    // A name given twice is made once (the second would find the first's files).
    let mut figures = Vec::new();
    for figure in named {
        if !figures.contains(&figure) {
            figures.push(figure);
        }
    }
    let budget = Budget { iters: args.iters, eval_every: args.eval_every, seeds: args.seeds };
    anyhow::ensure!(
        budget.iters > 0 && budget.seeds > 0 && budget.eval_every > 0 && budget.iters.is_multiple_of(budget.eval_every),
        "--iters, --seeds and --eval-every must be positive, --iters a multiple of --eval-every"
    );
    let options = Options { out: args.out.clone(), seed: args.seed, overwrite: args.overwrite, budget };
    ganzoo_figures::check_outputs(&figures, &options)?;
    for figure in figures {
        let made = make(figure, &options).with_context(|| format!("figure {}", figure.name()))?;
        emit(&format!("{}: {} and {}\n  {}\n", figure.name(), made.png.display(), made.csv.display(), made.summary))?;
    }
    Ok(())
}
