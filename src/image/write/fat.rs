//! The FAT ESP writer: a FAT12 or FAT16 image sized to its contents (Microsoft's FAT
//! specification: BPB, two FATs, fixed root directory, clusters), with a fixed volume serial
//! and label, every date from the image's clock, entries in name order, long names as VFAT
//! LFN entries. The whole image is built in memory: an ESP holds a boot loader or two.

use std::collections::BTreeMap;

use crate::image::clock::Clock;
use crate::image::format::fat::{attr, lfn_checksum, BootSector, DirEntry, LfnEntry};
use crate::image::format::record::{Bytes, Field, Hex, Le, Record};

/// Bytes per sector.
const SECTOR: usize = 512;
/// Root directory entries (fixed area of FAT12/16), as mkfs.fat uses.
const ROOT_ENTRIES: usize = 512;
/// The fixed volume serial (as NixOS's `mkfs.vfat -i 12345678`).
pub(crate) const SERIAL: u32 = 0x1234_5678;

/// An error building the ESP.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FatError {
    /// A path component is empty, `.`/`..`, or has a character FAT cannot store.
    #[error("ESP path {0:?} has a name FAT cannot store")]
    BadName(String),
    /// A path is both a file and a directory.
    #[error("ESP path {0:?} is both a file and a directory")]
    Conflict(String),
    /// More than the root directory's 512 entries, or beyond FAT16.
    #[error("the ESP does not fit FAT16: {0}")]
    TooBig(String),
}

#[derive(Default)]
struct Dir {
    dirs: BTreeMap<String, Dir>,
    files: BTreeMap<String, Vec<u8>>,
}

/// The boot sector fields a caller may want to see (and tests check).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Geometry {
    /// 12 or 16.
    pub fat_bits: u8,
    /// Sectors per cluster.
    pub sectors_per_cluster: u8,
    /// Sectors per FAT.
    pub fat_sectors: usize,
    /// Data clusters.
    pub clusters: usize,
    /// Total sectors.
    pub total_sectors: usize,
}

/// Builds a FAT image holding `files` (`("EFI/BOOT/BOOTX64.EFI", bytes)`, `/`-separated).
pub(crate) fn build(
    files: &[(String, Vec<u8>)],
    label: &str,
    clock: Clock,
) -> Result<(Vec<u8>, Geometry), FatError> {
    let mut root = Dir::default();
    for (path, data) in files {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((name, dirs)) = parts.split_last() else {
            return Err(FatError::BadName(path.clone()));
        };
        let mut d = &mut root;
        for p in dirs {
            check_name(p, path)?;
            if d.files.contains_key(*p) {
                return Err(FatError::Conflict(path.clone()));
            }
            d = d.dirs.entry((*p).to_string()).or_default();
        }
        check_name(name, path)?;
        if d.dirs.contains_key(*name) {
            return Err(FatError::Conflict(path.clone()));
        }
        d.files.insert((*name).to_string(), data.clone());
    }
    let root_count = entry_count(&root) + 1; // + volume label
    if root_count > ROOT_ENTRIES {
        return Err(FatError::TooBig(format!(
            "{root_count} root entries (at most {ROOT_ENTRIES})"
        )));
    }
    // Pick the smallest cluster size for which FAT16 can hold everything.
    for spc in [1usize, 2, 4, 8, 16, 32, 64] {
        let cs = spc * SECTOR;
        let needed = clusters_for(&root, cs, true);
        // A little room, as mkfs users leave; at least 16 clusters.
        let clusters = (needed + needed / 16 + 16).max(16);
        let fat_bits: u8 = if clusters < 4085 { 12 } else { 16 };
        if clusters > 65_524 {
            continue;
        }
        let fat_bytes = if fat_bits == 12 {
            (clusters + 2) * 3 / 2 + 1
        } else {
            (clusters + 2) * 2
        };
        let fat_sectors = fat_bytes.div_ceil(SECTOR);
        let root_sectors = ROOT_ENTRIES * 32 / SECTOR;
        let total = 1 + 2 * fat_sectors + root_sectors + clusters * spc;
        let g = Geometry {
            fat_bits,
            sectors_per_cluster: spc as u8,
            fat_sectors,
            clusters,
            total_sectors: total,
        };
        return Ok((write(&root, label, clock, g), g));
    }
    Err(FatError::TooBig(
        "more than 65524 clusters of 32 KiB".into(),
    ))
}

fn check_name(n: &str, path: &str) -> Result<(), FatError> {
    let bad = n.is_empty()
        || n == "."
        || n == ".."
        || n.len() > 255
        || n.chars()
            .any(|c| (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c) || (c as u32) > 0xFFFF);
    if bad {
        Err(FatError::BadName(path.to_string()))
    } else {
        Ok(())
    }
}

