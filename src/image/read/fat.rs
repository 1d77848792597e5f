//! The FAT12/16 reader: every file of an ESP of any origin (mkfs.fat and mtools, xorriso's
//! `-append_partition`, ours), for `diff` and `inspect`. The image is untrusted: every length
//! and cluster number is checked against it before use, and every cluster is visited at most
//! once in the whole walk — a chain that loops or runs into another file's chain is an error,
//! so the walk ends. It reads through a [`Source`] and gives each file's byte runs, not its
//! bytes: only the boot sector, the FAT entries for the clusters there are, the root
//! directory and directory clusters are read, so `diff` compares ESP files a piece at a time
//! with memory bounded by those structures, whatever the files claim.

use crate::image::format::fat::{attr, BootSector, DirEntry, LfnEntry, FREE};
use crate::image::format::record::Record;

/// One file read back from a FAT image: its `/`-separated path and its bytes.
pub type ReadFile = (String, Vec<u8>);

/// Directories nest at most this deep (a sane bound: real ESPs nest three or four).
const MAX_DEPTH: usize = 64;

/// Random access to the bytes of a FAT file system.
pub trait Source {
    /// Its length in bytes.
    fn size(&self) -> u64;
    /// `n` bytes at `off`; the caller keeps within [`Source::size`].
    fn read_at(&self, off: u64, n: usize) -> Result<Vec<u8>, SourceError>;
}

/// Why a [`Source`] could not give the bytes asked for.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The bytes lie outside the file system.
    #[error("{len} bytes at {offset} lie outside the file system's {size} bytes")]
    Outside {
        /// Where, in the file system.
        offset: u64,
        /// How many.
        len: usize,
        /// The file system's size.
        size: u64,
    },
    /// The image that holds the file system could not be read there.
    #[error(transparent)]
    Image(Box<crate::image::read::error::ReadError>),
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, off: u64, n: usize) -> Result<Vec<u8>, SourceError> {
        usize::try_from(off)
            .ok()
            .and_then(|o| self.get(o..o.checked_add(n)?))
            .map(<[u8]>::to_vec)
            .ok_or(SourceError::Outside {
                offset: off,
                len: n,
                size: self.len() as u64,
            })
    }
}

/// Why a FAT image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FatReadError {
    /// The boot sector does not describe a FAT12/16 file system that fits the image.
    #[error("not a FAT12/16 file system: {0}")]
    NotFat(String),
    /// A file's or directory's chain claims a cluster already read: a loop, or two chains
    /// sharing clusters.
    #[error("{path}: cluster {cluster} is in its chain and was already read (a loop, or chains that share clusters)")]
    SharedCluster {
        /// The file or directory.
        path: String,
        /// The cluster.
        cluster: usize,
    },
    /// A cluster lies outside the image.
    #[error("{path}: cluster {cluster} lies beyond the end of the image")]
    BeyondImage {
        /// The file or directory.
        path: String,
        /// The cluster.
        cluster: usize,
    },
    /// A file's chain holds fewer bytes than its size.
    #[error("{path}: its clusters hold {have} bytes, less than its size of {size}")]
    Short {
        /// The file.
        path: String,
        /// Bytes in its chain.
        have: u64,
        /// Its recorded size.
        size: u64,
    },
    /// Directories nest deeper than anything real.
    #[error("{path}: directories nest deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// The directory.
        path: String,
    },
    /// The source could not be read.
    #[error("reading the file system at byte {offset}: {source}")]
    Read {
        /// Where, in the file system.
        offset: u64,
        /// Why.
        #[source]
        source: SourceError,
    },
}

/// A file found in a FAT image: its path, size, and the byte runs (offset in the file
/// system, length) that hold its bytes in order, `size` bytes in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FatFile {
    /// `/`-separated, from the root (`/EFI/BOOT/BOOTX64.EFI`).
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Where its bytes are.
    pub runs: Vec<(u64, u64)>,
}

impl FatFile {
    /// Its bytes.
    pub fn bytes(&self, src: &(impl Source + ?Sized)) -> Result<Vec<u8>, FatReadError> {
        let mut out = Vec::with_capacity(self.size as usize);
        for &(off, len) in &self.runs {
            out.extend(read(src, off, len as usize)?);
        }
        Ok(out)
    }
}

