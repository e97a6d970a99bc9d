//! TFRecord framing (TensorFlow's `record_writer.cc`): each record is
//! `u64 length (LE) · u32 masked_crc(length bytes) · data · u32 masked_crc(data)`, where
//! `masked_crc(x) = rotate_right(crc32c(x), 15) + 0xa282ead8`.

/// The constant TensorFlow adds to a rotated CRC ("so that CRCs of data that contain
/// CRCs look random").
const MASK_DELTA: u32 = 0xa282_ead8;

/// TensorFlow's masked CRC-32C (Castagnoli) of `bytes`.
pub fn masked_crc(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes).rotate_right(15).wrapping_add(MASK_DELTA)
}

/// `data` framed as one record.
pub fn frame(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// Why a buffer does not parse as records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The buffer ends inside the record starting at this offset (a writer interrupted
    /// mid-record leaves this; TensorBoard stops reading there).
    Truncated(usize),
    /// The length's or the data's CRC does not match, in the record at this offset.
    BadCrc(usize),
}

/// The records of `bytes`, in order, every CRC checked. A length is checked against
/// what is left before anything is taken.
pub fn unframe(bytes: &[u8]) -> Result<Vec<&[u8]>, FrameError> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 12 {
            return Err(FrameError::Truncated(at));
        }
        let (len_bytes, len_crc) = (&rest[..8], u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]));
        if masked_crc(len_bytes) != len_crc {
            return Err(FrameError::BadCrc(at));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().map_err(|_| FrameError::Truncated(at))?);
        let available = (rest.len() - 12).saturating_sub(4) as u64;
        if len > available {
            return Err(FrameError::Truncated(at));
        }
        let n = len as usize;
        let data = &rest[12..12 + n];
        let crc = u32::from_le_bytes([rest[12 + n], rest[13 + n], rest[14 + n], rest[15 + n]]);
        if masked_crc(data) != crc {
            return Err(FrameError::BadCrc(at));
        }
        records.push(data);
        at += 16 + n;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli_and_the_mask_is_tensorflows() {
        // The CRC-32C check value (RFC 3720 B.4: "123456789" → 0xE3069283).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        // TensorBoard's own `masked_crc32c` (tensorboard 2.21,
        // `compat.tensorflow_stub.pywrap_tensorflow`) on the same inputs.
        assert_eq!(masked_crc(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc(b""), 0xa282_ead8);
        let bytes: Vec<u8> = (0..32).collect();
        assert_eq!(masked_crc(&bytes), 0x951f_7892);
    }

    #[test]
    fn frames_round_trip_and_damage_is_caught() {
        let mut file = frame(b"first");
        file.extend(frame(b""));
        file.extend(frame(&[7u8; 300]));
        let records = unframe(&file).unwrap();
        assert_eq!(records, vec![&b"first"[..], &b""[..], &[7u8; 300][..]]);
        let second = frame(b"first").len();
        for cut in [1, 11, 12, second + 3, file.len() - 1] {
            assert!(matches!(unframe(&file[..cut]), Err(FrameError::Truncated(_))), "cut at {cut}");
        }
        for flip in [0, 9, 13, second + 20] {
            let mut bad = file.clone();
            bad[flip] ^= 0x40;
            assert!(unframe(&bad).is_err(), "flip at {flip}");
        }
        // A huge length is refused before anything is taken.
        let mut huge = u64::MAX.to_le_bytes().to_vec();
        huge.extend(masked_crc(&huge).to_le_bytes());
        huge.extend([0u8; 8]);
        assert_eq!(unframe(&huge), Err(FrameError::Truncated(0)));
    }
}
