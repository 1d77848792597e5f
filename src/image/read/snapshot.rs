//! An image as a record of what it holds, for golden records of images built by any tool
//! (`golden bless --image`): every structure [`inspect`](crate::image::read::inspect) finds, with its
//! offset, size, sha256 and decoded fields; every file with its kind, mode, link target,
//! size and sha256 — the files of the ISO 9660 tree, of the ESP, of squashfs images and of
//! cpio archives (initrds, plain or gzip) inside it — and the text of small text files, so
//! that a check can show what changed in them without the old image.
//!
//! [`compare`] reconstructs the structural and content-level difference of two records.
//! Images are streamed a MiB at a time; containers are read within bounds, and one that
//! does not read is named with the reason instead of failing the record.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hex::hex;
use crate::image::format::cpio;
use crate::image::format::iso9660::SECTOR;
use crate::image::format::structure::Structure;
use crate::image::read::content;
use crate::image::read::fat;
use crate::image::read::inspect::{self, Img, ReadError, Report};

/// Text files up to this size keep their text in a record.
pub const MAX_RECORDED_TEXT: u64 = 16 << 10;
/// A container (squashfs, cpio) is listed only up to this size...
const MAX_CONTAINER: u64 = 1 << 30;
/// ...and a compressed cpio archive only up to this size once decompressed.
const MAX_UNPACKED: u64 = 1 << 30;
/// Streaming piece.
const CHUNK: usize = 1 << 20;

/// What an image holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The image's size.
    pub size: u64,
    /// The image's sha256.
    pub sha256: String,
    /// Structures by name (a name that occurs again gets ` #2`, ` #3`, ...).
    pub structures: BTreeMap<String, StructureRecord>,
    /// Files by path: `/path` in the ISO 9660 tree, `ESP:/path` in the ESP, and
    /// `/container!/path` inside a squashfs image or cpio archive of the tree.
    pub files: BTreeMap<String, FileRecord>,
    /// Containers that could not be listed, and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unread: BTreeMap<String, String>,
}

/// One structure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StructureRecord {
    /// Its first byte in the image.
    pub offset: u64,
    /// Its size.
    pub size: u64,
    /// The sha256 of its bytes.
    pub sha256: String,
    /// Its decoded fields, by name (`partitions[1].os_type`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
}

/// What a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (a device, a FIFO, a socket).
    Special,
}

/// One file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// What it is.
    pub kind: Kind,
    /// Its POSIX mode in octal (absent without Rock Ridge, and in the ESP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Its size.
    pub size: u64,
    /// The sha256 of its bytes (regular files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The text of a small text file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Reads bytes `(offset, len)` runs of the image in pieces: sha256 and, when `keep` allows,
/// the bytes themselves.
fn digest_runs(
    img: &Img,
    runs: &[(u64, u64)],
    keep: u64,
) -> Result<(String, Option<Vec<u8>>), ReadError> {
    let total: u64 = runs.iter().map(|r| r.1).sum();
    let mut h = Sha256::new();
    let mut kept = (total <= keep).then(Vec::new);
    for &(at, len) in runs {
        let mut off = 0u64;
        while off < len {
            let n = (len - off).min(CHUNK as u64);
            let b = img.read(&Structure::Image, at + off, n)?;
            h.update(&b);
            if let Some(k) = kept.as_mut() {
                k.extend_from_slice(&b);
            }
            off += n;
        }
    }
    Ok((hex(&h.finalize()), kept))
}

/// The record of the image at `path` (a netboot directory: [`snapshot_dir`]).
pub fn snapshot(path: &Path) -> Result<Snapshot, ReadError> {
    if path.is_dir() {
        return snapshot_dir(path);
    }
    let report = inspect::inspect(path)?;
    let img = Img::open(path)?;
    let (sha256, _) = digest_runs(&img, &[(0, img.len)], 0)?;
    let mut s = Snapshot {
        size: img.len,
        sha256,
        structures: BTreeMap::new(),
        files: BTreeMap::new(),
        unread: BTreeMap::new(),
    };
    structures(&report, &img, &mut s)?;
    iso_files(&report, &img, &mut s)?;
    esp_files(&report, &img, &mut s);
    Ok(s)
}

