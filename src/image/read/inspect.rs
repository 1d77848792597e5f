//! Reads an ISO image back into decoded records: the MBR and GPT (CRCs checked), the volume
//! descriptors, El Torito's catalog, both directory trees with Rock Ridge names, modes,
//! symlinks, relocations and extents, and the map of which [`Structure`] owns which bytes.
//! Used by `isoproof inspect`, `diff` and the tests.
//!
//! The image is untrusted. Every length, count and extent is checked against the image size
//! before anything is allocated or read; every directory extent is read at most once per tree
//! (so extents that point back into the tree, or at each other, cannot multiply the work);
//! continuation areas stay inside one sector, as Linux requires; walks use explicit stacks.

use std::collections::HashSet;
use std::path::Path;

use crate::image::format::apm::{self, DriverDescriptorMap, PartitionMapEntry};
use crate::image::format::authenticode::{self, Signature};
use crate::image::format::eltorito::{BootCatalog, PLATFORM_EFI};
use crate::image::format::gpt::{GptEntry, GptHeader};
use crate::image::format::iso9660::{DirectoryRecord, FIRST_DESCRIPTOR, SECTOR};
use crate::image::format::mbr::{Mbr, LBA};
use crate::image::format::record::{DecodeError, Field, Record};
use crate::image::format::rockridge::{self, Entry};
use crate::image::format::structure::{Order, Owned, Structure, Tree};
use crate::image::read::descriptor::VolumeDescriptor;
pub(crate) use crate::image::read::error::explain_end;
pub use crate::image::read::error::{ReadError, Truncation};
pub(crate) use crate::image::read::img::{Img, Window};
pub use crate::image::read::report::{Descriptor, FileInfo, GptRead, Report};

/// At most this many volume descriptors are read before a terminator.
const MAX_DESCRIPTORS: u64 = 100;
/// The longest path a reader accepts (Linux's PATH_MAX).
const MAX_PATH: usize = 4096;
/// The paths of all files, in both trees, may take this many bytes in all. A directory's
/// path is repeated in every entry under it, so a few deep or long-named directories over
/// many entries would make a small image hold gigabytes of paths; real images need a few
/// MiB.
const MAX_PATH_BYTES: u64 = 64 << 20;
/// At most this many continuation areas are followed for one record.
const MAX_CONTINUATIONS: usize = 64;

fn record_err(structure: &Structure, offset: u64) -> impl Fn(DecodeError) -> ReadError + '_ {
    move |source| ReadError::Record {
        structure: structure.clone(),
        offset,
        source,
    }
}

/// The size a FAT boot sector at `at` gives its file system, if one is there.
fn fat_size(img: &Img, at: u64) -> Option<u64> {
    let b = img.read(&Structure::EspImage, at, 512).ok()?;
    let bs = crate::image::format::fat::BootSector::decode(&b).ok()?;
    let bps = u64::from(bs.bytes_per_sector.get());
    if bs.signature.0 != [0x55, 0xAA] || !matches!(bps, 512 | 1024 | 2048 | 4096) {
        return None;
    }
    let total = match bs.total_sectors_16.get() {
        0 => u64::from(bs.total_sectors_32.get()),
        n => u64::from(n),
    };
    (total > 0).then_some(total * bps)
}

/// Reads an image.
pub fn inspect(path: &Path) -> Result<Report, ReadError> {
    let img = Img::open(path)?;
    read_report(&img).map_err(|e| {
        // What the primary volume descriptor claims, read on its own (the descriptors after
        // it may be what was cut off).
        let pvd = img
            .read(
                &Structure::PrimaryVolumeDescriptor,
                FIRST_DESCRIPTOR * SECTOR,
                SECTOR,
            )
            .ok()
            .and_then(|b| VolumeDescriptor::decode(&b).ok().flatten());
        let claimed = match pvd {
            Some(VolumeDescriptor::Primary(p)) => {
                Truncation::of(u64::from(p.volume_space_size.get()), img.len)
            }
            _ => None,
        };
        explain_end(e, claimed)
    })
}

