//! El Torito (1.0) records: the boot record volume descriptor (2.0), the boot catalog's
//! validation entry (2.1), initial/default and section entries (2.2, 2.5), section headers
//! (2.4), and the boot info table that `mkisofs -boot-info-table` patches into a BIOS boot
//! image. Each is one type with its encoder, its bounds-checked decoder and a layout test.

use crate::image::format::record::{record, Bytes, DecodeError, Field, Hex, Le, Record};

/// Platform ID of BIOS (x86) entries.
pub const PLATFORM_X86: u8 = 0x00;
/// Platform ID of UEFI entries.
pub const PLATFORM_EFI: u8 = 0xEF;
/// Boot indicator of a bootable entry.
pub const BOOTABLE: u8 = 0x88;
/// Header indicator of a section header with more headers after it.
pub const MORE_HEADERS: u8 = 0x90;
/// Header indicator of the last section header.
pub const FINAL_HEADER: u8 = 0x91;
/// The boot system identifier of an El Torito boot record (2.0, bytes 7-38, NUL-padded).
pub const EL_TORITO_ID: &[u8] = b"EL TORITO SPECIFICATION";
/// A catalog is read from this many bytes at most (one sector: 63 entries after the
/// validation entry, more than any tool writes).
pub(crate) const CATALOG_LEN: usize = 2048;

record! {
    /// El Torito 2.0: Boot Record Volume Descriptor (ECMA-119 type 0), pointing at the catalog.
    pub struct BootRecordVolumeDescriptor("El Torito boot record", 2048) {
        /// Byte 0: Boot Record Indicator (0).
        0 boot_record_indicator: u8,
        /// Bytes 1-5: ISO-9660 Identifier (`CD001`).
        1 iso_identifier: Bytes<5>,
        /// Byte 6: Version of this descriptor (1).
        6 version: u8,
        /// Bytes 7-38: Boot System Identifier (`EL TORITO SPECIFICATION`, NUL-padded).
        7 boot_system_identifier: Bytes<32>,
        /// Bytes 39-70: Unused (zeros).
        39 unused_1: Bytes<32>,
        /// Bytes 71-74: Absolute pointer to the first sector of the boot catalog.
        71 boot_catalog: Le<u32>,
        /// Bytes 75-2047: Unused (zeros).
        75 unused_2: Bytes<1973>,
    }
}

impl BootRecordVolumeDescriptor {
    /// The boot record of a catalog at `catalog_sector`.
    pub fn new(catalog_sector: u32) -> BootRecordVolumeDescriptor {
        BootRecordVolumeDescriptor {
            boot_record_indicator: 0,
            iso_identifier: Bytes(crate::image::format::iso9660::STANDARD_ID),
            version: 1,
            boot_system_identifier: Bytes::padded(EL_TORITO_ID).expect("23 of 32 bytes"),
            unused_1: Bytes::zeroed(),
            boot_catalog: Le::new(catalog_sector),
            unused_2: Bytes::zeroed(),
        }
    }

    /// Whether its boot system identifier is El Torito's.
    pub fn is_el_torito(&self) -> bool {
        self.boot_system_identifier.0.starts_with(EL_TORITO_ID)
    }
}

record! {
    /// El Torito 2.1: Validation Entry, the catalog's first 32 bytes. Its sixteen
    /// little-endian words sum to zero.
    pub struct ValidationEntry("El Torito validation entry", 32) {
        /// Byte 0: Header ID (1).
        0 header_id: u8,
        /// Byte 1: Platform ID of the initial/default entry.
        1 platform_id: u8,
        /// Bytes 2-3: Reserved (0).
        2 reserved: Le<u16>,
        /// Bytes 4-27: ID string of the manufacturer/developer.
        4 id_string: Bytes<24>,
        /// Bytes 28-29: Checksum word.
        28 checksum: Hex<u16>,
        /// Bytes 30-31: Key bytes 0x55 0xAA.
        30 key: Bytes<2>,
    }
}

