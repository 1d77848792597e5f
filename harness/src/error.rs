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
    /// A Secure Boot mode was asked of a machine without OVMF's Secure Boot build.
    #[error("Secure Boot modes need OVMF's Secure Boot build with keys enrolled (Debian's ovmf: OVMF_CODE_4M.snakeoil.fd and OVMF_VARS_4M.snakeoil.fd), and none was found")]
    SecureOvmfNeeded,
    /// A file the boot needs does not exist (the image, an OVMF file).
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    /// A firmware file (OVMF's variable store template) could not be read.
    #[error("{}: {source}", path.display())]
    Firmware {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A work file of a boot (a variable store, a scratch disk, a temporary directory)
    /// could not be written.
    #[error("{}: {source}", path.display())]
    Scratch {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The JUnit report could not be written.
    #[error("JUnit: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

/// Whose the trouble is: what a caller needs to choose its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The machine: no QEMU, no OVMF, QEMU would not start.
    Environment,
    /// What the caller named: an image that does not exist.
    Input,
    /// Writing: work files, the JUnit report.
    Output,
}

impl Error {
    /// A work file at `path` could not be written.
    pub fn scratch(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Scratch {
            path: path.into(),
            source,
        }
    }

    /// Whose the trouble is.
    pub fn cause(&self) -> Cause {
        match self {
            Error::QemuNotFound(_)
            | Error::Run { .. }
            | Error::NoOvmf(_)
            | Error::OvmfNeeded
            | Error::SecureOvmfNeeded
            | Error::Firmware { .. } => Cause::Environment,
            Error::Missing(_) => Cause::Input,
            Error::Scratch { .. } | Error::Junit(_) => Cause::Output,
        }
    }
}
