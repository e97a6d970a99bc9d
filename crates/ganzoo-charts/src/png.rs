//! Figures of panels, drawn on an RGB buffer and encoded as PNG in memory.

use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{draw_err, ChartError, Result};

/// One panel of a figure: where a chart draws.
pub type Panel<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Largest side of a figure, in pixels.
const MAX_SIDE: u32 = 8192;

/// A `w × h` figure whose `rows × cols` panels `draw` fills (left to right, top to
/// bottom), as PNG bytes. `draw` may fail with the caller's own error type.
pub fn render_png<E: From<ChartError>>(
    (w, h): (u32, u32),
    (rows, cols): (usize, usize),
    draw: impl FnOnce(&[Panel<'_>]) -> Result<(), E>,
) -> Result<Vec<u8>, E> {
    if !(1..=MAX_SIDE).contains(&w) || !(1..=MAX_SIDE).contains(&h) {
        return Err(ChartError::Size(w, h).into());
    }
    let mut buf = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let panels = root.split_evenly((rows.max(1), cols.max(1)));
        draw(&panels)?;
        root.present().map_err(draw_err)?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&buf, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(png)
}