record! {
    /// El Torito 2.2 (Initial/Default Entry) and 2.5 (Section Entry): one boot image. The two
    /// share this layout; a default entry's bytes 12-31 are unused.
    pub struct SectionEntry("El Torito section entry", 32) {
        /// Byte 0: Boot Indicator (0x88 bootable, 0x00 not).
        0 boot_indicator: u8,
        /// Byte 1: Boot media type (0 no emulation, 1-3 diskettes, 4 hard disk).
        1 boot_media_type: u8,
        /// Bytes 2-3: Load Segment (0 means the traditional 0x7C0).
        2 load_segment: Le<u16>,
        /// Byte 4: System Type (the partition type of an emulated hard disk).
        4 system_type: u8,
        /// Byte 5: Unused (0).
        5 unused: u8,
        /// Bytes 6-7: Sector Count, in 512-byte virtual sectors.
        6 sector_count: Le<u16>,
        /// Bytes 8-11: Load RBA, the image's first sector.
        8 load_rba: Le<u32>,
        /// Byte 12: Selection criteria type (section entries).
        12 selection_criteria_type: u8,
        /// Bytes 13-31: Vendor unique selection criteria.
        13 selection_criteria: Bytes<19>,
    }
}

record! {
    /// El Torito 2.4: Section Header Entry.
    pub struct SectionHeader("El Torito section header", 32) {
        /// Byte 0: Header Indicator (0x90 more headers follow, 0x91 final header).
        0 header_indicator: u8,
        /// Byte 1: Platform ID of the section's entries.
        1 platform_id: u8,
        /// Bytes 2-3: Number of section entries following this header.
        2 entry_count: Le<u16>,
        /// Bytes 4-31: ID string.
        4 id_string: Bytes<28>,
    }
}

record! {
    /// The boot info table (`mkisofs -boot-info-table`), at bytes 8-63 of a no-emulation BIOS
    /// boot image: where the image and the primary volume descriptor are, and a checksum.
    pub struct BootInfoTable("boot info table", 56) {
        /// Bytes 8-11 of the image: sector of the primary volume descriptor.
        0 pvd_lba: Le<u32>,
        /// Bytes 12-15: sector of the boot image itself.
        4 file_lba: Le<u32>,
        /// Bytes 16-19: the boot image's length in bytes.
        8 file_length: Le<u32>,
        /// Bytes 20-23: 32-bit sum of the image's little-endian words from byte 64 on.
        12 checksum: Hex<u32>,
        /// Bytes 24-63: Reserved (zeros).
        16 reserved: Bytes<40>,
    }
}

/// Where the boot info table sits in a boot image.
pub(crate) const BOOT_INFO_OFFSET: usize = 8;

/// One bootable image to put in the catalog (no emulation).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BootEntry {
    /// [`PLATFORM_X86`] or [`PLATFORM_EFI`].
    pub platform: u8,
    /// Sector of the image.
    pub sector: u32,
    /// Sectors to load, in 512-byte units (El Torito's "virtual sectors").
    pub load_count: u16,
}

impl BootEntry {
    fn section_entry(&self) -> SectionEntry {
        SectionEntry {
            boot_indicator: BOOTABLE,
            boot_media_type: 0,
            load_segment: Le::new(0),
            system_type: 0,
            unused: 0,
            sector_count: Le::new(self.load_count),
            load_rba: Le::new(self.sector),
            selection_criteria_type: 0,
            selection_criteria: Bytes::zeroed(),
        }
    }
}

/// The 16-bit sum of little-endian words a validation entry's checksum makes zero.
pub(crate) fn word_sum(b: &[u8]) -> u16 {
    b.chunks(2).fold(0u16, |s, w| {
        s.wrapping_add(u16::from_le_bytes([w[0], *w.get(1).unwrap_or(&0)]))
    })
}

impl ValidationEntry {
    /// The validation entry of a catalog whose default entry is for `platform`, with its
    /// checksum set.
    pub fn new(platform: u8) -> ValidationEntry {
        let mut v = ValidationEntry {
            header_id: 1,
            platform_id: platform,
            reserved: Le::new(0),
            id_string: Bytes::zeroed(),
            checksum: Hex::new(0),
            key: Bytes([0x55, 0xAA]),
        };
        v.checksum = Hex::new(0u16.wrapping_sub(word_sum(&v.encode())));
        v
    }

    /// What is wrong with it, if anything: header ID, key bytes, checksum.
    pub fn check(&self) -> Result<(), DecodeError> {
        let what = if self.header_id != 1 {
            format!("header ID {} (must be 1)", self.header_id)
        } else if self.key.0 != [0x55, 0xAA] {
            format!(
                "key bytes {:02x} {:02x} (must be 55 aa)",
                self.key.0[0], self.key.0[1]
            )
        } else if word_sum(&self.encode()) != 0 {
            "its words do not sum to zero".to_string()
        } else {
            return Ok(());
        };
        Err(DecodeError::Invalid {
            record: Self::NAME,
            what,
        })
    }
}

