//! The `linux` payload: a NixOS-style live system built from real Debian binaries in a
//! payload root ([`root`]): the kernel as `/boot/bzImage`, an initramfs written here
//! (`/boot/initrd`: cpio newc, gzip) whose `/init` is stage 1 generated from the resolved
//! config ([`init`]), ISOLINUX for BIOS, a Unified Kernel Image ([`uki`]) for UEFI, the
//! store as `/nix-store.squashfs`, and the manifests stage 1 verifies every byte against.

pub mod fetch;
pub mod init;
pub mod lock;
pub mod modules;
pub mod report;
pub mod root;
pub mod uki;

use std::io::Write as _;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::image::format::cpio;

pub use report::LinuxReport;
pub use root::PayloadRoot;

/// Where stage 1 finds the verification manifests, in the image.
pub const VERIFY_DIR: &str = "/isoproof/verify";
/// The report line's tag.
pub const REPORT_TAG: &str = "ISOPROOF-LINUX";

/// Why the linux payload could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LinuxError {
    /// A part of the payload root is missing.
    #[error("no {what} at {}", .path.display())]
    Missing {
        /// Which part.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// There is no payload root where the scenario says.
    #[error("no payload root at {} (a directory in Debian's layout; `isoproof payload fetch` makes the pinned one from payload/lock.json at payload/root)", .0.display())]
    NoRoot(PathBuf),
    /// The root holds several kernels.
    #[error("{} holds several kernels ({}); keep one", .root.display(), .versions.join(", "))]
    SeveralKernels {
        /// The root.
        root: PathBuf,
        /// Their versions.
        versions: Vec<String>,
    },
    /// The modules are not the kernel's.
    #[error("the kernel is {version} but {} has no modules.dep (modules found for: {})", .path.display(), if .found.is_empty() { "none".to_string() } else { .found.join(", ") })]
    ModulesOfAnotherKernel {
        /// The kernel's version.
        version: String,
        /// Where its modules should be.
        path: PathBuf,
        /// The versions there are.
        found: Vec<String>,
    },
    /// A module named by the config is not in the kernel tree.
    #[error("kernel {version} has no module {name:?} (nor an alias or built-in of that name)")]
    UnknownModule {
        /// The kernel.
        version: String,
        /// The name.
        name: String,
    },
    /// A part could not be read.
    #[error("{}: {message}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// systemd-stub is not a PE32+ image sections can be appended to.
    #[error("linuxx64.efi.stub: {0}")]
    Stub(String),
    /// The initramfs could not be written.
    #[error("initramfs: {0}")]
    Cpio(#[from] cpio::CpioError),
    /// The store image could not be written.
    #[error("nix-store.squashfs: {0}")]
    Squashfs(String),
}

/// Reads a part of the payload root (bounded: a part is at most 256 MiB).
pub fn read_part(path: &std::path::Path) -> Result<Vec<u8>, LinuxError> {
    crate::input::read_regular(path, 256 << 20).map_err(|e| LinuxError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// The initramfs: `/init`, busybox, the modules in `order` and `index` (the `modules.*`
/// files busybox `modprobe` reads, by name), and `extra` (a netboot image's own files), as
/// a gzip-compressed cpio newc archive with every time `mtime`.
pub fn initramfs(
    root: &PayloadRoot,
    order: &[modules::Load],
    index: &[(&str, String)],
    init_script: &str,
    extra: Vec<cpio::Entry>,
    mtime: u32,
) -> Result<Vec<u8>, LinuxError> {
    use cpio::{Entry, Kind};
    let dir = |p: &str| Entry {
        path: p.into(),
        perm: 0o755,
        kind: Kind::Dir,
    };
    let mut entries = vec![
        dir("bin"),
        dir("sbin"),
        dir("dev"),
        dir("lib"),
        dir("lib/modules"),
        dir("proc"),
        dir("sys"),
        dir("run"),
        dir("tmp"),
        dir("mnt-root"),
        Entry {
            path: "dev/console".into(),
            perm: 0o600,
            kind: Kind::CharDevice(5, 1),
        },
        Entry {
            path: "init".into(),
            perm: 0o755,
            kind: Kind::File(init_script.as_bytes().to_vec()),
        },
        Entry {
            path: "bin/busybox".into(),
            perm: 0o755,
            kind: Kind::File(read_part(&root.part(root::BUSYBOX))?),
        },
        Entry {
            path: "bin/sh".into(),
            perm: 0o777,
            kind: Kind::Symlink("busybox".into()),
        },
    ];
    let base = format!("lib/modules/{}", root.version);
    let mut dirs = std::collections::BTreeSet::new();
    dirs.insert(base.clone());
    for l in order {
        let target = format!("{base}/{}", l.file);
        let mut at = target.as_str();
        while let Some((parent, _)) = at.rsplit_once('/') {
            if parent.len() <= base.len() {
                break;
            }
            dirs.insert(parent.to_string());
            at = parent;
        }
        entries.push(Entry {
            path: target,
            perm: 0o644,
            kind: Kind::File(read_part(&root.modules_dir().join(&l.file))?),
        });
    }
    for (name, text) in index {
        entries.push(Entry {
            path: format!("{base}/{name}"),
            perm: 0o644,
            kind: Kind::File(text.clone().into_bytes()),
        });
    }
    entries.extend(dirs.iter().map(|d| dir(d)));
    // A directory of `extra` that stage 1 already has (`etc` under `bin`'s siblings) once.
    for e in extra {
        let known = matches!(e.kind, Kind::Dir) && entries.iter().any(|x| x.path == e.path);
        if !known {
            entries.push(e);
        }
    }
    let archive = cpio::write(&entries, mtime)?;
    gzip(&archive)
}

/// gzip with a fixed header (no name, time 0, OS "unknown"), so the same bytes in give the
/// same bytes out.
pub fn gzip(b: &[u8]) -> Result<Vec<u8>, LinuxError> {
    let mut e = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::new(6));
    let fail = |e: std::io::Error| LinuxError::Read {
        path: "initramfs".into(),
        message: e.to_string(),
    };
    e.write_all(b).map_err(fail)?;
    e.finish().map_err(fail)
}

/// A file of the store image: its path inside it, permission bits and what it is.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreNode {
    /// A directory.
    Dir(String),
    /// A file: path, mode, bytes.
    File(String, u32, Vec<u8>),
    /// A symbolic link: path, target.
    Symlink(String, String),
}

/// The store image: a squashfs (gzip) with every time `mtime`, root-owned, in path order.
pub fn squashfs(nodes: &[StoreNode], mtime: u32) -> Result<Vec<u8>, LinuxError> {
    use backhand::{compression::Compressor, FilesystemCompressor, FilesystemWriter, NodeHeader};
    let err = |e: backhand::BackhandError| LinuxError::Squashfs(e.to_string());
    let mut fs = FilesystemWriter::default();
    fs.set_time(mtime);
    fs.set_root_mode(0o755);
    fs.set_root_uid(0);
    fs.set_root_gid(0);
    fs.set_compressor(FilesystemCompressor::new(Compressor::Gzip, None).map_err(err)?);
    let mut sorted: Vec<&StoreNode> = nodes.iter().collect();
    let path = |n: &StoreNode| match n {
        StoreNode::Dir(p) | StoreNode::File(p, ..) | StoreNode::Symlink(p, _) => p.clone(),
    };
    sorted.sort_by_key(|n| path(n));
    for n in sorted {
        match n {
            StoreNode::Dir(p) => fs
                .push_dir(p, NodeHeader::new(0o755, 0, 0, mtime))
                .map_err(err)?,
            StoreNode::File(p, mode, b) => fs
                .push_file(
                    std::io::Cursor::new(b.clone()),
                    p,
                    NodeHeader::new(*mode as u16, 0, 0, mtime),
                )
                .map_err(err)?,
            StoreNode::Symlink(p, t) => fs
                .push_symlink(t, p, NodeHeader::new(0o777, 0, 0, mtime))
                .map_err(err)?,
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    fs.write(&mut out).map_err(err)?;
    Ok(out.into_inner())
}

/// `sha256sum` lines: `HEX  ./PATH`.
pub fn sha256_line(path: &str, bytes: &[u8]) -> String {
    format!("{}  .{path}\n", crate::hex::hex(&Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_reproducible_and_round_trips() {
        let a = gzip(b"hello hello hello").unwrap();
        assert_eq!(a, gzip(b"hello hello hello").unwrap());
        // RFC 1952: ID1 ID2 CM, FLG 0, MTIME 0, XFL, OS 255.
        assert_eq!(&a[..4], [0x1f, 0x8b, 8, 0]);
        assert_eq!(&a[4..8], [0, 0, 0, 0]);
        assert_eq!(a[9], 255);
        let mut d = flate2::read::GzDecoder::new(&a[..]);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut d, &mut s).unwrap();
        assert_eq!(s, "hello hello hello");
    }

    #[test]
    fn squashfs_is_reproducible() {
        let nodes = vec![
            StoreNode::File("pkg/bin/hello".into(), 0o755, b"#!/bin/sh\n".to_vec()),
            StoreNode::Dir("pkg".into()),
            StoreNode::Dir("pkg/bin".into()),
            StoreNode::Symlink("pkg/hello".into(), "bin/hello".into()),
        ];
        let a = squashfs(&nodes, 315532800).unwrap();
        let mut r = nodes.clone();
        r.reverse();
        assert_eq!(a, squashfs(&r, 315532800).unwrap());
        assert_eq!(&a[..4], b"hsqs");
    }
}
