//! The FAT ESP writer: a FAT12 or FAT16 image sized to its contents (Microsoft's FAT
//! specification: BPB, two FATs, fixed root directory, clusters), with a fixed volume serial
//! and label, every date from the image's clock, entries in name order, long names as VFAT
//! LFN entries. The whole image is built in memory: an ESP holds a boot loader or two.

use std::collections::BTreeMap;

use super::clock::Clock;

/// Bytes per sector.
const SECTOR: usize = 512;
/// Root directory entries (fixed area of FAT12/16), as mkfs.fat uses.
const ROOT_ENTRIES: usize = 512;
/// The fixed volume serial (as NixOS's `mkfs.vfat -i 12345678`).
pub const SERIAL: u32 = 0x1234_5678;

const ATTR_DIR: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_LFN: u8 = 0x0F;

/// An error building the ESP.
#[derive(Debug, PartialEq)]
pub enum FatError {
    /// A path component is empty, `.`/`..`, or has a character FAT cannot store.
    BadName(String),
    /// A path is both a file and a directory.
    Conflict(String),
    /// More than the root directory's 512 entries, or beyond FAT16.
    TooBig(String),
}

impl std::fmt::Display for FatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FatError::BadName(n) => write!(f, "ESP path {n:?} has a name FAT cannot store"),
            FatError::Conflict(n) => write!(f, "ESP path {n:?} is both a file and a directory"),
            FatError::TooBig(why) => write!(f, "the ESP does not fit FAT16: {why}"),
        }
    }
}

#[derive(Default)]
struct Dir {
    dirs: BTreeMap<String, Dir>,
    files: BTreeMap<String, Vec<u8>>,
}

/// The boot sector fields a caller may want to see (and tests check).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Geometry {
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
pub fn build(
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
    super::first_free(
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

/// The LFN checksum of a short name (FAT spec "ChkSum").
fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b))
}

fn dirent(name: &[u8; 11], attr: u8, cluster: u16, size: u32, clock: Clock) -> [u8; 32] {
    let (date, time) = clock.fat_date_time();
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(name);
    e[11] = attr;
    e[14..16].copy_from_slice(&time.to_le_bytes()); // creation time
    e[16..18].copy_from_slice(&date.to_le_bytes()); // creation date
    e[18..20].copy_from_slice(&date.to_le_bytes()); // access date
    e[22..24].copy_from_slice(&time.to_le_bytes()); // write time
    e[24..26].copy_from_slice(&date.to_le_bytes()); // write date
    e[26..28].copy_from_slice(&cluster.to_le_bytes());
    e[28..32].copy_from_slice(&size.to_le_bytes());
    e
}

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
            let mut e = [0u8; 32];
            e[0] = (i as u8 + 1) | if i + 1 == n { 0x40 } else { 0 };
            e[11] = ATTR_LFN;
            e[13] = sum;
            let chunk = &units[i * 13..i * 13 + 13];
            let slots = (1..11)
                .step_by(2)
                .chain((14..26).step_by(2))
                .chain((28..32).step_by(2));
            for (u, off) in chunk.iter().zip(slots) {
                e[off..off + 2].copy_from_slice(&u.to_le_bytes());
            }
            e
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
            out.push(dirent(&dot, ATTR_DIR, own, 0, self.clock));
            dot[1] = b'.';
            out.push(dirent(&dot, ATTR_DIR, parent, 0, self.clock));
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
                out.push(dirent(&short, ATTR_DIR, c, 0, self.clock));
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
                    ATTR_ARCHIVE,
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
    boot_sector(&mut img[..SECTOR], g, &label11);
    let data_start = (1 + 2 * g.fat_sectors + root_sectors) * SECTOR;
    let mut w = Writer {
        img,
        fat: vec![0; g.clusters + 2],
        next: 2,
        g,
        data_start,
        clock,
    };
    let mut entries = vec![dirent(&label11, ATTR_VOLUME, 0, 0, clock)];
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
        if g.fat_bits == 16 {
            fat[i * 2..i * 2 + 2].copy_from_slice(&(v as u16).to_le_bytes());
        } else {
            let off = i * 3 / 2;
            if i % 2 == 0 {
                fat[off] = v as u8;
                fat[off + 1] = (fat[off + 1] & 0xF0) | ((v >> 8) as u8 & 0x0F);
            } else {
                fat[off] = (fat[off] & 0x0F) | ((v << 4) as u8);
                fat[off + 1] = (v >> 4) as u8;
            }
        }
    }
    for k in 0..2 {
        let off = (1 + k * g.fat_sectors) * SECTOR;
        w.img[off..off + fat.len()].copy_from_slice(&fat);
    }
    w.img
}

