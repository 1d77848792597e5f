//! The cpio "newc" archive (the format the Linux kernel unpacks an initramfs from; see the
//! kernel's `Documentation/driver-api/early-userspace/buffer-format.rst`): the header record
//! with its encoder, decoder and layout test, an archive writer that is reproducible (sorted
//! entries, directories first, inode numbers in order, nlink 1, owner root, one mtime), and a
//! bounds-checked reader.

use crate::image::format::record::{record, AsciiHex32, Bytes, DecodeError, Field, Record};

/// The magic of a newc header (no checksums).
pub const MAGIC: &[u8; 6] = b"070701";
/// The name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";

/// File type bits of `c_mode` (as in `stat`).
pub const S_IFDIR: u32 = 0o040000;
/// A regular file.
pub const S_IFREG: u32 = 0o100000;
/// A symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// A character device.
pub const S_IFCHR: u32 = 0o020000;

record! {
    /// buffer-format.rst, "cpio_file": the 110-byte header before each name, every number
    /// 8 ASCII hex digits.
    pub struct NewcHeader("cpio newc header", 110) {
        /// Bytes 0-5: c_magic "070701".
        0 magic: Bytes<6>,
        /// Bytes 6-13: c_ino.
        6 ino: AsciiHex32,
        /// Bytes 14-21: c_mode (type and permission bits).
        14 mode: AsciiHex32,
        /// Bytes 22-29: c_uid.
        22 uid: AsciiHex32,
        /// Bytes 30-37: c_gid.
        30 gid: AsciiHex32,
        /// Bytes 38-45: c_nlink.
        38 nlink: AsciiHex32,
        /// Bytes 46-53: c_mtime.
        46 mtime: AsciiHex32,
        /// Bytes 54-61: c_filesize.
        54 filesize: AsciiHex32,
        /// Bytes 62-69: c_maj (device of the file).
        62 dev_major: AsciiHex32,
        /// Bytes 70-77: c_min.
        70 dev_minor: AsciiHex32,
        /// Bytes 78-85: c_rmaj (for device files).
        78 rdev_major: AsciiHex32,
        /// Bytes 86-93: c_rmin.
        86 rdev_minor: AsciiHex32,
        /// Bytes 94-101: c_namesize, the name's length with its NUL.
        94 namesize: AsciiHex32,
        /// Bytes 102-109: c_chksum (zero in newc).
        102 check: AsciiHex32,
    }
}

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file and its bytes.
    File(Vec<u8>),
    /// A symbolic link and its target.
    Symlink(String),
    /// A character device (major, minor), such as `/dev/console` (5, 1).
    CharDevice(u32, u32),
}

/// One entry: its path (relative, no leading `/`), permission bits and kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the archive (`bin/busybox`).
    pub path: String,
    /// Permission bits (0755 …).
    pub perm: u32,
    /// What it is.
    pub kind: Kind,
}

impl Entry {
    fn type_bits(&self) -> u32 {
        match self.kind {
            Kind::Dir => S_IFDIR,
            Kind::File(_) => S_IFREG,
            Kind::Symlink(_) => S_IFLNK,
            Kind::CharDevice(..) => S_IFCHR,
        }
    }

    fn data(&self) -> &[u8] {
        match &self.kind {
            Kind::File(b) => b,
            Kind::Symlink(t) => t.as_bytes(),
            Kind::Dir | Kind::CharDevice(..) => &[],
        }
    }
}