/// Whether a name is stored as a plain 8.3 entry (uppercase, valid characters).
fn short_form(name: &str) -> Option<[u8; 11]> {
    let (stem, ext) = match name.rfind('.') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, ""),
    };
    let ok = |s: &str, max: usize| {
        s.len() <= max
            && s.bytes().all(|b| {
                b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'()-@^_`{}~".contains(&b)
            })
    };
    if stem.is_empty() || !ok(stem, 8) || !ok(ext, 3) || (name.contains('.') && ext.is_empty()) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..stem.len()].copy_from_slice(stem.as_bytes());
    out[8..8 + ext.len()].copy_from_slice(ext.as_bytes());
    Some(out)
}

/// LFN entries needed for a name (0 when the 8.3 form holds it).
fn lfn_count(name: &str) -> usize {
    if short_form(name).is_some() {
        0
    } else {
        name.encode_utf16().count().div_ceil(13)
    }
}

fn entry_count(d: &Dir) -> usize {
    d.dirs
        .keys()
        .chain(d.files.keys())
        .map(|n| 1 + lfn_count(n))
        .sum()
}

fn clusters_for(d: &Dir, cs: usize, is_root: bool) -> usize {
    let own = if is_root {
        0
    } else {
        ((entry_count(d) + 2) * 32).div_ceil(cs).max(1)
    };
    own + d
        .files
        .values()
        .map(|f| f.len().div_ceil(cs))
        .sum::<usize>()
        + d.dirs
            .values()
            .map(|s| clusters_for(s, cs, false))
            .sum::<usize>()
}

/// The 8.3 basis of a long name (FAT spec "Basis-Name Generation"), made unique with `~N`.
fn basis(name: &str, taken: &dyn Fn(&[u8; 11]) -> bool) -> [u8; 11] {
    let clean = |s: &str| -> Vec<u8> {
        s.chars()
            .filter(|c| *c != ' ' && *c != '.')
            .map(|c| {
                let u = c.to_ascii_uppercase();
                if u.is_ascii_alphanumeric() || "!#$%&'()-@^_`{}~".contains(u) {
                    u as u8
                } else {
                    b'_'
                }
            })
            .collect()
    };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (clean(&name[..i]), clean(&name[i + 1..])),
        _ => (clean(name), Vec::new()),
    };
    crate::image::format::first_free(
        false,
        |tail| {
            let mut out = [b' '; 11];
            let s: Vec<u8> = stem
                .iter()
                .copied()
                .take(8 - tail.len())
                .chain(tail.bytes())
                .collect();
            out[..s.len()].copy_from_slice(&s);
            for (i, b) in ext.iter().take(3).enumerate() {
                out[8 + i] = *b;
            }
            out
        },
        |c| taken(c),
    )
}

/// A directory entry; every date is the image clock's.
fn dirent(name: &[u8; 11], attributes: u8, cluster: u16, size: u32, clock: Clock) -> [u8; 32] {
    let (date, time) = crate::image::format::fat::date_time(&clock.civil());
    let e = DirEntry {
        name: Bytes(*name),
        attributes,
        nt_reserved: 0,
        creation_tenths: 0,
        creation_time: Le::new(time),
        creation_date: Le::new(date),
        access_date: Le::new(date),
        first_cluster_high: Le::new(0),
        write_time: Le::new(time),
        write_date: Le::new(date),
        first_cluster: Le::new(cluster),
        file_size: Le::new(size),
    };
    let mut b = [0u8; 32];
    b.copy_from_slice(&e.encode());
    b
}

/// The LFN entries of a long name, last part first: the name, a 0x0000 terminator when it
/// does not fill the last entry, then 0xFFFF padding.
fn lfn_entries(name: &str, short: &[u8; 11]) -> Vec<[u8; 32]> {
    let mut units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(13);
    if units.len() % 13 != 0 {
        units.push(0);
        while units.len() % 13 != 0 {
            units.push(0xFFFF);
        }
    }
    let sum = lfn_checksum(short);
    (0..n)
        .rev()
        .map(|i| {
            let chunk: [u16; 13] = units[i * 13..i * 13 + 13].try_into().expect("13 units");
            let order = (i as u8 + 1) | if i + 1 == n { 0x40 } else { 0 };
            let mut b = [0u8; 32];
            b.copy_from_slice(&LfnEntry::new(order, &chunk, sum).encode());
            b
        })
        .collect()
}

struct Writer {
    img: Vec<u8>,
    fat: Vec<u32>,
    next: usize,
    g: Geometry,
    data_start: usize,
    clock: Clock,
}