fn structures(r: &Report, img: &Img, s: &mut Snapshot) -> Result<(), ReadError> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for o in r.structures.iter().filter(|o| !o.structure.is_file()) {
        let base = o.structure.to_string();
        let n = seen.entry(base.clone()).or_default();
        *n += 1;
        let name = if *n == 1 {
            base
        } else {
            format!("{base} #{n}")
        };
        let (sha256, _) = digest_runs(img, &[(o.start, o.end - o.start)], 0)?;
        let fields: BTreeMap<String, String> = r
            .records
            .iter()
            .filter(|d| d.structure == o.structure && d.at == o.start)
            .flat_map(|d| d.named_fields().map(|(k, v)| (k, v.to_string())))
            .collect();
        s.structures.insert(
            name,
            StructureRecord {
                offset: o.start,
                size: o.end - o.start,
                sha256,
                fields,
            },
        );
    }
    Ok(())
}

fn text_of(bytes: Option<&[u8]>, size: u64) -> Option<String> {
    if size > MAX_RECORDED_TEXT {
        return None;
    }
    bytes.and_then(content::as_text).map(str::to_string)
}

fn iso_files(r: &Report, img: &Img, s: &mut Snapshot) -> Result<(), ReadError> {
    for f in &r.files {
        let mode = (f.mode != 0).then(|| format!("{:o}", f.mode));
        if f.is_dir || f.symlink.is_some() {
            s.files.insert(
                f.path.clone(),
                FileRecord {
                    kind: if f.is_dir { Kind::Dir } else { Kind::Symlink },
                    mode,
                    size: if f.is_dir { 0 } else { f.size },
                    sha256: None,
                    link: f.symlink.clone(),
                    text: None,
                },
            );
            continue;
        }
        let runs: Vec<(u64, u64)> = f
            .extents
            .iter()
            .map(|&(sec, n)| (u64::from(sec) * SECTOR, u64::from(n)))
            .collect();
        let (sha256, bytes) = digest_runs(img, &runs, MAX_RECORDED_TEXT)?;
        s.files.insert(
            f.path.clone(),
            FileRecord {
                kind: Kind::File,
                mode,
                size: f.size,
                sha256: Some(sha256),
                link: None,
                text: text_of(bytes.as_deref(), f.size),
            },
        );
        if f.size <= MAX_CONTAINER && f.extents.len() == 1 {
            container(img, &f.path, runs[0], s);
        }
    }
    Ok(())
}

