//! What reading an image finds: its volume descriptors, boot catalog, partition tables, the
//! files of both trees, which structure owns which bytes, and every record decoded. Plain
//! data: `inspect` fills it, `render`, `walk`, `snapshot` and `diff` read it.

use crate::image::format::apm::PartitionMapEntry;
use crate::image::format::authenticode::Signature;
use crate::image::format::eltorito::BootCatalog;
use crate::image::format::gpt::{GptEntry, GptHeader};
use crate::image::format::mbr::Mbr;
use crate::image::format::record::child_name;
use crate::image::format::structure::{Owned, Structure};
use crate::image::read::descriptor::VolumeDescriptor;
use crate::image::read::error::Truncation;

/// A volume descriptor and its sector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Its sector.
    pub sector: u64,
    /// The decoded descriptor.
    pub vd: VolumeDescriptor,
}

impl Descriptor {
    /// The structure it is.
    pub fn structure(&self) -> Structure {
        match &self.vd {
            VolumeDescriptor::Primary(_) => Structure::PrimaryVolumeDescriptor,
            VolumeDescriptor::Supplementary(s) => Structure::SupplementaryVolumeDescriptor {
                joliet: s.is_joliet(),
            },
            VolumeDescriptor::ElTorito(_) => Structure::BootRecord,
            VolumeDescriptor::Terminator(_) => Structure::Terminator,
            VolumeDescriptor::Other(h) => Structure::OtherVolumeDescriptor(h.descriptor_type),
        }
    }

    /// Volume identifier, space size and root extent of a primary or supplementary
    /// descriptor.
    pub fn volume(&self) -> Option<(String, u32, (u32, u32))> {
        match &self.vd {
            VolumeDescriptor::Primary(p) => Some((
                p.volume_identifier.text().into_owned(),
                p.volume_space_size.get(),
                root(&p.root_directory_record),
            )),
            VolumeDescriptor::Supplementary(s) => Some((
                s.volume_identifier.text(),
                s.volume_space_size.get(),
                root(&s.root_directory_record),
            )),
            _ => None,
        }
    }
}

fn root(r: &crate::image::format::iso9660::RootDirectoryRecord) -> (u32, u32) {
    (r.header.extent.get(), r.header.data_length.get())
}

/// The GPT as read from LBA 1 and its backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GptRead {
    /// The primary header.
    pub primary: GptHeader,
    /// The backup header, when the primary's AlternateLBA points inside the image at one.
    pub backup: Option<GptHeader>,
    /// The entries in use, with their 1-based index.
    pub entries: Vec<(usize, GptEntry)>,
    /// Whether both headers' CRCs and the entry array's CRC hold, the backup's entries are the
    /// same and the backup header is the image's last block.
    pub valid: bool,
}

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Full path ("/" separated, Rock Ridge names when present).
    pub path: String,
    /// POSIX mode from `PX` (0 without Rock Ridge).
    pub mode: u32,
    /// Size in bytes (all extents).
    pub size: u64,
    /// Extents: (sector, bytes).
    pub extents: Vec<(u32, u32)>,
    /// Symlink target from `SL`.
    pub symlink: Option<String>,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// zisofs compression (`ZF`): algorithm and uncompressed size.
    pub zisofs: Option<(String, u64)>,
    /// A deep directory's placeholder: the sector its directory moved to (`CL`).
    pub moved_to: Option<u32>,
    /// Whether the record is marked as relocated (`RE`; Rock Ridge readers hide it).
    pub relocated: bool,
}

/// Everything `inspect` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The image size in bytes.
    pub size: u64,
    /// The MBR, when the first block ends with 0x55 0xAA.
    pub mbr: Option<Mbr>,
    /// The GPT, when LBA 1 holds a GPT header.
    pub gpt: Option<GptRead>,
    /// An Apple Partition Map: its block size and entries.
    pub apm: Option<(u16, Vec<PartitionMapEntry>)>,
    /// The extensions the root's `ER` entries name (`RRIP_1991A`, `IEEE_P1282`, ...).
    pub extensions: Vec<String>,
    /// For each boot catalog entry (in catalog order), whether its image holds a boot info
    /// table that points at itself and the primary volume descriptor.
    pub boot_info_tables: Vec<bool>,
    /// Volume descriptors, in order.
    pub descriptors: Vec<Descriptor>,
    /// The boot catalog and its sector.
    pub catalog: Option<(u64, BootCatalog)>,
    /// Files of the primary tree, depth-first in directory order.
    pub files: Vec<FileInfo>,
    /// Directories of the Joliet tree: path and extent.
    pub joliet_dirs: Vec<(String, (u32, u32))>,
    /// Which structure owns which bytes, sorted by start.
    pub structures: Vec<Owned>,
    /// Every decoded record, as JSON, snapshots and diffs name it ([`walk`]).
    ///
    /// [`walk`]: crate::image::read::walk
    pub records: Vec<Decoded>,
    /// The EFI binaries (PE images) in the ESP, by path, with their Authenticode signatures
    /// or why those could not be read.
    pub signatures: Vec<(String, Result<Vec<Signature>, String>)>,
}

impl Report {
    /// Whether the file is shorter than its primary volume says.
    pub fn truncation(&self) -> Option<Truncation> {
        self.descriptors
            .iter()
            .find(|d| matches!(d.vd, VolumeDescriptor::Primary(_)))
            .and_then(Descriptor::volume)
            .and_then(|(_, sectors, _)| Truncation::of(u64::from(sectors), self.size))
    }

    /// The primary tree's volume: identifier, space size and root extent.
    pub fn primary(&self) -> Option<(String, u32, (u32, u32))> {
        self.descriptors
            .iter()
            .find(|d| matches!(d.vd, VolumeDescriptor::Primary(_)))
            .and_then(Descriptor::volume)
    }

    /// The structure owning byte `at`: the smallest range holding it.
    pub fn owner(&self, at: u64) -> Option<&Structure> {
        self.structures
            .iter()
            .filter(|o| o.start <= at && at < o.end)
            .min_by_key(|o| o.end - o.start)
            .map(|o| &o.structure)
    }

    /// The byte range of the first structure that is `s`.
    pub fn range_of(&self, s: &Structure) -> Option<(u64, u64)> {
        self.structures
            .iter()
            .find(|o| &o.structure == s)
            .map(|o| (o.start, o.end))
    }
}

/// One record of a read image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The structure it belongs to.
    pub structure: Structure,
    /// Where that structure starts in the image.
    pub at: u64,
    /// Its name within the structure (`""` for the structure's one record, `entry 2`,
    /// `default entry`, `boot sector`).
    pub name: String,
    /// What it is, in a few words, for a report that one image has it and the other not.
    pub summary: String,
    /// Its fields: (name, as the field shows it), names without [`Decoded::name`].
    pub fields: Vec<(String, String)>,
}

impl Decoded {
    /// The record's fields under its name (`entry 2.starting_lba`).
    pub fn named_fields(&self) -> impl Iterator<Item = (String, &str)> {
        self.fields
            .iter()
            .map(|(k, v)| (child_name(&self.name, k), v.as_str()))
    }
}
