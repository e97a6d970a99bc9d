//! A figure's two files, each written whole (temporary name, then rename): the chart
//! as PNG and the numbers behind it as CSV.

use std::path::Path;

use ganzoo_charts::Panel;

use crate::{FigureError, Result};

/// A `w × h` PNG whose `rows × cols` panels `draw` fills, left to right, top to bottom.
pub fn save_png(
    path: &Path,
    size: (u32, u32),
    grid: (usize, usize),
    draw: impl FnOnce(&[Panel<'_>]) -> Result<()>,
) -> Result<()> {
    let png = ganzoo_charts::render_png(size, grid, draw)?;
    write_whole(path, |tmp| std::fs::write(tmp, &png).map_err(|e| io(path, e)))
}

/// Writes `header` and `rows` as CSV (numbers in full precision; `inf` for infinities).
pub fn save_csv(path: &Path, header: &[&str], rows: &[Vec<f64>]) -> Result<()> {
    let mut text = header.join(",") + "\n";
    for row in rows {
        text += &row.iter().map(|v| format!("{v}")).collect::<Vec<_>>().join(",");
        text.push('\n');
    }
    write_whole(path, |tmp| std::fs::write(tmp, &text).map_err(|e| io(path, e)))
}

/// Writes `text` whole.
pub fn save_text(path: &Path, text: &str) -> Result<()> {
    write_whole(path, |tmp| std::fs::write(tmp, text).map_err(|e| io(path, e)))
}

fn write_whole(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    ganzoo_eval::files::write_whole_with(path, write, |e| io(path, e))
}

fn io(path: &Path, e: std::io::Error) -> FigureError {
    FigureError::Io { path: path.to_path_buf(), detail: e.to_string() }
}
