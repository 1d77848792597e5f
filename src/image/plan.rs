//! The layout planner: from a source tree and options to a [`Plan`] — every extent's offset
//! and size and the bytes of every structure — before a single byte is written. The writer
//! then streams the plan in order (see `write`).
//!
//! Sector map (2048-byte sectors):
//! ```text
//! 0..16      system area (protective MBR + primary GPT when hybrid)
//! 16..       PVD, El Torito boot record, Joliet SVD, terminator
//!            path tables (primary L, M; Joliet L, M), boot catalog
//!            primary directories (breadth-first), Rock Ridge continuation areas,
//!            Joliet directories, BIOS boot image, file data (tree order), ESP image
//! end        backup GPT (hybrid), padded so the image is whole sectors
//! ```

use std::collections::HashMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::clock::Clock;
use super::eltorito::{self, BootEntry, BootRecordVolumeDescriptor};
use super::gpt::{self, Gpt, Guid, Partition};
use super::iso9660::{
    self, flags, DirectoryRecord, PathTableOrder, PathTableRecord, PrimaryVolumeDescriptor,
    SupplementaryVolumeDescriptor, Terminator, Volume, SECTOR,
};
use super::joliet;
use super::mbr;
use super::record::{BothEndian, Field, Record};
use super::rockridge as rr;
use super::susp;
use super::tree::{Entry, EntryKind, Source};
use super::{fat, ImageError};

/// The largest extent a directory record can describe, a whole number of sectors
/// (files this size and larger become multi-extent, ISO level 3).
pub const MAX_EXTENT: u64 = 0xFFFF_F800;

/// What to build.
#[derive(Clone, Debug)]
pub struct Options {
    /// Volume identifier (at most 32 characters).
    pub volume_id: String,
    /// Publisher identifier.
    pub publisher: String,
    /// Application identifier.
    pub application: String,
    /// BIOS El Torito no-emulation boot image (patched with a boot info table).
    pub bios_boot: Option<Vec<u8>>,
    /// Files of the ESP: (`EFI/BOOT/BOOTX64.EFI`, bytes). Empty: no UEFI boot entry.
    pub esp_files: Vec<(String, Vec<u8>)>,
    /// Write the MBR and GPT that make the image bootable from a USB stick or disk.
    pub hybrid: bool,
    /// Boot code for the MBR (at most 440 bytes).
    pub mbr_code: Vec<u8>,
    /// Where in `mbr_code` the BIOS boot image's 512-byte LBA goes (a 64-bit little-endian
    /// field), as xorriso patches isohybrid MBRs; `None` leaves the code as it is.
    pub mbr_lba_offset: Option<usize>,
    /// Write a Joliet tree.
    pub joliet: bool,
    /// Write Rock Ridge entries.
    pub rock_ridge: bool,
    /// The one clock of the image.
    pub clock: Clock,
}

impl Options {
    /// Rock Ridge and Joliet on, no boot, not hybrid, the default clock.
    pub fn new(volume_id: &str, clock: Clock) -> Options {
        Options {
            volume_id: volume_id.to_string(),
            publisher: String::new(),
            application: "ISOPROOF".into(),
            bios_boot: None,
            esp_files: Vec::new(),
            hybrid: false,
            mbr_code: Vec::new(),
            mbr_lba_offset: None,
            joliet: true,
            rock_ridge: true,
            clock,
        }
    }
}

/// Where an extent's bytes come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// Bytes built by the planner (structures, boot images, the ESP).
    Bytes(Vec<u8>),
    /// A source file, copied while writing.
    File {
        /// The file.
        source: PathBuf,
        /// Its size when planned.
        size: u64,
    },
}

impl Content {
    /// The byte length.
    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::File { size, .. } => *size,
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One placed extent.
#[derive(Clone, Debug, PartialEq)]
pub struct Extent {
    /// Byte offset in the image.
    pub offset: u64,
    /// What it is (for reports).
    pub what: String,
    /// Its bytes.
    pub content: Content,
}

/// The whole image, planned.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Extents in offset order, not overlapping.
    pub extents: Vec<Extent>,
    /// The image size in bytes (zeros fill every gap up to it).
    pub size: u64,
    /// The content digest GUIDs are derived from (metadata bytes and every file's path and
    /// size; file bytes are not read twice).
    pub digest: [u8; 32],
}

