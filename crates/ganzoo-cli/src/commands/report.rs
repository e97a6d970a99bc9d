//! `ganzoo report RUN…`: one run's `report.html` (and charts) rewritten from its files,
//! or, for several runs, a comparison page at `--out`.

use anyhow::Context;
use ganzoo_train::compare::comparison_html;
use ganzoo_train::report::{self, RunView};

use crate::cli::ReportArgs;
use crate::commands::data::output_kind;
use crate::output::emit;

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    if let [run] = args.runs.as_slice() {
        if let Some(out) = &args.out {
            anyhow::bail!(
                "--out {} names the page comparing several runs; one run's report is rewritten in the run ({})",
                out.display(),
                run.join("report.html").display()
            );
        }
        let page = report::rewrite(run).with_context(|| format!("cannot rewrite the report of {}", run.display()))?;
        return emit(&format!("wrote {}\n", page.display()));
    }
    let out = args.out.unwrap_or_else(|| "comparison.html".into());
    output_kind(&out, &["html"], args.overwrite)?;
    let views = args
        .runs
        .iter()
        .map(|r| RunView::load(r).with_context(|| format!("cannot read the run {}", r.display())))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let html = comparison_html(&views, &out)?;
    ganzoo_data::partial::write_whole(&out, html.as_bytes())?;
    emit(&format!("wrote {} comparing {} runs\n", out.display(), views.len()))
}
