//! Stage 3, **image**: a directory tree → a reproducible ISO 9660 image with Rock Ridge,
//! Joliet, El Torito (BIOS and UEFI), a FAT ESP and an isohybrid MBR/GPT.
//!
//! The pipeline inside the stage: [`tree::scan`] reads the source tree (sorted, modes only),
//! [`plan::plan`] lays out every extent and builds every structure, [`write::write`] streams
//! the plan into place atomically, and [`inspect`] reads any ISO back. Each on-disk structure
//! is a type or function with its own encoder and a byte-layout test in its module:
//! [`iso9660`], [`rockridge`], [`joliet`], [`eltorito`], [`fat`], [`hybrid`]; every date comes
//! from one [`clock::Clock`].

pub mod clock;
pub mod eltorito;
pub mod fat;
pub mod gpt;
pub mod inspect;
pub mod iso9660;
pub mod joliet;
pub mod mbr;
pub mod plan;
pub mod record;
pub mod rockridge;
pub mod susp;
pub mod tree;
pub mod write;

use std::fmt;
use std::path::{Path, PathBuf};

/// Why an image could not be made or read.
#[derive(Debug)]
pub enum ImageError {
    /// Reading or writing a path failed.
    Io(PathBuf, std::io::Error),
    /// The input cannot become an image (bad name, bad volume ID, unsupported file type...).
    Input(String),
    /// A source file changed size between planning and copying.
    Changed(PathBuf),
    /// An image being inspected is not what it claims to be.
    Malformed(String),
    /// A signal (Ctrl-C) stopped the write; nothing was left at the target.
    Interrupted,
}

impl ImageError {
    /// An I/O error at a path.
    pub fn io(p: &Path, e: std::io::Error) -> ImageError {
        ImageError::Io(p.to_path_buf(), e)
    }
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            ImageError::Input(m) => f.write_str(m),
            ImageError::Changed(p) => write!(
                f,
                "{}: the file changed size while the image was being written",
                p.display()
            ),
            ImageError::Malformed(m) => write!(f, "not a valid image: {m}"),
            ImageError::Interrupted => f.write_str("interrupted; no image was written"),
        }
    }
}

impl std::error::Error for ImageError {}

/// The first free name among `build("")`, `build("~1")`, `build("~2")`, ... (from `"~1"` on
/// when `plain` is false, as FAT basis names go). Every name mapping of the image (primary,
/// Joliet, FAT) disambiguates by this one rule.
pub(crate) fn first_free<T>(
    plain: bool,
    build: impl Fn(&str) -> T,
    taken: impl Fn(&T) -> bool,
) -> T {
    std::iter::once(String::new())
        .filter(|_| plain)
        .chain((1u32..).map(|n| format!("~{n}")))
        .map(|suffix| build(&suffix))
        .find(|c| !taken(c))
        .expect("an unbounded search finds a free name")
}

/// Scans `dir`, plans and writes the image to `out` atomically; returns the plan.
pub fn mkiso(dir: &Path, out: &Path, opts: &plan::Options) -> Result<plan::Plan, ImageError> {
    let root = tree::scan(dir)?;
    let p = plan::plan(&root, opts)?;
    write::write(&p, out)?;
    Ok(p)
}