fn read_report(img: &Img) -> Result<Report, ReadError> {
    let mut own: Vec<Owned> = Vec::new();
    let mut claim = |start: u64, len: u64, structure: Structure| {
        let end = start.saturating_add(len).min(img.len);
        if end > start {
            own.push(Owned {
                start,
                end,
                structure,
            });
        }
    };

    let mbr = if img.len >= LBA {
        let m = Mbr::decode(&img.read(&Structure::Mbr, 0, LBA)?).expect("512 bytes");
        m.has_signature().then_some(m)
    } else {
        None
    };
    if mbr.is_some() {
        claim(0, LBA, Structure::Mbr);
    }
    let gpt = read_gpt(img, &mut claim)?;
    let apm = read_apm(img, &mut claim)?;

    let mut descriptors = Vec::new();
    for i in 0..MAX_DESCRIPTORS {
        let sector = FIRST_DESCRIPTOR + i;
        let at = sector * SECTOR;
        if !img.fits(at, SECTOR) && i == 0 {
            return Err(ReadError::NotIso);
        }
        let probe = Structure::OtherVolumeDescriptor(0);
        let b = img.read(&probe, at, SECTOR)?;
        let vd = VolumeDescriptor::decode(&b)
            .map_err(record_err(&probe, at))?
            .ok_or(if i == 0 {
                ReadError::NotIso
            } else {
                ReadError::Invalid {
                    structure: probe.clone(),
                    offset: at,
                    what: format!(
                        "sector {sector} holds no volume descriptor before the set terminator"
                    ),
                }
            })?;
        let d = Descriptor { sector, vd };
        claim(at, SECTOR, d.structure());
        let end = matches!(d.vd, VolumeDescriptor::Terminator(_));
        descriptors.push(d);
        if end {
            break;
        }
    }

    let mut catalog = None;
    for d in &descriptors {
        if let VolumeDescriptor::ElTorito(br) = &d.vd {
            let sector = u64::from(br.boot_catalog.get());
            let at = sector * SECTOR;
            let s = Structure::BootCatalog;
            // A catalog is at most a sector; one cut short by the image's end is read as far
            // as it goes (and must still hold its validation entry).
            let len = SECTOR.min(img.len.saturating_sub(at)).max(1);
            let b = img.read(&s, at, len)?;
            let c = BootCatalog::decode(&b).map_err(record_err(&s, at))?;
            claim(at, SECTOR, s);
            catalog = Some((sector, c));
            break;
        }
    }
    if let Some((_, c)) = &catalog {
        for e in c.entries.iter().filter(|e| e.entry.boot_indicator != 0) {
            let at = u64::from(e.entry.load_rba.get()) * SECTOR;
            let count = u64::from(e.entry.sector_count.get());
            if e.platform == PLATFORM_EFI {
                // The ESP's size is its partition's when the count does not hold it.
                let part = gpt.as_ref().and_then(|g| {
                    g.entries
                        .iter()
                        .find(|(_, p)| p.starting_lba.get().checked_mul(LBA) == Some(at))
                        .map(|(_, p)| {
                            (p.ending_lba.get() + 1).saturating_sub(p.starting_lba.get()) * LBA
                        })
                });
                // Without a partition, a FAT image says its own size (the 16-bit count
                // cannot hold an ESP over 32 MiB, and writers often put 1 there).
                let size = part
                    .or_else(|| fat_size(img, at))
                    .unwrap_or(count.max(1) * LBA);
                claim(at, size, Structure::EspImage);
            } else {
                claim(at, count.max(1) * LBA, Structure::BiosBootImage);
            }
        }
    }

    let mut boot_info_tables = Vec::new();
    for e in catalog.iter().flat_map(|(_, c)| &c.entries) {
        let at = u64::from(e.entry.load_rba.get()) * SECTOR;
        use crate::image::format::eltorito::{BootInfoTable, BOOT_INFO_OFFSET};
        let table = img
            .read(
                &Structure::BiosBootImage,
                at + BOOT_INFO_OFFSET as u64,
                BootInfoTable::LEN as u64,
            )
            .ok()
            .and_then(|b| BootInfoTable::decode(&b).ok());
        boot_info_tables.push(table.is_some_and(|t| {
            t.pvd_lba.get() == FIRST_DESCRIPTOR as u32 && t.file_lba.get() == e.entry.load_rba.get()
        }));
    }

    let mut extensions = Vec::new();
    if let Some((_, _, (sector, _))) = descriptors
        .iter()
        .find(|d| matches!(d.vd, VolumeDescriptor::Primary(_)))
        .and_then(Descriptor::volume)
    {
        // The root's own record (`.`) carries SP and the ER entries; a broken one only
        // leaves them unnamed (the walk reports the tree's errors).
        let at = u64::from(sector) * SECTOR;
        let s = Structure::Directory(Tree::Primary, "/".into());
        if let Ok(b) = img.read(&s, at, SECTOR.min(img.len.saturating_sub(at))) {
            if let Ok(r) = DirectoryRecord::decode(&b) {
                if let Ok(rr) = rock_ridge(img, &r.system_use, &s, at, &mut |_, _, _| {}) {
                    extensions = rr.extensions;
                }
            }
        }
    }

    let mut files = Vec::new();
    let mut joliet_dirs = Vec::new();
    let mut path_bytes = 0u64;
    for d in &descriptors {
        let (tree, order_tables) = match &d.vd {
            VolumeDescriptor::Primary(p) => (
                Tree::Primary,
                (
                    p.path_table_size.get(),
                    p.l_path_table.get(),
                    p.m_path_table.get(),
                ),
            ),
            VolumeDescriptor::Supplementary(s) if s.is_joliet() => (
                Tree::Joliet,
                (
                    s.path_table_size.get(),
                    s.l_path_table.get(),
                    s.m_path_table.get(),
                ),
            ),
            _ => continue,
        };
        let (pt_size, l, m) = order_tables;
        claim(
            u64::from(l) * SECTOR,
            u64::from(pt_size),
            Structure::PathTable(tree, Order::L),
        );
        claim(
            u64::from(m) * SECTOR,
            u64::from(pt_size),
            Structure::PathTable(tree, Order::M),
        );
        let (_, _, root) = d.volume().expect("a primary or supplementary descriptor");
        let mut walked = Vec::new();
        walk(img, root, tree, &mut walked, &mut path_bytes, &mut claim)?;
        match tree {
            Tree::Primary if files.is_empty() => files = walked,
            Tree::Joliet if joliet_dirs.is_empty() => {
                joliet_dirs = walked
                    .into_iter()
                    .filter(|f| f.is_dir)
                    .map(|f| (f.path, f.extents[0]))
                    .collect()
            }
            _ => {}
        }
    }
    for f in files.iter().filter(|f| !f.is_dir) {
        for &(s, n) in &f.extents {
            claim(
                u64::from(s) * SECTOR,
                u64::from(n),
                Structure::File(f.path.clone()),
            );
        }
    }
    own.sort_by_key(|o| (o.start, o.end));
    let mut report = Report {
        size: img.len,
        mbr,
        gpt,
        apm,
        extensions,
        boot_info_tables,
        descriptors,
        catalog,
        files,
        joliet_dirs,
        structures: own,
        records: Vec::new(),
        signatures: Vec::new(),
    };
    report.records = crate::image::read::walk::records(&report, img);
    report.signatures = esp_signatures(&report, img);
    Ok(report)
}