fn read(src: &(impl Source + ?Sized), offset: u64, n: usize) -> Result<Vec<u8>, FatReadError> {
    src.read_at(offset, n)
        .map_err(|source| FatReadError::Read { offset, source })
}

/// Where things are in the image, from the boot sector, and the FAT entries of its clusters.
struct Layout {
    root_start: u64,
    data_start: u64,
    cluster_size: u64,
    clusters: usize,
    fat12: bool,
    /// The first FAT, as far as it describes clusters (never more: a boot sector may claim
    /// a FAT of 256 MiB).
    fat: Vec<u8>,
}

impl Layout {
    fn of(src: &(impl Source + ?Sized)) -> Result<Layout, FatReadError> {
        let size = src.size();
        if size < 512 {
            return Err(FatReadError::NotFat(
                "the image is shorter than a boot sector".into(),
            ));
        }
        let bs = BootSector::decode(&read(src, 0, 512)?)
            .map_err(|_| FatReadError::NotFat("the boot sector does not decode".into()))?;
        let not = |why: String| Err(FatReadError::NotFat(why));
        let bps = u64::from(bs.bytes_per_sector.get());
        let spc = u64::from(bs.sectors_per_cluster);
        if !matches!(bps, 512 | 1024 | 2048 | 4096) {
            return not(format!("{bps} bytes per sector"));
        }
        if !spc.is_power_of_two() {
            return not(format!("{spc} sectors per cluster"));
        }
        if bs.fat_count == 0 || bs.fat_sectors.get() == 0 || bs.reserved_sectors.get() == 0 {
            return not("no FAT (a FAT32 or damaged boot sector)".into());
        }
        let total = match bs.total_sectors_16.get() {
            0 => u64::from(bs.total_sectors_32.get()),
            n => u64::from(n),
        };
        let fat_start = u64::from(bs.reserved_sectors.get()) * bps;
        let fat_bytes = u64::from(bs.fat_sectors.get()) * bps;
        let root_start = fat_start + u64::from(bs.fat_count) * fat_bytes;
        let data_start = root_start + u64::from(bs.root_entries.get()) * 32;
        let cluster_size = spc * bps;
        let clusters = (total * bps).saturating_sub(data_start) / cluster_size;
        if clusters >= 65_525 {
            return not(format!("{clusters} clusters make it FAT32"));
        }
        if data_start > size {
            return not(format!(
                "its root directory (bytes {root_start}..{data_start}) lies beyond the image of {size} bytes"
            ));
        }
        let clusters = clusters as usize;
        let fat12 = clusters < 4085;
        // Microsoft's rule: FAT12 below 4085 clusters, FAT16 from there. Entries 0 and 1
        // are reserved; a FAT shorter than the clusters need ends their chains early.
        let wanted = if fat12 {
            (clusters + 2) * 3 / 2 + 1
        } else {
            (clusters + 2) * 2
        };
        let fat_len = (wanted as u64).min(fat_bytes);
        let fat = read(src, fat_start, fat_len as usize)?;
        Ok(Layout {
            root_start,
            data_start,
            cluster_size,
            clusters,
            fat12,
            fat,
        })
    }

    /// The cluster after `c` in its chain; `None` at the end of the chain or at a value that
    /// is not a data cluster (free, bad, reserved).
    fn next(&self, c: usize) -> Option<usize> {
        let v = usize::from(crate::image::format::fat::entry(&self.fat, self.fat12, c)?);
        self.is_data(v).then_some(v)
    }

    fn is_data(&self, c: usize) -> bool {
        (2..self.clusters + 2).contains(&c)
    }

    fn offset(&self, c: usize) -> u64 {
        self.data_start + (c as u64 - 2) * self.cluster_size
    }
}

struct Walk<'a, S: Source + ?Sized> {
    src: &'a S,
    l: Layout,
    /// Every cluster visited so far, so none is visited twice.
    seen: Vec<bool>,
}

