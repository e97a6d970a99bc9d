//! The one font every chart uses, compiled in.

use std::sync::Once;

use plotters::style::{register_font, FontStyle};

/// The family name charts ask plotters for; [`register`] maps it to the embedded font.
pub(crate) const FONT: &str = "sans-serif";

/// Registers the embedded DejaVu Sans subset (Latin-1, Greek, a few math signs) as
/// the font family every chart names. Every drawing function calls it; callers drawing with plotters directly
/// call it first.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");
        // Only fails on a font ab_glyph cannot parse: the embedded one parses (tested).
        let _ = register_font(FONT, FontStyle::Normal, bytes);
    });
}