impl Writer {
    fn alloc(&mut self, n: usize) -> u16 {
        if n == 0 {
            return 0;
        }
        let first = self.next;
        for c in first..first + n {
            self.fat[c] = if c + 1 < first + n {
                (c + 1) as u32
            } else {
                0xFFFF_FFFF
            };
        }
        self.next += n;
        first as u16
    }

    fn cluster_offset(&self, c: u16) -> usize {
        self.data_start + (usize::from(c) - 2) * usize::from(self.g.sectors_per_cluster) * SECTOR
    }

    /// Entries of one directory (its children already placed), and the children's data.
    fn dir(&mut self, d: &Dir, own: u16, parent: u16) -> Vec<[u8; 32]> {
        let cs = usize::from(self.g.sectors_per_cluster) * SECTOR;
        let mut out = Vec::new();
        if own != 0 {
            let mut dot = [b' '; 11];
            dot[0] = b'.';
            out.push(dirent(&dot, attr::DIRECTORY, own, 0, self.clock));
            dot[1] = b'.';
            out.push(dirent(&dot, attr::DIRECTORY, parent, 0, self.clock));
        }
        // Names in order; directories and files interleaved by name.
        let mut names: Vec<(&String, bool)> = d
            .dirs
            .keys()
            .map(|k| (k, true))
            .chain(d.files.keys().map(|k| (k, false)))
            .collect();
        names.sort();
        let mut shorts: Vec<[u8; 11]> = names.iter().filter_map(|(n, _)| short_form(n)).collect();
        for (name, is_dir) in names {
            let short = match short_form(name) {
                Some(s) => s,
                None => {
                    let s = basis(name, &|c| shorts.contains(c));
                    shorts.push(s);
                    out.extend(lfn_entries(name, &s));
                    s
                }
            };
            if is_dir {
                let sub = &d.dirs[name];
                let n = ((entry_count(sub) + 2) * 32).div_ceil(cs).max(1);
                let c = self.alloc(n);
                out.push(dirent(&short, attr::DIRECTORY, c, 0, self.clock));
                let entries = self.dir(sub, c, own);
                let off = self.cluster_offset(c);
                for (i, e) in entries.iter().enumerate() {
                    self.img[off + i * 32..off + i * 32 + 32].copy_from_slice(e);
                }
            } else {
                let data = &d.files[name];
                let c = self.alloc(data.len().div_ceil(cs));
                out.push(dirent(
                    &short,
                    attr::ARCHIVE,
                    c,
                    data.len() as u32,
                    self.clock,
                ));
                if c != 0 {
                    let off = self.cluster_offset(c);
                    self.img[off..off + data.len()].copy_from_slice(data);
                }
            }
        }
        out
    }
}

fn write(root: &Dir, label: &str, clock: Clock, g: Geometry) -> Vec<u8> {
    let root_sectors = ROOT_ENTRIES * 32 / SECTOR;
    let mut img = vec![0u8; g.total_sectors * SECTOR];
    let mut label11 = [b' '; 11];
    for (i, b) in label
        .bytes()
        .filter(|b| b.is_ascii_graphic() || *b == b' ')
        .take(11)
        .enumerate()
    {
        label11[i] = b.to_ascii_uppercase();
    }
    boot_sector(g, &label11).write(&mut img[..SECTOR]);
    let data_start = (1 + 2 * g.fat_sectors + root_sectors) * SECTOR;
    let mut w = Writer {
        img,
        fat: vec![0; g.clusters + 2],
        next: 2,
        g,
        data_start,
        clock,
    };
    let mut entries = vec![dirent(&label11, attr::VOLUME_ID, 0, 0, clock)];
    entries.extend(w.dir(root, 0, 0));
    let root_off = (1 + 2 * g.fat_sectors) * SECTOR;
    for (i, e) in entries.iter().enumerate() {
        w.img[root_off + i * 32..root_off + i * 32 + 32].copy_from_slice(e);
    }
    // The FATs: entry 0 holds the media byte, entry 1 end-of-chain.
    let (eoc, mask) = if g.fat_bits == 12 {
        (0xFFF, 0xFFF)
    } else {
        (0xFFFF, 0xFFFF)
    };
    w.fat[0] = 0xFF8 | if g.fat_bits == 16 { 0xFFF0 } else { 0 };
    w.fat[1] = eoc;
    let mut fat = vec![0u8; g.fat_sectors * SECTOR];
    for (i, &v) in w.fat.iter().enumerate() {
        let v = if v == 0xFFFF_FFFF { eoc } else { v & mask };
        crate::image::format::fat::set_entry(&mut fat, g.fat_bits == 12, i, v as u16);
    }
    for k in 0..2 {
        let off = (1 + k * g.fat_sectors) * SECTOR;
        w.img[off..off + fat.len()].copy_from_slice(&fat);
    }
    w.img
}