/// EFI binaries larger than this are listed without their signatures (read whole, they would
/// cost that much memory), and no more than this is read for all of them together: a hostile
/// FAT can make every file of the ESP one long chain.
const MAX_SIGNED_BINARY: u64 = 256 << 20;

/// The Authenticode signatures of every PE image in the ESP; nothing without a readable ESP.
fn esp_signatures(r: &Report, img: &Img) -> Vec<(String, Result<Vec<Signature>, String>)> {
    let Some((start, end)) = r.range_of(&Structure::EspImage) else {
        return Vec::new();
    };
    let window = Window::new(img, start, end - start);
    let Ok(files) = crate::image::read::fat::files(&window) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut budget = MAX_SIGNED_BINARY;
    for f in files {
        let is_pe = f
            .runs
            .first()
            .is_some_and(|&(o, n)| n >= 2 && img.read_upto(start + o, 2).is_ok_and(|b| b == b"MZ"));
        if !is_pe {
            continue;
        }
        let read = if f.size > budget {
            Err(format!(
                "not read: {} bytes, past the {} MiB read for signatures",
                f.size,
                MAX_SIGNED_BINARY >> 20
            ))
        } else {
            budget -= f.size;
            f.bytes(&window)
                .map_err(|e| e.to_string())
                .and_then(|b| authenticode::signatures(&b).map_err(|e| e.to_string()))
        };
        out.push((f.path, read));
    }
    out
}

