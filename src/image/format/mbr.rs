//! The master boot record (the classic PC partition table, as UEFI 2.10 5.2.1 describes it,
//! and the protective MBR of 5.2.3): boot code room, disk signature, four partition entries
//! and the 0x55 0xAA signature, each one type with its encoder, decoder and layout test.

use crate::image::format::record::{record, Bytes, Hex, Le, Record};

/// Bytes of a disk's logical block (the disk view of an image).
pub const LBA: u64 = 512;
/// Boot code room of an MBR (the disk signature follows at byte 440).
pub(crate) const CODE_LEN: usize = 440;
/// The partition type of a protective MBR's one entry (UEFI 2.10, 5.2.3).
pub const PROTECTIVE: u8 = 0xEE;
/// The partition type of an EFI system partition in an MBR.
pub const EFI_SYSTEM: u8 = 0xEF;

record! {
    /// UEFI 2.10 Table 5.2 / 5.4: one of the MBR's four partition records.
    pub struct MbrPartition("MBR partition record", 16) {
        /// Byte 0: BootIndicator (0x80 active).
        0 boot_indicator: u8,
        /// Bytes 1-3: StartingCHS.
        1 starting_chs: Bytes<3>,
        /// Byte 4: OSType (0xEE protective, 0xEF ESP, 0x00 unused).
        4 os_type: u8,
        /// Bytes 5-7: EndingCHS.
        5 ending_chs: Bytes<3>,
        /// Bytes 8-11: StartingLBA.
        8 starting_lba: Le<u32>,
        /// Bytes 12-15: SizeInLBA.
        12 size_in_lba: Le<u32>,
    }
}

record! {
    /// UEFI 2.10 Table 5.1: the legacy MBR in the first 512-byte block.
    pub struct Mbr("MBR", 512) {
        /// Bytes 0-439: BootCode.
        0 boot_code: Bytes<440>,
        /// Bytes 440-443: UniqueMBRDiskSignature.
        440 disk_signature: Hex<u32>,
        /// Bytes 444-445: Unknown (zero).
        444 unknown: Le<u16>,
        /// Bytes 446-509: PartitionRecord, four entries.
        446 partitions: [MbrPartition; 4],
        /// Bytes 510-511: Signature 0x55 0xAA.
        510 signature: Bytes<2>,
    }
}

impl MbrPartition {
    /// An unused entry.
    pub fn unused() -> MbrPartition {
        MbrPartition::decode(&[0; 16]).expect("16 bytes")
    }

    /// Whether the entry is in use (a non-zero type).
    pub fn in_use(&self) -> bool {
        self.os_type != 0 || self.size_in_lba.get() != 0
    }

    /// Whether it is marked active (bootable).
    pub fn active(&self) -> bool {
        self.boot_indicator == 0x80
    }
}

impl Mbr {
    /// Whether the block ends with the 0x55 0xAA signature.
    pub fn has_signature(&self) -> bool {
        self.signature.0 == [0x55, 0xAA]
    }

    /// The protective MBR (UEFI 2.10, 5.2.3) of a disk of `disk_sectors` blocks, over
    /// `boot_code` (at most `CODE_LEN` bytes; callers check).
    pub fn protective(boot_code: &[u8], disk_signature: u32, disk_sectors: u64) -> Mbr {
        let mut partitions = [
            MbrPartition::unused(),
            MbrPartition::unused(),
            MbrPartition::unused(),
            MbrPartition::unused(),
        ];
        partitions[0] = MbrPartition {
            boot_indicator: 0,
            starting_chs: Bytes([0x00, 0x02, 0x00]), // CHS of LBA 1
            os_type: PROTECTIVE,
            ending_chs: Bytes([0xFF, 0xFF, 0xFF]),
            starting_lba: Le::new(1),
            size_in_lba: Le::new((disk_sectors - 1).min(0xFFFF_FFFF) as u32),
        };
        Mbr {
            boot_code: Bytes::padded(&boot_code[..boot_code.len().min(CODE_LEN)])
                .expect("at most 440 bytes"),
            disk_signature: Hex::new(disk_signature),
            unknown: Le::new(0),
            partitions,
            signature: Bytes([0x55, 0xAA]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protective_mbr_layout() {
        let m = Mbr::protective(&[0x90; 10], 0x1234_5678, 4096).encode();
        assert_eq!(m.len(), 512);
        assert_eq!(&m[..10], &[0x90; 10]);
        assert!(m[10..440].iter().all(|b| *b == 0));
        assert_eq!(&m[440..444], &0x1234_5678u32.to_le_bytes());
        assert_eq!(
            &m[446..462],
            &[0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0, 0, 0, 0xFF, 0x0F, 0, 0]
        );
        assert!(m[462..510].iter().all(|b| *b == 0));
        assert_eq!(&m[510..], &[0x55, 0xAA]);
        let back = Mbr::decode(&m).unwrap();
        assert!(back.has_signature());
        assert_eq!(back.partitions[0].os_type, PROTECTIVE);
        assert!(back.partitions[0].in_use() && !back.partitions[1].in_use());
        assert_eq!(back.encode(), m);
        let names: Vec<String> = Mbr::fields().into_iter().map(|l| l.name).collect();
        assert!(names.contains(&"partitions[1].os_type".to_string()));
    }
}