impl<S: Source + ?Sized> Walk<'_, S> {
    /// The byte runs of the chain starting at `first`, up to `limit` bytes.
    fn chain(
        &mut self,
        first: usize,
        path: &str,
        limit: u64,
    ) -> Result<Vec<(u64, u64)>, FatReadError> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut have = 0u64;
        let mut c = Some(first).filter(|&c| self.l.is_data(c));
        while let Some(x) = c {
            if have >= limit {
                break;
            }
            if std::mem::replace(&mut self.seen[x], true) {
                return Err(FatReadError::SharedCluster {
                    path: path.to_string(),
                    cluster: x,
                });
            }
            let at = self.l.offset(x);
            if at + self.l.cluster_size > self.src.size() {
                return Err(FatReadError::BeyondImage {
                    path: path.to_string(),
                    cluster: x,
                });
            }
            let len = self.l.cluster_size.min(limit - have);
            match runs.last_mut() {
                Some((o, n)) if *o + *n == at => *n += len,
                _ => runs.push((at, len)),
            }
            have += len;
            c = self.l.next(x);
        }
        Ok(runs)
    }
}

/// Directory entries as they are read, a piece at a time: long-name entries gather until
/// the short entry they belong to.
#[derive(Default)]
struct Entries {
    long: Vec<(u8, String)>,
    ended: bool,
}

/// What a directory entry names.
enum Found {
    Dir(String, usize),
    File(String, usize, u64),
}

impl Entries {
    fn feed(&mut self, dir: &str, raw: &[u8], out: &mut Vec<Found>) {
        for raw in raw.chunks_exact(32) {
            if self.ended {
                return;
            }
            match raw[0] {
                0 => {
                    self.ended = true;
                    return;
                }
                FREE => {
                    self.long.clear();
                    continue;
                }
                _ => {}
            }
            let Ok(e) = DirEntry::decode(raw) else {
                continue;
            };
            if e.attributes == attr::LONG_NAME {
                if let Ok(l) = LfnEntry::decode(raw) {
                    let units: Vec<u16> = l
                        .units()
                        .into_iter()
                        .take_while(|&u| u != 0 && u != 0xFFFF)
                        .collect();
                    self.long
                        .push((raw[0] & 0x1F, String::from_utf16_lossy(&units)));
                }
                continue;
            }
            let name = if self.long.is_empty() {
                short_name(&e)
            } else {
                self.long.sort_by_key(|(n, _)| *n);
                self.long.drain(..).map(|(_, p)| p).collect()
            };
            self.long.clear();
            if e.attributes & attr::VOLUME_ID != 0 || name == "." || name == ".." {
                continue;
            }
            let path = format!("{dir}/{name}");
            let first = usize::from(e.first_cluster.get());
            out.push(if e.attributes & attr::DIRECTORY != 0 {
                Found::Dir(path, first)
            } else {
                Found::File(path, first, u64::from(e.file_size.get()))
            });
        }
    }
}