/// An Apple Partition Map: a driver descriptor map (`ER`) in block 0 and `PM` entries in
/// the blocks after it; `None` without one.
fn read_apm(
    img: &Img,
    claim: &mut impl FnMut(u64, u64, Structure),
) -> Result<Option<(u16, Vec<PartitionMapEntry>)>, ReadError> {
    if img.len < 8 {
        return Ok(None);
    }
    let ddm = DriverDescriptorMap::decode(&img.read(&Structure::Mbr, 0, 8)?).expect("8 bytes");
    let bs = ddm.block_size.get();
    if &ddm.signature.0 != apm::DDM_SIGNATURE || !matches!(bs, 512 | 2048) {
        return Ok(None);
    }
    let bs64 = u64::from(bs);
    let s = Structure::ApplePartitionMap;
    let mut entries = Vec::new();
    let mut count = 1u32;
    let mut k = 1u32;
    while k <= count.min(apm::MAX_ENTRIES) {
        let at = u64::from(k) * bs64;
        if !img.fits(at, PartitionMapEntry::LEN as u64) {
            break;
        }
        let e = PartitionMapEntry::decode(&img.read(&s, at, PartitionMapEntry::LEN as u64)?)
            .expect("136 bytes");
        if !e.has_signature() {
            break;
        }
        if k == 1 {
            count = e.map_entries.get();
        }
        entries.push(e);
        k += 1;
    }
    if entries.is_empty() {
        return Ok(None);
    }
    claim(bs64, entries.len() as u64 * bs64, s);
    Ok(Some((bs, entries)))
}

fn read_gpt(
    img: &Img,
    claim: &mut impl FnMut(u64, u64, Structure),
) -> Result<Option<GptRead>, ReadError> {
    if !img.fits(LBA, LBA) {
        return Ok(None);
    }
    let s = Structure::PrimaryGptHeader;
    let h = GptHeader::decode(&img.read(&s, LBA, LBA)?).expect("512 bytes");
    if !h.has_signature() {
        return Ok(None);
    }
    claim(LBA, LBA, s.clone());
    let n = u64::from(h.number_of_partition_entries.get());
    let esz = u64::from(h.size_of_partition_entry.get());
    if !(128..=4096).contains(&esz) || !esz.is_power_of_two() || n > 4096 {
        return Err(ReadError::Invalid {
            structure: s,
            offset: LBA,
            what: format!("{n} entries of {esz} bytes is not a GPT entry array"),
        });
    }
    let read_entries = |lba: u64, what: Structure| -> Result<Vec<u8>, ReadError> {
        let at = lba.saturating_mul(LBA);
        img.read(&what, at, n * esz)
    };
    let entries_lba = h.partition_entry_lba.get();
    let array = read_entries(entries_lba, Structure::PrimaryGptEntries)?;
    claim(entries_lba * LBA, n * esz, Structure::PrimaryGptEntries);
    let entries: Vec<(usize, GptEntry)> = array
        .chunks(esz as usize)
        .enumerate()
        .map(|(i, e)| (i + 1, GptEntry::decode(e).expect("at least 128 bytes")))
        .filter(|(_, e)| !e.partition_type_guid.is_nil())
        .collect();
    let alt = h.alternate_lba.get();
    let backup = match alt.checked_mul(LBA) {
        Some(at) if img.fits(at, LBA) && alt != 1 => {
            let b = GptHeader::decode(&img.read(&Structure::BackupGptHeader, at, LBA)?)
                .expect("512 bytes");
            b.has_signature().then_some((at, b))
        }
        _ => None,
    };
    let mut valid = h.computed_crc() == h.header_crc32.get()
        && crc32fast::hash(&array) == h.partition_entry_array_crc32.get();
    if let Some((at, b)) = &backup {
        claim(*at, LBA, Structure::BackupGptHeader);
        let blba = b.partition_entry_lba.get();
        let same = img.fits(blba.saturating_mul(LBA), n * esz)
            && read_entries(blba, Structure::BackupGptEntries)? == array;
        if same {
            claim(blba * LBA, n * esz, Structure::BackupGptEntries);
        }
        valid &= b.computed_crc() == b.header_crc32.get() && same && at + LBA == img.len;
    } else {
        valid = false;
    }
    Ok(Some(GptRead {
        primary: h,
        backup: backup.map(|(_, b)| b),
        entries,
        valid,
    }))
}

