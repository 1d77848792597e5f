//! Why an image could not be read: every error names the structure and the offset it was
//! reading, and a read cut short by a truncated image says so.

use std::path::PathBuf;

use crate::image::format::iso9660::SECTOR;
use crate::image::format::record::DecodeError;
use crate::image::format::structure::Structure;

/// Why an image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The image could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The image.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path is not something an image can be read from (a FIFO, a directory, ...).
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// No volume descriptor at sector 16.
    #[error("sector 16 holds no volume descriptor: not an ISO 9660 image")]
    NotIso,
    /// A structure reaches past the end of the image.
    #[error("{structure} at byte {offset} ({len} bytes) reaches past the end of the image ({size} bytes)")]
    PastEnd {
        /// The structure.
        structure: Structure,
        /// Where it starts.
        offset: u64,
        /// Its claimed length.
        len: u64,
        /// The image size.
        size: u64,
    },
    /// The image is shorter than its volume says, and something was cut off.
    #[error("{truncation}: {cause}")]
    Truncated {
        /// What the volume claims against what the file holds.
        truncation: Truncation,
        /// The read that found the end.
        cause: Box<ReadError>,
    },
    /// A record of a structure does not decode.
    #[error("{structure} at byte {offset}: {source}")]
    Record {
        /// The structure it belongs to.
        structure: Structure,
        /// Where the record starts.
        offset: u64,
        /// Why it does not decode.
        #[source]
        source: DecodeError,
    },
    /// A structure is impossible in another way.
    #[error("{structure} at byte {offset}: {what}")]
    Invalid {
        /// The structure.
        structure: Structure,
        /// Where.
        offset: u64,
        /// What is wrong.
        what: String,
    },
}

/// An image shorter than its primary volume descriptor's volume space size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The sectors the volume claims.
    pub claimed_sectors: u64,
    /// The bytes the file holds.
    pub size: u64,
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the image is truncated: {}", self.claims())
    }
}

impl Truncation {
    /// `its volume space size claims N sectors (B bytes), but the file holds S bytes (W whole
    /// sectors)`.
    pub fn claims(&self) -> String {
        format!(
            "its volume space size claims {} sectors ({} bytes), but the file holds {} bytes ({} whole sectors)",
            self.claimed_sectors,
            self.claimed_sectors * SECTOR,
            self.size,
            self.size / SECTOR
        )
    }

    /// The truncation of an image whose primary volume descriptor claims `sectors`.
    pub(crate) fn of(sectors: u64, size: u64) -> Option<Truncation> {
        (sectors.saturating_mul(SECTOR) > size).then_some(Truncation {
            claimed_sectors: sectors,
            size,
        })
    }
}

/// A read that ran past the end of a truncated image is reported as the truncation, with
/// the read that found it.
pub(crate) fn explain_end(e: ReadError, truncation: Option<Truncation>) -> ReadError {
    match (e, truncation) {
        (e @ ReadError::PastEnd { .. }, Some(truncation)) => ReadError::Truncated {
            truncation,
            cause: Box::new(e),
        },
        (e, _) => e,
    }
}

impl ReadError {
    /// The error with the image's path in front, unless it names the path already.
    pub fn shown(&self, image: &std::path::Path) -> String {
        match self {
            ReadError::Io { .. } | ReadError::Input(_) => self.to_string(),
            _ => format!("{}: {self}", image.display()),
        }
    }

    /// Its exit class: an image that cannot be read is bad input.
    pub fn class(&self) -> crate::exit::Class {
        crate::exit::Class::BadInput
    }
}
