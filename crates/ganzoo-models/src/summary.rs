//! A layer-by-layer description of a network: name, kind, output shape, parameters.

use candle_core::Tensor;

use crate::network::Network;
use crate::params::{is_buffer, ParamStore};
use crate::Result;

/// One row of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSummary {
    pub name: String,
    pub kind: &'static str,
    /// Output shape for a batch of one.
    pub output: Vec<usize>,
    pub params: usize,
}

/// Runs `input` (a batch of one, evaluation mode) through `net` and describes each layer.
pub fn summarize(net: &Network, store: &ParamStore, input: &Tensor) -> Result<Vec<LayerSummary>> {
    let outs = net.trace(input, false)?;
    let named = store.named();
    Ok(net
        .layers()
        .iter()
        .zip(outs)
        .map(|((name, layer), out)| {
            let prefix = format!("{name}.");
            let params = named
                .iter()
                .filter(|(n, _)| n.starts_with(&prefix) && !is_buffer(n))
                .map(|(_, v)| v.elem_count())
                .sum();
            LayerSummary { name: name.clone(), kind: layer.kind(), output: out.dims().to_vec(), params }
        })
        .collect())
}

/// Formats a summary as an aligned table with a total.
pub fn render(title: &str, rows: &[LayerSummary]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(5);
    let mut out = format!("{title}\n  {:width$}  {:16} {:>18} {:>12}\n", "layer", "kind", "output", "params");
    for r in rows {
        let shape = format!("{:?}", r.output);
        out += &format!("  {:width$}  {:16} {:>18} {:>12}\n", r.name, r.kind, shape, group(r.params));
    }
    out += &format!("  total parameters: {}\n", group(rows.iter().map(|r| r.params).sum()));
    out
}

/// `3576704` → `3,576,704`.
pub fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
