//! The FAT12/16 reader: every file of an ESP of any origin (mkfs.fat and mtools, xorriso's
//! `-append_partition`, ours), for `diff` and `inspect`. The image is untrusted: every length
//! and cluster number is checked against it before use, and every cluster is read at most
//! once in the whole walk — a chain that loops or runs into another file's chain is an error,
//! so memory stays within the image's size and the walk ends.

use super::{attr, BootSector, DirEntry, LfnEntry, FREE};
use crate::image::record::Record;

/// One file read back from a FAT image: its `/`-separated path and its bytes.
pub type ReadFile = (String, Vec<u8>);

/// Directories nest at most this deep (a sane bound: real ESPs nest three or four).
const MAX_DEPTH: usize = 64;

/// Why a FAT image could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
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
        have: usize,
        /// Its recorded size.
        size: usize,
    },
    /// Directories nest deeper than anything real.
    #[error("{path}: directories nest deeper than {MAX_DEPTH} levels")]
    TooDeep {
        /// The directory.
        path: String,
    },
}

/// Where things are in the image, from the boot sector.
struct Layout {
    fat_start: usize,
    root_start: usize,
    data_start: usize,
    cluster_size: usize,
    clusters: usize,
    fat12: bool,
}

impl Layout {
    fn of(img: &[u8]) -> Result<Layout, FatReadError> {
        let bs = BootSector::decode(img)
            .map_err(|_| FatReadError::NotFat("the image is shorter than a boot sector".into()))?;
        let not = |why: String| Err(FatReadError::NotFat(why));
        let bps = usize::from(bs.bytes_per_sector.get());
        let spc = usize::from(bs.sectors_per_cluster);
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
            0 => bs.total_sectors_32.get() as usize,
            n => usize::from(n),
        };
        let fat_start = usize::from(bs.reserved_sectors.get()) * bps;
        let root_start =
            fat_start + usize::from(bs.fat_count) * usize::from(bs.fat_sectors.get()) * bps;
        let data_start = root_start + usize::from(bs.root_entries.get()) * 32;
        let cluster_size = spc * bps;
        let clusters = total.saturating_mul(bps).saturating_sub(data_start) / cluster_size;
        if clusters >= 65_525 {
            return not(format!("{clusters} clusters make it FAT32"));
        }
        if root_start > img.len() || data_start > img.len() {
            return not(format!(
                "its root directory (bytes {root_start}..{data_start}) lies beyond the image of {} bytes",
                img.len()
            ));
        }
        Ok(Layout {
            fat_start,
            root_start,
            data_start,
            cluster_size,
            clusters,
            // Microsoft's rule: FAT12 below 4085 clusters, FAT16 from there.
            fat12: clusters < 4085,
        })
    }

    /// The cluster after `c` in its chain; `None` at the end of the chain or at a value that
    /// is not a data cluster (free, bad, reserved).
    fn next(&self, img: &[u8], c: usize) -> Option<usize> {
        let v = if self.fat12 {
            let o = self.fat_start + c + c / 2;
            let w = usize::from(u16::from_le_bytes([*img.get(o)?, *img.get(o + 1)?]));
            if c % 2 == 0 {
                w & 0xFFF
            } else {
                w >> 4
            }
        } else {
            let o = self.fat_start + 2 * c;
            usize::from(u16::from_le_bytes([*img.get(o)?, *img.get(o + 1)?]))
        };
        (2..self.clusters + 2).contains(&v).then_some(v)
    }
}

struct Reader<'a> {
    img: &'a [u8],
    l: Layout,
    /// Every cluster read so far, so no cluster is read twice.
    seen: Vec<bool>,
}