/// A directory record before encoding.
struct Rec<'a> {
    name: Vec<u8>,
    flags: u8,
    target: Target<'a>,
    inline: Vec<u8>,
    spill: Vec<Vec<u8>>,
    /// This record's continuation chunks: offset, length, and the `spill` entries they hold.
    chunks: Vec<(u64, usize, std::ops::Range<usize>)>,
    /// The directory a leading `CL` or `PL` entry points at, filled in when sectors are known.
    link: Option<&'a Entry>,
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Dir(usize),
    /// A file's `k`-th extent.
    Data(&'a Entry, usize),
    None,
}

struct Dir<'a> {
    entry: &'a Entry,
    /// The parent in the ISO 9660 hierarchy.
    parent: usize,
    /// The real parent of a relocated directory (its ".." carries `PL`).
    real_parent: Option<&'a Entry>,
    name: Vec<u8>,
    recs: Vec<Rec<'a>>,
    size: u64,
    sector: u64,
    /// Directories are placed on disk by group, highest first (see [`place_dirs`]).
    group: usize,
}

/// ECMA-119 6.8.2.1: a hierarchy has at most eight levels, the root being the first.
const MAX_LEVELS: usize = 8;

/// The Rock Ridge relocation directory (RRIP 4.1.5), as mkisofs names it. It stands in the
/// root, marked `RE` like the directories it holds, so Rock Ridge readers hide it.
static RR_MOVED: Entry = Entry {
    name: String::new(),
    perm: 0o755,
    kind: EntryKind::Dir(Vec::new()),
};
const RR_MOVED_NAME: &str = "rr_moved";

/// One directory that moves to `rr_moved`.
struct Relocation<'a> {
    dir: &'a Entry,
    real_parent: &'a Entry,
    /// How many relocated directories it sits in.
    nesting: usize,
}

