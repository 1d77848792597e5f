//! The layout planner: from a source tree and options to a [`Plan`] — every extent's offset,
//! size and structure, and the bytes of every structure — before a single byte is written.
//! The writer then streams the plan in order (see `write`). `dirs.rs` builds the directory
//! trees (with Rock Ridge relocation), `encode.rs` encodes them; this module lays out sectors.
//!
//! Sector map (2048-byte sectors):
//! ```text
//! 0..16      system area (MBR + primary GPT when hybrid)
//! 16..       PVD, El Torito boot record, Joliet SVD, terminator
//!            path tables (primary L, M; Joliet L, M), boot catalog
//!            primary directories (breadth-first), Rock Ridge continuation areas,
//!            Joliet directories, BIOS boot image, file data (tree order), ESP image
//! end        backup GPT (hybrid), padded so the image is whole sectors
//! ```

mod dirs;
mod encode;

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use crate::image::clock::Clock;
use crate::image::format::eltorito::{self, BootEntry, BootRecordVolumeDescriptor};
use crate::image::format::gpt::{self, Gpt, Guid, Partition};
use crate::image::format::iso9660::{
    IdentifierError, PathTableOrder, PrimaryVolumeDescriptor, RecordTooLong,
    SupplementaryVolumeDescriptor, Terminator, Volume, SECTOR,
};
use crate::image::format::mbr;
use crate::image::format::record::{DChars, Record};
use crate::image::format::structure::{Order, Structure, Tree};
use crate::image::write::fat::{self, FatError};
use crate::image::write::tree::{Entry, EntryKind, Source};
use crate::input::Stamp;
use dirs::Nodes;

/// Why an image cannot be laid out.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The volume ID is empty, too long or has characters readers do not take.
    #[error("volume ID {0:?} must be 1 to 32 characters from A-Z, a-z, 0-9, '_', '-' and '.'")]
    VolumeId(String),
    /// A volume descriptor's identifier does not fit its field.
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
    /// A directory record would be longer than 255 bytes.
    #[error(transparent)]
    Record(#[from] RecordTooLong),
    /// The ESP cannot be built.
    #[error(transparent)]
    Esp(#[from] FatError),
    /// More sectors than a 32-bit block number reaches.
    #[error("the image would be larger than ISO 9660's 8 TiB")]
    TooLarge,
    /// MBR boot code longer than its room.
    #[error("MBR boot code is {0} bytes; at most 440 fit before the disk signature")]
    MbrTooLong(usize),
    /// MBR boot code that loads a BIOS image, without one.
    #[error("MBR boot code needs a BIOS boot image to load")]
    MbrWithoutBios,
    /// The LBA field offset lies outside the MBR boot code.
    #[error("MBR boot code has no LBA field at byte {0}")]
    NoLbaField(usize),
    /// A rule of the planner itself broke.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

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
    /// Or: the file of the tree that is the BIOS boot image (`/isolinux/isolinux.bin`),
    /// patched with the boot info table in place; its bytes must be in memory.
    pub bios_boot_file: Option<String>,
    /// Files of the tree whose bytes stay out of the digest (only their place and size count):
    /// a manifest of the image's own structures, whose bytes the digest (and so the GPT's
    /// GUIDs) cannot depend on.
    pub digest_skip: Vec<String>,
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
            bios_boot_file: None,
            digest_skip: Vec::new(),
            esp_files: Vec::new(),
            hybrid: false,
            mbr_code: Vec::new(),
            mbr_lba_offset: None,
            joliet: true,
            rock_ridge: true,
            clock,
        }
    }

    /// Boots from the files a user names: `bios` as the El Torito BIOS image, `efi` as the
    /// ESP's [`EFI_BOOT_PATH`]. Each must be a regular file of at most [`MAX_BOOT_FILE`]
    /// bytes (`/dev/zero` would read for ever).
    pub fn boot_files(
        &mut self,
        bios: Option<&std::path::Path>,
        efi: Option<&std::path::Path>,
    ) -> Result<(), crate::input::InputError> {
        let read = |p: &std::path::Path| crate::input::read_regular(p, MAX_BOOT_FILE);
        self.bios_boot = bios.map(read).transpose()?;
        if let Some(e) = efi {
            self.esp_files.push((EFI_BOOT_PATH.into(), read(e)?));
        }
        Ok(())
    }
}