/// Why the files of a squashfs image or cpio archive inside an image could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// Its bytes could not be read from the image.
    #[error(transparent)]
    Read(Box<ReadError>),
    /// A gzip stream that does not decompress.
    #[error("gzip: {0}")]
    Gzip(#[source] std::io::Error),
    /// It decompresses to more than the reader takes.
    #[error("unpacks to more than {} MiB", MAX_UNPACKED >> 20)]
    TooLarge,
    /// Bytes after the last archive that are neither zeros nor an archive.
    #[error("{len} bytes at offset {offset} after the last archive are not a newc archive")]
    Trailing {
        /// How many.
        len: usize,
        /// Where, in the unpacked bytes.
        offset: usize,
    },
    /// A newc archive that does not decode.
    #[error(transparent)]
    Cpio(#[from] cpio::CpioError),
    /// A squashfs image that does not decode.
    #[error(transparent)]
    Squashfs(#[from] backhand::BackhandError),
    /// The squashfs reader (a third-party parser) panicked on these bytes.
    #[error("the squashfs reader failed on these bytes")]
    SquashfsPanicked,
    /// A file inside the squashfs image could not be read.
    #[error("{name}: {source}")]
    SquashfsFile {
        /// The file.
        name: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The files of the squashfs image or cpio archive that is the ISO file `path` (stored at
/// `run`), keyed `path!/inner`; `None` when it is neither, `Err` when it does not read.
pub(crate) fn container_files(
    img: &Img,
    path: &str,
    run: (u64, u64),
) -> Option<Result<BTreeMap<String, FileRecord>, ContainerError>> {
    let mut s = Snapshot {
        size: 0,
        sha256: String::new(),
        structures: BTreeMap::new(),
        files: BTreeMap::new(),
        unread: BTreeMap::new(),
    };
    match list_container(img, path, run, &mut s)? {
        Err(e) => Some(Err(e)),
        Ok(()) if s.files.is_empty() => None,
        Ok(()) => Some(Ok(s.files)),
    }
}

/// Lists the files of a squashfs image or cpio archive stored as one ISO file; what cannot
/// be listed is recorded as unread, with why.
fn container(img: &Img, path: &str, run: (u64, u64), s: &mut Snapshot) {
    if let Some(Err(why)) = list_container(img, path, run, s) {
        s.unread.insert(path.to_string(), why.to_string());
    }
}

/// [`container`]'s work: `None` when the file is neither a squashfs image nor a cpio archive.
fn list_container(
    img: &Img,
    path: &str,
    (at, len): (u64, u64),
    s: &mut Snapshot,
) -> Option<Result<(), ContainerError>> {
    let magic = img
        .read(&Structure::File(path.into()), at, len.min(6))
        .ok()?;
    if magic.starts_with(b"hsqs") {
        let window = crate::image::read::inspect::Window::new(img, at, len);
        Some(squashfs(std::io::BufReader::new(window), path, s))
    } else if magic.starts_with(b"070701") || magic.starts_with(&[0x1f, 0x8b]) {
        Some(
            img.read(&Structure::File(path.into()), at, len)
                .map_err(|e| ContainerError::Read(Box::new(e)))
                .and_then(|raw| cpio_files(&raw, path, s)),
        )
    } else {
        None
    }
}

/// [`list_container`] for bytes in memory (a file of a netboot directory, a file inside an
/// initrd).
fn list_bytes(raw: &[u8], path: &str, s: &mut Snapshot) -> Option<Result<(), ContainerError>> {
    if raw.starts_with(b"hsqs") {
        Some(squashfs(std::io::Cursor::new(raw), path, s))
    } else if raw.starts_with(b"070701") || raw.starts_with(&[0x1f, 0x8b]) {
        Some(cpio_files(raw, path, s))
    } else {
        None
    }
}

/// The files of an initrd: newc archives, plain or gzip-compressed, one after another with
/// zeros between them (early microcode, then the main archive; a netboot initrd's appended
/// store). A squashfs image inside is listed too.
fn cpio_files(raw: &[u8], path: &str, s: &mut Snapshot) -> Result<(), ContainerError> {
    let mut rest = raw;
    let mut offset = 0usize;
    loop {
        let zeros = rest.iter().take_while(|&&b| b == 0).count();
        rest = &rest[zeros..];
        offset += zeros;
        if rest.is_empty() {
            return Ok(());
        }
        if rest.starts_with(&[0x1f, 0x8b]) {
            let mut d = flate2::bufread::GzDecoder::new(rest);
            let mut out = Vec::new();
            (&mut d)
                .take(MAX_UNPACKED + 1)
                .read_to_end(&mut out)
                .map_err(ContainerError::Gzip)?;
            if out.len() as u64 > MAX_UNPACKED {
                return Err(ContainerError::TooLarge);
            }
            let left = d.into_inner().len();
            if !out.starts_with(b"070701") {
                return Ok(()); // gzip, but not of a cpio archive
            }
            archives(&out, path, s)?;
            offset += rest.len() - left;
            rest = &rest[rest.len() - left..];
        } else if rest.starts_with(b"070701") {
            let end = archive(rest, path, s)?;
            offset += end;
            rest = &rest[end..];
        } else {
            return Err(ContainerError::Trailing {
                len: rest.len(),
                offset,
            });
        }
    }
}

/// Uncompressed archives one after another, with zeros between them.
fn archives(bytes: &[u8], path: &str, s: &mut Snapshot) -> Result<(), ContainerError> {
    let mut base = 0usize;
    while base < bytes.len() {
        let rest = &bytes[base..];
        if !rest.starts_with(b"070701") {
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err(ContainerError::Trailing {
                len: rest.len(),
                offset: base,
            });
        }
        base += archive(rest, path, s)?;
        while bytes.get(base) == Some(&0) {
            base += 1;
        }
    }
    Ok(())
}

/// One newc archive at the start of `rest`: its files under `path!/`; returns where it ends.
fn archive(rest: &[u8], path: &str, s: &mut Snapshot) -> Result<usize, ContainerError> {
    let (entries, end) = cpio::read_archive(rest)?;
    for e in entries {
        let mode = e.header.mode.get().unwrap_or(0);
        let data = &rest[e.data.clone()];
        let kind = match mode & 0o170000 {
            0o040000 => Kind::Dir,
            0o120000 => Kind::Symlink,
            0o100000 => Kind::File,
            _ => Kind::Special,
        };
        let name = e.path.trim_start_matches("./").trim_start_matches('/');
        let inner = format!("{path}!/{name}");
        s.files.insert(
            inner.clone(),
            FileRecord {
                kind,
                mode: Some(format!("{mode:o}")),
                size: data.len() as u64,
                sha256: (kind == Kind::File).then(|| hex(&Sha256::digest(data))),
                link: (kind == Kind::Symlink).then(|| String::from_utf8_lossy(data).into_owned()),
                text: (kind == Kind::File)
                    .then(|| text_of(Some(data), data.len() as u64))
                    .flatten(),
            },
        );
        // A store image inside an initrd (a netboot image's `/nix-store.squashfs`).
        if kind == Kind::File && data.starts_with(b"hsqs") {
            if let Err(why) = squashfs(std::io::Cursor::new(data), &inner, s) {
                s.unread.insert(inner, why.to_string());
            }
        }
    }
    Ok(end)
}

fn squashfs<R: backhand::BufReadSeek>(
    r: R,
    path: &str,
    s: &mut Snapshot,
) -> Result<(), ContainerError> {
    // The reader is a third-party parser of untrusted bytes: a panic in it is this
    // container's failure, not the record's.
    let listed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| squashfs_files(r)))
        .map_err(|_| ContainerError::SquashfsPanicked)??;
    for (name, f) in listed {
        s.files.insert(format!("{path}!{name}"), f);
    }
    Ok(())
}

/// The record of a netboot directory (`bzImage`, `initrd`, `netboot.ipxe`, or any directory
/// of regular files): each file as `/NAME`, the files of the archives and squashfs images
/// inside them, and each archive of an initrd as a structure. Its sha256 is that of its
/// `sha256sum`-style listing, its size the sum of its files'.
pub fn snapshot_dir(dir: &Path) -> Result<Snapshot, ReadError> {
    let read = |p: &Path, e: std::io::Error| ReadError::Io {
        path: p.to_path_buf(),
        source: e,
    };
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(|e| read(dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(|e| read(dir, e))?;
    names.sort();
    let mut s = Snapshot {
        size: 0,
        sha256: String::new(),
        structures: BTreeMap::new(),
        files: BTreeMap::new(),
        unread: BTreeMap::new(),
    };
    let mut listing = String::new();
    for n in names {
        let p = dir.join(&n);
        let name = format!("/{}", n.to_string_lossy());
        let bytes = crate::input::read_regular(&p, MAX_CONTAINER)?;
        let sha = hex(&Sha256::digest(&bytes));
        listing.push_str(&format!("{sha}  .{name}\n"));
        s.size += bytes.len() as u64;
        s.files.insert(
            name.clone(),
            FileRecord {
                kind: Kind::File,
                mode: None,
                size: bytes.len() as u64,
                sha256: Some(sha),
                link: None,
                text: text_of(Some(&bytes), bytes.len() as u64),
            },
        );
        for (k, (at, len, what)) in initrd_members(&bytes).into_iter().enumerate() {
            s.structures.insert(
                format!("{name} archive {} ({what})", k + 1),
                StructureRecord {
                    offset: at as u64,
                    size: len as u64,
                    sha256: hex(&Sha256::digest(&bytes[at..at + len])),
                    fields: BTreeMap::new(),
                },
            );
        }
        if let Some(Err(why)) = list_bytes(&bytes, &name, &mut s) {
            s.unread.insert(name, why.to_string());
        }
    }
    s.sha256 = hex(&Sha256::digest(listing.as_bytes()));
    Ok(s)
}

/// Where the archives of an initrd are: (offset, length, `gzip` or `newc`). Empty when the
/// bytes are not an initrd or stop reading as one.
fn initrd_members(raw: &[u8]) -> Vec<(usize, usize, &'static str)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < raw.len() {
        while raw.get(at) == Some(&0) {
            at += 1;
        }
        let rest = &raw[at..];
        if rest.is_empty() {
            break;
        }
        let len = if rest.starts_with(&[0x1f, 0x8b]) {
            let mut d = flate2::bufread::GzDecoder::new(rest);
            if std::io::copy(&mut (&mut d).take(MAX_UNPACKED), &mut std::io::sink()).is_err() {
                return Vec::new();
            }
            (rest.len() - d.into_inner().len(), "gzip")
        } else if rest.starts_with(b"070701") {
            match cpio::read_archive(rest) {
                Ok((_, end)) => (end, "newc"),
                Err(_) => return Vec::new(),
            }
        } else {
            return if out.is_empty() { Vec::new() } else { out };
        };
        if len.0 == 0 {
            break;
        }
        out.push((at, len.0, len.1));
        at += len.0;
    }
    out
}

fn squashfs_files<'b, R: backhand::BufReadSeek + 'b>(
    r: R,
) -> Result<Vec<(String, FileRecord)>, ContainerError> {
    use backhand::InnerNode;
    let fs = backhand::FilesystemReader::from_reader(r)?;
    let mut out = Vec::new();
    for node in fs.files() {
        let name = node.fullpath.to_string_lossy().into_owned();
        let mode = Some(format!("{:o}", node.header.permissions));
        let rec = match &node.inner {
            InnerNode::Dir(_) => FileRecord {
                kind: Kind::Dir,
                mode,
                size: 0,
                sha256: None,
                link: None,
                text: None,
            },
            InnerNode::Symlink(l) => FileRecord {
                kind: Kind::Symlink,
                mode,
                size: 0,
                sha256: None,
                link: Some(l.link.to_string_lossy().into_owned()),
                text: None,
            },
            InnerNode::File(f) => {
                let mut h = Sha256::new();
                let mut text = Vec::new();
                let mut size = 0u64;
                let mut rd = fs.file(f).reader();
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = rd
                        .read(&mut buf)
                        .map_err(|source| ContainerError::SquashfsFile {
                            name: name.clone(),
                            source,
                        })?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    size += n as u64;
                    if size <= MAX_RECORDED_TEXT {
                        text.extend_from_slice(&buf[..n]);
                    }
                }
                FileRecord {
                    kind: Kind::File,
                    mode,
                    size,
                    sha256: Some(hex(&h.finalize())),
                    link: None,
                    text: text_of(Some(&text), size),
                }
            }
            _ => FileRecord {
                kind: Kind::Special,
                mode,
                size: 0,
                sha256: None,
                link: None,
                text: None,
            },
        };
        out.push((name, rec));
    }
    Ok(out)
}

fn esp_files(r: &Report, img: &Img, s: &mut Snapshot) {
    let Some((start, end)) = r.range_of(&Structure::EspImage) else {
        return;
    };
    let window = crate::image::read::inspect::Window::new(img, start, end - start);
    let files = match fat::files(&window) {
        Ok(f) => f,
        Err(e) => {
            s.unread.insert("ESP".into(), e.to_string());
            return;
        }
    };
    for f in files {
        let runs: Vec<(u64, u64)> = f.runs.iter().map(|&(o, n)| (start + o, n)).collect();
        match digest_runs(img, &runs, MAX_RECORDED_TEXT) {
            Ok((sha256, bytes)) => {
                s.files.insert(
                    format!("ESP:{}", f.path),
                    FileRecord {
                        kind: Kind::File,
                        mode: None,
                        size: f.size,
                        sha256: Some(sha256),
                        link: None,
                        text: text_of(bytes.as_deref(), f.size),
                    },
                );
            }
            Err(e) => {
                s.unread.insert(format!("ESP:{}", f.path), e.to_string());
            }
        }
    }
}

/// A field that differs: name, old value, new value.
pub type FieldChange = (String, String, String);

/// How a file differs between two records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileChange {
    /// Only the new record has it.
    Added(FileRecord),
    /// Only the old record has it.
    Removed(FileRecord),
    /// Both have it: the fields that differ, and a unified diff when both texts are known.
    Changed {
        /// Kind, mode, link, size and sha256, where they differ.
        fields: Vec<FieldChange>,
        /// The unified diff of the texts (empty when either is not recorded).
        text: Vec<String>,
    },
}

/// Everything that differs between two records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordDiff {
    /// The image's size and sha256, where they differ.
    pub image: Vec<FieldChange>,
    /// Options that differ in the embedded resolved configs (when both images have one).
    pub options: Vec<content::OptionChange>,
    /// Structures both records have, with other bytes or at another place: their fields
    /// that differ (none when only undecoded bytes did).
    pub changed: Vec<(String, Vec<FieldChange>)>,
    /// Structures only the new record has.
    pub added: Vec<(String, StructureRecord)>,
    /// Structures only the old record has.
    pub removed: Vec<(String, StructureRecord)>,
    /// Files that differ, by path.
    pub files: Vec<(String, FileChange)>,
    /// Containers either record could not list.
    pub unread: Vec<FieldChange>,
}

/// The first 12 characters of a digest (all of a shorter string, from a hand-edited record).
pub(crate) fn short(h: &str) -> &str {
    h.get(..12).unwrap_or(h)
}

fn opt(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "(none)".into())
}