/// A record's Rock Ridge facts.
#[derive(Default)]
struct Rr {
    name: Option<String>,
    mode: u32,
    symlink: Option<String>,
    moved_to: Option<u32>,
    relocated: bool,
    zisofs: Option<(String, u64)>,
    /// `ER` entries: identifier, version and descriptor.
    extensions: Vec<String>,
}

/// Reads the SUSP and RRIP entries of a record, following `CE` continuation areas (each
/// inside one sector, each read once).
fn rock_ridge(
    img: &Img,
    su: &[u8],
    structure: &Structure,
    offset: u64,
    claim: &mut impl FnMut(u64, u64, Structure),
) -> Result<Rr, ReadError> {
    let mut rr = Rr::default();
    let mut name: Vec<u8> = Vec::new();
    let mut components = Vec::new();
    let mut area = su.to_vec();
    let mut area_at = offset;
    let mut seen: HashSet<u64> = HashSet::new();
    loop {
        let entries = Entry::all(&area).map_err(record_err(structure, area_at))?;
        let mut next = None;
        for e in entries {
            match e {
                Entry::Ce(ce) => next = Some(ce),
                Entry::Nm(_, bytes) => name.extend_from_slice(&bytes),
                Entry::Px(px, _) => rr.mode = px.mode.get(),
                Entry::Sl(_, comps) => components.extend(comps),
                Entry::Cl(block) => rr.moved_to = Some(block),
                Entry::Re => rr.relocated = true,
                Entry::Er(er) => rr.extensions.push(format!(
                    "{} (version {}): {}",
                    String::from_utf8_lossy(&er.identifier),
                    er.version,
                    String::from_utf8_lossy(&er.descriptor)
                )),
                Entry::Zf(z) => {
                    rr.zisofs = Some((
                        String::from_utf8_lossy(&z.algorithm.0).into_owned(),
                        z.uncompressed_size.get().into(),
                    ));
                }
                _ => {}
            }
        }
        let Some(ce) = next else { break };
        let (block, off, len) = (
            u64::from(ce.block.get()),
            u64::from(ce.offset.get()),
            u64::from(ce.length.get()),
        );
        let at = block * SECTOR + off;
        if off + len > SECTOR || seen.len() >= MAX_CONTINUATIONS || !seen.insert(at) {
            return Err(ReadError::Invalid {
                structure: structure.clone(),
                offset: area_at,
                what: format!(
                    "a CE entry points at {len} bytes at offset {off} of sector {block}: continuation areas must lie inside one sector and be read once"
                ),
            });
        }
        area = img.read(&Structure::ContinuationArea, at, len)?;
        claim(at, len, Structure::ContinuationArea);
        area_at = at;
    }
    if !name.is_empty() {
        rr.name = Some(String::from_utf8_lossy(&name).into_owned());
    }
    if !components.is_empty() {
        rr.symlink = Some(rockridge::symlink_target(&components));
    }
    Ok(rr)
}

