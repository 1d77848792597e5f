//! The GUID Partition Table (UEFI 2.10, chapter 5): the header (5.3.2) and the partition
//! entry (5.3.3) as records with their encoders, decoders and layout tests, and `Gpt`, the
//! hybrid image's partitioning: a primary header at LBA 1 with its entries at LBA 2–33, a
//! backup at the end, and two partitions that do not overlap — the ISO 9660 data and the
//! ESP. Every GUID comes from the image's content digest, never from randomness.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::image::format::mbr::{Mbr, LBA};
use crate::image::format::record::{record, Bytes, Field, Hex, Le, Record, Utf16Le};

/// Partition entries in the array (and so 32 sectors of 128-byte entries).
pub(crate) const ENTRIES: usize = 128;
/// Bytes of one entry.
pub(crate) const ENTRY_LEN: usize = 128;
/// Sectors taken by the entry array.
pub(crate) const ENTRY_SECTORS: u64 = (ENTRIES * ENTRY_LEN) as u64 / LBA;
/// Sectors of one cylinder of the 64-head, 32-sector geometry isohybrid uses (1 MiB).
pub(crate) const CYLINDER_SECTORS: u64 = 64 * 32;
/// `EFI PART`.
pub const SIGNATURE: [u8; 8] = *b"EFI PART";

/// A GUID in its on-disk form: the first three fields little-endian, the rest as bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The GUID written `a-b-c-d` in the usual text form.
    pub const fn new(a: u32, b: u16, c: u16, d: [u8; 8]) -> Guid {
        let a = a.to_le_bytes();
        let b = b.to_le_bytes();
        let c = c.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ])
    }

    /// A version-8 (custom) UUID from a digest and a purpose label: the same content gives
    /// the same GUIDs, different purposes different ones.
    pub fn derived(digest: &[u8; 32], purpose: &str) -> Guid {
        let h = Sha256::new()
            .chain_update(digest)
            .chain_update(purpose.as_bytes())
            .finalize();
        let mut u = [0u8; 16];
        u.copy_from_slice(&h[..16]);
        u[6] = (u[6] & 0x0F) | 0x80; // version 8
        u[8] = (u[8] & 0x3F) | 0x80; // RFC 4122 variant
                                     // The UUID's fields are big-endian; GPT stores the first three little-endian.
        Guid::new(
            u32::from_be_bytes([u[0], u[1], u[2], u[3]]),
            u16::from_be_bytes([u[4], u[5]]),
            u16::from_be_bytes([u[6], u[7]]),
            [u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]],
        )
    }

    /// Whether it is all zeros (an unused entry's type).
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-",
            u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
            u16::from_le_bytes([g[4], g[5]]),
            u16::from_le_bytes([g[6], g[7]]),
            g[8],
            g[9]
        )?;
        g[10..].iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Field for Guid {
    const LEN: usize = 16;
    fn read(b: &[u8]) -> Self {
        let mut g = [0; 16];
        g.copy_from_slice(b);
        Guid(g)
    }
    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }
    fn show(b: &[u8]) -> String {
        Guid::read(b).to_string()
    }
}