fn add_field(v: &mut Vec<FieldChange>, f: &str, x: String, y: String) {
    if x != y {
        v.push((f.to_string(), x, y));
    }
}

/// Files added, removed and changed (kind, mode, link, size, sha256, and the unified diff
/// of their texts where both are recorded), by path.
pub fn compare_files(
    a: &BTreeMap<String, FileRecord>,
    b: &BTreeMap<String, FileRecord>,
) -> Vec<(String, FileChange)> {
    let add = add_field;
    let mut out = Vec::new();
    for (path, x) in a {
        let Some(y) = b.get(path) else {
            out.push((path.clone(), FileChange::Removed(x.clone())));
            continue;
        };
        if x == y {
            continue;
        }
        let mut v = Vec::new();
        add(
            &mut v,
            "kind",
            format!("{:?}", x.kind),
            format!("{:?}", y.kind),
        );
        add(&mut v, "mode", opt(&x.mode), opt(&y.mode));
        add(&mut v, "link", opt(&x.link), opt(&y.link));
        add(&mut v, "size", x.size.to_string(), y.size.to_string());
        let (hx, hy) = (opt(&x.sha256), opt(&y.sha256));
        add(&mut v, "sha256", short(&hx).into(), short(&hy).into());
        let text = match (&x.text, &y.text) {
            (Some(p), Some(q)) => content::unified(p, q),
            _ => Vec::new(),
        };
        if !v.is_empty() || !text.is_empty() {
            out.push((path.clone(), FileChange::Changed { fields: v, text }));
        }
    }
    for (path, y) in b.iter().filter(|(p, _)| !a.contains_key(*p)) {
        out.push((path.clone(), FileChange::Added(y.clone())));
    }
    out
}

