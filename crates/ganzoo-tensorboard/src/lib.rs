//! TensorBoard event files, written so that `tensorboard --logdir` shows a run live,
//! and read back (to check them). `tensorboard-rs` was looked at: unmaintained since
//! 2022, on protobuf 2, and it panics on I/O errors; this crate is the format's three
//! pieces, each on a maintained crate:
//!
//! - [`record`]: TFRecord framing — length, masked CRC-32C of the length, data, masked
//!   CRC-32C of the data (`crc32c`).
//! - [`proto`]: the protobuf messages `Event`, `Summary`, `SessionLog` from TensorFlow's
//!   `event.proto` / `summary.proto`, declared with `prost`'s derive (no `protoc`).
//! - [`EventWriter`]: one `events.out.tfevents.*` file: scalars, PNG images, session
//!   starts; [`read_events`] parses a file back, checking every CRC.

pub mod proto;
pub mod record;
mod writer;

pub use writer::{read_events, EventWriter, Scalar};

/// What went wrong with an event file.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Corrupt { path: std::path::PathBuf, detail: String },
}

pub type Result<T, E = EventError> = std::result::Result<T, E>;
