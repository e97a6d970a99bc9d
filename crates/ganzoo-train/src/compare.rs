//! A page that compares runs: their final metrics in one table, their curves overlaid, and
//! their configurations and training images side by side (rows that differ marked). One
//! self-contained file: the charts are embedded as PNG data; each run's name links to its
//! own report.

use std::path::Path;

use base64::Engine as _;
use ganzoo_charts::{render_png, Chart, Mark, Series};
use ganzoo_eval::EvalReport;

use crate::data_record::DataRecord;
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
    body += &final_table(runs, out);
    body += &reference_warning(runs);
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

fn final_table(runs: &[RunView<'_>], out: &Path) -> String {
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
        "last evaluation",
    ];
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
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
                escape(&last_eval(&r.history)),
            ]
        })
        .collect();
    table(&header, &rows)
}

/// `FID 123.4 (it 2000)` or `W1 0.071, 8/8 modes (it 3000)`.
fn last_eval(history: &[Metrics]) -> String {
    let Some((it, e)) = history.iter().rev().find_map(|m| m.eval.as_ref().map(|e| (m.iteration, e))) else {
        return "—".into();
    };
    match e {
        EvalReport::Image(r) => {
            format!("FID {:.1}, precision {:.2}, recall {:.2} (it {it})", r.fid, r.precision, r.recall)
        }
        EvalReport::Toy(r) => {
            let modes = match (r.modes_covered, r.modes) {
                (Some(c), Some(n)) => format!(", {c}/{n} modes"),
                _ => String::new(),
            };
            format!("W1 {:.4}{modes} (it {it})", r.w1)
        }
    }
}

/// The real side of a run's last image evaluation ([`ganzoo_eval::image::Reference`],
/// with the split and resizing), where it was recorded.
fn last_reference(history: &[Metrics]) -> Option<String> {
    let Some(EvalReport::Image(r)) = history.iter().rev().find_map(|m| m.eval.as_ref()) else { return None };
    let reference = r.reference.as_ref()?;
    let resized = r.real_resized_to.map_or(String::new(), |s| format!(", resized to {s}×{s}"));
    Some(format!(
        "{} (network {}), real images {} ({}{resized})",
        r.features,
        reference.network,
        reference.real,
        r.real_split.as_deref().unwrap_or("test")
    ))
}

/// A note under the final metrics where the runs' last image evaluations were measured
/// against different feature networks or real images: their FIDs do not compare.
fn reference_warning(runs: &[RunView<'_>]) -> String {
    let references: Vec<(String, String)> =
        runs.iter().filter_map(|r| last_reference(&r.history).map(|x| (r.name.clone(), x))).collect();
    if references.iter().all(|(_, x)| *x == references[0].1) {
        return String::new();
    }
    let items: String =
        references.iter().map(|(name, x)| format!("<li>{}: {}</li>", escape(name), escape(x))).collect();
    format!(
        "<p class=\"warn\">The last evaluations were measured against different references; \
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