/// What differs between an old record and a new one.
pub fn compare(a: &Snapshot, b: &Snapshot) -> RecordDiff {
    let mut d = RecordDiff::default();
    let add = add_field;
    add(&mut d.image, "size", a.size.to_string(), b.size.to_string());
    add(
        &mut d.image,
        "sha256",
        short(&a.sha256).into(),
        short(&b.sha256).into(),
    );
    for (name, x) in &a.structures {
        let Some(y) = b.structures.get(name) else {
            d.removed.push((name.clone(), x.clone()));
            continue;
        };
        if x == y {
            continue;
        }
        let mut v = Vec::new();
        add(&mut v, "offset", x.offset.to_string(), y.offset.to_string());
        add(&mut v, "size", x.size.to_string(), y.size.to_string());
        let keys: std::collections::BTreeSet<&String> =
            x.fields.keys().chain(y.fields.keys()).collect();
        for k in keys {
            add(
                &mut v,
                k,
                opt(&x.fields.get(k).cloned()),
                opt(&y.fields.get(k).cloned()),
            );
        }
        if v.is_empty() {
            add(
                &mut v,
                "sha256",
                short(&x.sha256).into(),
                short(&y.sha256).into(),
            );
        }
        d.changed.push((name.clone(), v));
    }
    for (name, y) in b
        .structures
        .iter()
        .filter(|(n, _)| !a.structures.contains_key(*n))
    {
        d.added.push((name.clone(), y.clone()));
    }
    d.files = compare_files(&a.files, &b.files);
    if let (Some(p), Some(q)) = (
        a.files
            .get(content::CONFIG_PATH)
            .and_then(|f| f.text.as_ref()),
        b.files
            .get(content::CONFIG_PATH)
            .and_then(|f| f.text.as_ref()),
    ) {
        d.options = content::options(p, q).unwrap_or_default();
    }
    let keys: std::collections::BTreeSet<&String> =
        a.unread.keys().chain(b.unread.keys()).collect();
    for k in keys {
        add(
            &mut d.unread,
            k,
            opt(&a.unread.get(k).cloned()),
            opt(&b.unread.get(k).cloned()),
        );
    }
    d
}

