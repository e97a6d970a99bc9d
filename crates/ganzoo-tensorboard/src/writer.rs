//! One event file: created new (never reopened, never another's), appended one framed
//! `Event` per call, each written with one `write_all` so a reader sees whole records
//! (or, after a crash mid-write, a truncated last one, which TensorBoard skips).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::proto::{Content, Event, Image, SessionLog, SessionStatus, Summary, Value, What};
use crate::record::{frame, unframe, FrameError};
use crate::{EventError, Result};

/// A named scalar at one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub tag: String,
    pub value: f64,
}

impl Scalar {
    pub fn new(tag: impl Into<String>, value: f64) -> Self {
        Self { tag: tag.into(), value }
    }
}

/// Writes `events.out.tfevents.*` in a log folder.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
}

/// What every event file starts with (TensorFlow 2's writers).
pub const FILE_VERSION: &str = "brain.Event:2";
/// Largest event file [`read_events`] reads.
const MAX_READ: u64 = 1 << 30;

impl EventWriter {
    /// A new event file in `dir` (made if missing), named as TensorFlow names them:
    /// `events.out.tfevents.<seconds>.<host>.<pid>.<n>`, `n` the first free number.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        for n in 0..1000 {
            let path = dir.join(format!("events.out.tfevents.{secs}.{host}.{}.{n}", std::process::id()));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => {
                    let mut writer = Self { path, file };
                    writer.write(0, What::FileVersion(FILE_VERSION.into()))?;
                    return Ok(writer);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(&path, e)),
            }
        }
        Err(EventError::Corrupt { path: dir.to_path_buf(), detail: "no free event-file name".into() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Scalars of one step, as one event (TensorBoard stores them as f32).
    pub fn scalars(&mut self, step: u64, values: &[Scalar]) -> Result<()> {
        let value = values
            .iter()
            .map(|s| Value { tag: s.tag.clone(), content: Some(Content::SimpleValue(s.value as f32)) })
            .collect();
        self.write(step, What::Summary(Summary { value }))
    }

    /// A PNG image under `tag` (its size and colours read from the PNG's header).
    pub fn png(&mut self, step: u64, tag: &str, png: &[u8]) -> Result<()> {
        let (width, height, colorspace) = png_header(png).ok_or_else(|| EventError::Corrupt {
            path: self.path.clone(),
            detail: format!("the image for '{tag}' is not a PNG"),
        })?;
        let image = Image { height, width, colorspace, encoded_image_string: png.to_vec() };
        let value = vec![Value { tag: tag.into(), content: Some(Content::Image(image)) }];
        self.write(step, What::Summary(Summary { value }))
    }

    /// Marks a (re)start at `step`: TensorBoard drops events of later steps written
    /// before it, so a resumed run's repeated steps show once.
    pub fn session_start(&mut self, step: u64) -> Result<()> {
        let log =
            SessionLog { status: SessionStatus::Start as i32, checkpoint_path: String::new(), msg: String::new() };
        self.write(step, What::SessionLog(log))
    }

    fn write(&mut self, step: u64, what: What) -> Result<()> {
        let wall_time = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let event = Event { wall_time, step: i64::try_from(step).unwrap_or(i64::MAX), what: Some(what) };
        let bytes = frame(&event.encode_to_vec());
        self.file.write_all(&bytes).map_err(|e| io(&self.path, e))
    }
}

/// `(width, height, colorspace)` from a PNG's IHDR chunk; `None` if `png` is not one.
fn png_header(png: &[u8]) -> Option<(i32, i32, i32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if png.len() < 26 || &png[..8] != SIGNATURE || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |at: usize| i32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    let colorspace = match png[25] {
        0 => 1,
        4 => 2,
        2 | 3 => 3,
        6 => 4,
        _ => return None,
    };
    Some((be(16), be(20), colorspace))
}

/// Every event of the file at `path`, in order; every record's CRCs checked and every
/// record decoded. A truncated last record is an error too (callers decide).
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    let len = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
    if len > MAX_READ {
        return Err(EventError::Corrupt {
            path: path.into(),
            detail: format!("{len} bytes is more than this reader takes"),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    let corrupt = |detail: String| EventError::Corrupt { path: path.into(), detail };
    let records = unframe(&bytes).map_err(|e| match e {
        FrameError::Truncated(at) => corrupt(format!("truncated record at byte {at}")),
        FrameError::BadCrc(at) => corrupt(format!("CRC mismatch in the record at byte {at}")),
    })?;
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| Event::decode(r).map_err(|e| corrupt(format!("record {i} is not an Event: {e}"))))
        .collect()
}

fn io(path: &Path, source: std::io::Error) -> EventError {
    EventError::Io { path: path.to_path_buf(), source }
}