/// `EFI System Partition` type GUID, C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
pub const ESP_TYPE: Guid = Guid::new(
    0xC12A_7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// `Microsoft basic data` type GUID, EBD0A0A2-B9E5-4433-87C0-68B6B72699C7.
pub const BASIC_DATA_TYPE: Guid = Guid::new(
    0xEBD0_A0A2,
    0xB9E5,
    0x4433,
    [0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7],
);

record! {
    /// UEFI 2.10 Table 5.5: GPT Header (92 bytes; the rest of its block is zero).
    pub struct GptHeader("GPT header", 92) {
        /// Bytes 0-7: Signature (`EFI PART`).
        0 signature: Bytes<8>,
        /// Bytes 8-11: Revision (0x00010000, 1.0).
        8 revision: Hex<u32>,
        /// Bytes 12-15: HeaderSize (92).
        12 header_size: Le<u32>,
        /// Bytes 16-19: HeaderCRC32, of the header with this field zeroed.
        16 header_crc32: Hex<u32>,
        /// Bytes 20-23: Reserved (zero).
        20 reserved: Le<u32>,
        /// Bytes 24-31: MyLBA.
        24 my_lba: Le<u64>,
        /// Bytes 32-39: AlternateLBA.
        32 alternate_lba: Le<u64>,
        /// Bytes 40-47: FirstUsableLBA.
        40 first_usable_lba: Le<u64>,
        /// Bytes 48-55: LastUsableLBA.
        48 last_usable_lba: Le<u64>,
        /// Bytes 56-71: DiskGUID.
        56 disk_guid: Guid,
        /// Bytes 72-79: PartitionEntryLBA.
        72 partition_entry_lba: Le<u64>,
        /// Bytes 80-83: NumberOfPartitionEntries.
        80 number_of_partition_entries: Le<u32>,
        /// Bytes 84-87: SizeOfPartitionEntry.
        84 size_of_partition_entry: Le<u32>,
        /// Bytes 88-91: PartitionEntryArrayCRC32.
        88 partition_entry_array_crc32: Hex<u32>,
    }
}

record! {
    /// UEFI 2.10 Table 5.6: GPT Partition Entry.
    pub struct GptEntry("GPT partition entry", 128) {
        /// Bytes 0-15: PartitionTypeGUID (zero: unused).
        0 partition_type_guid: Guid,
        /// Bytes 16-31: UniquePartitionGUID.
        16 unique_partition_guid: Guid,
        /// Bytes 32-39: StartingLBA.
        32 starting_lba: Le<u64>,
        /// Bytes 40-47: EndingLBA (inclusive).
        40 ending_lba: Le<u64>,
        /// Bytes 48-55: Attributes.
        48 attributes: Hex<u64>,
        /// Bytes 56-127: PartitionName (UTF-16LE, NUL-padded).
        56 partition_name: Utf16Le<72>,
    }
}

impl GptHeader {
    /// The header's CRC32 as the spec computes it: over its 92 bytes with the field zeroed.
    pub fn computed_crc(&self) -> u32 {
        let mut copy = self.clone();
        copy.header_crc32 = Hex::new(0);
        crc32fast::hash(&copy.encode())
    }

    /// Whether its signature is `EFI PART`.
    pub fn has_signature(&self) -> bool {
        self.signature.0 == SIGNATURE
    }
}

/// One partition of a GPT to write.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Partition {
    /// Type GUID.
    pub type_guid: Guid,
    /// Unique GUID.
    pub guid: Guid,
    /// First LBA.
    pub first: u64,
    /// Last LBA (inclusive).
    pub last: u64,
    /// Name (at most 36 UTF-16 units).
    pub name: String,
}

/// The whole partitioning of a hybrid image.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Gpt {
    /// The image size in 512-byte sectors (the backup header is the last one).
    pub disk_sectors: u64,
    /// Disk GUID.
    pub disk_guid: Guid,
    /// The MBR disk signature.
    pub mbr_signature: u32,
    /// Partitions, in entry order.
    pub partitions: Vec<Partition>,
}

impl Gpt {
    /// The first LBA partitions may use (after the primary entries).
    pub fn first_usable() -> u64 {
        2 + ENTRY_SECTORS
    }

    /// The last LBA partitions may use (before the backup entries).
    pub fn last_usable(&self) -> u64 {
        self.disk_sectors - 2 - ENTRY_SECTORS
    }

    /// The 128-entry partition array.
    pub fn entries(&self) -> Vec<u8> {
        let mut a = Vec::with_capacity(ENTRIES * ENTRY_LEN);
        for p in &self.partitions {
            GptEntry {
                partition_type_guid: p.type_guid,
                unique_partition_guid: p.guid,
                starting_lba: Le::new(p.first),
                ending_lba: Le::new(p.last),
                attributes: Hex::new(0),
                partition_name: Utf16Le::new(&p.name.chars().take(36).collect::<String>())
                    .unwrap_or_else(|| Utf16Le::new("").expect("empty")),
            }
            .encode_into(&mut a);
        }
        a.resize(ENTRIES * ENTRY_LEN, 0);
        a
    }

    /// A header: primary (`backup == false`) or backup, with both CRCs.
    pub fn header(&self, backup: bool, entries_crc: u32) -> GptHeader {
        let last = self.disk_sectors - 1;
        let (my, alt, entries_lba) = if backup {
            (last, 1, last - ENTRY_SECTORS)
        } else {
            (1, last, 2)
        };
        let mut h = GptHeader {
            signature: Bytes(SIGNATURE),
            revision: Hex::new(0x0001_0000),
            header_size: Le::new(GptHeader::LEN as u32),
            header_crc32: Hex::new(0),
            reserved: Le::new(0),
            my_lba: Le::new(my),
            alternate_lba: Le::new(alt),
            first_usable_lba: Le::new(Self::first_usable()),
            last_usable_lba: Le::new(self.last_usable()),
            disk_guid: self.disk_guid,
            partition_entry_lba: Le::new(entries_lba),
            number_of_partition_entries: Le::new(ENTRIES as u32),
            size_of_partition_entry: Le::new(ENTRY_LEN as u32),
            partition_entry_array_crc32: Hex::new(entries_crc),
        };
        h.header_crc32 = Hex::new(h.computed_crc());
        h
    }

