//! Stage 3, **image**: a directory tree → a reproducible ISO 9660 image with Rock Ridge,
//! Joliet, El Torito (BIOS and UEFI), a FAT ESP and an isohybrid MBR/GPT; and any image read
//! back. Three rooms, as gimli and object keep shared record types apart from their readers
//! and writers:
//!
//! - [`format`]: every on-disk record, defined once with the `record!` macro — its layout,
//!   encoder, bounds-checked decoder and field list — beside its layout test, in the module
//!   of its specification (ECMA-119, SUSP/RRIP, El Torito, MBR, GPT, APM, FAT, cpio, PE), and
//!   the names of the structures ([`format::structure::Structure`]). It knows no reader or
//!   writer.
//! - [`write`]: behind [`mkiso`], `tree` reads the source tree (sorted, modes only), `plan`
//!   lays out every extent and builds every structure, and the module streams the plan into
//!   place atomically.
//! - [`read`]: `inspect` reads any ISO back into decoded records and a map of which structure
//!   owns which bytes; one walk over those records feeds inspect's JSON, `snapshot` (golden
//!   records of any image) and `diff`.
//!
//! Every date comes from one [`clock::Clock`].
//!
//! # Example
//!
//! ```
//! use isoproof::image::{clock::Clock, read::inspect, mkiso, write::plan::Options};
//!
//! let dir = tempfile::tempdir()?;
//! let src = dir.path().join("src");
//! std::fs::create_dir(&src)?;
//! std::fs::write(src.join("hello.txt"), "hi\n")?;
//! let iso = dir.path().join("out.iso");
//! let plan = mkiso(&src, &iso, &Options::new("HELLO", Clock::at(0)), &|| false, &mut |_| {})?;
//! let report = inspect::inspect(&iso)?;
//! assert_eq!(report.size, plan.size);
//! assert_eq!(report.files[0].path, "/hello.txt");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod clock;
pub mod format;
pub mod read;
pub mod write;

use std::path::{Path, PathBuf};

/// Why an image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading an input failed.
    #[error("{}: {source}", path.display())]
    Read {
        /// The input.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Writing the image failed (the target, or its directory).
    #[error("{}: {source}", path.display())]
    Write {
        /// The target or its directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The source tree cannot become an image.
    #[error(transparent)]
    Scan(#[from] write::tree::ScanError),
    /// The image cannot be laid out.
    #[error(transparent)]
    Plan(#[from] write::plan::PlanError),
    /// A source file changed (its size, times or inode) between planning and the end of
    /// its copy.
    #[error("{}: the file changed while the image was being written", .0.display())]
    Changed(PathBuf),
    /// The caller's cancel check said stop; nothing was left at the target.
    #[error("interrupted; no image was written")]
    Interrupted,
}

impl ImageError {
    /// Its exit class.
    pub fn class(&self) -> crate::exit::Class {
        use crate::exit::Class;
        match self {
            ImageError::Write { .. } => Class::Output,
            ImageError::Plan(write::plan::PlanError::Internal(_)) => Class::Internal,
            ImageError::Interrupted => Class::Interrupted,
            ImageError::Read { .. }
            | ImageError::Scan(_)
            | ImageError::Plan(_)
            | ImageError::Changed(_) => Class::BadInput,
        }
    }

    /// An error reading the input at `path`.
    pub fn read(path: &Path, source: std::io::Error) -> ImageError {
        ImageError::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An error writing the image at `path`.
    pub fn write(path: &Path, source: std::io::Error) -> ImageError {
        ImageError::Write {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Scans `dir`, plans and writes the image to `out` atomically; returns the plan. `cancel`
/// is asked between pieces of work; `progress` hears how far the write is.
pub fn mkiso(
    dir: &Path,
    out: &Path,
    opts: &write::plan::Options,
    cancel: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(write::Progress),
) -> Result<write::plan::Plan, ImageError> {
    let root = write::tree::scan(dir)?;
    let p = write::plan::plan(&root, opts)?;
    write::write(&p, out, crate::publish::Durable::Yes, cancel, progress)?;
    Ok(p)
}