/// Why an archive could not be written or read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpioError {
    /// A header is cut short or broken.
    #[error("cpio entry at byte {offset}: {source}")]
    Header {
        /// Where the header starts.
        offset: usize,
        /// What is wrong.
        #[source]
        source: DecodeError,
    },
    /// A field or the name is impossible.
    #[error("cpio entry at byte {offset}: {what}")]
    Invalid {
        /// Where the header starts.
        offset: usize,
        /// What is wrong.
        what: String,
    },
    /// Two entries have one path, or a path is not a relative path.
    #[error("cpio entry {0:?}: {1}")]
    Path(String, &'static str),
    /// An entry is larger than the format's 32-bit size field.
    #[error("cpio entry {0:?} is larger than 4 GiB")]
    TooLarge(String),
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// Writes a reproducible archive: directories first, then every other entry, each group
/// sorted by path; inode numbers 1, 2, … in that order; nlink 1, uid and gid 0 and `mtime`
/// for all; then the trailer. The same entries give the same bytes, whatever their order.
pub fn write(entries: &[Entry], mtime: u32) -> Result<Vec<u8>, CpioError> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| {
        (!matches!(a.kind, Kind::Dir), &a.path).cmp(&(!matches!(b.kind, Kind::Dir), &b.path))
    });
    for w in sorted.windows(2) {
        if w[0].path == w[1].path {
            return Err(CpioError::Path(
                w[0].path.clone(),
                "two entries have this path",
            ));
        }
    }
    let mut out = Vec::new();
    for (i, e) in sorted.iter().enumerate() {
        if e.path.is_empty()
            || e.path.starts_with('/')
            || e.path.contains('\0')
            || e.path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(CpioError::Path(e.path.clone(), "not a relative path"));
        }
        let size =
            u32::try_from(e.data().len()).map_err(|_| CpioError::TooLarge(e.path.clone()))?;
        let (rmaj, rmin) = match e.kind {
            Kind::CharDevice(a, b) => (a, b),
            _ => (0, 0),
        };
        let h = NewcHeader {
            magic: Bytes(*MAGIC),
            ino: AsciiHex32::new(i as u32 + 1),
            mode: AsciiHex32::new(e.type_bits() | (e.perm & 0o7777)),
            uid: AsciiHex32::new(0),
            gid: AsciiHex32::new(0),
            nlink: AsciiHex32::new(1),
            mtime: AsciiHex32::new(mtime),
            filesize: AsciiHex32::new(size),
            dev_major: AsciiHex32::new(0),
            dev_minor: AsciiHex32::new(0),
            rdev_major: AsciiHex32::new(rmaj),
            rdev_minor: AsciiHex32::new(rmin),
            namesize: AsciiHex32::new(e.path.len() as u32 + 1),
            check: AsciiHex32::new(0),
        };
        h.encode_into(&mut out);
        out.extend_from_slice(e.path.as_bytes());
        out.push(0);
        pad4(&mut out);
        out.extend_from_slice(e.data());
        pad4(&mut out);
    }
    trailer(&mut out);
    Ok(out)
}

fn trailer(out: &mut Vec<u8>) {
    let z = AsciiHex32::new(0);
    NewcHeader {
        magic: Bytes(*MAGIC),
        ino: z,
        mode: z,
        uid: z,
        gid: z,
        nlink: AsciiHex32::new(1),
        mtime: z,
        filesize: z,
        dev_major: z,
        dev_minor: z,
        rdev_major: z,
        rdev_minor: z,
        namesize: AsciiHex32::new(TRAILER.len() as u32 + 1),
        check: z,
    }
    .encode_into(out);
    out.extend_from_slice(TRAILER.as_bytes());
    out.push(0);
    pad4(out);
}

/// One entry read back: its header and path, and where its data is in the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadEntry {
    /// The header.
    pub header: NewcHeader,
    /// The name.
    pub path: String,
    /// Where the header starts.
    pub offset: usize,
    /// Its data (file bytes or link target).
    pub data: std::ops::Range<usize>,
}

/// Reads an archive's entries up to the trailer. Every length is checked against the bytes
/// there are; nothing is allocated from a claimed size.
pub fn read(b: &[u8]) -> Result<Vec<ReadEntry>, CpioError> {
    read_archive(b).map(|(entries, _)| entries)
}

