//! Why the harness could not boot at all — as opposed to a boot that ran and failed its
//! check, which is a verdict, not an error.

use std::path::PathBuf;

use crate::firmware::NotFound;

/// An error of the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No QEMU to run: not on the `PATH`, or not where `ISOPROOF_QEMU` says.
    #[error("{}", match .0 {
        Some(p) => format!("{}: no such QEMU (from ISOPROOF_QEMU)", p.display()),
        None => "qemu-system-x86_64 not found on PATH (Debian: apt-get install qemu-system-x86)".into(),
    })]
    QemuNotFound(Option<PathBuf>),
    /// QEMU could not be started.
    #[error("{}: {source}", program.display())]
    Run {
        /// The program.
        program: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No OVMF to boot UEFI with.
    #[error(transparent)]
    NoOvmf(#[from] NotFound),
    /// A UEFI boot was asked of a machine without OVMF.
    #[error("UEFI boot needs OVMF, and none was given or found")]
    OvmfNeeded,
    /// A file the boot needs does not exist (the image, an OVMF file).
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    /// Reading, writing or running something failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path (a file, a directory, or the program run).
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The JUnit report could not be written.
    #[error("JUnit: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

impl Error {
    /// An I/O error at `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