/// Walks one tree from its root extent, depth-first in record order (an entry, then its
/// subtree), with an explicit stack; every directory extent is read once.
fn walk(
    img: &Img,
    root: (u32, u32),
    tree: Tree,
    files: &mut Vec<FileInfo>,
    path_bytes: &mut u64,
    claim: &mut impl FnMut(u64, u64, Structure),
) -> Result<(), ReadError> {
    // Sectors of the directory extents read so far: a record leading to any of them again
    // (the same extent, or one that overlaps it) is listed but not read, so a DAG of
    // directories, or extents staggered a sector apart, cannot multiply the work.
    let mut seen = Sectors::default();
    seen.insert(root);
    // One frame per directory on the current path: its entries and the next one to emit.
    let mut stack = vec![(read_dir(img, root, tree, "", path_bytes, claim)?, 0usize)];
    while let Some((entries, next)) = stack.last_mut() {
        let Some(f) = entries.get(*next).cloned() else {
            stack.pop();
            continue;
        };
        *next += 1;
        let sub = f.is_dir && seen.insert(f.extents[0]);
        let extent = f.extents[0];
        let prefix = f.path.clone();
        files.push(f);
        // Another record already led to this extent: it is read once.
        if sub {
            stack.push((read_dir(img, extent, tree, &prefix, path_bytes, claim)?, 0));
        }
    }
    Ok(())
}

/// Disjoint sector ranges, for [`walk`].
#[derive(Default)]
struct Sectors(std::collections::BTreeMap<u64, u64>);

impl Sectors {
    /// Adds the sectors of extent `(sector, size)` unless one of them is there already;
    /// returns whether it added them.
    fn insert(&mut self, (sector, size): (u32, u32)) -> bool {
        let start = u64::from(sector);
        let end = start + u64::from(size).div_ceil(SECTOR).max(1);
        // The range starting at or before `start`, and the first starting after it.
        let before = self.0.range(..=start).next_back();
        let after = self.0.range(start + 1..).next();
        if before.is_some_and(|(_, &e)| e > start) || after.is_some_and(|(&s, _)| s < end) {
            return false;
        }
        self.0.insert(start, end);
        true
    }
}

/// The largest directory extent read: about 500,000 entries, far more than any real image
/// puts in one directory (a 4 GiB claim would otherwise be read whole).
pub(crate) const MAX_DIRECTORY: u64 = 64 << 20;

/// How much of a directory extent is read at once (whole sectors: records never cross one).
const DIRECTORY_PIECE: u64 = 32 * SECTOR;

/// Every record of the directory extent at `at` of `size` bytes, with its offset in the
/// image, read a piece at a time (ECMA-119 9.1: a zero length byte pads to the sector's end).
pub(crate) fn for_each_record(
    img: &Img,
    structure: &Structure,
    at: u64,
    size: u64,
    each: &mut dyn FnMut(u64, DirectoryRecord) -> Result<(), ReadError>,
) -> Result<(), ReadError> {
    if !img.fits(at, size) {
        return Err(ReadError::PastEnd {
            structure: structure.clone(),
            offset: at,
            len: size,
            size: img.len,
        });
    }
    if size > MAX_DIRECTORY {
        return Err(ReadError::Invalid {
            structure: structure.clone(),
            offset: at,
            what: format!(
                "a directory extent of {size} bytes; isoproof reads directories of at most {} MiB",
                MAX_DIRECTORY >> 20
            ),
        });
    }
    let mut piece_at = 0u64;
    while piece_at < size {
        let n = DIRECTORY_PIECE.min(size - piece_at);
        let data = img.read(structure, at + piece_at, n)?;
        for found in crate::image::format::iso9660::directory_records(&data) {
            let (off, r) =
                found.map_err(|(off, e)| record_err(structure, at + piece_at + off as u64)(e))?;
            each(at + piece_at + off as u64, r)?;
        }
        piece_at += n;
    }
    Ok(())
}

