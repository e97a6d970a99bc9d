//! Finding a data set on disk, and fetching it when it is missing.
//!
//! Search order for a known data set: `--data-dir` (or the explicit root given
//! to [`DataLocator::new`]), else `$GANZOO_DATA`, else `./data`; under the root,
//! each of the data set's folder names and the root itself; then the folders a
//! system package installs into (Debian's `/usr/share/datasets/fashion-mnist`).

use std::path::{Path, PathBuf};

use crate::download::{download_known, DownloadProgress};
use crate::folder::{load_image_folder, ImageFolderConfig};
use crate::{DataError, DatasetSpec, KnownDataset, Result, Splits};

/// Environment variable naming the data root when no `--data-dir` is given.
pub const DATA_ENV: &str = "GANZOO_DATA";

/// Where to look for data sets and where to put downloads.
#[derive(Debug, Clone)]
pub struct DataLocator {
    root: PathBuf,
    system_dirs: bool,
}

impl DataLocator {
    /// `--data-dir` if given, else `$GANZOO_DATA`, else `./data`.
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        let root = data_dir
            .or_else(|| std::env::var_os(DATA_ENV).filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("data"));
        Self { root, system_dirs: true }
    }

    /// Looks only under `root`, never in system folders (tests use this).
    pub fn only(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), system_dirs: false }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every folder that is searched for `dataset`, in order.
    pub fn candidates(&self, dataset: KnownDataset) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = dataset.dir_names().iter().map(|n| self.root.join(n)).collect();
        dirs.push(self.root.clone());
        if self.system_dirs {
            dirs.extend(dataset.system_dirs().iter().map(PathBuf::from));
        }
        dirs
    }

    /// The first folder that holds `dataset`'s training files.
    pub fn find(&self, dataset: KnownDataset) -> Option<PathBuf> {
        self.candidates(dataset).into_iter().find(|d| dataset.is_present_in(d))
    }

    /// Where a download of `dataset` is written.
    pub fn download_dir(&self, dataset: KnownDataset) -> PathBuf {
        self.root.join(dataset.dir_names()[0])
    }

    /// The error for a data set that is neither on disk nor downloadable.
    pub fn not_found(&self, dataset: KnownDataset, why: &str) -> DataError {
        let looked: Vec<String> = self.candidates(dataset).iter().map(|p| p.display().to_string()).collect();
        DataError::NotFound {
            dataset: dataset.name().to_string(),
            hint: format!(
                "Looked in: {}. {why} To use it offline, put {} into {} (or pass --data-dir ROOT, or set {DATA_ENV}).",
                looked.join(", "),
                dataset.required_files().join(", "),
                self.download_dir(dataset).display(),
            ),
        }
    }
}

/// Whether and from where a missing data set may be downloaded.
pub struct Fetch<'a> {
    /// Download when the data set is missing.
    pub enabled: bool,
    /// Base URL tried instead of the canonical mirrors.
    pub mirror: Option<String>,
    pub progress: &'a mut dyn DownloadProgress,
}

/// Loads a data set, downloading a known one into the locator's root when it is missing.
pub fn load_dataset(
    spec: &DatasetSpec,
    locator: &DataLocator,
    folder: ImageFolderConfig,
    fetch: Fetch<'_>,
) -> Result<Splits> {
    Ok(load_dataset_located(spec, locator, folder, fetch)?.0)
}

/// [`load_dataset`], and the folder a known data set's files were read from (`None` for
/// an image folder, which its spec names).
pub fn load_dataset_located(
    spec: &DatasetSpec,
    locator: &DataLocator,
    folder: ImageFolderConfig,
    fetch: Fetch<'_>,
) -> Result<(Splits, Option<PathBuf>)> {
    match spec {
        DatasetSpec::Folder(path) => Ok((Splits { train: load_image_folder(path, folder)?, test: None }, None)),
        DatasetSpec::Known(dataset) => {
            let dir = match locator.find(*dataset) {
                Some(dir) => dir,
                None if !fetch.enabled => return Err(locator.not_found(*dataset, "Downloading is turned off.")),
                None => {
                    let dest = locator.download_dir(*dataset);
                    download_known(*dataset, &dest, fetch.mirror.as_deref(), fetch.progress)
                        .map_err(|e| locator.not_found(*dataset, &format!("The download failed: {e}.")))?;
                    dest
                }
            };
            tracing::info!(dataset = dataset.name(), dir = %dir.display(), "loading");
            Ok((dataset.load_from(&dir)?, Some(dir)))
        }
    }
}