fn boot_sector(g: Geometry, label: &[u8; 11]) -> BootSector {
    let small = g.total_sectors < 0x10000;
    BootSector {
        jump_boot: Bytes([0xEB, 0x3C, 0x90]),
        oem_name: Bytes(*b"ISOPROOF"),
        bytes_per_sector: Le::new(SECTOR as u16),
        sectors_per_cluster: g.sectors_per_cluster,
        reserved_sectors: Le::new(1),
        fat_count: 2,
        root_entries: Le::new(ROOT_ENTRIES as u16),
        total_sectors_16: Le::new(if small { g.total_sectors as u16 } else { 0 }),
        media: 0xF8, // fixed disk
        fat_sectors: Le::new(g.fat_sectors as u16),
        sectors_per_track: Le::new(32),
        heads: Le::new(64),
        hidden_sectors: Le::new(0),
        total_sectors_32: Le::new(if small { 0 } else { g.total_sectors as u32 }),
        drive_number: 0x80,
        reserved_1: 0,
        boot_signature: 0x29,
        volume_id: Hex::new(SERIAL),
        volume_label: Bytes(*label),
        fs_type: Bytes(if g.fat_bits == 12 {
            *b"FAT12   "
        } else {
            *b"FAT16   "
        }),
        boot_code: Bytes::zeroed(),
        signature: Bytes([0x55, 0xAA]),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small ESP: a boot loader and a configuration file.
    pub(crate) fn esp() -> (Vec<u8>, Geometry) {
        let files = vec![
            ("EFI/BOOT/BOOTX64.EFI".to_string(), vec![0xAB; 3000]),
            ("EFI/BOOT/grub.cfg".to_string(), b"set timeout=0\n".to_vec()),
        ];
        build(
            &files,
            "EFIBOOT",
            Clock::at(crate::image::clock::DEFAULT_EPOCH),
        )
        .unwrap()
    }

    #[test]
    fn boot_sector_layout() {
        let (img, g) = esp();
        assert_eq!(g.fat_bits, 12);
        assert_eq!(img.len(), g.total_sectors * 512);
        assert_eq!(&img[0..3], &[0xEB, 0x3C, 0x90]);
        assert_eq!(u16::from_le_bytes([img[11], img[12]]), 512);
        assert_eq!(img[13], 1);
        assert_eq!(img[16], 2);
        assert_eq!(u16::from_le_bytes([img[17], img[18]]), 512);
        assert_eq!(img[21], 0xF8);
        assert_eq!(&img[39..43], &SERIAL.to_le_bytes());
        assert_eq!(&img[43..54], b"EFIBOOT    ");
        assert_eq!(&img[54..62], b"FAT12   ");
        assert_eq!(&img[510..512], &[0x55, 0xAA]);
        // FAT12 entries 0 and 1: F8 FF FF.
        assert_eq!(&img[512..515], &[0xF8, 0xFF, 0xFF]);
    }

    #[test]
    fn names_and_checksums() {
        assert_eq!(short_form("BOOTX64.EFI"), Some(*b"BOOTX64 EFI"));
        assert_eq!(short_form("EFI"), Some(*b"EFI        "));
        assert_eq!(short_form("grub.cfg"), None);
        let s = basis("grub.cfg", &|_| false);
        assert_eq!(&s, b"GRUB~1  CFG");
        // FAT spec checksum of "GRUB~1  CFG".
        let sum = s.iter().fold(0u8, |acc, &b| {
            (if acc & 1 != 0 { 0x80 } else { 0 } + (acc >> 1)).wrapping_add(b)
        });
        assert_eq!(lfn_checksum(&s), sum);
        let l = lfn_entries("grub.cfg", &s);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0][0], 0x41);
        assert_eq!(l[0][11], 0x0F);
        assert_eq!(&l[0][1..5], &[b'g', 0, b'r', 0]);
        // Terminator 0x0000 after the 8 characters, then 0xFFFF padding.
        assert_eq!(&l[0][18..24], &[b'g', 0, 0, 0, 0xFF, 0xFF]);
    }

    #[test]
    fn deterministic_and_bad_names() {
        assert_eq!(esp().0, esp().0);
        let bad = vec![("EFI/a:b".to_string(), vec![])];
        assert!(matches!(
            build(&bad, "X", Clock::at(0)),
            Err(FatError::BadName(_))
        ));
    }
}
