//! Charts: text drawn with the embedded font, tick labels, degenerate ranges, the value
//! surface's colour bar, size and shape errors.

use ganzoo::charts::{
    histogram, render_png, tick, viridis, Chart, ChartError, Mark, PointSet, RGBColor, Series, Surface,
};

fn rgb(png: &[u8]) -> image::RgbImage {
    image::load_from_memory(png).unwrap().to_rgb8()
}

fn dark_pixels(img: &image::RgbImage, rows: std::ops::Range<u32>) -> usize {
    rows.flat_map(|y| (0..img.width()).map(move |x| (x, y))).filter(|&(x, y)| img.get_pixel(x, y).0[0] < 100).count()
}

fn chart(title: &str, points: Vec<(f64, f64)>) -> Chart {
    Chart::new(title, "iteration", "loss", vec![Series::new("d", points, Mark::Line)])
}

#[test]
fn titles_and_labels_are_drawn_in_the_embedded_font() {
    let draw =
        |c: &Chart| rgb(&render_png((400, 300), (1, 1), |a| -> Result<(), ChartError> { c.draw_on(&a[0]) }).unwrap());
    let with = draw(&chart("a title", vec![(0.0, 1.0), (10.0, 2.0)]));
    let without = draw(&chart("", vec![(0.0, 1.0), (10.0, 2.0)]));
    // The caption band holds ink only when there is a title: glyphs were rasterised.
    assert!(dark_pixels(&with, 0..30) > 30, "no title drawn");
    assert_eq!(dark_pixels(&without, 0..10), 0);
    // Axis titles and tick labels in the bottom band.
    assert!(dark_pixels(&with, 255..300) > 50);
}

#[test]
fn tick_labels_carry_the_decimals_their_axis_needs() {
    assert_eq!(tick(1500.0, 1000.0), "1500");
    assert_eq!(tick(0.3, 1.0), "0.3");
    assert_eq!(tick(0.0031, 0.01), "0.003");
    assert_eq!(tick(-0.00001, 1.0), "0.0", "no minus zero");
    assert_eq!(tick(-2.5, 20.0), "-2");
}

#[test]
fn a_constant_or_empty_series_still_draws_an_axis() {
    for points in [vec![(5.0, 3.0)], vec![(0.0, 1.0), (1.0, 1.0)], vec![], vec![(0.0, f64::NAN)]] {
        let c = chart("t", points.clone());
        render_png((300, 200), (1, 1), |a| -> Result<(), ChartError> { c.draw_on(&a[0]) })
            .unwrap_or_else(|e| panic!("{points:?}: {e}"));
    }
}

#[test]
fn the_surface_has_a_colour_bar_from_low_to_high() {
    let side = 16;
    // Rising to the right: the bar's top is the highest value's colour (yellow), its bottom the lowest's.
    let values = (0..side * side).map(|k| (k % side) as f64).collect();
    let surface = Surface {
        title: "s".into(),
        radius: 2.0,
        values,
        side,
        value_label: "critic value".into(),
        points: vec![PointSet {
            label: "real".into(),
            points: vec![(0.0, 0.0), (9.0, 9.0)],
            colour: RGBColor(255, 127, 14),
        }],
    };
    let img = rgb(&render_png((600, 480), (1, 1), |a| -> Result<(), ChartError> { surface.draw_on(&a[0]) }).unwrap());
    // The bar is the rightmost column with colour in it; sample it near its top and bottom.
    let colourful = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        p.iter().max().unwrap() - p.iter().min().unwrap() > 60
    };
    let x = (0..600).rev().find(|&x| colourful(x, 240)).unwrap();
    let ys: Vec<u32> = (0..480).filter(|&y| colourful(x, y)).collect();
    let (top, bottom) = (img.get_pixel(x, ys[2]).0, img.get_pixel(x, *ys.last().unwrap() - 2).0);
    let near = |p: [u8; 3], c: RGBColor| p.iter().zip([c.0, c.1, c.2]).all(|(a, b)| a.abs_diff(b) < 40);
    assert!(near(top, viridis(1.0)), "top {top:?}");
    assert!(near(bottom, viridis(0.0)), "bottom {bottom:?}");
    assert!(x > 480, "the bar sits right of the surface: x = {x}");
}

#[test]
fn bad_sizes_and_shapes_are_errors() {
    let bad = Surface {
        title: "s".into(),
        radius: 1.0,
        values: vec![0.0; 10],
        side: 4,
        value_label: String::new(),
        points: vec![],
    };
    let err = render_png((300, 300), (1, 1), |a| -> Result<(), ChartError> { bad.draw_on(&a[0]) }).unwrap_err();
    assert!(err.to_string().contains("10 values for a 4×4 grid"), "{err}");
    for size in [(0, 10), (10, 0), (9000, 10)] {
        let err = render_png(size, (1, 1), |_| -> Result<(), ChartError> { Ok(()) }).unwrap_err();
        assert!(matches!(err, ChartError::Size(..)), "{err}");
    }
}

#[test]
fn histograms_and_the_colour_ramp() {
    let bars = histogram(&[0.0, 0.1, 0.5, 0.99, 1.0, 7.0, -3.0, f64::NAN], (0.0, 1.0), 2);
    assert_eq!(bars, vec![(0.0, 0.5, 3), (0.5, 1.0, 4)], "out-of-range values go to the end bins, NaN nowhere");
    assert_eq!(viridis(0.0), RGBColor(68, 1, 84));
    assert_eq!(viridis(1.0), RGBColor(253, 231, 37));
    assert_eq!(viridis(f64::NAN), viridis(0.0));
    assert_eq!(viridis(2.0), viridis(1.0));
}
