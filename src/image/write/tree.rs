//! The source tree: a directory read into a sorted, typed tree. Entries are ordered by the
//! bytes of their names (never readdir order); ownership is not read at all and permissions
//! come from the mode bits only; mtimes are ignored (the image's clock dates everything).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::input::Stamp;

/// Why a source tree cannot become an image.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Reading a path failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The tree's root is not a directory.
    #[error("{}: not a directory", .0.display())]
    NotDir(PathBuf),
    /// A name is not UTF-8 (Rock Ridge and Joliet names are Unicode).
    #[error("{}: the name {name:?} is not UTF-8", dir.display())]
    NameNotUtf8 {
        /// Its directory.
        dir: PathBuf,
        /// The name.
        name: std::ffi::OsString,
    },
    /// A symlink's target is not UTF-8.
    #[error("{}: symlink target {target:?} is not UTF-8", path.display())]
    TargetNotUtf8 {
        /// The symlink.
        path: PathBuf,
        /// Its target.
        target: std::ffi::OsString,
    },
    /// A device node, FIFO or socket, which an ISO image cannot hold.
    #[error("{}: is {what}, which an ISO image cannot hold", path.display())]
    Unsupported {
        /// The path.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// Directories nested beyond any reader's limit.
    #[error("{}: directories nested more than 255 deep", .0.display())]
    TooDeep(PathBuf),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ScanError + '_ {
    move |source| ScanError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One entry of the tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    /// The name (UTF-8; any byte but `/` and NUL).
    pub name: String,
    /// Permission bits (`0o7777` at most).
    pub perm: u32,
    /// What it is.
    pub kind: EntryKind,
}

/// Where a file's bytes come from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source {
    /// A file on disk, copied when the image is written, and its stamp when scanned: a file
    /// with another stamp when it is copied has changed, and the image would be torn.
    Path(PathBuf, Stamp),
    /// Bytes made in memory (generated files such as `/etc/hostname`).
    Bytes(std::sync::Arc<[u8]>),
}

/// The kinds of entries an image can hold.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EntryKind {
    /// A regular file, copied from `source` (of `size` bytes when scanned).
    File {
        /// Where the bytes come from.
        source: Source,
        /// Its size when scanned; a file that changes size before it is written is an error.
        size: u64,
    },
    /// A directory, its entries sorted by name.
    Dir(Vec<Entry>),
    /// A symbolic link (its target is stored, never followed).
    Symlink(String),
}

impl Entry {
    /// The POSIX mode with the file type bits, as Rock Ridge `PX` stores it.
    pub fn mode(&self) -> u32 {
        let t = match self.kind {
            EntryKind::File { .. } => 0o100000,
            EntryKind::Dir(_) => 0o040000,
            EntryKind::Symlink(_) => 0o120000,
        };
        t | self.perm
    }

    /// The children of a directory (empty for other kinds).
    pub fn children(&self) -> &[Entry] {
        match &self.kind {
            EntryKind::Dir(c) => c,
            _ => &[],
        }
    }
}

/// Reads `dir` into a tree. Names must be UTF-8; devices, FIFOs and sockets are refused.
pub(crate) fn scan(dir: &Path) -> Result<Entry, ScanError> {
    let md = fs::metadata(dir).map_err(io(dir))?;
    if !md.is_dir() {
        return Err(ScanError::NotDir(dir.to_path_buf()));
    }
    Ok(Entry {
        name: String::new(),
        perm: md.permissions().mode() & 0o7777,
        kind: EntryKind::Dir(scan_dir(dir, 0)?),
    })
}

fn scan_dir(dir: &Path, depth: usize) -> Result<Vec<Entry>, ScanError> {
    if depth > 255 {
        return Err(ScanError::TooDeep(dir.to_path_buf()));
    }
    let mut out = Vec::new();
    for item in fs::read_dir(dir).map_err(io(dir))? {
        let item = item.map_err(io(dir))?;
        let path = item.path();
        let name = item
            .file_name()
            .into_string()
            .map_err(|name| ScanError::NameNotUtf8 {
                dir: dir.to_path_buf(),
                name,
            })?;
        let md = fs::symlink_metadata(&path).map_err(io(&path))?;
        let perm = md.mode() & 0o7777;
        let ft = md.file_type();
        let kind = if ft.is_symlink() {
            let t = fs::read_link(&path).map_err(io(&path))?;
            let t =
                t.into_os_string()
                    .into_string()
                    .map_err(|target| ScanError::TargetNotUtf8 {
                        path: path.clone(),
                        target,
                    })?;
            EntryKind::Symlink(t)
        } else if ft.is_dir() {
            EntryKind::Dir(scan_dir(&path, depth + 1)?)
        } else if ft.is_file() {
            EntryKind::File {
                source: Source::Path(path.clone(), Stamp::of(&md)),
                size: md.len(),
            }
        } else {
            let what = if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else {
                "a device node"
            };
            return Err(ScanError::Unsupported { path, what });
        };
        out.push(Entry { name, perm, kind });
    }
    out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_typed_and_moded() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("b"), "12").unwrap();
        fs::create_dir(d.path().join("a")).unwrap();
        std::os::unix::fs::symlink("../x", d.path().join("c")).unwrap();
        fs::set_permissions(d.path().join("b"), fs::Permissions::from_mode(0o600)).unwrap();
        let t = scan(d.path()).unwrap();
        let names: Vec<&str> = t.children().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(t.children()[1].mode(), 0o100600);
        assert!(matches!(
            &t.children()[1].kind,
            EntryKind::File { size: 2, .. }
        ));
        assert_eq!(t.children()[2].kind, EntryKind::Symlink("../x".into()));
    }
}