/// Encodes the 2048-byte boot catalog: the first entry is the default, every further entry
/// gets its own section (the last header marked final, 0x91), as xorriso lays them out.
pub(crate) fn catalog(entries: &[BootEntry]) -> Vec<u8> {
    let mut c = Vec::with_capacity(CATALOG_LEN);
    let first = entries.first().map_or(PLATFORM_X86, |e| e.platform);
    ValidationEntry::new(first).encode_into(&mut c);
    if let Some(d) = entries.first() {
        d.section_entry().encode_into(&mut c);
    }
    let rest = &entries[entries.len().min(1)..];
    for (i, e) in rest.iter().enumerate() {
        SectionHeader {
            header_indicator: if i + 1 == rest.len() {
                FINAL_HEADER
            } else {
                MORE_HEADERS
            },
            platform_id: e.platform,
            entry_count: Le::new(1),
            id_string: Bytes::zeroed(),
        }
        .encode_into(&mut c);
        e.section_entry().encode_into(&mut c);
    }
    c.resize(CATALOG_LEN, 0);
    c
}

/// One entry of a catalog as read: the platform of its section (the validation entry's for
/// the default entry), its section (`None` for the default entry) and the entry itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Platform ID.
    pub platform: u8,
    /// 1-based section number; `None` for the initial/default entry.
    pub section: Option<usize>,
    /// Byte offset of the entry in the catalog.
    pub offset: usize,
    /// The entry.
    pub entry: SectionEntry,
}

/// A boot catalog as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootCatalog {
    /// The validation entry (checked).
    pub validation: ValidationEntry,
    /// The default entry, then every section's entries in order.
    pub entries: Vec<CatalogEntry>,
    /// The section headers, with their byte offsets.
    pub headers: Vec<(usize, SectionHeader)>,
}

impl BootCatalog {
    /// Decodes a catalog (at most `CATALOG_LEN` bytes are read). The validation entry must
    /// be right; reading stops at the final section header's last entry or at the first
    /// entry that is neither a header nor a section entry.
    pub fn decode(b: &[u8]) -> Result<BootCatalog, DecodeError> {
        let b = &b[..b.len().min(CATALOG_LEN)];
        let validation = ValidationEntry::decode(b)?;
        validation.check()?;
        let default = SectionEntry::decode(b.get(32..).unwrap_or_default())?;
        let mut entries = vec![CatalogEntry {
            platform: validation.platform_id,
            section: None,
            offset: 32,
            entry: default,
        }];
        let mut headers = Vec::new();
        let mut off = 64;
        while off + 32 <= b.len() {
            let h = SectionHeader::decode(&b[off..])?;
            if !matches!(h.header_indicator, MORE_HEADERS | FINAL_HEADER) {
                break;
            }
            let last = h.header_indicator == FINAL_HEADER;
            let section = headers.len() + 1;
            let count = usize::from(h.entry_count.get());
            headers.push((off, h.clone()));
            off += 32;
            let mut taken = 0;
            while taken < count && off + 32 <= b.len() {
                // Extension entries (indicator 0x44) continue the entry before them.
                if b[off] != 0x44 {
                    entries.push(CatalogEntry {
                        platform: h.platform_id,
                        section: Some(section),
                        offset: off,
                        entry: SectionEntry::decode(&b[off..])?,
                    });
                    taken += 1;
                }
                off += 32;
            }
            if last {
                break;
            }
        }
        Ok(BootCatalog {
            validation,
            entries,
            headers,
        })
    }
}