/// [`read`], and where the archive ends (after its trailer, padded to 4 bytes): another
/// archive may follow, as in initrds with early microcode.
pub fn read_archive(b: &[u8]) -> Result<(Vec<ReadEntry>, usize), CpioError> {
    let mut at = 0usize;
    let mut out = Vec::new();
    loop {
        let header = NewcHeader::decode(&b[at.min(b.len())..])
            .map_err(|source| CpioError::Header { offset: at, source })?;
        let bad = |what: String| CpioError::Invalid { offset: at, what };
        if &header.magic.0 != MAGIC {
            return Err(bad(format!("magic {:?}, not 070701", header.magic)));
        }
        let num = |f: &AsciiHex32, name: &str| {
            f.get()
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("{name} is not 8 hexadecimal digits")))
        };
        let h = &header;
        for (f, name) in [
            (&h.ino, "c_ino"),
            (&h.mode, "c_mode"),
            (&h.uid, "c_uid"),
            (&h.gid, "c_gid"),
            (&h.nlink, "c_nlink"),
            (&h.mtime, "c_mtime"),
            (&h.dev_major, "c_maj"),
            (&h.dev_minor, "c_min"),
            (&h.rdev_major, "c_rmaj"),
            (&h.rdev_minor, "c_rmin"),
            (&h.check, "c_chksum"),
        ] {
            num(f, name)?;
        }
        let namesize = num(&header.namesize, "c_namesize")?;
        let filesize = num(&header.filesize, "c_filesize")?;
        let name_at = at + NewcHeader::LEN;
        let name = b
            .get(name_at..name_at + namesize)
            .filter(|n| n.last() == Some(&0) && namesize > 0)
            .ok_or_else(|| {
                bad(format!(
                    "a name of {namesize} bytes does not fit or lacks its NUL"
                ))
            })?;
        let path = String::from_utf8_lossy(&name[..namesize - 1]).into_owned();
        let data_at = (name_at + namesize).next_multiple_of(4);
        if path == TRAILER {
            return Ok((out, (data_at + filesize).next_multiple_of(4).min(b.len())));
        }
        if b.len() < data_at || b.len() - data_at < filesize {
            return Err(bad(format!(
                "{path}: {filesize} bytes of data do not fit in the archive"
            )));
        }
        out.push(ReadEntry {
            header,
            path,
            offset: at,
            data: data_at..data_at + filesize,
        });
        at = (data_at + filesize).next_multiple_of(4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_follows_buffer_format() {
        // buffer-format.rst: 6 bytes of magic, then 13 fields of 8 hex digits.
        let a = write(
            &[Entry {
                path: "init".into(),
                perm: 0o755,
                kind: Kind::File(b"#!/bin/sh\n".to_vec()),
            }],
            0x12345678,
        )
        .unwrap();
        let text = std::str::from_utf8(&a[..110]).unwrap();
        assert_eq!(
            text,
            concat!(
                "070701", "00000001", "000081ed", "00000000", "00000000", "00000001", "12345678",
                "0000000a", "00000000", "00000000", "00000000", "00000000", "00000005", "00000000"
            )
        );
        // Name "init\0" ends at 115, padded to 116; 10 data bytes padded to 128.
        assert_eq!(&a[110..116], b"init\0\0");
        assert_eq!(&a[116..126], b"#!/bin/sh\n");
        assert_eq!(&a[126..128], [0, 0]);
        assert_eq!(&a[128..134], MAGIC);
        assert_eq!(&a[128 + 110..128 + 121], b"TRAILER!!!\0");
        assert_eq!(a.len() % 4, 0);
        assert_eq!(NewcHeader::decode(&a).unwrap().encode(), a[..110].to_vec());
    }

    #[test]
    fn archives_are_sorted_directories_first_and_read_back() {
        let e = |p: &str, kind| Entry {
            path: p.into(),
            perm: 0o755,
            kind,
        };
        let entries = vec![
            e("bin/busybox", Kind::File(vec![1, 2, 3])),
            e("dev/console", Kind::CharDevice(5, 1)),
            e("sbin", Kind::Symlink("bin".into())),
            e("dev", Kind::Dir),
            e("bin", Kind::Dir),
        ];
        let mut reversed = entries.clone();
        reversed.reverse();
        let a = write(&entries, 0).unwrap();
        assert_eq!(a, write(&reversed, 0).unwrap());
        let r = read(&a).unwrap();
        let names: Vec<&str> = r.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(names, ["bin", "dev", "bin/busybox", "dev/console", "sbin"]);
        let ino: Vec<u32> = r.iter().map(|x| x.header.ino.get().unwrap()).collect();
        assert_eq!(ino, [1, 2, 3, 4, 5]);
        assert_eq!(&a[r[2].data.clone()], [1, 2, 3]);
        assert_eq!(&a[r[4].data.clone()], b"bin");
        assert_eq!(r[3].header.rdev_major.get(), Some(5));
        // The same as GNU cpio and bsdcpio list it is checked in tests/initramfs.rs.
    }

    #[test]
    fn broken_archives_are_errors() {
        let a = write(
            &[Entry {
                path: "x".into(),
                perm: 0o644,
                kind: Kind::File(vec![7; 100]),
            }],
            0,
        )
        .unwrap();
        for cut in [0, 50, 110, 112, 150] {
            assert!(read(&a[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = a.clone();
        huge[54..62].copy_from_slice(b"ffffffff");
        assert!(matches!(read(&huge), Err(CpioError::Invalid { .. })));
        let mut bad = a.clone();
        bad[6] = b'z';
        assert!(read(&bad).is_err());
        assert!(write(
            &[Entry {
                path: "../x".into(),
                perm: 0,
                kind: Kind::Dir
            }],
            0
        )
        .is_err());
    }
}
