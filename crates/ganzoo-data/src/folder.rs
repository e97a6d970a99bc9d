//! Image folders: one sub-folder per class (torchvision's `ImageFolder` layout)
//! or a flat folder of images (one unnamed class).
//!
//! Each PNG or JPEG is resized so its shorter side equals the requested size
//! (bilinear), then centre-cropped to a square — torchvision's
//! `Resize(s)` + `CenterCrop(s)` — and converted to grayscale or RGB.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use crate::error::io_err;
use crate::{DataError, ImageDataset, ImageShape, Result};

/// Most bytes one decoded image may take (a 16384×16384 RGBA image).
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Largest side images are read at.
pub const MAX_SIDE: usize = 8192;

/// How the images of a folder are brought to one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageFolderConfig {
    /// Side of the square output images.
    pub size: usize,
    /// One channel instead of three.
    pub grayscale: bool,
    /// Most bytes the decoded set may take; checked from the file count before any
    /// image is decoded.
    pub max_bytes: u64,
}

impl Default for ImageFolderConfig {
    fn default() -> Self {
        Self { size: 64, grayscale: false, max_bytes: u64::MAX }
    }
}

impl ImageFolderConfig {
    /// `size`×`size` images, RGB or grayscale, with no limit beyond the machine's.
    pub fn new(size: usize, grayscale: bool) -> Self {
        Self { size, grayscale, ..Self::default() }
    }
}

/// Loads every image under `root`.
pub fn load_image_folder(root: &Path, config: ImageFolderConfig) -> Result<ImageDataset> {
    if config.size == 0 || config.size > MAX_SIDE {
        return Err(DataError::InvalidArgument(format!("image size must lie in 1..={MAX_SIDE}, got {}", config.size)));
    }
    let (dirs, files) = list_dir(root)?;
    let classes: Vec<(String, Vec<PathBuf>)> = match (dirs.is_empty(), files.is_empty()) {
        (true, true) => return Err(DataError::Empty { path: root.to_path_buf() }),
        (true, false) => vec![(String::new(), files)],
        (false, true) => dirs
            .into_iter()
            .map(|d| {
                let (sub, files) = list_dir(&d)?;
                if let Some(nested) = sub.first() {
                    return Err(DataError::BadLayout {
                        path: nested.clone(),
                        detail: "class folders must hold images, not further folders".into(),
                    });
                }
                let name = d.file_name().unwrap_or_default().to_string_lossy().into_owned();
                Ok((name, files))
            })
            .collect::<Result<_>>()?,
        (false, false) => {
            return Err(DataError::BadLayout {
                path: files[0].clone(),
                detail: "loose file beside class folders: use only class folders or only images".into(),
            })
        }
    };
    decode_all(root, classes, config)
}

fn decode_all(root: &Path, classes: Vec<(String, Vec<PathBuf>)>, config: ImageFolderConfig) -> Result<ImageDataset> {
    let channels = if config.grayscale { 1 } else { 3 };
    let shape = ImageShape { channels, height: config.size, width: config.size };
    let files: usize = classes.iter().map(|(_, f)| f.len()).sum();
    let bytes = (files as u128) * (channels as u128) * (config.size as u128).pow(2);
    if bytes > u128::from(config.max_bytes) {
        return Err(DataError::TooLarge {
            path: root.to_path_buf(),
            detail: format!(
                "{files} images of {shape} take {bytes} bytes, over the limit of {} bytes (a smaller --image-size, or --max-memory)",
                config.max_bytes
            ),
        });
    }
    let (mut pixels, mut labels, mut names) = (Vec::new(), Vec::new(), Vec::new());
    for (label, (name, files)) in classes.into_iter().enumerate() {
        for file in files {
            check_extension(&file)?;
            pixels.extend(decode_one(&file, config)?);
            labels.push(label as u32);
        }
        names.push(name);
    }
    if labels.is_empty() {
        return Err(DataError::Empty { path: root.to_path_buf() });
    }
    ImageDataset::new(pixels, labels, shape, names)
}

/// Decodes one image and returns its CHW `u8` pixels at the configured size.
pub fn decode_one(path: &Path, config: ImageFolderConfig) -> Result<Vec<u8>> {
    let reader = image::ImageReader::open(path).map_err(io_err(path))?;
    let mut reader = reader.with_guessed_format().map_err(io_err(path))?;
    // The decoder refuses images whose header promises more than this (a decompression bomb).
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let img = reader.decode().map_err(|source| DataError::Decode { path: path.to_path_buf(), source })?;
    let (w, h) = (u128::from(img.width()), u128::from(img.height()));
    let s = config.size;
    let side = s as u128;
    let (nw, nh) = if w <= h { (side, (h * side).div_ceil(w.max(1))) } else { ((w * side).div_ceil(h.max(1)), side) };
    if nw * nh * 4 > u128::from(MAX_DECODED_BYTES) {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            detail: format!("{w}x{h} resized to a shorter side of {s} would be {nw}x{nh} pixels"),
        });
    }
    let (nw, nh) = (nw as usize, nh as usize);
    let img = img.resize_exact(nw as u32, nh as u32, FilterType::Triangle);
    let img = img.crop_imm(((nw - s) / 2) as u32, ((nh - s) / 2) as u32, s as u32, s as u32);
    Ok(if config.grayscale { img.to_luma8().into_raw() } else { hwc_to_chw(&img.to_rgb8().into_raw(), s * s) })
}

fn hwc_to_chw(hwc: &[u8], plane: usize) -> Vec<u8> {
    let mut chw = vec![0; hwc.len()];
    for (i, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = px[c];
        }
    }
    chw
}

fn check_extension(path: &Path) -> Result<()> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("png" | "jpg" | "jpeg") => Ok(()),
        _ => Err(DataError::NotAnImage { path: path.to_path_buf() }),
    }
}

/// Sub-folders and files of `dir`, sorted by name; hidden entries (`.name`) are skipped.
fn list_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => dirs.push(path),
            Ok(m) if !m.is_file() => {
                let detail = "not a regular file (a FIFO, socket or device): an image folder holds image files".into();
                return Err(DataError::BadLayout { path, detail });
            }
            // A broken link stays a file: decoding it names the error.
            _ => files.push(path),
        }
    }
    dirs.sort();
    files.sort();
    Ok((dirs, files))
}
