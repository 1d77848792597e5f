//! Files users name as input — scenarios, imports, contents sources, boot files, images —
//! opened so that no path can block a run or exhaust memory: a FIFO, a device or a directory
//! is refused with an error naming the path and what it is (images may also be block
//! devices: a burned USB stick is worth inspecting), and whole-file reads are bounded.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The largest text file (scenario, import, manifest) read whole.
pub const MAX_TEXT: u64 = 64 << 20;

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The operating system refused.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A path that is not a regular file where one is needed.
    #[error("{} is {kind}, not a regular file", .path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is ("a FIFO", "a directory", ...).
        kind: &'static str,
    },
    /// A file larger than what is read whole.
    #[error("{} is {size} bytes, more than the {max} read at most", .path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size (or how much was read before stopping).
        size: u64,
        /// The bound.
        max: u64,
    },
}

impl InputError {
    fn io(path: &Path) -> impl Fn(io::Error) -> InputError + '_ {
        move |source| InputError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a file type is, for errors.
pub fn kind_name(t: FileType) -> &'static str {
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a file"
    }
}

/// What identifies a file's contents as they were when it was first looked at: the same
/// inode, size, modification and change times. A file rewritten in place changes its ctime
/// (which no user can set back), so comparing stamps finds a source changed during a build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of a file's metadata.
    pub fn of(md: &Metadata) -> Stamp {
        Stamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.len(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

/// Opens a regular file for reading. The path is looked at before it is opened, so a FIFO
/// or a device is refused without opening it (opening can block or have effects); it is
/// opened non-blocking and looked at again, so a swap in between is refused too.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), InputError> {
    open_kind(path, |t| t.is_file())
}

/// Opens an image to read: a regular file or a block device. Gives its length.
pub fn open_image(path: &Path) -> Result<(File, u64), InputError> {
    let (mut f, md) = open_kind(path, |t| t.is_file() || t.is_block_device())?;
    let len = if md.file_type().is_block_device() {
        f.seek(SeekFrom::End(0)).map_err(InputError::io(path))?
    } else {
        md.len()
    };
    Ok((f, len))
}

fn open_kind(path: &Path, ok: impl Fn(FileType) -> bool) -> Result<(File, Metadata), InputError> {
    let refuse = |t: FileType| InputError::NotRegular {
        path: path.to_path_buf(),
        kind: kind_name(t),
    };
    let before = std::fs::metadata(path).map_err(InputError::io(path))?;
    if !ok(before.file_type()) {
        return Err(refuse(before.file_type()));
    }
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(InputError::io(path))?;
    let md = f.metadata().map_err(InputError::io(path))?;
    if !ok(md.file_type()) {
        return Err(refuse(md.file_type()));
    }
    Ok((f, md))
}

/// Reads a whole regular file of at most `max` bytes.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, InputError> {
    let (f, md) = open_regular(path)?;
    let too_large = |size| InputError::TooLarge {
        path: path.to_path_buf(),
        size,
        max,
    };
    if md.len() > max {
        return Err(too_large(md.len()));
    }
    let mut bytes = Vec::with_capacity(md.len() as usize);
    // A file growing while read stops one byte past the bound.
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(InputError::io(path))?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The SHA-256 of a regular file, read in pieces (no whole-file buffer), as lower-case hex.
pub fn sha256_hex(path: &Path) -> Result<String, InputError> {
    use sha2::{Digest, Sha256};
    let (mut f, _) = open_regular(path)?;
    let mut h = Sha256::new();
    // On the stack: a fresh heap buffer per file cost more in zeroing than the hashing.
    let mut buf = [0u8; 64 << 10];
    loop {
        let n = f.read(&mut buf).map_err(InputError::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::hex::hex(&h.finalize()))
}

impl InputError {
    /// Its exit class: an input that cannot be read is bad input.
    pub fn class(&self) -> crate::exit::Class {
        crate::exit::Class::BadInput
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo(dir: &Path) -> PathBuf {
        let p = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        p
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let f = fifo(d.path());
        for (path, kind) in [
            (f.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (d.path(), "a directory"),
        ] {
            let e = read_regular(path, MAX_TEXT).unwrap_err();
            assert!(
                matches!(&e, InputError::NotRegular { kind: k, .. } if *k == kind),
                "{e}"
            );
            assert!(open_image(path).is_err());
        }
        assert!(matches!(
            read_regular(&d.path().join("none"), 1),
            Err(InputError::Io { .. })
        ));
    }

    #[test]
    fn reads_are_bounded() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_regular(&p, 5).unwrap(), b"12345");
        let e = read_regular(&p, 4).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::TooLarge {
                    size: 5,
                    max: 4,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(open_image(&p).unwrap().1, 5);
    }

    #[test]
    fn a_rewritten_file_has_a_new_stamp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let before = Stamp::of(&std::fs::metadata(&p).unwrap());
        assert_eq!(before, Stamp::of(&std::fs::metadata(&p).unwrap()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&p, b"xyz").unwrap();
        assert_ne!(before, Stamp::of(&std::fs::metadata(&p).unwrap()));
    }
}