impl RecordDiff {
    /// Whether the records are the same.
    pub fn is_empty(&self) -> bool {
        *self == RecordDiff::default()
    }

    /// The report, a line each: the options that changed first (they explain the rest), then
    /// structures with other bytes, structures added or removed, and files.
    pub fn lines(&self) -> Vec<String> {
        let mut o = Vec::new();
        let fields = |o: &mut Vec<String>, v: &[FieldChange], indent: &str| {
            for (f, x, y) in v {
                o.push(format!("{indent}{f}: {x} -> {y}"));
            }
        };
        if !self.image.is_empty() {
            o.push("image".into());
            fields(&mut o, &self.image, "  ");
        }
        o.extend(content::option_lines(&self.options));
        if !self.changed.is_empty() {
            o.push("same structure, other bytes".into());
            for (name, v) in &self.changed {
                o.push(format!("  {name}"));
                fields(&mut o, v, "    ");
            }
        }
        let at = |r: &StructureRecord| format!("at {}, {} bytes", r.offset, r.size);
        if !self.added.is_empty() || !self.removed.is_empty() {
            o.push("structures added or removed".into());
            for (name, r) in &self.removed {
                o.push(format!("  - {name} ({})", at(r)));
            }
            for (name, r) in &self.added {
                o.push(format!("  + {name} ({})", at(r)));
            }
        }
        if !self.files.is_empty() {
            o.push("files".into());
            let what = |f: &FileRecord| match f.kind {
                Kind::File => format!("file of {} bytes", f.size),
                Kind::Dir => "directory".into(),
                Kind::Symlink => format!("symlink to {}", opt(&f.link)),
                Kind::Special => "special file".into(),
            };
            for (path, c) in &self.files {
                match c {
                    FileChange::Added(f) => o.push(format!("  + {path} ({})", what(f))),
                    FileChange::Removed(f) => o.push(format!("  - {path} ({})", what(f))),
                    FileChange::Changed { fields: v, text } => {
                        o.push(format!("  {path}"));
                        fields(&mut o, v, "    ");
                        o.extend(text.iter().map(|l| format!("    {l}")));
                    }
                }
            }
        }
        if !self.unread.is_empty() {
            o.push("containers not listed".into());
            fields(&mut o, &self.unread, "  ");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_netboot_directory_is_recorded_through_its_initrd_and_store() {
        use crate::payload::linux::{gzip, squashfs, StoreNode};
        let d = tempfile::tempdir().unwrap();
        let file = |p: &str, b: &[u8]| cpio::Entry {
            path: p.into(),
            perm: 0o644,
            kind: cpio::Kind::File(b.to_vec()),
        };
        let mut initrd = gzip(&cpio::write(&[file("init", b"#!/bin/sh\n")], 0).unwrap()).unwrap();
        let first = initrd.len();
        initrd.resize(first.next_multiple_of(4), 0);
        let store = squashfs(&[StoreNode::File("a".into(), 0o644, b"x".to_vec())], 0).unwrap();
        initrd.extend(cpio::write(&[file("nix-store.squashfs", &store)], 0).unwrap());
        std::fs::write(d.path().join("initrd"), &initrd).unwrap();
        std::fs::write(d.path().join("netboot.ipxe"), "#!ipxe\n").unwrap();
        let s = snapshot_dir(d.path()).unwrap();
        assert_eq!(s.size, initrd.len() as u64 + 7);
        for f in [
            "/initrd",
            "/netboot.ipxe",
            "/initrd!/init",
            "/initrd!/nix-store.squashfs",
            "/initrd!/nix-store.squashfs!/a",
        ] {
            assert!(s.files.contains_key(f), "{f}: {:?}", s.files.keys());
        }
        let a = &s.structures["/initrd archive 1 (gzip)"];
        let b = &s.structures["/initrd archive 2 (newc)"];
        assert_eq!((a.offset, a.size), (0, first as u64));
        assert_eq!(b.offset, first.next_multiple_of(4) as u64);
        assert!(s.unread.is_empty(), "{:?}", s.unread);
        // The listing's digest: `HEX  ./NAME` by name.
        let listing = format!(
            "{}  ./initrd\n{}  ./netboot.ipxe\n",
            hex(&Sha256::digest(&initrd)),
            hex(&Sha256::digest(b"#!ipxe\n"))
        );
        assert_eq!(s.sha256, hex(&Sha256::digest(listing.as_bytes())));
    }

    fn rec(text: &str) -> FileRecord {
        FileRecord {
            kind: Kind::File,
            mode: Some("100444".into()),
            size: text.len() as u64,
            sha256: Some(hex(&Sha256::digest(text.as_bytes()))),
            link: None,
            text: Some(text.into()),
        }
    }

    fn snap() -> Snapshot {
        let s = |offset, sha: char, fields: &[(&str, &str)]| StructureRecord {
            offset,
            size: 2048,
            sha256: sha.to_string().repeat(64),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        Snapshot {
            size: 100,
            sha256: "a".repeat(64),
            structures: [
                (
                    "primary volume descriptor".to_string(),
                    s(32768, 'b', &[("volume_space_size", "50")]),
                ),
                ("directory /".to_string(), s(40960, 'c', &[])),
            ]
            .into(),
            files: [
                ("/a.cfg".to_string(), rec("one\ntwo\n")),
                (
                    CONFIG_PATH_FOR_TEST.to_string(),
                    rec(r#"{"boot":{"kernelParams":["a"]}}"#),
                ),
            ]
            .into(),
            unread: BTreeMap::new(),
        }
    }

    const CONFIG_PATH_FOR_TEST: &str = content::CONFIG_PATH;

    #[test]
    fn the_same_record_has_no_difference() {
        assert!(compare(&snap(), &snap()).is_empty());
    }

    #[test]
    fn changes_are_split_into_options_fields_presence_and_text() {
        let a = snap();
        let mut b = snap();
        b.sha256 = "f".repeat(64);
        let pvd = b.structures.get_mut("primary volume descriptor").unwrap();
        pvd.sha256 = "e".repeat(64);
        pvd.fields.insert("volume_space_size".into(), "51".into());
        b.structures.get_mut("directory /").unwrap().sha256 = "d".repeat(64);
        b.structures.insert(
            "El Torito boot catalog".into(),
            StructureRecord {
                offset: 45056,
                size: 2048,
                sha256: "0".repeat(64),
                fields: BTreeMap::new(),
            },
        );
        b.files.insert("/a.cfg".into(), rec("one\nthree\n"));
        b.files.insert(
            CONFIG_PATH_FOR_TEST.into(),
            rec(r#"{"boot":{"kernelParams":["a","b"]}}"#),
        );
        let lines = compare(&a, &b).lines();
        insta::assert_snapshot!(lines.join("\n"), @r###"
        image
          sha256: aaaaaaaaaaaa -> ffffffffffff
        options that changed (/isoproof/config.json), which the changes below follow from
          boot.kernelParams: + "b"
        same structure, other bytes
          directory /
            sha256: cccccccccccc -> dddddddddddd
          primary volume descriptor
            volume_space_size: 50 -> 51
        structures added or removed
          + El Torito boot catalog (at 45056, 2048 bytes)
        files
          /a.cfg
            size: 8 -> 10
            sha256: c3f9c8c283a2 -> c9b0fb1fa00b
            @@ -1,2 +1,2 @@
             one
            -two
            +three
          /isoproof/config.json
            size: 31 -> 35
            sha256: 2f96add8cad4 -> 10cd23f8f04a
            @@ -1 +1 @@
            -{"boot":{"kernelParams":["a"]}}
            \ No newline at end of file
            +{"boot":{"kernelParams":["a","b"]}}
            \ No newline at end of file
        "###);
    }
}