fn boot_sector(b: &mut [u8], g: Geometry, label: &[u8; 11]) {
    b[0..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
    b[3..11].copy_from_slice(b"ISOPROOF");
    b[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    b[13] = g.sectors_per_cluster;
    b[14..16].copy_from_slice(&1u16.to_le_bytes()); // reserved sectors
    b[16] = 2; // FATs
    b[17..19].copy_from_slice(&(ROOT_ENTRIES as u16).to_le_bytes());
    if g.total_sectors < 0x10000 {
        b[19..21].copy_from_slice(&(g.total_sectors as u16).to_le_bytes());
    } else {
        b[32..36].copy_from_slice(&(g.total_sectors as u32).to_le_bytes());
    }
    b[21] = 0xF8; // media: fixed disk
    b[22..24].copy_from_slice(&(g.fat_sectors as u16).to_le_bytes());
    b[24..26].copy_from_slice(&32u16.to_le_bytes()); // sectors per track
    b[26..28].copy_from_slice(&64u16.to_le_bytes()); // heads
    b[36] = 0x80; // drive number
    b[38] = 0x29; // extended boot signature
    b[39..43].copy_from_slice(&SERIAL.to_le_bytes());
    b[43..54].copy_from_slice(label);
    b[54..62].copy_from_slice(if g.fat_bits == 12 {
        b"FAT12   "
    } else {
        b"FAT16   "
    });
    b[510] = 0x55;
    b[511] = 0xAA;
}

/// One file read back from a FAT image: its `/`-separated path and its bytes.
pub type ReadFile = (String, Vec<u8>);

/// Reads every file of a FAT12/16 image (any writer's, not only ours), for `diff` to compare
/// ESPs file by file. Names are the long names where there are LFN entries, else the 8.3
/// names. A malformed image gives an error, never a panic: `diff` reads images it did not
/// make. Cluster chains are cut at the cluster count, so a loop in the FAT cannot hang it.
pub fn read(img: &[u8]) -> Result<Vec<ReadFile>, String> {
    let u16_at = |o: usize| -> Result<usize, String> {
        img.get(o..o + 2)
            .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
            .ok_or_else(|| "the image is shorter than a boot sector".to_string())
    };
    let bytes_per_sector = u16_at(11)?;
    let per_cluster = usize::from(*img.get(13).ok_or("no boot sector")?);
    let reserved = u16_at(14)?;
    let fats = usize::from(*img.get(16).ok_or("no boot sector")?);
    let root_entries = u16_at(17)?;
    let fat_sectors = u16_at(22)?;
    let total = match u16_at(19)? {
        0 => img
            .get(32..36)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("no boot sector")?,
        n => n,
    };
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || per_cluster == 0
        || fat_sectors == 0
        || fats == 0
    {
        return Err("not a FAT12/16 boot sector".into());
    }
    let fat_start = reserved * bytes_per_sector;
    let root_start = fat_start + fats * fat_sectors * bytes_per_sector;
    let data_start = root_start + root_entries * 32;
    let cluster_size = per_cluster * bytes_per_sector;
    let clusters = (total * bytes_per_sector).saturating_sub(data_start) / cluster_size;
    // FAT12 below 4085 clusters (Microsoft's rule), FAT16 from there.
    let next = |c: usize| -> Option<usize> {
        let v = if clusters < 4085 {
            let o = fat_start + c + c / 2;
            let w = usize::from(u16::from_le_bytes([*img.get(o)?, *img.get(o + 1)?]));
            let v = if c % 2 == 0 { w & 0xFFF } else { w >> 4 };
            if v >= 0xFF8 {
                return None;
            }
            v
        } else {
            let o = fat_start + 2 * c;
            let v = usize::from(u16::from_le_bytes([*img.get(o)?, *img.get(o + 1)?]));
            if v >= 0xFFF8 {
                return None;
            }
            v
        };
        (2..clusters + 2).contains(&v).then_some(v)
    };
    let chain = |first: usize| -> Vec<u8> {
        let mut out = Vec::new();
        let mut c = Some(first).filter(|c| (2..clusters + 2).contains(c));
        let mut steps = 0;
        while let Some(x) = c {
            let at = data_start + (x - 2) * cluster_size;
            match img.get(at..at + cluster_size) {
                Some(b) => out.extend_from_slice(b),
                None => break,
            }
            steps += 1;
            c = if steps > clusters { None } else { next(x) };
        }
        out
    };
    let root = img
        .get(root_start..data_start)
        .ok_or("the root directory lies beyond the image")?
        .to_vec();
    let mut files = Vec::new();
    let mut todo = vec![(String::new(), root, 0usize)];
    while let Some((dir, entries, depth)) = todo.pop() {
        if depth > 64 {
            return Err(format!("directories nested deeper than 64 levels at {dir}"));
        }
        let mut long: Vec<(u8, String)> = Vec::new();
        for e in entries.chunks_exact(32) {
            match e[0] {
                0 => break,
                0xE5 => {
                    long.clear();
                    continue;
                }
                _ => {}
            }
            let attr = e[11];
            if attr == ATTR_LFN {
                let units: Vec<u16> = [1..11, 14..26, 28..32]
                    .into_iter()
                    .flat_map(|r| {
                        e[r].chunks_exact(2)
                            .map(|u| u16::from_le_bytes([u[0], u[1]]))
                    })
                    .take_while(|&u| u != 0 && u != 0xFFFF)
                    .collect();
                long.push((e[0] & 0x1F, String::from_utf16_lossy(&units)));
                continue;
            }
            let name = if long.is_empty() {
                // Byte 12: Windows NT's lower-case flags for the base (0x08) and the extension
                // (0x10), which mtools and Windows use instead of LFN entries for `grub.cfg`.
                let case = |b: &[u8], lower: bool| {
                    let t = String::from_utf8_lossy(b).trim_end().to_string();
                    if lower {
                        t.to_ascii_lowercase()
                    } else {
                        t
                    }
                };
                let base = case(&e[0..8], e[12] & 0x08 != 0);
                let ext = case(&e[8..11], e[12] & 0x10 != 0);
                if ext.is_empty() {
                    base
                } else {
                    format!("{base}.{ext}")
                }
            } else {
                long.sort_by_key(|(n, _)| *n);
                long.drain(..).map(|(_, p)| p).collect()
            };
            long.clear();
            if attr & ATTR_VOLUME != 0 || name == "." || name == ".." {
                continue;
            }
            let path = format!("{dir}/{name}");
            let first = usize::from(u16::from_le_bytes([e[26], e[27]]));
            if attr & ATTR_DIR != 0 {
                todo.push((path, chain(first), depth + 1));
            } else {
                let size = u32::from_le_bytes([e[28], e[29], e[30], e[31]]) as usize;
                let mut data = chain(first);
                if data.len() < size {
                    return Err(format!("{path}: its clusters hold less than its size"));
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

    fn esp() -> (Vec<u8>, Geometry) {
        let files = vec![
            ("EFI/BOOT/BOOTX64.EFI".to_string(), vec![0xAB; 3000]),
            ("EFI/BOOT/grub.cfg".to_string(), b"set timeout=0\n".to_vec()),
        ];
        build(
            &files,
            "EFIBOOT",
            Clock::at(super::super::clock::DEFAULT_EPOCH),
        )
        .unwrap()
    }

    #[test]
    fn reads_back_what_it_wrote() {
        let files = vec![
            ("EFI/BOOT/BOOTX64.EFI".to_string(), vec![0xAB; 70_000]),
            ("EFI/BOOT/grub.cfg".to_string(), b"set timeout=0\n".to_vec()),
            ("isoproof/a long name.json".to_string(), b"{}".to_vec()),
            ("empty".to_string(), Vec::new()),
        ];
        let (img, _) = build(
            &files,
            "EFIBOOT",
            Clock::at(super::super::clock::DEFAULT_EPOCH),
        )
        .unwrap();
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
        assert!(read(&img[..10]).is_err());
        assert!(read(&[0u8; 512]).is_err());
        // Every cluster of the FAT pointing at cluster 2: a loop, cut at the cluster count.
        let mut looped = img.clone();
        let fat = 512;
        for c in 2..g.clusters + 2 {
            let o = fat + c + c / 2;
            let w = u16::from_le_bytes([looped[o], looped[o + 1]]);
            let w = if c % 2 == 0 {
                (w & 0xF000) | 2
            } else {
                (w & 0x000F) | (2 << 4)
            };
            looped[o..o + 2].copy_from_slice(&w.to_le_bytes());
        }
        let _ = read(&looped);
        // Truncated data region: the file's clusters hold less than its size.
        assert!(read(&img[..img.len() / 2]).is_err());
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
