//! Downloading published files with checksum verification: data sets by MD5, model
//! weights by (a prefix of) SHA-256.
//!
//! A file is streamed into a [`PartialFile`] beside its destination (unnamed on Linux,
//! else `<name>.partial`) while its digest is computed; only a file whose checksum
//! matches the publisher's is put in place, so a failed, corrupted or killed download
//! never leaves a file that looks valid, nor (on Linux) any file at all.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};
use sha2::Sha256;

use crate::error::io_err;
use crate::partial::PartialFile;
use crate::{DataError, KnownDataset, RemoteFile, RemoteSource, Result};

/// Receives progress of a download; the command line shows it as a bar.
pub trait DownloadProgress {
    fn begin(&mut self, file: &str, total_bytes: Option<u64>);
    fn advance(&mut self, bytes: u64);
    fn end(&mut self);
}

/// Progress that is not shown.
pub struct NoProgress;

impl DownloadProgress for NoProgress {
    fn begin(&mut self, _: &str, _: Option<u64>) {}
    fn advance(&mut self, _: u64) {}
    fn end(&mut self) {}
}

/// Downloads every file of `dataset` into `dest`, from `mirror` if given, else the canonical mirrors.
pub fn download_known(
    dataset: KnownDataset,
    dest: &Path,
    mirror: Option<&str>,
    progress: &mut dyn DownloadProgress,
) -> Result<()> {
    download_source(&dataset.remote(), dest, mirror, progress)
}

/// Downloads every file of `source` into `dest`, from `mirror` if given, else the source's mirrors;
/// archives are extracted and then removed.
pub fn download_source(
    source: &RemoteSource,
    dest: &Path,
    mirror: Option<&str>,
    progress: &mut dyn DownloadProgress,
) -> Result<()> {
    let mirrors: Vec<&str> = match mirror {
        Some(m) => vec![m],
        None => source.mirrors.to_vec(),
    };
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    for file in source.files {
        let path = download_verified(&mirrors, file, dest, progress)?;
        if source.is_archive {
            extract_tar_gz(&path, dest)?;
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

/// Downloads one file from the first mirror that serves it, verifying its MD5.
pub fn download_verified(
    mirrors: &[&str],
    file: &RemoteFile,
    dest: &Path,
    progress: &mut dyn DownloadProgress,
) -> Result<PathBuf> {
    let mut last = None;
    for base in mirrors {
        let url = format!("{}/{}", base.trim_end_matches('/'), file.name);
        match download_one(&url, file, dest, progress) {
            Ok(path) => return Ok(path),
            Err(e @ DataError::Checksum { .. }) => return Err(e),
            Err(e) => {
                tracing::warn!(%url, error = %e, "mirror failed");
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| DataError::InvalidArgument("no mirror to download from".into())))
}

fn download_one(url: &str, file: &RemoteFile, dest: &Path, progress: &mut dyn DownloadProgress) -> Result<PathBuf> {
    let final_path = dest.join(file.name);
    download_checked::<Md5>(url, &final_path, file.md5, progress)?;
    Ok(final_path)
}

/// Downloads `url` to `dest` (through a [`PartialFile`]), keeping it only if the hex SHA-256 of
/// what arrived starts with `sha256_prefix` (torch.hub names weight files
/// `name-<first 8 hex digits of SHA-256>.pth`).
pub fn download_sha256(url: &str, dest: &Path, sha256_prefix: &str, progress: &mut dyn DownloadProgress) -> Result<()> {
    download_checked::<Sha256>(url, dest, sha256_prefix, progress)
}

/// Streams `url` into a [`PartialFile`] for `final_path` hashing with `H`; puts it in
/// place only if the hex digest starts with `expected`, else drops it.
fn download_checked<H: Digest + Named>(
    url: &str,
    final_path: &Path,
    expected: &str,
    progress: &mut dyn DownloadProgress,
) -> Result<()> {
    let fail = |detail: String| DataError::Download { url: url.to_string(), detail };
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .build(),
    );
    let mut response = agent.get(url).call().map_err(|e| fail(e.to_string()))?;
    let total = response.body().content_length();
    let name = final_path.file_name().map_or_else(|| final_path.display().to_string(), |n| n.to_string_lossy().into());
    if let Some(total) = total {
        crate::room::ensure_room(final_path, u128::from(total))?;
    }
    let mut file = PartialFile::create(final_path)?;
    progress.begin(&name, total);
    let copied = copy_hashing::<H>(&mut response.body_mut().as_reader(), &mut file, progress);
    progress.end();
    let digest = copied.map_err(|e| e.into_download(url))?;
    if !digest.starts_with(expected) {
        return Err(DataError::Checksum {
            path: final_path.to_path_buf(),
            algorithm: H::NAME,
            found: digest,
            expected: expected.to_string(),
        });
    }
    file.commit()?;
    tracing::info!(file = %final_path.display(), "downloaded and verified");
    Ok(())
}

/// The name of a digest in messages.
trait Named {
    const NAME: &'static str;
}

impl Named for Md5 {
    const NAME: &'static str = "md5";
}

impl Named for Sha256 {
    const NAME: &'static str = "sha256";
}

enum CopyError {
    Read(std::io::Error),
    Write(DataError),
}

impl CopyError {
    fn into_download(self, url: &str) -> DataError {
        match self {
            Self::Read(e) => DataError::Download { url: url.to_string(), detail: e.to_string() },
            Self::Write(e) => e,
        }
    }
}

/// Streams `reader` into `out`, returning the hex digest (by `H`) of what was written.
fn copy_hashing<H: Digest>(
    reader: &mut dyn Read,
    out: &mut PartialFile,
    progress: &mut dyn DownloadProgress,
) -> Result<String, CopyError> {
    let mut hasher = H::new();
    copy_into(reader, out, |chunk| {
        hasher.update(chunk);
        progress.advance(chunk.len() as u64);
    })?;
    Ok(hex(&hasher.finalize()))
}

/// Streams `reader` into `out`, showing `seen` each chunk written.
fn copy_into(reader: &mut dyn Read, out: &mut PartialFile, mut seen: impl FnMut(&[u8])) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(CopyError::Read)?;
        if n == 0 {
            return Ok(());
        }
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        seen(&buf[..n]);
    }
}

/// Hex MD5 of a file on disk.
pub fn md5_file(path: &Path) -> Result<String> {
    hash_file::<Md5>(path)
}

/// Hex SHA-256 of a file on disk.
pub fn sha256_file(path: &Path) -> Result<String> {
    hash_file::<Sha256>(path)
}

fn hash_file<H: Digest + std::io::Write>(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut hasher = H::new();
    std::io::copy(&mut f, &mut hasher).map_err(io_err(path))?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Extracts the regular files of a `.tar.gz` into `dest`, flattening their folders.
/// Only plain file names are written: no member can escape `dest`. Each is written
/// whole through a [`PartialFile`], so an interrupted extraction never leaves a
/// truncated data file that looks whole.
fn extract_tar_gz(archive: &Path, dest: &Path) -> Result<()> {
    let f = File::open(archive).map_err(io_err(archive))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let bad =
        |e: std::io::Error| DataError::Truncated { path: archive.to_path_buf(), detail: format!("bad archive: {e}") };
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let member = entry.path().map_err(bad)?.into_owned();
        let Some(name) = member.file_name() else { continue };
        let mut file = PartialFile::create(&dest.join(name))?;
        copy_into(&mut entry, &mut file, |_| {}).map_err(|e| match e {
            CopyError::Read(e) => bad(e),
            CopyError::Write(e) => e,
        })?;
        file.commit()?;
    }
    Ok(())
}