/// The entries of one directory extent (multi-extent files joined).
fn read_dir(
    img: &Img,
    (sector, size): (u32, u32),
    tree: Tree,
    prefix: &str,
    path_bytes: &mut u64,
    claim: &mut impl FnMut(u64, u64, Structure),
) -> Result<Vec<FileInfo>, ReadError> {
    let shown = if prefix.is_empty() { "/" } else { prefix };
    let structure = Structure::Directory(tree, shown.to_string());
    let at = u64::from(sector) * SECTOR;
    let mut records = Vec::new();
    for_each_record(img, &structure, at, u64::from(size), &mut |rec_at, r| {
        records.push((rec_at, r));
        Ok(())
    })?;
    claim(at, u64::from(size), structure.clone());
    let mut children: Vec<FileInfo> = Vec::new();
    let mut pending: Option<FileInfo> = None;
    for (rec_at, r) in records {
        if r.dot_name().is_some() {
            continue;
        }
        let rr = if tree == Tree::Primary {
            rock_ridge(img, &r.system_use, &structure, rec_at, claim)?
        } else {
            Rr::default()
        };
        let name = match &rr.name {
            Some(n) => n.clone(),
            None => strip_version(&identifier_text(&r.identifier, tree)),
        };
        let path = format!("{prefix}/{name}");
        if path.len() > MAX_PATH {
            return Err(ReadError::Invalid {
                structure,
                offset: rec_at,
                what: format!("a path longer than {MAX_PATH} bytes"),
            });
        }
        *path_bytes += path.len() as u64;
        if *path_bytes > MAX_PATH_BYTES {
            return Err(ReadError::Invalid {
                structure,
                offset: rec_at,
                what: format!(
                    "the paths of the image's files pass {} MiB in all (long directory names over many entries?)",
                    MAX_PATH_BYTES >> 20
                ),
            });
        }
        let extent = (r.extent(), r.data_length());
        match pending.as_mut() {
            Some(p) if p.path == path => {
                p.extents.push(extent);
                p.size += u64::from(extent.1);
            }
            _ => {
                children.extend(pending.take());
                pending = Some(FileInfo {
                    path,
                    mode: rr.mode,
                    size: u64::from(extent.1),
                    extents: vec![extent],
                    symlink: rr.symlink,
                    is_dir: r.is_dir(),
                    moved_to: rr.moved_to,
                    relocated: rr.relocated,
                    zisofs: rr.zisofs,
                });
            }
        }
        if !r.continues() {
            children.extend(pending.take());
        }
    }
    children.extend(pending.take());
    Ok(children)
}

/// A file identifier as text: UCS-2 big-endian in the Joliet tree, bytes (d-characters)
/// in the primary one.
pub(crate) fn identifier_text(id: &[u8], tree: Tree) -> String {
    match tree {
        Tree::Joliet => crate::image::format::record::ucs2_be(id),
        Tree::Primary => String::from_utf8_lossy(id).into_owned(),
    }
}

/// An ISO 9660 identifier as a name: the version (`;1`) and a trailing dot removed.
fn strip_version(id: &str) -> String {
    id.split(';')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_extents_are_read_once_even_when_staggered() {
        let mut s = Sectors::default();
        assert!(s.insert((100, 4096)));
        // The same extent, one starting inside it, one ending inside it: all refused.
        assert!(!s.insert((100, 4096)));
        assert!(!s.insert((101, 2048)));
        assert!(!s.insert((99, 4096)));
        // Neighbours on either side are new.
        assert!(s.insert((102, 2048)));
        assert!(s.insert((98, 2048)));
        // An empty extent still takes its sector.
        assert!(s.insert((200, 0)));
        assert!(!s.insert((200, 0)));
    }
}