/// Patches the boot info table into a BIOS boot image: the primary volume descriptor's
/// sector, the image's sector and length, and the 32-bit sum of the image's little-endian
/// words from byte 64 on. An image shorter than 64 bytes has no room for it and is left alone.
pub(crate) fn patch_boot_info(image: &mut [u8], pvd_sector: u32, image_sector: u32) {
    let end = BOOT_INFO_OFFSET + BootInfoTable::LEN;
    if image.len() < end {
        return;
    }
    let mut sum = 0u32;
    for w in image[end..].chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        sum = sum.wrapping_add(u32::from_le_bytes(b));
    }
    let table = BootInfoTable {
        pvd_lba: Le::new(pvd_sector),
        file_lba: Le::new(image_sector),
        file_length: Le::new(image.len() as u32),
        checksum: Hex::new(sum),
        reserved: Bytes::zeroed(),
    };
    table.write(&mut image[BOOT_INFO_OFFSET..end]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_entries() -> Vec<u8> {
        catalog(&[
            BootEntry {
                platform: PLATFORM_X86,
                sector: 0x30,
                load_count: 4,
            },
            BootEntry {
                platform: PLATFORM_EFI,
                sector: 0x40,
                load_count: 2880,
            },
        ])
    }

    #[test]
    fn catalog_layout() {
        let c = two_entries();
        assert_eq!(c.len(), 2048);
        // Validation entry: header 1, platform, key bytes, words summing to zero.
        assert_eq!(c[0], 1);
        let sum = c[..32].chunks(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        assert_eq!(sum, 0);
        assert_eq!(&c[30..32], &[0x55, 0xAA]);
        // Default entry: bootable, no emulation, 4 virtual sectors at 0x30.
        assert_eq!(&c[32..44], &[0x88, 0, 0, 0, 0, 0, 4, 0, 0x30, 0, 0, 0]);
        // Final section header for the EFI platform with one entry, then its entry.
        assert_eq!(&c[64..68], &[0x91, 0xEF, 1, 0]);
        assert_eq!(
            &c[96..108],
            &[0x88, 0, 0, 0, 0, 0, 0x40, 0x0B, 0x40, 0, 0, 0]
        );
        assert!(c[128..].iter().all(|b| *b == 0));
    }

    #[test]
    fn catalog_reads_back() {
        let c = BootCatalog::decode(&two_entries()).unwrap();
        assert_eq!(c.entries.len(), 2);
        assert_eq!(c.entries[0].platform, PLATFORM_X86);
        assert_eq!(c.entries[0].section, None);
        assert_eq!(c.entries[0].entry.load_rba.get(), 0x30);
        assert_eq!(c.entries[1].platform, PLATFORM_EFI);
        assert_eq!(c.entries[1].section, Some(1));
        assert_eq!(c.entries[1].entry.sector_count.get(), 2880);
        assert_eq!(c.headers.len(), 1);
    }

    #[test]
    fn broken_catalogs_are_errors() {
        let mut c = two_entries();
        c[5] ^= 1; // the checksum no longer holds
        assert!(matches!(
            BootCatalog::decode(&c),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(BootCatalog::decode(&two_entries()[..40]).is_err());
        // A section header claiming more entries than the sector holds stops at its end.
        let mut many = two_entries();
        many[66] = 0xFF;
        many[67] = 0xFF;
        assert_eq!(
            BootCatalog::decode(&many).unwrap().entries.len(),
            1 + (2048 - 96) / 32
        );
    }

    #[test]
    fn boot_record_layout() {
        let br = BootRecordVolumeDescriptor::new(0x22).encode();
        assert_eq!(&br[0..7], b"\0CD001\x01");
        assert_eq!(&br[7..30], b"EL TORITO SPECIFICATION");
        assert!(br[30..71].iter().all(|b| *b == 0));
        assert_eq!(&br[71..75], &[0x22, 0, 0, 0]);
        assert!(BootRecordVolumeDescriptor::decode(&br)
            .unwrap()
            .is_el_torito());
    }

    #[test]
    fn boot_info_table() {
        let mut img = vec![0u8; 2048];
        img[64] = 1;
        img[2047] = 2; // the last word is 0x02000000
        patch_boot_info(&mut img, 16, 0x21);
        assert_eq!(&img[8..12], &16u32.to_le_bytes());
        assert_eq!(&img[12..16], &0x21u32.to_le_bytes());
        assert_eq!(&img[16..20], &2048u32.to_le_bytes());
        assert_eq!(&img[20..24], &0x0200_0001u32.to_le_bytes());
        assert!(img[24..64].iter().all(|b| *b == 0));
        let t = BootInfoTable::decode(&img[8..]).unwrap();
        assert_eq!(t.file_lba.get(), 0x21);
        let mut short = vec![7u8; 40];
        patch_boot_info(&mut short, 16, 0x21);
        assert_eq!(short, vec![7u8; 40]);
    }
}
