//! A page that compares runs: their final metrics in one table, their curves overlaid, and
//! their configurations and training images side by side (rows that differ marked). One
//! self-contained file: the charts are embedded as PNG data; each run's name links to its
//! own report.

use std::path::Path;

use base64::Engine as _;
use ganzoo_charts::{render_png, Chart, Mark, Series};
use ganzoo_eval::EvalReport;

use crate::data_record::DataRecord;
use crate::evaluations::{self, reference, results};
use crate::html::{escape, page, table, url};
use crate::metrics::Metrics;
use crate::plot::{fid, modes_covered, w1};
use crate::report::{Number, RunView, REPORT_FILE};
use crate::Result;

/// Size of each overlaid chart (two fit side by side on the page).
pub const CHART: (u32, u32) = (640, 420);

/// The comparison page of `runs`, to be written at `out` (links are relative to it).
pub fn comparison_html(runs: &[RunView<'_>], out: &Path) -> Result<String> {
    let names: Vec<String> = runs.iter().map(|r| r.name.clone()).collect();
    let mut body =
        format!("<h1>Comparison of {} runs</h1>\n<p class=\"sub\">{}</p>\n", runs.len(), escape(&names.join(" · ")));
    body += "<h2>Final metrics</h2>\n";
    // Each run's eval/ read once, for its column and the warning.
    let reports: Vec<Option<(String, EvalReport)>> = runs.iter().map(|r| latest_report(&r.path)).collect();
    body += &final_table(runs, &reports, out);
    let named = |r: &RunView<'_>, e: Option<&EvalReport>| Some((r.name.clone(), reference(e?)?));
    let training: Vec<_> = runs.iter().filter_map(|r| named(r, last_eval(&r.history).map(|(_, e)| e))).collect();
    let latest: Vec<_> =
        runs.iter().zip(&reports).filter_map(|(r, report)| named(r, report.as_ref().map(|(_, e)| e))).collect();
    body += &reference_warning("last evaluations in training", &training);
    body += &reference_warning("latest eval reports", &latest);
    body += "<h2>Curves</h2>\n<div class=\"charts\">\n";
    for chart in overlaid_charts(runs) {
        let png = render_png(CHART, (1, 1), |a| -> Result<()> { Ok(chart.draw_on(&a[0])?) })?;
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        body += &format!("<img src=\"data:image/png;base64,{data}\" alt=\"{}\">\n", escape(&chart.title));
    }
    body += "</div>\n";
    body += "<h2>Configurations</h2>\n<p>Rows that differ between the runs are marked.</p>\n";
    body += &config_table(runs)?;
    Ok(page("ganzoo run comparison", None, &body))
}

fn final_table(runs: &[RunView<'_>], reports: &[Option<(String, EvalReport)>], out: &Path) -> String {
    let header = [
        "run",
        "family",
        "data",
        "status",
        "iteration",
        "wall time (s)",
        "mean rate / s",
        "critic loss",
        "generator loss",
        "W estimate",
        "last evaluation (training)",
        "latest eval report",
    ];
    let rows: Vec<Vec<String>> = runs
        .iter()
        .zip(reports)
        .map(|(r, latest)| {
            let last = r.history.last();
            let f = |v: Option<f64>| v.map_or("—".into(), |v| Number(v).to_string());
            let report = r.path.join(REPORT_FILE);
            let name = if report.is_file() {
                format!("<a href=\"{}\">{}</a>", url(&relative(&report, out)), escape(&r.name))
            } else {
                escape(&r.name)
            };
            vec![
                name,
                escape(r.config.family.name()),
                escape(&r.config.data.to_string()),
                escape(&r.status.text()),
                last.map_or("0".into(), |m| m.iteration.to_string()),
                f(last.map(|m| m.wall_time_s)),
                f(last.map(|_| crate::report::mean_rate(&r.history))),
                f(last.map(|m| m.d_loss)),
                f(last.map(|m| m.g_loss)),
                f(last.and_then(|m| m.wasserstein)),
                escape(&last_eval(&r.history).map_or("—".into(), |(it, e)| format!("{} (it {it})", results(e)))),
                escape(&match latest {
                    Some((name, e)) => format!("{} ({name})", results(e)),
                    None => "—".into(),
                }),
            ]
        })
        .collect();
    table(&header, &rows)
}

/// The last training-time evaluation (`--eval-every`): its numbers and iteration.
fn last_eval(history: &[Metrics]) -> Option<(u64, &EvalReport)> {
    history.iter().rev().find_map(|m| m.eval.as_ref().map(|e| (m.iteration, e)))
}

/// The latest readable report of `eval --run` in the run's `eval/`, with its file name.
fn latest_report(run: &Path) -> Option<(String, EvalReport)> {
    evaluations::read_all(run).into_iter().rev().find_map(|(name, r)| r.ok().map(|r| (name, r)))
}

/// A note under the final metrics where, in one column, the runs' image evaluations were
/// measured against different feature networks or real images: their FIDs do not compare.
fn reference_warning(column: &str, references: &[(String, String)]) -> String {
    if references.iter().all(|(_, x)| *x == references[0].1) {
        return String::new();
    }
    let items: String =
        references.iter().map(|(name, x)| format!("<li>{}: {}</li>", escape(name), escape(x))).collect();
    format!(
        "<p class=\"warn\">The runs' {column} were measured against different references; \
         their FIDs, KIDs and precision / recall do not compare:</p>\n<ul>{items}</ul>\n"
    )
}

/// One chart per quantity, one line per run; quantities no run has are left out.
fn overlaid_charts(runs: &[RunView<'_>]) -> Vec<Chart> {
    let per_run = |f: &dyn Fn(&Metrics) -> Option<f64>| -> Vec<Series> {
        runs.iter()
            .map(|r| {
                let pts = r.history.iter().filter_map(|m| f(m).map(|v| (m.iteration as f64, v))).collect();
                Series::new(r.name.clone(), pts, Mark::Line)
            })
            .collect()
    };
    let eval = |m: &Metrics, f: fn(&EvalReport) -> Option<f64>| m.eval.as_ref().and_then(f);
    let x = "generator iteration";
    let charts = vec![
        Chart::new("generator loss", x, "loss", per_run(&|m| Some(m.g_loss))),
        Chart::new("critic / discriminator loss", x, "loss", per_run(&|m| Some(m.d_loss))),
        Chart::new("Wasserstein estimate", x, "E f(x) − E f(G(z))", per_run(&|m| m.wasserstein)),
        Chart::new("D(G(z))", x, "mean probability", per_run(&|m| m.d_fake)),
        Chart::new("FID", x, "FID (lower is better)", per_run(&|m| eval(m, fid))),
        Chart::new("W1 to the data", x, "W1 (lower is better)", per_run(&|m| eval(m, w1))),
        Chart::new("modes covered", x, "modes", per_run(&|m| eval(m, modes_covered))),
    ];
    charts.into_iter().filter(|c| c.series.iter().any(|s| !s.points.is_empty())).collect()
}

fn config_table(runs: &[RunView<'_>]) -> Result<String> {
    let mut flat: Vec<Vec<(String, String)>> = Vec::new();
    for r in runs {
        let value: toml::Table = toml::from_str(&r.config.to_toml()?).unwrap_or_default();
        let mut rows = Vec::new();
        flatten_toml("", &toml::Value::Table(value), &mut rows);
        flat.push(rows);
    }
    let mut keys: Vec<String> = flat.iter().flatten().map(|(k, _)| k.clone()).collect();
    keys.sort();
    keys.dedup();
    let mut rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let values: Vec<String> = flat
                .iter()
                .map(|rows| rows.iter().find(|(key, _)| key == k).map_or("—".into(), |(_, v)| v.clone()))
                .collect();
            row(k, &values)
        })
        .collect();
    // What each trained on (data.json; toys and runs older than it have none).
    let images: Vec<String> =
        runs.iter().map(|r| DataRecord::read(&r.path).ok().flatten().map_or("—".into(), |d| d.describe())).collect();
    rows.push(row("training images", &images));
    let header: Vec<&str> = std::iter::once("setting").chain(runs.iter().map(|r| r.name.as_str())).collect();
    Ok(table(&header, &rows))
}

/// A table row: the key (marked `!` where the values differ), then each run's value.
fn row(key: &str, values: &[String]) -> Vec<String> {
    let differs = values.windows(2).any(|w| w[0] != w[1]);
    let key = if differs { format!("!{}", escape(key)) } else { escape(key) };
    std::iter::once(key).chain(values.iter().map(|v| escape(v))).collect()
}

fn flatten_toml(prefix: &str, v: &toml::Value, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_toml(&key, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.into(), s.clone())),
        other => out.push((prefix.into(), other.to_string())),
    }
}

/// `target` as a path relative to the folder holding `from` (absolute if they share no root).
pub fn relative(target: &Path, from: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (target, base) = (abs(target), abs(from.parent().unwrap_or(Path::new("."))));
    let (t, b): (Vec<_>, Vec<_>) = (target.components().collect(), base.components().collect());
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return target.display().to_string();
    }
    let ups = std::iter::repeat_n("..".to_string(), b.len() - common);
    let downs = t[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned());
    ups.chain(downs).collect::<Vec<_>>().join("/")
}