/// The name of a short entry, with Windows NT's lower-case flags (byte 12: 0x08 base, 0x10
/// extension), which mtools and Windows use instead of LFN entries for names like `grub.cfg`.
fn short_name(e: &DirEntry) -> String {
    let case = |b: &[u8], lower: bool| {
        let t = String::from_utf8_lossy(b).trim_end().to_string();
        if lower {
            t.to_ascii_lowercase()
        } else {
            t
        }
    };
    let base = case(&e.name.0[0..8], e.nt_reserved & 0x08 != 0);
    let ext = case(&e.name.0[8..11], e.nt_reserved & 0x10 != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

/// Directory data is read this much at a time.
const PIECE: u64 = 64 << 10;

/// Every file of a FAT12/16 file system, sorted by path, with where its bytes are. Names
/// are the long names where there are LFN entries, else the 8.3 names.
pub fn files(src: &(impl Source + ?Sized)) -> Result<Vec<FatFile>, FatReadError> {
    let l = Layout::of(src)?;
    let mut w = Walk {
        src,
        seen: vec![false; l.clusters + 2],
        l,
    };
    let mut out = Vec::new();
    // Directories still to read: (path, its runs, depth). The root is one run.
    let root = vec![(w.l.root_start, w.l.data_start - w.l.root_start)];
    let mut todo = vec![(String::new(), root, 0usize)];
    while let Some((dir, runs, depth)) = todo.pop() {
        if depth > MAX_DEPTH {
            return Err(FatReadError::TooDeep { path: dir });
        }
        let mut entries = Entries::default();
        let mut found = Vec::new();
        'runs: for (off, len) in runs {
            let mut at = 0;
            while at < len {
                let n = (len - at).min(PIECE);
                entries.feed(&dir, &read(src, off + at, n as usize)?, &mut found);
                if entries.ended {
                    break 'runs;
                }
                at += n;
            }
        }
        for f in found {
            match f {
                Found::Dir(path, first) => {
                    let runs = w.chain(first, &path, u64::MAX)?;
                    todo.push((path, runs, depth + 1));
                }
                Found::File(path, first, size) => {
                    let runs = w.chain(first, &path, size)?;
                    let have: u64 = runs.iter().map(|r| r.1).sum();
                    if have < size {
                        return Err(FatReadError::Short { path, have, size });
                    }
                    out.push(FatFile { path, size, runs });
                }
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Reads every file of a FAT12/16 image in memory, sorted by path (see [`files`]).
pub fn read_all(img: &[u8]) -> Result<Vec<ReadFile>, FatReadError> {
    files(img)?
        .into_iter()
        .map(|f| {
            let bytes = f.bytes(img)?;
            Ok((f.path, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::clock::{Clock, DEFAULT_EPOCH};
    use crate::image::write::fat::build;
    use crate::image::write::fat::tests::esp;

    /// Sets FAT12 entry `c` (both FATs are not needed: the reader uses the first).
    fn set12(img: &mut [u8], c: usize, v: u16) {
        crate::image::format::fat::set_entry(&mut img[512..], true, c, v);
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let files = vec![
            ("EFI/BOOT/BOOTX64.EFI".to_string(), vec![0xAB; 70_000]),
            ("EFI/BOOT/grub.cfg".to_string(), b"set timeout=0\n".to_vec()),
            ("isoproof/a long name.json".to_string(), b"{}".to_vec()),
            ("empty".to_string(), Vec::new()),
        ];
        let (img, _) = build(&files, "EFIBOOT", Clock::at(DEFAULT_EPOCH)).unwrap();
        let mut want: Vec<ReadFile> = files
            .into_iter()
            .map(|(p, b)| (format!("/{p}"), b))
            .collect();
        want.sort();
        assert_eq!(read_all(&img).unwrap(), want);
    }

    #[test]
    fn malformed_images_are_errors_not_panics() {
        let (img, g) = esp();
        assert!(matches!(read_all(&img[..10]), Err(FatReadError::NotFat(_))));
        assert!(matches!(
            read_all(&[0u8; 512]),
            Err(FatReadError::NotFat(_))
        ));
        // Every cluster of the FAT pointing at cluster 2: a loop.
        let mut looped = img.clone();
        for c in 2..g.clusters + 2 {
            set12(&mut looped, c, 2);
        }
        assert!(matches!(
            read_all(&looped),
            Err(FatReadError::SharedCluster { cluster: 2, .. })
        ));
        // Truncated data region: a cluster beyond the end.
        assert!(matches!(
            read_all(&img[..img.len() / 2]),
            Err(FatReadError::BeyondImage { .. } | FatReadError::NotFat(_))
        ));
    }

    #[test]
    fn chains_that_meet_are_an_error() {
        // Two files of six clusters each: A at clusters 2-7, B at 8-13 (allocated in name
        // order). Pointing B's first cluster at A's second makes the chains meet (a DAG):
        // without a set of clusters read, many such files would each re-read the shared tail.
        let files = vec![
            ("A.BIN".to_string(), vec![1; 3000]),
            ("B.BIN".to_string(), vec![2; 3000]),
        ];
        let (mut img, g) = build(&files, "EFIBOOT", Clock::at(DEFAULT_EPOCH)).unwrap();
        assert_eq!(g.sectors_per_cluster, 1);
        assert_eq!(read_all(&img).unwrap().len(), 2);
        set12(&mut img, 8, 3);
        assert!(
            matches!(
                read_all(&img),
                Err(FatReadError::SharedCluster { ref path, cluster: 3 }) if path == "/B.BIN"
            ),
            "{:?}",
            read_all(&img)
        );
    }
}