/// The directories that would sit deeper than ECMA-119 allows, in tree order. Each moves
/// to `rr_moved` (level 2), so its subtree counts from level 3 and may move again.
fn relocations(root: &Entry) -> Vec<Relocation<'_>> {
    fn walk<'a>(
        dir: &'a Entry,
        level: usize,
        nesting: usize,
        out: &mut Vec<(&'a Entry, &'a Entry, usize)>,
    ) {
        for c in dir.children() {
            if matches!(c.kind, EntryKind::Dir(_)) {
                if level == MAX_LEVELS {
                    out.push((c, dir, nesting));
                    walk(c, 3, nesting + 1, out);
                } else {
                    walk(c, level + 1, nesting, out);
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(root, 1, 0, &mut found);
    found
        .into_iter()
        .map(|(dir, real_parent, nesting)| Relocation {
            dir,
            real_parent,
            nesting,
        })
        .collect()
}

fn rec_len(r: &Rec<'_>) -> usize {
    DirectoryRecord::len_for(
        r.name.len(),
        r.inline.len() + if r.spill.is_empty() { 0 } else { susp::CE_LEN },
    )
}

/// Packs records into sectors (a record never crosses a sector boundary): the extent size.
fn dir_size(recs: &[Rec<'_>]) -> u64 {
    let mut used = 0u64;
    for r in recs {
        let l = rec_len(r) as u64;
        if used % SECTOR + l > SECTOR {
            used = used.next_multiple_of(SECTOR);
        }
        used += l;
    }
    used.next_multiple_of(SECTOR).max(SECTOR)
}

fn extents_of(size: u64) -> usize {
    if size == 0 {
        1
    } else {
        size.div_ceil(MAX_EXTENT) as usize
    }
}

fn susp(e: &Entry, name: Option<&str>, nlink: u32, clock: Clock) -> Vec<Vec<u8>> {
    let mut v = vec![rr::px(e.mode(), nlink), rr::tf(clock.dir_date())];
    if let Some(n) = name {
        v.extend(rr::nm(n));
    }
    if let EntryKind::Symlink(t) = &e.kind {
        v.extend(rr::sl(t));
    }
    v
}

fn nlink(e: &Entry) -> u32 {
    match &e.kind {
        EntryKind::Dir(c) => {
            2 + c
                .iter()
                .filter(|x| matches!(x.kind, EntryKind::Dir(_)))
                .count() as u32
        }
        _ => 1,
    }
}

/// Builds one tree's directories breadth-first (primary, or Joliet when `joliet`), which
/// is also path-table order. With Rock Ridge, the primary tree relocates directories
/// deeper than eight levels to `rr_moved`, leaving a `CL` placeholder behind.
fn build_dirs<'a>(root: &'a Entry, opts: &Options, joliet_tree: bool) -> Vec<Dir<'a>> {
    let rr_on = opts.rock_ridge && !joliet_tree;
    let clock = opts.clock;
    let moved = if rr_on { relocations(root) } else { Vec::new() };
    let relocated: HashMap<*const Entry, &Relocation> =
        moved.iter().map(|m| (m.dir as *const Entry, m)).collect();
    let links = |e: &Entry| {
        if std::ptr::eq(e, &RR_MOVED) {
            2 + moved.len() as u32
        } else {
            nlink(e)
        }
    };
    let mut dirs = vec![Dir {
        entry: root,
        parent: 0,
        real_parent: None,
        name: vec![0],
        recs: Vec::new(),
        size: 0,
        sector: 0,
        group: usize::MAX,
    }];
    let mut i = 0;
    while i < dirs.len() {
        let entry = dirs[i].entry;
        let in_rr_moved = std::ptr::eq(entry, &RR_MOVED);
        let kids: Vec<&Entry> = if in_rr_moved {
            moved.iter().map(|m| m.dir).collect()
        } else {
            entry.children().iter().collect()
        };
        // Names, assigned in source-name order so disambiguation is deterministic.
        let mut named: Vec<(Vec<u8>, &Entry)> = Vec::new();
        if joliet_tree {
            // Names Joliet holds unchanged are placed first, so a mapped name ("a?b" → "a_b")
            // never takes the place of a real one ("a_b").
            let mut taken: Vec<Vec<u16>> = Vec::new();
            for exact in [true, false] {
                for c in &kids {
                    let is_dir = matches!(c.kind, EntryKind::Dir(_));
                    if joliet::holds(&c.name) != exact {
                        continue;
                    }
                    let n = joliet::joliet_name(&c.name, is_dir, &|u| {
                        taken.iter().any(|t| same_joliet_name(t, u))
                    });
                    taken.push(n.clone());
                    named.push((joliet::to_bytes(&n), c));
                }
            }
            named.sort_by(|a, b| a.0.cmp(&b.0));
        } else {
            let mut taken: Vec<String> = Vec::new();
            let extra = (i == 0 && !moved.is_empty()).then_some((RR_MOVED_NAME, &RR_MOVED));
            let all = kids.iter().map(|c| (c.name.as_str(), *c)).chain(extra);
            for (src_name, c) in all {
                let is_dir = matches!(c.kind, EntryKind::Dir(_));
                let n = iso9660::primary_name(src_name, is_dir, &|s| taken.iter().any(|t| t == s));
                taken.push(n.clone());
                named.push((n.into_bytes(), c));
            }
            named.sort_by(|a, b| iso9660::record_order(&a.0, &b.0));
        }
        let mut recs = Vec::new();
        // "." and ".."; a relocated directory's ".." describes its real parent.
        let parent_entry = dirs[i].real_parent.unwrap_or(dirs[dirs[i].parent].entry);
        for (k, e) in [(0u8, entry), (1u8, parent_entry)] {
            let mut entries = Vec::new();
            let mut link = None;
            if rr_on {
                if k == 0 && i == 0 {
                    entries.push(susp::sp());
                }
                if k == 1 && dirs[i].real_parent.is_some() {
                    entries.push(rr::pl(0));
                    link = Some(e);
                }
                entries.extend(susp(e, None, links(e), clock));
                if k == 0 && i == 0 {
                    entries.push(rr::er());
                }
            }
            let room = 255 - DirectoryRecord::len_for(1, 0);
            let s = susp::split(entries, room);
            let target = if k == 0 {
                Target::Dir(i)
            } else {
                Target::Dir(dirs[i].parent)
            };
            recs.push(Rec {
                name: vec![k],
                flags: flags::DIRECTORY,
                target,
                inline: s.inline,
                spill: s.spill,
                chunks: Vec::new(),
                link,
            });
        }
        for (name, c) in named {
            let is_dir = matches!(c.kind, EntryKind::Dir(_));
            // A deep directory leaves a placeholder (a file, in ISO 9660 terms) behind.
            let placeholder = !in_rr_moved && relocated.contains_key(&(c as *const Entry));
            let n_ext = match &c.kind {
                EntryKind::File { size, .. } => extents_of(*size),
                _ => 1,
            };
            let target_dir = if is_dir && !placeholder {
                dirs.push(Dir {
                    entry: c,
                    parent: i,
                    real_parent: relocated
                        .get(&(c as *const Entry))
                        .filter(|_| in_rr_moved)
                        .map(|m| m.real_parent),
                    name: name.clone(),
                    recs: Vec::new(),
                    size: 0,
                    sector: 0,
                    group: match relocated.get(&(c as *const Entry)) {
                        _ if std::ptr::eq(c, &RR_MOVED) => usize::MAX,
                        Some(m) if in_rr_moved => m.nesting + 1,
                        _ if i == 0 => 0,
                        _ => dirs[i].group,
                    },
                });
                Some(dirs.len() - 1)
            } else {
                None
            };
            for k in 0..n_ext {
                let mut entries = Vec::new();
                let mut link = None;
                if rr_on {
                    if placeholder {
                        entries.push(rr::cl(0));
                        link = Some(c);
                    }
                    let rr_name = if std::ptr::eq(c, &RR_MOVED) {
                        RR_MOVED_NAME
                    } else {
                        &c.name
                    };
                    entries.extend(susp(c, Some(rr_name), links(c), clock));
                    if in_rr_moved || std::ptr::eq(c, &RR_MOVED) {
                        entries.push(rr::re());
                    }
                }
                let room = 255 - DirectoryRecord::len_for(name.len(), 0);
                let s = susp::split(entries, room);
                let mut fl = if target_dir.is_some() {
                    flags::DIRECTORY
                } else {
                    0
                };
                if k + 1 < n_ext {
                    fl |= flags::MULTI_EXTENT;
                }
                let target = match (target_dir, &c.kind) {
                    (Some(d), _) => Target::Dir(d),
                    (None, EntryKind::File { .. }) => Target::Data(c, k),
                    _ => Target::None,
                };
                recs.push(Rec {
                    name: name.clone(),
                    flags: fl,
                    target,
                    inline: s.inline,
                    spill: s.spill,
                    chunks: Vec::new(),
                    link,
                });
            }
        }
        dirs[i].size = dir_size(&recs);
        dirs[i].recs = recs;
        i += 1;
    }
    dirs
}

/// Gives directories their sectors. Path tables list them breadth-first, but on disk the
/// root and `rr_moved` come first, then the relocated subtrees, most deeply nested first,
/// then the rest. libarchive reads directories in sector order and connects a `CL`
/// placeholder when it meets it; a nested one connects only while its outer relocation is
/// still unconnected, so inner placeholders must be met first.
fn place_dirs(dirs: &mut [Dir<'_>], next: &mut u64) {
    let mut order: Vec<usize> = (0..dirs.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(dirs[k].group));
    for k in order {
        dirs[k].sector = *next;
        *next += dirs[k].size / SECTOR;
    }
}

/// Joliet readers (Windows) compare names case-insensitively, so collisions do too.
fn same_joliet_name(a: &[u16], b: &[u16]) -> bool {
    let low = |u: u16| {
        if (0x41..=0x5A).contains(&u) {
            u + 0x20
        } else {
            u
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| low(*x) == low(*y))
}

fn path_table(dirs: &[Dir<'_>], order: PathTableOrder) -> Vec<u8> {
    let mut out = Vec::new();
    for d in dirs {
        PathTableRecord {
            extent: d.sector as u32,
            parent: (d.parent + 1) as u16,
            identifier: d.name.clone(),
        }
        .encode(order, &mut out);
    }
    out
}

fn path_table_len(dirs: &[Dir<'_>]) -> u64 {
    dirs.iter()
        .map(|d| PathTableRecord::len_for(d.name.len()) as u64)
        .sum()
}

/// Encodes a directory's records, sector-packed.
fn encode_dir(
    d: &Dir<'_>,
    dirs: &[Dir<'_>],
    data: &HashMap<*const Entry, (u64, u64)>,
    clock: Clock,
) -> Result<Vec<u8>, ImageError> {
    let mut out: Vec<u8> = Vec::with_capacity(d.size as usize);
    for r in &d.recs {
        let l = rec_len(r);
        if out.len() as u64 % SECTOR + l as u64 > SECTOR {
            out.resize((out.len() as u64).next_multiple_of(SECTOR) as usize, 0);
        }
        let (extent, size) = match r.target {
            Target::Dir(i) => (dirs[i].sector as u32, dirs[i].size as u32),
            Target::Data(e, k) => {
                let (sector, size) = data[&(e as *const Entry)];
                let off = k as u64 * MAX_EXTENT;
                let len = size.saturating_sub(off).min(MAX_EXTENT);
                ((sector + off / SECTOR) as u32, len as u32)
            }
            Target::None => (0, 0),
        };
        let mut su = r.inline.clone();
        if let Some(e) = r.link {
            // The leading CL or PL entry gets the sector of the directory it points at.
            let j = dirs
                .iter()
                .position(|d| std::ptr::eq(d.entry, e))
                .expect("a relocation link points at a planned directory");
            BothEndian::new(dirs[j].sector as u32).write(&mut su[rr::LINK_BLOCK]);
        }
        if let Some(&(off, len, _)) = r.chunks.first() {
            su.extend_from_slice(&susp::ce(
                (off / SECTOR) as u32,
                (off % SECTOR) as u32,
                len as u32,
            ));
        }
        DirectoryRecord::new(extent, size, clock.dir_date(), r.flags, r.name.clone(), su)
            .map_err(|e| ImageError::Input(e.to_string()))?
            .encode(&mut out);
    }
    out.resize(d.size as usize, 0);
    Ok(out)
}

/// Plans the image of `root`.
pub fn plan(root: &Entry, opts: &Options) -> Result<Plan, ImageError> {
    check_volume_id(&opts.volume_id)?;
    let clock = opts.clock;
    let mut primary = build_dirs(root, opts, false);
    let mut jdirs = if opts.joliet {
        build_dirs(root, opts, true)
    } else {
        Vec::new()
    };
    let boot = opts.bios_boot.is_some() || !opts.esp_files.is_empty();

    // Start calculating sectors of everything.
    let mut next = 16u64;
    let pvd = next;
    next += 1;
    let boot_record = boot.then(|| {
        next += 1;
        next - 1
    });
    let svd = opts.joliet.then(|| {
        next += 1;
        next - 1
    });
    let term = next;
    next += 1;
    let reserve = |bytes: u64, next: &mut u64| {
        let s = *next;
        *next += bytes.div_ceil(SECTOR);
        s
    };
    let pt_len = path_table_len(&primary);
    let pt_l = reserve(pt_len, &mut next);
    let pt_m = reserve(pt_len, &mut next);
    let jpt_len = path_table_len(&jdirs);
    let (jpt_l, jpt_m) = if opts.joliet {
        (reserve(jpt_len, &mut next), reserve(jpt_len, &mut next))
    } else {
        (0, 0)
    };
    let catalog = boot.then(|| reserve(SECTOR, &mut next));
    place_dirs(&mut primary, &mut next);
    // Continuation areas: chunks never cross a sector boundary.
    let pool_start = next * SECTOR;
    let mut pool = pool_start;
    for d in &mut primary {
        for r in &mut d.recs {
            if r.spill.is_empty() {
                continue;
            }
            let groups = susp::chunks(&r.spill);
            let last = groups.len() - 1;
            for (gi, g) in groups.into_iter().enumerate() {
                let len = susp::chunk_len(&r.spill, &g, gi == last);
                if pool % SECTOR + len as u64 > SECTOR {
                    pool = pool.next_multiple_of(SECTOR);
                }
                r.chunks.push((pool, len, g));
                pool += len as u64;
            }
        }
    }
    next = pool.div_ceil(SECTOR);
    place_dirs(&mut jdirs, &mut next);
    let bios = opts.bios_boot.as_ref().map(|img| {
        let s = next;
        next += (img.len() as u64).div_ceil(SECTOR).max(1);
        s
    });
    // File data in tree order (primary breadth-first order, records order).
    let mut data: HashMap<*const Entry, (u64, u64)> = HashMap::new();
    let mut files: Vec<(u64, &Entry)> = Vec::new();
    let data_start = next;
    for d in &primary {
        for r in &d.recs {
            if let Target::Data(entry, 0) = r.target {
                let EntryKind::File { size, .. } = &entry.kind else {
                    unreachable!()
                };
                let sector = if *size == 0 { data_start } else { next };
                data.insert(entry as *const Entry, (sector, *size));
                files.push((sector, entry));
                next += size.div_ceil(SECTOR);
            }
        }
    }
    let esp = if opts.esp_files.is_empty() {
        None
    } else {
        let (img, _) = fat::build(&opts.esp_files, "EFIBOOT", clock)
            .map_err(|e| ImageError::Input(e.to_string()))?;
        let s = next;
        next += (img.len() as u64).div_ceil(SECTOR);
        Some((s, img))
    };
    let volume_sectors = next;
    if volume_sectors > u64::from(u32::MAX) {
        return Err(ImageError::Input(
            "the image is larger than ISO 9660's 8 TiB".into(),
        ));
    }

    // Start encoding.
    let mut extents: Vec<Extent> = Vec::new();
    let mut push = |sector: u64, what: &str, bytes: Vec<u8>| {
        extents.push(Extent {
            offset: sector * SECTOR,
            what: what.to_string(),
            content: Content::Bytes(bytes),
        });
    };
    let vd = Volume {
        system_id: "LINUX".into(),
        volume_id: opts.volume_id.clone(),
        space_size: volume_sectors as u32,
        path_table_size: pt_len as u32,
        path_table_l: pt_l as u32,
        path_table_m: pt_m as u32,
        root: (primary[0].sector as u32, primary[0].size as u32),
        publisher: opts.publisher.clone(),
        preparer: "ISOPROOF".into(),
        application: opts.application.clone(),
        date: clock.volume_date(),
        root_date: clock.dir_date(),
    };
    let bad_id = |e: iso9660::IdentifierError| ImageError::Input(e.to_string());
    push(
        pvd,
        "primary volume descriptor",
        PrimaryVolumeDescriptor::new(&vd).map_err(bad_id)?.encode(),
    );
    if let Some(s) = boot_record {
        push(
            s,
            "El Torito boot record",
            BootRecordVolumeDescriptor::new(catalog.expect("boot") as u32).encode(),
        );
    }
    if let Some(s) = svd {
        let j = Volume {
            path_table_size: jpt_len as u32,
            path_table_l: jpt_l as u32,
            path_table_m: jpt_m as u32,
            root: (jdirs[0].sector as u32, jdirs[0].size as u32),
            volume_id: opts.volume_id.chars().take(16).collect(),
            ..vd.clone()
        };
        push(
            s,
            "Joliet volume descriptor",
            SupplementaryVolumeDescriptor::joliet(&j)
                .map_err(bad_id)?
                .encode(),
        );
    }
    push(
        term,
        "volume descriptor set terminator",
        Terminator::new().encode(),
    );
    push(
        pt_l,
        "path table (L)",
        path_table(&primary, PathTableOrder::L),
    );
    push(
        pt_m,
        "path table (M)",
        path_table(&primary, PathTableOrder::M),
    );
    if opts.joliet {
        push(
            jpt_l,
            "Joliet path table (L)",
            path_table(&jdirs, PathTableOrder::L),
        );
        push(
            jpt_m,
            "Joliet path table (M)",
            path_table(&jdirs, PathTableOrder::M),
        );
    }
    if let Some(s) = catalog {
        let mut entries = Vec::new();
        if let (Some(b), Some(img)) = (bios, &opts.bios_boot) {
            entries.push(BootEntry {
                platform: eltorito::PLATFORM_X86,
                sector: b as u32,
                load_count: (img.len().div_ceil(512)).clamp(1, 4) as u16,
            });
        }
        if let Some((e, img)) = &esp {
            let count = img.len().div_ceil(512);
            entries.push(BootEntry {
                platform: eltorito::PLATFORM_EFI,
                sector: *e as u32,
                load_count: if count <= 0xFFFF { count as u16 } else { 0 },
            });
        }
        push(s, "El Torito boot catalog", eltorito::catalog(&entries));
    }
    for d in &primary {
        push(
            d.sector,
            "directory",
            encode_dir(d, &primary, &data, clock)?,
        );
    }
    let mut pool_bytes = vec![0u8; (pool - pool_start) as usize];
    for d in &primary {
        for r in &d.recs {
            for (gi, (off, _, g)) in r.chunks.iter().enumerate() {
                let mut b: Vec<u8> = r.spill[g.clone()].concat();
                if let Some(&(noff, nlen, _)) = r.chunks.get(gi + 1) {
                    b.extend_from_slice(&susp::ce(
                        (noff / SECTOR) as u32,
                        (noff % SECTOR) as u32,
                        nlen as u32,
                    ));
                }
                let at = (off - pool_start) as usize;
                pool_bytes[at..at + b.len()].copy_from_slice(&b);
            }
        }
    }
    if !pool_bytes.is_empty() {
        push(
            pool_start / SECTOR,
            "Rock Ridge continuation areas",
            pool_bytes,
        );
    }
    for d in &jdirs {
        push(
            d.sector,
            "Joliet directory",
            encode_dir(d, &jdirs, &data, clock)?,
        );
    }
    if let (Some(s), Some(img)) = (bios, &opts.bios_boot) {
        let mut img = img.clone();
        eltorito::patch_boot_info(&mut img, pvd as u32, s as u32);
        push(s, "BIOS boot image", img);
    }
    // The digest covers every structure built so far and each file's place and size.
    let mut h = Sha256::new();
    for e in &extents {
        if let Content::Bytes(b) = &e.content {
            h.update(e.offset.to_le_bytes());
            h.update(b);
        }
    }
    for (sector, e) in &files {
        if let EntryKind::File { source, size } = &e.kind {
            h.update(sector.to_le_bytes());
            h.update(size.to_le_bytes());
            if *size == 0 {
                // No bytes to place (its record points at the data area with size 0).
                continue;
            }
            let content = match source {
                Source::Path(p) => Content::File {
                    source: p.clone(),
                    size: *size,
                },
                Source::Bytes(b) => {
                    // Generated bytes are few and already in memory: the digest covers them.
                    h.update(b);
                    Content::Bytes(b.to_vec())
                }
            };
            extents.push(Extent {
                offset: sector * SECTOR,
                what: format!("file {}", e.name),
                content,
            });
        }
    }
    // Where the ESP is and its byte length; the image itself moves into its extent.
    let esp = esp.map(|(s, img)| {
        h.update(&img);
        let len = img.len() as u64;
        extents.push(Extent {
            offset: s * SECTOR,
            what: "ESP (FAT)".into(),
            content: Content::Bytes(img),
        });
        (s, len)
    });
    let digest: [u8; 32] = h.finalize().into();
    let mut size = volume_sectors * SECTOR;
    if opts.hybrid {
        // Backup GPT at the very end, after padding to whole cylinders of the 64-head,
        // 32-sector geometry (1 MiB), as isohybrid and xorriso (`-partition_cyl_align`) pad:
        // a BIOS that derives CHS geometry from the size (SeaBIOS) cannot read the boot
        // sector of a disk smaller than one cylinder.
        let tail_sectors = 1 + gpt::ENTRY_SECTORS;
        let disk_sectors =
            (volume_sectors * 4 + tail_sectors).next_multiple_of(gpt::CYLINDER_SECTORS);
        let iso_last = esp.map_or(volume_sectors * 4, |(s, _)| s * 4) - 1;
        let mut partitions = vec![Partition {
            type_guid: gpt::BASIC_DATA_TYPE,
            guid: Guid::derived(&digest, "partition 1"),
            first: 64,
            last: iso_last,
            name: "ISO9660".into(),
        }];
        if let Some((s, len)) = esp {
            partitions.push(Partition {
                type_guid: gpt::ESP_TYPE,
                guid: Guid::derived(&digest, "partition 2"),
                first: s * 4,
                last: s * 4 + len.div_ceil(512) - 1,
                name: "EFI system partition".into(),
            });
        }
        let gpt = Gpt {
            disk_sectors,
            disk_guid: Guid::derived(&digest, "disk"),
            mbr_signature: u32::from_le_bytes(digest[..4].try_into().expect("4 bytes")),
            partitions,
        };
        size = disk_sectors * mbr::LBA;
        let entries = gpt.entries();
        let entries_len = entries.len() as u64;
        let mut put = |offset: u64, what: &str, bytes: Vec<u8>| {
            extents.push(Extent {
                offset,
                what: what.into(),
                content: Content::Bytes(bytes),
            })
        };
        put(0, "MBR", gpt.mbr(&mbr_code(opts, bios)?).encode());
        put(mbr::LBA, "primary GPT header", gpt.primary_header());
        put(2 * mbr::LBA, "primary GPT entries", entries.clone());
        put(size - mbr::LBA - entries_len, "backup GPT entries", entries);
        put(size - mbr::LBA, "backup GPT header", gpt.backup_header());
    }
    extents.sort_by_key(|e| e.offset);
    debug_assert!(extents
        .windows(2)
        .all(|w| w[0].offset + w[0].content.len() <= w[1].offset));
    Ok(Plan {
        extents,
        size,
        digest,
    })
}

/// The MBR boot code with the BIOS boot image's 512-byte LBA patched in (ISO sector × 4).
fn mbr_code(opts: &Options, bios: Option<u64>) -> Result<Vec<u8>, ImageError> {
    let mut code = opts.mbr_code.clone();
    if code.len() > mbr::CODE_LEN {
        return Err(ImageError::Input(format!(
            "MBR boot code is {} bytes; at most {} fit before the disk signature",
            code.len(),
            mbr::CODE_LEN
        )));
    }
    if let Some(at) = opts.mbr_lba_offset {
        let sector = bios.ok_or_else(|| {
            ImageError::Input("MBR boot code needs a BIOS boot image to load".into())
        })?;
        let field = code.get_mut(at..at + 8).ok_or_else(|| {
            ImageError::Input(format!("MBR boot code has no LBA field at byte {at}"))
        })?;
        field.copy_from_slice(&(sector * (SECTOR / mbr::LBA)).to_le_bytes());
    }
    Ok(code)
}

/// ECMA-119 8.4.6: the volume identifier is at most 32 d-characters; we also allow
/// lowercase and `-`, as NixOS labels (`nixos-minimal-24.05-x86_64`) use them and every
/// reader accepts them.
pub fn check_volume_id(id: &str) -> Result<(), ImageError> {
    if id.is_empty()
        || id.len() > 32
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(ImageError::Input(format!(
            "volume ID {id:?} must be 1 to 32 characters from A-Z, a-z, 0-9, '_', '-' and '.'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str, kids: Vec<Entry>) -> Entry {
        Entry {
            name: name.into(),
            perm: 0o755,
            kind: EntryKind::Dir(kids),
        }
    }

    /// A chain of `n` directories d1/d2/…/dn.
    fn chain(n: usize) -> Entry {
        (1..=n)
            .rev()
            .fold(None, |inner: Option<Entry>, k| {
                Some(dir(&format!("d{k}"), inner.into_iter().collect()))
            })
            .unwrap()
    }

    #[test]
    fn relocation_starts_at_level_nine_and_nests() {
        // root = level 1, so d1…d7 are levels 2…8: nothing moves.
        let root = dir("", vec![chain(7)]);
        assert!(relocations(&root).is_empty());
        // d8 would be level 9: it moves, and its subtree counts from level 3 (d8 … d13 are
        // levels 3…8), so d14 moves again, from inside d8.
        let root = dir("", vec![chain(14)]);
        let r = relocations(&root);
        let names: Vec<(&str, &str, usize)> = r
            .iter()
            .map(|m| (m.dir.name.as_str(), m.real_parent.name.as_str(), m.nesting))
            .collect();
        assert_eq!(names, [("d8", "d7", 0), ("d14", "d13", 1)]);
    }

    #[test]
    fn directories_are_placed_inner_relocations_first() {
        let root = dir("", vec![chain(20)]);
        let dirs = build_dirs(&root, &Options::new("T", Clock::at(0)), false);
        let mut placed: Vec<&Dir<'_>> = dirs.iter().collect();
        placed.sort_by_key(|d| std::cmp::Reverse(d.group));
        let order: Vec<String> = placed
            .iter()
            .map(|d| String::from_utf8_lossy(&d.name).into_owned())
            .collect();
        // Root and rr_moved, then d20's subtree (moved twice over), d14's, d8's, the rest.
        assert_eq!(order[..2], ["\0", "RR_MOVED"]);
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("D20") < pos("D14") && pos("D14") < pos("D8") && pos("D8") < pos("D1"));
        assert!(pos("D19") < pos("D8") && pos("D13") < pos("D7"));
    }
}