    /// The protective MBR over `boot_code` (at most 440 bytes).
    pub fn mbr(&self, boot_code: &[u8]) -> Mbr {
        Mbr::protective(boot_code, self.mbr_signature, self.disk_sectors)
    }

    /// The primary header in its 512-byte block.
    pub fn primary_header(&self) -> Vec<u8> {
        self.header_block(false)
    }

    /// The backup header in its 512-byte block.
    pub fn backup_header(&self) -> Vec<u8> {
        self.header_block(true)
    }

    fn header_block(&self, backup: bool) -> Vec<u8> {
        let crc = crc32fast::hash(&self.entries());
        let mut b = self.header(backup, crc).encode();
        b.resize(LBA as usize, 0);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpt() -> Gpt {
        Gpt {
            disk_sectors: 4096,
            disk_guid: Guid::derived(&[7; 32], "disk"),
            mbr_signature: 0x1234_5678,
            partitions: vec![
                Partition {
                    type_guid: BASIC_DATA_TYPE,
                    guid: Guid([1; 16]),
                    first: 64,
                    last: 2047,
                    name: "ISO9660".into(),
                },
                Partition {
                    type_guid: ESP_TYPE,
                    guid: Guid([2; 16]),
                    first: 2048,
                    last: 4000,
                    name: "ESP".into(),
                },
            ],
        }
    }

    #[test]
    fn type_guid_bytes() {
        // The ESP type as it appears on disk (UEFI spec, Table 5.7).
        assert_eq!(
            ESP_TYPE.0,
            [
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
        );
        assert_eq!(ESP_TYPE.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        let g = Guid::derived(&[0; 32], "x");
        assert_eq!(
            g.0[7] >> 4,
            8,
            "version nibble (little-endian field 3, high byte)"
        );
        assert_eq!(g.0[8] & 0xC0, 0x80, "variant");
        assert_ne!(Guid::derived(&[0; 32], "x"), Guid::derived(&[0; 32], "y"));
    }

    #[test]
    fn header_crc_with_field_zeroed() {
        let g = gpt();
        let entries = g.entries();
        let crc = crc32fast::hash(&entries);
        let h = g.primary_header();
        assert_eq!(h.len(), 512);
        assert_eq!(&h[0..8], b"EFI PART");
        assert_eq!(&h[8..12], &[0, 0, 1, 0]);
        assert_eq!(&h[12..16], &[92, 0, 0, 0]);
        let mut copy = h[..92].to_vec();
        let stored = u32::from_le_bytes(copy[16..20].try_into().unwrap());
        copy[16..20].fill(0);
        assert_eq!(crc32fast::hash(&copy), stored);
        assert_eq!(u64::from_le_bytes(h[24..32].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(h[32..40].try_into().unwrap()), 4095);
        assert_eq!(u64::from_le_bytes(h[40..48].try_into().unwrap()), 34);
        assert_eq!(u64::from_le_bytes(h[48..56].try_into().unwrap()), 4095 - 33);
        assert_eq!(u64::from_le_bytes(h[72..80].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(h[80..84].try_into().unwrap()), 128);
        assert_eq!(u32::from_le_bytes(h[84..88].try_into().unwrap()), 128);
        assert_eq!(u32::from_le_bytes(h[88..92].try_into().unwrap()), crc);
        assert!(h[92..].iter().all(|b| *b == 0));
        let b = g.backup_header();
        assert_eq!(u64::from_le_bytes(b[24..32].try_into().unwrap()), 4095);
        assert_eq!(u64::from_le_bytes(b[72..80].try_into().unwrap()), 4095 - 32);
        let back = GptHeader::decode(&h).unwrap();
        assert!(back.has_signature());
        assert_eq!(back.computed_crc(), back.header_crc32.get());
    }

    #[test]
    fn entry_layout() {
        let e = gpt().entries();
        assert_eq!(e.len(), 128 * 128);
        assert_eq!(&e[0..16], &BASIC_DATA_TYPE.0);
        assert_eq!(&e[16..32], &[1; 16]);
        assert_eq!(u64::from_le_bytes(e[32..40].try_into().unwrap()), 64);
        assert_eq!(u64::from_le_bytes(e[40..48].try_into().unwrap()), 2047);
        assert_eq!(&e[48..56], &[0; 8]);
        assert_eq!(&e[56..60], &[b'I', 0, b'S', 0]);
        let second = GptEntry::decode(&e[128..]).unwrap();
        assert_eq!(second.partition_type_guid, ESP_TYPE);
        assert_eq!(second.partition_name.text(), "ESP");
        assert!(GptEntry::decode(&e[256..])
            .unwrap()
            .partition_type_guid
            .is_nil());
    }
}
