//! Downloads against a local HTTP server on 127.0.0.1: verified files are kept,
//! corrupted ones are not, archives are extracted, offline gives clear advice.

use std::collections::HashMap;

use ganzoo::data::download::{download_sha256, download_source, download_verified, md5_file};
use ganzoo::data::{
    load_dataset, DataError, DataLocator, DatasetSpec, Fetch, ImageFolderConfig, KnownDataset, NoProgress, RemoteFile,
    RemoteSource,
};

use crate::common::{gzip, mnist_root, serve, shared_data};

/// The four MNIST files as a mirror serves them: synthetic fixtures, or real MNIST.
fn mnist_files(dir: &std::path::Path) -> HashMap<String, Vec<u8>> {
    [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    .into_iter()
    .map(|n| (format!("/mnist/{n}"), std::fs::read(dir.join(n)).unwrap()))
    .collect()
}

#[test]
#[ignore = "reads real data (../shared/data, dataset-fashion-mnist): run with --include-ignored"]
fn official_file_downloads_and_matches_the_published_md5() {
    let base = serve(mnist_files(&shared_data().join("mnist")));
    let dest = tempfile::tempdir().unwrap();
    let file = KnownDataset::Mnist.remote().files[2];
    assert_eq!(file.name, "t10k-images-idx3-ubyte.gz");
    let path = download_verified(&[&format!("{base}mnist/")], &file, dest.path(), &mut NoProgress).unwrap();
    assert_eq!(md5_file(&path).unwrap(), "9fb629c4189551a2d022fa330f9573f3");
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 1, "only the file itself");
}

/// A mirror announcing more bytes than the disk has free is refused before a byte is
/// written: the error names the file and both sizes, and no partial file is left.
#[test]
fn a_download_larger_than_the_disk_is_refused_before_anything_is_written() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.read(&mut [0u8; 1024]);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 1u64 << 62);
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&[0u8; 4096]);
        }
    });
    let dest = tempfile::tempdir().unwrap();
    let file = dest.path().join("weights.bin");
    let err = download_sha256(&format!("http://{addr}/weights.bin"), &file, "00", &mut NoProgress).unwrap_err();
    assert!(matches!(err, DataError::NoRoom { needed, .. } if needed == 1 << 62), "{err:?}");
    assert!(err.to_string().contains("weights.bin") && err.to_string().contains("4.0 EiB"), "{err}");
    assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 0, "nothing written");
}

#[test]
fn corrupted_download_is_not_kept() {
    // Synthetic files: their MD5 is not the published one.
    let fixture = mnist_root(20);
    let base = serve(mnist_files(&fixture.path().join("mnist")));
    let root = tempfile::tempdir().unwrap();
    let locator = DataLocator::only(root.path());
    let fetch = Fetch { enabled: true, mirror: Some(format!("{base}mnist/")), progress: &mut NoProgress };
    let err = load_dataset(&DatasetSpec::Known(KnownDataset::Mnist), &locator, ImageFolderConfig::default(), fetch)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("checksum mismatch") && msg.contains("train-images-idx3-ubyte.gz"), "{msg}");
    let dir = root.path().join("mnist");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "nothing is kept after a bad checksum: {left:?}");
}

#[test]
fn a_whole_dataset_downloads_into_the_data_root_and_loads() {
    let fixture = mnist_root(20);
    let files = mnist_files(&fixture.path().join("mnist"));
    let md5s: Vec<(&'static str, String)> = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    .into_iter()
    .map(|n| (n, md5_file(&fixture.path().join("mnist").join(n)).unwrap()))
    .collect();
    let remote: Vec<RemoteFile> =
        md5s.iter().map(|(n, m)| RemoteFile { name: n, md5: Box::leak(m.clone().into_boxed_str()) }).collect();
    let source = RemoteSource { mirrors: &[], files: Box::leak(remote.into_boxed_slice()), is_archive: false };
    let base = serve(files);
    let root = tempfile::tempdir().unwrap();
    let locator = DataLocator::only(root.path());
    let dest = locator.download_dir(KnownDataset::Mnist);
    download_source(&source, &dest, Some(&format!("{base}mnist")), &mut NoProgress).unwrap();
    assert_eq!(locator.find(KnownDataset::Mnist), Some(dest.clone()));
    let splits = KnownDataset::Mnist.load_from(&dest).unwrap();
    assert_eq!(splits.train.stats().class_histogram, vec![2; 10]);
    assert_eq!(splits.test.unwrap().stats().class_histogram, vec![1; 10]);
}

#[test]
fn archives_are_extracted_flat_and_removed() {
    let mut tar = tar::Builder::new(Vec::new());
    let mut record = vec![4u8];
    record.extend(std::iter::repeat_n(9u8, 3072));
    let mut header = tar::Header::new_gnu();
    header.set_size(record.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, "cifar-10-batches-bin/data_batch_1.bin", record.as_slice()).unwrap();
    let archive = gzip(&tar.into_inner().unwrap());
    let md5 = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), &archive).unwrap();
        md5_file(&dir.path().join("a")).unwrap()
    };
    let base = serve(HashMap::from([("/c/cifar-10-binary.tar.gz".to_string(), archive)]));
    let files = [RemoteFile { name: "cifar-10-binary.tar.gz", md5: Box::leak(md5.into_boxed_str()) }];
    let source = RemoteSource { mirrors: &[], files: Box::leak(Box::new(files)), is_archive: true };
    let dest = tempfile::tempdir().unwrap();
    download_source(&source, dest.path(), Some(&format!("{base}c/")), &mut NoProgress).unwrap();
    assert!(!dest.path().join("cifar-10-binary.tar.gz").exists());
    let splits = KnownDataset::Cifar10.load_from(dest.path()).unwrap();
    assert_eq!((splits.train.len(), splits.train.labels()[0]), (1, 4));
}

#[test]
fn missing_file_on_the_mirror_and_offline_are_clear_errors() {
    let base = serve(HashMap::new());
    let dest = tempfile::tempdir().unwrap();
    let file = KnownDataset::FashionMnist.remote().files[0];
    let err = download_verified(&[&base], &file, dest.path(), &mut NoProgress).unwrap_err();
    assert!(matches!(err, DataError::Download { .. }) && err.to_string().contains("404"), "{err}");
    // Nothing listens on this port: the error says which files to put where.
    let root = tempfile::tempdir().unwrap();
    let locator = DataLocator::only(root.path());
    let fetch = Fetch { enabled: true, mirror: Some("http://127.0.0.1:9/".into()), progress: &mut NoProgress };
    let err =
        load_dataset(&DatasetSpec::Known(KnownDataset::FashionMnist), &locator, ImageFolderConfig::default(), fetch)
            .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("train-images-idx3-ubyte.gz")
            && msg.contains(&root.path().join("fashion-mnist").display().to_string()),
        "{msg}"
    );
    let off = Fetch { enabled: false, mirror: None, progress: &mut NoProgress };
    let err = load_dataset(&DatasetSpec::Known(KnownDataset::Cifar10), &locator, ImageFolderConfig::default(), off)
        .unwrap_err();
    assert!(err.to_string().contains("test_batch.bin") && err.to_string().contains("turned off"), "{err}");
}
