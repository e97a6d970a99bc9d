//! Safetensors files written like any other file the user makes.
//!
//! `safetensors::serialize_to_file` (0.8, under Candle's `safetensors::save`) writes
//! through a `tempfile` beside the target: the file comes out mode `0600` whatever the
//! umask (checkpoints a colleague cannot read, unlike the run's other files), and a killed
//! process leaves a randomly named `.tmpXXXXXX` there that no cleanup knows. Here the
//! bytes are built in memory and written to `path` itself (`File::create`: mode
//! `0666 & !umask`), then synced (checkpoints: a new folder of the run's, renamed when
//! complete); files at a path a user chose take [`to_bytes`] through
//! [`crate::partial::write_whole`].

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::{DataError, Result};

/// Writes `tensors` to `path` as safetensors (tensors on a GPU are copied to the host
/// first, where a failed copy is an error rather than Candle's panic inside the writer).
pub fn write(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<()> {
    let io = |source: std::io::Error| DataError::Io { path: path.to_path_buf(), source };
    let bytes = to_bytes(tensors)?;
    let mut file = std::fs::File::create(path).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)
}

/// `tensors` as the bytes of a safetensors file (for [`crate::partial::write_whole`], where
/// the file is at a path a user chose).
pub fn to_bytes(tensors: &HashMap<String, Tensor>) -> Result<Vec<u8>> {
    let host = tensors
        .iter()
        .map(|(name, t)| Ok((name.as_str(), t.to_device(&Device::Cpu)?)))
        .collect::<candle_core::Result<Vec<_>>>()?;
    safetensors::serialize(host, None).map_err(|e| DataError::InvalidArgument(format!("safetensors: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_what_candle_reads_with_the_umask_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a = Tensor::arange(0f32, 6.0, &Device::Cpu).unwrap().reshape((2, 3)).unwrap();
        let b = Tensor::new(&[7u32, 9], &Device::Cpu).unwrap();
        write(&path, &HashMap::from([("a".to_string(), a.clone()), ("b".to_string(), b.clone())])).unwrap();
        let back = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        assert_eq!(back["a"].to_vec2::<f32>().unwrap(), a.to_vec2::<f32>().unwrap());
        assert_eq!(back["b"].to_vec1::<u32>().unwrap(), [7, 9]);
        // The same mode as a file created plainly in the same folder: the umask's.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let plain = dir.path().join("plain");
            std::fs::File::create(&plain).unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), mode(&plain));
        }
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // A folder in the way is an error naming the path.
        let e = write(dir.path(), &HashMap::new()).unwrap_err().to_string();
        assert!(e.starts_with(&dir.path().display().to_string()), "{e}");
    }
}