impl Reader<'_> {
    /// The bytes of the chain starting at `first`, up to `limit` bytes.
    fn chain(&mut self, first: usize, path: &str, limit: usize) -> Result<Vec<u8>, FatReadError> {
        let mut out = Vec::new();
        let mut c = Some(first).filter(|c| (2..self.l.clusters + 2).contains(c));
        while let Some(x) = c {
            if out.len() >= limit {
                break;
            }
            if std::mem::replace(&mut self.seen[x], true) {
                return Err(FatReadError::SharedCluster {
                    path: path.to_string(),
                    cluster: x,
                });
            }
            let at = self.l.data_start + (x - 2) * self.l.cluster_size;
            let bytes = self.img.get(at..at + self.l.cluster_size).ok_or_else(|| {
                FatReadError::BeyondImage {
                    path: path.to_string(),
                    cluster: x,
                }
            })?;
            out.extend_from_slice(bytes);
            c = self.l.next(self.img, x);
        }
        Ok(out)
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

/// Reads every file of a FAT12/16 image, sorted by path. Names are the long names where
/// there are LFN entries, else the 8.3 names.
pub fn read(img: &[u8]) -> Result<Vec<ReadFile>, FatReadError> {
    let l = Layout::of(img)?;
    let root = img[l.root_start..l.data_start].to_vec();
    let mut r = Reader {
        img,
        seen: vec![false; l.clusters + 2],
        l,
    };
    let mut files = Vec::new();
    let mut todo = vec![(String::new(), root, 0usize)];
    while let Some((dir, entries, depth)) = todo.pop() {
        if depth > MAX_DEPTH {
            return Err(FatReadError::TooDeep { path: dir });
        }
        let mut long: Vec<(u8, String)> = Vec::new();
        for raw in entries.chunks_exact(32) {
            match raw[0] {
                0 => break,
                FREE => {
                    long.clear();
                    continue;
                }
                _ => {}
            }
            let e = DirEntry::decode(raw).expect("32 bytes");
            if e.attributes == attr::LONG_NAME {
                let units: Vec<u16> = LfnEntry::decode(raw)
                    .expect("32 bytes")
                    .units()
                    .into_iter()
                    .take_while(|&u| u != 0 && u != 0xFFFF)
                    .collect();
                long.push((raw[0] & 0x1F, String::from_utf16_lossy(&units)));
                continue;
            }
            let name = if long.is_empty() {
                short_name(&e)
            } else {
                long.sort_by_key(|(n, _)| *n);
                long.drain(..).map(|(_, p)| p).collect()
            };
            long.clear();
            if e.attributes & attr::VOLUME_ID != 0 || name == "." || name == ".." {
                continue;
            }
            let path = format!("{dir}/{name}");
            let first = usize::from(e.first_cluster.get());
            if e.attributes & attr::DIRECTORY != 0 {
                let data = r.chain(first, &path, usize::MAX)?;
                todo.push((path, data, depth + 1));
            } else {
                let size = e.file_size.get() as usize;
                let mut data = r.chain(first, &path, size)?;
                if data.len() < size {
                    return Err(FatReadError::Short {
                        path,
                        have: data.len(),
                        size,
                    });
                }
                data.truncate(size);
                files.push((path, data));
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::clock::{Clock, DEFAULT_EPOCH};
    use crate::image::fat::build;
    use crate::image::fat::write::tests::esp;

    /// Sets FAT12 entry `c` (both FATs are not needed: the reader uses the first).
    fn set12(img: &mut [u8], c: usize, v: u16) {
        let o = 512 + c + c / 2;
        let w = u16::from_le_bytes([img[o], img[o + 1]]);
        let w = if c % 2 == 0 {
            (w & 0xF000) | v
        } else {
            (w & 0x000F) | (v << 4)
        };
        img[o..o + 2].copy_from_slice(&w.to_le_bytes());
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
        assert_eq!(read(&img).unwrap(), want);
    }

    #[test]
    fn malformed_images_are_errors_not_panics() {
        let (img, g) = esp();
        assert!(matches!(read(&img[..10]), Err(FatReadError::NotFat(_))));
        assert!(matches!(read(&[0u8; 512]), Err(FatReadError::NotFat(_))));
        // Every cluster of the FAT pointing at cluster 2: a loop.
        let mut looped = img.clone();
        for c in 2..g.clusters + 2 {
            set12(&mut looped, c, 2);
        }
        assert!(matches!(
            read(&looped),
            Err(FatReadError::SharedCluster { cluster: 2, .. })
        ));
        // Truncated data region: a cluster beyond the end.
        assert!(matches!(
            read(&img[..img.len() / 2]),
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
        assert_eq!(read(&img).unwrap().len(), 2);
        set12(&mut img, 8, 3);
        assert_eq!(
            read(&img),
            Err(FatReadError::SharedCluster {
                path: "/B.BIN".into(),
                cluster: 3
            })
        );
    }
}
