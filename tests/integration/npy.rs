//! `.npy` files: header layout and round trip.

use ganzoo::data::npy::{read_npy_f32, write_npy_f32};

#[test]
fn npy_round_trip_and_header_alignment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let data: Vec<f32> = (0..6).map(|i| i as f32 * 0.5 - 1.0).collect();
    write_npy_f32(&path, &[3, 2], &data).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0, "data starts on a 64-byte boundary");
    let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
    assert!(
        header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }") && header.ends_with('\n')
    );
    assert_eq!(&bytes[10 + hlen..10 + hlen + 4], &(-1.0f32).to_le_bytes());
    assert_eq!(read_npy_f32(&path).unwrap(), (vec![3, 2], data));
    write_npy_f32(&path, &[4], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(read_npy_f32(&path).unwrap().0, vec![4]);
    assert!(write_npy_f32(&path, &[5], &[1.0]).is_err());
}

/// An array that would not fit on the disk is refused before a byte is written, naming
/// the file, what it needs and what is free; neither it nor its partial file is left.
#[test]
fn an_array_larger_than_the_disk_is_refused_before_anything_is_written() {
    use ganzoo::data::npy::NpyWriter;
    use ganzoo::data::DataError;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.npy");
    let err = NpyWriter::create(&path, &[1 << 40, 1 << 20]).err().expect("4 EiB cannot fit");
    assert!(matches!(err, DataError::NoRoom { needed, .. } if needed > 4 << 60), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("huge.npy") && msg.contains("4.0 EiB") && msg.contains("free"), "{msg}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}
