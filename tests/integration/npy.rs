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

/// A write that cannot be put in place (its destination is a folder) fails naming it,
/// leaves the folder as it was and removes its partial file.
#[test]
fn a_failed_rename_leaves_the_destination_and_no_partial_file() {
    use ganzoo::data::grid::save_png;
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.npy", "a.png"] {
        let dest = dir.path().join(name);
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("inside"), b"kept").unwrap();
        let err = if name.ends_with("npy") {
            write_npy_f32(&dest, &[2], &[1.0, 2.0]).unwrap_err()
        } else {
            save_png(&image::DynamicImage::new_luma8(2, 2), &dest).unwrap_err()
        };
        assert!(err.to_string().contains(name), "{err}");
        assert_eq!(std::fs::read(dest.join("inside")).unwrap(), b"kept");
        assert!(!dir.path().join(format!("{name}.partial")).exists(), "{name}.partial left behind");
    }
}

/// A `PATH.partial` already there is someone's (or a killed write's): refused by name and
/// left as it was, never truncated; `PATH` is not written either.
#[test]
fn an_existing_partial_file_is_refused_not_truncated() {
    use ganzoo::data::grid::save_png;
    use ganzoo::data::DataError;
    let dir = tempfile::tempdir().unwrap();
    for name in ["b.npy", "b.png"] {
        let dest = dir.path().join(name);
        let partial = dir.path().join(format!("{name}.partial"));
        std::fs::write(&partial, b"the user's notes").unwrap();
        let err = if name.ends_with("npy") {
            write_npy_f32(&dest, &[2], &[1.0, 2.0]).unwrap_err()
        } else {
            save_png(&image::DynamicImage::new_luma8(2, 2), &dest).unwrap_err()
        };
        assert!(matches!(err, DataError::PartialExists { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("{name}.partial exists")) && msg.contains("remove it"), "{msg}");
        assert_eq!(std::fs::read(&partial).unwrap(), b"the user's notes");
        assert!(!dest.exists());
    }
}

/// An unfinished array (fewer values than its shape) is never put in place, and nothing
/// of it is left (on Linux its bytes never had a name; elsewhere its partial file goes
/// when the writer is dropped).
#[test]
fn an_unfinished_array_leaves_nothing() {
    use ganzoo::data::npy::NpyWriter;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("c.npy");
    let mut w = NpyWriter::create(&dest, &[3]).unwrap();
    w.write(&[1.0]).unwrap();
    assert_eq!(dir.path().join("c.npy.partial").exists(), !cfg!(target_os = "linux"));
    assert!(w.finish().unwrap_err().to_string().contains("2 values missing from"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// A folder given where an array is expected is named as a folder.
#[test]
fn a_folder_is_not_read_as_an_array() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_npy_f32(dir.path()).unwrap_err().to_string();
    assert!(err.ends_with("is a folder, not a .npy file"), "{err}");
}

/// Arrays ganzoo does not read are refused saying what the file holds and how to
/// convert it (before: one message, "only C-ordered little-endian float32 arrays are
/// supported", for every dtype and order).
#[test]
fn an_array_of_another_type_or_order_is_named_with_the_conversion() {
    let dir = tempfile::tempdir().unwrap();
    let npy = |name: &str, header: &str, body: usize| {
        let path = dir.path().join(name);
        let header = format!("{header}\n");
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(vec![0u8; body]);
        std::fs::write(&path, bytes).unwrap();
        read_npy_f32(&path).map_err(|e| e.to_string())
    };
    let f64 = npy("d.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", 32).unwrap_err();
    assert!(
        f64.ends_with("holds '<f8' values; only little-endian float32 ('<f4') is read: save a.astype(np.float32)"),
        "{f64}"
    );
    let big = npy("b.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16).unwrap_err();
    assert!(big.contains("holds '>f4' values"), "{big}");
    let fortran = npy("f.npy", "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16).unwrap_err();
    assert!(
        fortran.ends_with("holds a Fortran-ordered array; only C order is read: save np.ascontiguousarray(a)"),
        "{fortran}"
    );
    let ok = npy("c.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", 16);
    assert_eq!(ok, Ok((vec![2, 2], vec![0.0; 4])));
}
