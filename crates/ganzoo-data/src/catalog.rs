//! The data sets ganzoo knows by name, where their files come from, and the
//! typed spec a command line is parsed into.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::cifar::{load_cifar10_dir, looks_like_cifar_dir, CIFAR10_CLASSES};
use crate::mnist::{load_mnist_dir, looks_like_mnist_dir};
use crate::{DataError, Result, Splits};

/// A data set with a standard on-disk layout and a canonical download source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnownDataset {
    Mnist,
    FashionMnist,
    Cifar10,
}

/// A file published at a mirror, with the MD5 its publisher lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: &'static str,
    pub md5: &'static str,
}

/// How a known data set is published.
#[derive(Debug, Clone, Copy)]
pub struct RemoteSource {
    /// Base URLs tried in order; a file's URL is the base followed by its name.
    pub mirrors: &'static [&'static str],
    pub files: &'static [RemoteFile],
    /// Files are `.tar.gz` archives whose regular members are extracted.
    pub is_archive: bool,
}

const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile { name: "train-images-idx3-ubyte.gz", md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873" },
    RemoteFile { name: "train-labels-idx1-ubyte.gz", md5: "d53e105ee54ea40749a09fcbcd1e9432" },
    RemoteFile { name: "t10k-images-idx3-ubyte.gz", md5: "9fb629c4189551a2d022fa330f9573f3" },
    RemoteFile { name: "t10k-labels-idx1-ubyte.gz", md5: "ec29112dd5afa0611ce80d1b7f02629c" },
];

const FASHION_FILES: [RemoteFile; 4] = [
    RemoteFile { name: "train-images-idx3-ubyte.gz", md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d" },
    RemoteFile { name: "train-labels-idx1-ubyte.gz", md5: "25c81989df183df01b3e8a0aad5dffbe" },
    RemoteFile { name: "t10k-images-idx3-ubyte.gz", md5: "bef4ecab320f06d8554ea6380940ec79" },
    RemoteFile { name: "t10k-labels-idx1-ubyte.gz", md5: "bb300cfdad3c16e7a12a480ee83cd310" },
];

const CIFAR_FILES: [RemoteFile; 1] =
    [RemoteFile { name: "cifar-10-binary.tar.gz", md5: "c32a1d4ab5d03f1284b67883e8d87530" }];

const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
const FASHION_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

impl KnownDataset {
    pub const ALL: [KnownDataset; 3] = [Self::Mnist, Self::FashionMnist, Self::Cifar10];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mnist => "mnist",
            Self::FashionMnist => "fashion-mnist",
            Self::Cifar10 => "cifar10",
        }
    }

    /// Folder names looked for under a data root; the first is where downloads go.
    pub fn dir_names(self) -> &'static [&'static str] {
        match self {
            Self::Mnist => &["mnist", "MNIST/raw"],
            Self::FashionMnist => &["fashion-mnist", "FashionMNIST/raw"],
            Self::Cifar10 => &["cifar-10-batches-bin", "cifar10"],
        }
    }

    /// Folders outside any data root where a system package installs the data.
    pub fn system_dirs(self) -> &'static [&'static str] {
        match self {
            Self::FashionMnist => &["/usr/share/datasets/fashion-mnist"],
            _ => &[],
        }
    }

    pub fn remote(self) -> RemoteSource {
        match self {
            Self::Mnist => RemoteSource {
                mirrors: &["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
                files: &MNIST_FILES,
                is_archive: false,
            },
            Self::FashionMnist => RemoteSource {
                mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
                files: &FASHION_FILES,
                is_archive: false,
            },
            Self::Cifar10 => {
                RemoteSource { mirrors: &["https://www.cs.toronto.edu/~kriz/"], files: &CIFAR_FILES, is_archive: true }
            }
        }
    }

    /// The files a user must place in the data set's folder to use it offline.
    pub fn required_files(self) -> Vec<&'static str> {
        match self {
            Self::Mnist | Self::FashionMnist => MNIST_FILES.iter().map(|f| f.name).collect(),
            Self::Cifar10 => vec!["data_batch_1.bin … data_batch_5.bin", "test_batch.bin", "batches.meta.txt"],
        }
    }

    /// True when `dir` holds this data set's training files.
    pub fn is_present_in(self, dir: &Path) -> bool {
        match self {
            Self::Mnist | Self::FashionMnist => looks_like_mnist_dir(dir),
            Self::Cifar10 => looks_like_cifar_dir(dir),
        }
    }

    /// Loads the data set from a folder holding its files.
    pub fn load_from(self, dir: &Path) -> Result<Splits> {
        match self {
            Self::Mnist => load_mnist_dir(dir, &MNIST_CLASSES),
            Self::FashionMnist => load_mnist_dir(dir, &FASHION_CLASSES),
            Self::Cifar10 => load_cifar10_dir(dir),
        }
    }

    pub fn class_names(self) -> &'static [&'static str] {
        match self {
            Self::Mnist => &MNIST_CLASSES,
            Self::FashionMnist => &FASHION_CLASSES,
            Self::Cifar10 => &CIFAR10_CLASSES,
        }
    }
}

impl std::fmt::Display for KnownDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An image data set named on the command line: a known one or a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSpec {
    Known(KnownDataset),
    Folder(PathBuf),
}

impl FromStr for DatasetSpec {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(path) = s.strip_prefix("folder:") {
            if path.is_empty() {
                return Err(DataError::InvalidArgument("folder: needs a path, as in folder:./faces".into()));
            }
            return Ok(Self::Folder(PathBuf::from(path)));
        }
        let lower = s.to_ascii_lowercase();
        KnownDataset::ALL
            .into_iter()
            .find(|d| d.name() == lower || d.name().replace('-', "") == lower)
            .map(Self::Known)
            .ok_or_else(|| {
                DataError::InvalidArgument(format!(
                    "unknown data set '{s}': expected mnist, fashion-mnist, cifar10 or folder:PATH"
                ))
            })
    }
}

impl std::fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Known(k) => write!(f, "{k}"),
            Self::Folder(p) => write!(f, "folder:{}", p.display()),
        }
    }
}