/// Where UEFI firmware looks for the boot program of removable media (UEFI 2.10, 3.5.1.1).
pub const EFI_BOOT_PATH: &str = "EFI/BOOT/BOOTX64.EFI";

/// The most bytes a boot file named by a user may have.
pub const MAX_BOOT_FILE: u64 = 64 << 20;

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
        /// Its stamp when planned; the writer refuses a file whose stamp differs.
        stamp: Stamp,
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
    /// The structure it is.
    pub what: Structure,
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

/// Plans the image of `root`.
pub(crate) fn plan(root: &Entry, opts: &Options) -> Result<Plan, PlanError> {
    check_volume_id(&opts.volume_id)?;
    let clock = opts.clock;
    let nodes = Nodes::new(root);
    let moved = if opts.rock_ridge {
        dirs::relocations(&nodes)
    } else {
        Vec::new()
    };
    let mut primary = dirs::build(&nodes, &moved, opts, Tree::Primary);
    let mut joliet = if opts.joliet {
        dirs::build(&nodes, &[], opts, Tree::Joliet)
    } else {
        Vec::new()
    };
    let boot =
        opts.bios_boot.is_some() || opts.bios_boot_file.is_some() || !opts.esp_files.is_empty();

    // Start calculating sectors of everything.
    let mut next = crate::image::format::iso9660::FIRST_DESCRIPTOR;
    let mut take = |sectors: u64| {
        let s = next;
        next += sectors;
        s
    };
    let pvd = take(1);
    let boot_record = boot.then(|| take(1));
    let svd = opts.joliet.then(|| take(1));
    let term = take(1);
    let pt_len = encode::path_table_len(&primary);
    let pt_l = take(pt_len.div_ceil(SECTOR));
    let pt_m = take(pt_len.div_ceil(SECTOR));
    let jpt_len = encode::path_table_len(&joliet);
    let (jpt_l, jpt_m) = if opts.joliet {
        (
            take(jpt_len.div_ceil(SECTOR)),
            take(jpt_len.div_ceil(SECTOR)),
        )
    } else {
        (0, 0)
    };
    let catalog = boot.then(|| take(1));
    dirs::place(&mut primary, &mut next);
    // Continuation areas follow the primary directories.
    let pool_start = next * SECTOR;
    let pool_end = encode::lay_out_continuations(&mut primary, pool_start);
    next = pool_end.div_ceil(SECTOR);
    dirs::place(&mut joliet, &mut next);
    let bios = opts.bios_boot.as_ref().map(|img| {
        let s = next;
        next += (img.len() as u64).div_ceil(SECTOR).max(1);
        s
    });
    // File data in tree order (primary breadth-first order, records order); an empty file
    // points at where the data starts, with size 0.
    let mut data: encode::DataMap = vec![None; nodes.entries.len()];
    let mut files: Vec<(u64, usize, String)> = Vec::new();
    let data_start = next;
    for d in &primary {
        for r in &d.recs {
            if let dirs::Target::Data(n, 0) = r.target {
                let EntryKind::File { size, .. } = &nodes.entries[n].kind else {
                    return Err(PlanError::Internal("a data record for a non-file"));
                };
                let sector = if *size == 0 { data_start } else { next };
                data[n] = Some((sector, *size));
                let path = if d.path == "/" {
                    format!("/{}", r.shown)
                } else {
                    format!("{}/{}", d.path, r.shown)
                };
                files.push((sector, n, path));
                next += size.div_ceil(SECTOR);
            }
        }
    }
    // A boot image that is a file of the tree: its sector and length.
    let boot_file = match &opts.bios_boot_file {
        None => None,
        Some(want) => {
            let (sector, n, _) = files
                .iter()
                .find(|(_, _, p)| p == want)
                .ok_or(PlanError::Internal("the BIOS boot file is not in the tree"))?;
            let EntryKind::File { size, .. } = &nodes.entries[*n].kind else {
                return Err(PlanError::Internal("the BIOS boot file is not a file"));
            };
            Some((*sector, *size as usize))
        }
    };
    let bios = bios.or(boot_file.map(|(s, _)| s));
    let bios_len = opts
        .bios_boot
        .as_ref()
        .map(|b| b.len())
        .or(boot_file.map(|(_, l)| l));
    let esp = if opts.esp_files.is_empty() {
        None
    } else {
        let (img, _) = fat::build(&opts.esp_files, "EFIBOOT", clock)?;
        let s = next;
        next += (img.len() as u64).div_ceil(SECTOR);
        Some((s, img))
    };
    let volume_sectors = next;
    if volume_sectors > u64::from(u32::MAX) {
        return Err(PlanError::TooLarge);
    }

    // Start encoding.
    let mut extents: Vec<Extent> = Vec::new();
    let mut push = |sector: u64, what: Structure, bytes: Vec<u8>| {
        extents.push(Extent {
            offset: sector * SECTOR,
            what,
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
        date: crate::image::format::iso9660::DecDateTime::at(clock.civil()),
        root_date: crate::image::format::iso9660::DirDateTime::at(clock.civil()),
    };
    push(
        pvd,
        Structure::PrimaryVolumeDescriptor,
        PrimaryVolumeDescriptor::new(&vd)?.encode(),
    );
    if let (Some(s), Some(c)) = (boot_record, catalog) {
        push(
            s,
            Structure::BootRecord,
            BootRecordVolumeDescriptor::new(c as u32).encode(),
        );
    }
    if let Some(s) = svd {
        let j = Volume {
            path_table_size: jpt_len as u32,
            path_table_l: jpt_l as u32,
            path_table_m: jpt_m as u32,
            root: (joliet[0].sector as u32, joliet[0].size as u32),
            // Joliet's volume identifier holds 16 UCS-2 characters.
            volume_id: opts.volume_id.chars().take(16).collect(),
            ..vd.clone()
        };
        push(
            s,
            Structure::SupplementaryVolumeDescriptor { joliet: true },
            SupplementaryVolumeDescriptor::joliet(&j)?.encode(),
        );
    }
    push(term, Structure::Terminator, Terminator::new().encode());
    let tables = [
        (Tree::Primary, &primary, pt_l, pt_m),
        (Tree::Joliet, &joliet, jpt_l, jpt_m),
    ];
    for (tree, dirs, l, m) in tables {
        if tree == Tree::Joliet && !opts.joliet {
            continue;
        }
        push(
            l,
            Structure::PathTable(tree, Order::L),
            encode::path_table(dirs, PathTableOrder::L),
        );
        push(
            m,
            Structure::PathTable(tree, Order::M),
            encode::path_table(dirs, PathTableOrder::M),
        );
    }
    if let Some(s) = catalog {
        let mut entries = Vec::new();
        if let (Some(b), Some(len)) = (bios, bios_len) {
            entries.push(BootEntry {
                platform: eltorito::PLATFORM_X86,
                sector: b as u32,
                load_count: (len.div_ceil(512)).clamp(1, 4) as u16,
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
        push(s, Structure::BootCatalog, eltorito::catalog(&entries));
    }
    for (sector, what, bytes) in encode::tree(Tree::Primary, &primary, &data, clock)? {
        push(sector, what, bytes);
    }
    if pool_end > pool_start {
        push(
            pool_start / SECTOR,
            Structure::ContinuationArea,
            encode::continuations(&primary, pool_start, pool_end),
        );
    }
    for (sector, what, bytes) in encode::tree(Tree::Joliet, &joliet, &data, clock)? {
        push(sector, what, bytes);
    }
    if let (Some(s), Some(img)) = (bios, &opts.bios_boot) {
        let mut img = img.clone();
        eltorito::patch_boot_info(&mut img, pvd as u32, s as u32);
        push(s, Structure::BiosBootImage, img);
    }
    // The digest covers every structure built so far and each file's place and size.
    let mut h = Sha256::new();
    for e in &extents {
        if let Content::Bytes(b) = &e.content {
            h.update(e.offset.to_le_bytes());
            h.update(b);
        }
    }
    for (sector, n, path) in files {
        let EntryKind::File { source, size } = &nodes.entries[n].kind else {
            continue;
        };
        h.update(sector.to_le_bytes());
        h.update(size.to_le_bytes());
        if *size == 0 {
            // No bytes to place (its record points at the data area with size 0).
            continue;
        }
        let content = match source {
            Source::Path(p, stamp) => Content::File {
                source: p.clone(),
                size: *size,
                stamp: *stamp,
            },
            Source::Bytes(b) => {
                let mut b = b.to_vec();
                if opts.bios_boot_file.as_deref() == Some(path.as_str()) {
                    eltorito::patch_boot_info(&mut b, pvd as u32, sector as u32);
                }
                // Generated bytes are few and already in memory: the digest covers them.
                if !opts.digest_skip.contains(&path) {
                    h.update(&b);
                }
                Content::Bytes(b)
            }
        };
        extents.push(Extent {
            offset: sector * SECTOR,
            what: Structure::File(path),
            content,
        });
    }
    // Where the ESP is and its byte length; the image itself moves into its extent.
    let esp = esp.map(|(s, img)| {
        h.update(&img);
        let len = img.len() as u64;
        extents.push(Extent {
            offset: s * SECTOR,
            what: Structure::EspImage,
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
            mbr_signature: u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]),
            partitions,
        };
        size = disk_sectors * mbr::LBA;
        let entries = gpt.entries();
        let entries_len = entries.len() as u64;
        let mut put = |offset: u64, what: Structure, bytes: Vec<u8>| {
            extents.push(Extent {
                offset,
                what,
                content: Content::Bytes(bytes),
            })
        };
        put(0, Structure::Mbr, gpt.mbr(&mbr_code(opts, bios)?).encode());
        put(mbr::LBA, Structure::PrimaryGptHeader, gpt.primary_header());
        put(2 * mbr::LBA, Structure::PrimaryGptEntries, entries.clone());
        put(
            size - mbr::LBA - entries_len,
            Structure::BackupGptEntries,
            entries,
        );
        put(
            size - mbr::LBA,
            Structure::BackupGptHeader,
            gpt.backup_header(),
        );
    }
    extents.sort_by_key(|e| e.offset);
    if !extents
        .windows(2)
        .all(|w| w[0].offset + w[0].content.len() <= w[1].offset)
    {
        return Err(PlanError::Internal("two extents overlap"));
    }
    Ok(Plan {
        extents,
        size,
        digest,
    })
}

/// The MBR boot code with the BIOS boot image's 512-byte LBA patched in (ISO sector × 4).
fn mbr_code(opts: &Options, bios: Option<u64>) -> Result<Vec<u8>, PlanError> {
    let mut code = opts.mbr_code.clone();
    if code.len() > mbr::CODE_LEN {
        return Err(PlanError::MbrTooLong(code.len()));
    }
    if let Some(at) = opts.mbr_lba_offset {
        let sector = bios.ok_or(PlanError::MbrWithoutBios)?;
        let field = code
            .get_mut(at..at.saturating_add(8))
            .ok_or(PlanError::NoLbaField(at))?;
        field.copy_from_slice(&(sector * (SECTOR / mbr::LBA)).to_le_bytes());
    }
    Ok(code)
}

/// ECMA-119 8.4.6: the volume identifier is at most 32 d-characters; we also allow
/// lowercase, `-` and `.`, as NixOS labels (`nixos-minimal-24.05-x86_64`) use them and every
/// reader accepts them.
pub(crate) fn check_volume_id(id: &str) -> Result<(), PlanError> {
    if id.is_empty() || DChars::<32>::new(id).is_err() {
        return Err(PlanError::VolumeId(id.to_string()));
    }
    Ok(())
}
