//! Image grids: many small images tiled into one PNG, as torchvision's
//! `make_grid` / `save_image` do (2-pixel padding, `nrow` images per row).

use std::path::Path;

use candle_core::{DType, Tensor};

use crate::{DataError, ImageShape, Result};

/// Longest side of a grid image (PNG allows 2³¹ − 1; decoders and viewers far less).
pub const MAX_GRID_SIDE: usize = 65_535;

/// Converts `(N, C, H, W)` values in [−1, 1] to `u8` pixels (clamped, `(x + 1) · 127.5`, rounded).
pub fn tensor_to_u8(images: &Tensor) -> Result<(ImageShape, Vec<u8>)> {
    let (_, c, h, w) = images.dims4()?;
    let values: Vec<f32> = images.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let pixels = values.iter().map(|&v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8).collect();
    Ok((ImageShape { channels: c, height: h, width: w }, pixels))
}

/// Tiles `count` CHW `u8` images into one grid, `cols` per row, with `pad` pixels between them.
/// One channel gives a grayscale image, three an RGB one.
pub fn make_grid(shape: ImageShape, pixels: &[u8], cols: usize, pad: usize) -> Result<image::DynamicImage> {
    let n = pixels.len() / shape.numel().max(1);
    if n == 0 || cols == 0 || !matches!(shape.channels, 1 | 3) {
        return Err(DataError::InvalidArgument(format!("cannot tile {n} images of {shape} in {cols} columns")));
    }
    let rows = n.div_ceil(cols);
    let side =
        |k: usize, s: usize| k.checked_mul(s + pad).and_then(|v| v.checked_add(pad)).filter(|&v| v <= MAX_GRID_SIDE);
    let (Some(gw), Some(gh)) = (side(cols, shape.width), side(rows, shape.height)) else {
        return Err(DataError::InvalidArgument(format!(
            "a grid of {n} images of {shape} in {cols} columns is over {MAX_GRID_SIDE} pixels on a side"
        )));
    };
    let mut grid = image::RgbImage::new(gw as u32, gh as u32);
    let plane = shape.height * shape.width;
    for (k, img) in pixels.chunks_exact(shape.numel()).enumerate() {
        let (x0, y0) = (pad + (k % cols) * (shape.width + pad), pad + (k / cols) * (shape.height + pad));
        for y in 0..shape.height {
            for x in 0..shape.width {
                let at = |c: usize| img[(c % shape.channels) * plane + y * shape.width + x];
                grid.put_pixel((x0 + x) as u32, (y0 + y) as u32, image::Rgb([at(0), at(1), at(2)]));
            }
        }
    }
    Ok(if shape.channels == 1 {
        image::DynamicImage::ImageRgb8(grid).grayscale()
    } else {
        image::DynamicImage::ImageRgb8(grid)
    })
}

/// Saves a grid of `(N, C, H, W)` values in [−1, 1] as a PNG.
pub fn save_tensor_grid(images: &Tensor, cols: usize, path: &Path) -> Result<()> {
    let (shape, pixels) = tensor_to_u8(images)?;
    save_png(&make_grid(shape, &pixels, cols, 2)?, path)
}

/// Saves an image as PNG through a [`PartialFile`](crate::partial::PartialFile): an
/// interrupted or failed save leaves the previous file (or none), never half a PNG.
pub fn save_png(img: &image::DynamicImage, path: &Path) -> Result<()> {
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|source| DataError::Encode { path: path.to_path_buf(), source })?;
    let mut file = crate::partial::PartialFile::create(path)?;
    file.write_all(&png)?;
    file.commit()
}
