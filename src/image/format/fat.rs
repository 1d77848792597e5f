//! FAT12/16 (Microsoft's FAT specification) for the UEFI ESP: the records — boot sector with
//! its BIOS parameter block, directory entry and long-name (LFN) entry — with their encoders,
//! decoders and layout tests, the FAT table's entry packing and the 8.3 name rules both
//! sides share. The writer is `image::write::fat`, the reader `image::read::fat`.

use super::record::{record, Bytes, Hex, Le};
use crate::image::clock::Civil;

/// FAT date and time words (Microsoft FAT spec, "Date and Time Formats") of a civil time;
/// FAT cannot go below 1980, so earlier times are written as 1980-01-01 00:00:00.
pub fn date_time(c: &Civil) -> (u16, u16) {
    if c.year < 1980 {
        return (0x0021, 0);
    }
    let date =
        (((c.year - 1980).min(127) as u16) << 9) | (u16::from(c.month) << 5) | u16::from(c.day);
    let time = (u16::from(c.hour) << 11) | (u16::from(c.minute) << 5) | u16::from(c.second / 2);
    (date, time)
}

/// Entry `c` of a FAT (FAT spec, "FAT Data Structure"): 12 bits packed two to three bytes
/// (an even entry in the low 12 bits of its 16-bit word, an odd one in the high 12), or 16
/// bits; `None` past the table's end.
pub fn entry(table: &[u8], fat12: bool, c: usize) -> Option<u16> {
    let word = |o: usize| Some(u16::from_le_bytes([*table.get(o)?, *table.get(o + 1)?]));
    if fat12 {
        let w = word(c + c / 2)?;
        Some(if c % 2 == 0 { w & 0x0FFF } else { w >> 4 })
    } else {
        word(2 * c)
    }
}

/// Sets entry `c` of a FAT to `v` (its low 12 bits for FAT12), leaving the neighbouring
/// entry's bits as they are. The table must hold the entry.
pub fn set_entry(table: &mut [u8], fat12: bool, c: usize, v: u16) {
    if fat12 {
        let o = c + c / 2;
        let w = u16::from_le_bytes([table[o], table[o + 1]]);
        let w = if c % 2 == 0 {
            (w & 0xF000) | (v & 0x0FFF)
        } else {
            (w & 0x000F) | ((v & 0x0FFF) << 4)
        };
        table[o..o + 2].copy_from_slice(&w.to_le_bytes());
    } else {
        table[2 * c..2 * c + 2].copy_from_slice(&v.to_le_bytes());
    }
}

/// Directory entry attributes (FAT spec, "Directory Structure").
pub mod attr {
    /// A volume label.
    pub const VOLUME_ID: u8 = 0x08;
    /// A directory.
    pub const DIRECTORY: u8 = 0x10;
    /// Changed since the last backup (every file isoproof writes).
    pub const ARCHIVE: u8 = 0x20;
    /// A long-name entry (read-only, hidden, system and volume ID together).
    pub const LONG_NAME: u8 = 0x0F;
}

/// The first byte of a free directory entry.
pub const FREE: u8 = 0xE5;

record! {
    /// FAT spec, "BPB and BS structure" with the FAT12/16 extended fields: the first sector.
    pub struct BootSector("FAT boot sector", 512) {
        /// Bytes 0-2: BS_jmpBoot.
        0 jump_boot: Bytes<3>,
        /// Bytes 3-10: BS_OEMName.
        3 oem_name: Bytes<8>,
        /// Bytes 11-12: BPB_BytsPerSec.
        11 bytes_per_sector: Le<u16>,
        /// Byte 13: BPB_SecPerClus.
        13 sectors_per_cluster: u8,
        /// Bytes 14-15: BPB_RsvdSecCnt.
        14 reserved_sectors: Le<u16>,
        /// Byte 16: BPB_NumFATs.
        16 fat_count: u8,
        /// Bytes 17-18: BPB_RootEntCnt.
        17 root_entries: Le<u16>,
        /// Bytes 19-20: BPB_TotSec16 (0 when BPB_TotSec32 holds the count).
        19 total_sectors_16: Le<u16>,
        /// Byte 21: BPB_Media.
        21 media: u8,
        /// Bytes 22-23: BPB_FATSz16.
        22 fat_sectors: Le<u16>,
        /// Bytes 24-25: BPB_SecPerTrk.
        24 sectors_per_track: Le<u16>,
        /// Bytes 26-27: BPB_NumHeads.
        26 heads: Le<u16>,
        /// Bytes 28-31: BPB_HiddSec.
        28 hidden_sectors: Le<u32>,
        /// Bytes 32-35: BPB_TotSec32.
        32 total_sectors_32: Le<u32>,
        /// Byte 36: BS_DrvNum.
        36 drive_number: u8,
        /// Byte 37: BS_Reserved1.
        37 reserved_1: u8,
        /// Byte 38: BS_BootSig (0x29: the next three fields are present).
        38 boot_signature: u8,
        /// Bytes 39-42: BS_VolID.
        39 volume_id: Hex<u32>,
        /// Bytes 43-53: BS_VolLab.
        43 volume_label: Bytes<11>,
        /// Bytes 54-61: BS_FilSysType (informational).
        54 fs_type: Bytes<8>,
        /// Bytes 62-509: boot code.
        62 boot_code: Bytes<448>,
        /// Bytes 510-511: signature 0x55 0xAA.
        510 signature: Bytes<2>,
    }
}

record! {
    /// FAT spec, "Directory Structure": a short (8.3) directory entry.
    pub struct DirEntry("FAT directory entry", 32) {
        /// Bytes 0-10: DIR_Name, 8 + 3 space-padded.
        0 name: Bytes<11>,
        /// Byte 11: DIR_Attr ([`attr`]).
        11 attributes: u8,
        /// Byte 12: DIR_NTRes (Windows NT: 0x08 lower-case base, 0x10 lower-case extension).
        12 nt_reserved: u8,
        /// Byte 13: DIR_CrtTimeTenth.
        13 creation_tenths: u8,
        /// Bytes 14-15: DIR_CrtTime.
        14 creation_time: Le<u16>,
        /// Bytes 16-17: DIR_CrtDate.
        16 creation_date: Le<u16>,
        /// Bytes 18-19: DIR_LstAccDate.
        18 access_date: Le<u16>,
        /// Bytes 20-21: DIR_FstClusHI (zero on FAT12/16).
        20 first_cluster_high: Le<u16>,
        /// Bytes 22-23: DIR_WrtTime.
        22 write_time: Le<u16>,
        /// Bytes 24-25: DIR_WrtDate.
        24 write_date: Le<u16>,
        /// Bytes 26-27: DIR_FstClusLO.
        26 first_cluster: Le<u16>,
        /// Bytes 28-31: DIR_FileSize.
        28 file_size: Le<u32>,
    }
}

record! {
    /// FAT spec, "Long Directory Entries": 13 UTF-16 units of a long name.
    pub struct LfnEntry("FAT long-name entry", 32) {
        /// Byte 0: LDIR_Ord (0x40 marks the last, which comes first).
        0 order: u8,
        /// Bytes 1-10: LDIR_Name1, units 1-5.
        1 name_1: Bytes<10>,
        /// Byte 11: LDIR_Attr (0x0F).
        11 attributes: u8,
        /// Byte 12: LDIR_Type (0).
        12 kind: u8,
        /// Byte 13: LDIR_Chksum, of the short name.
        13 checksum: u8,
        /// Bytes 14-25: LDIR_Name2, units 6-11.
        14 name_2: Bytes<12>,
        /// Bytes 26-27: LDIR_FstClusLO (0).
        26 first_cluster: Le<u16>,
        /// Bytes 28-31: LDIR_Name3, units 12-13.
        28 name_3: Bytes<4>,
    }
}

impl LfnEntry {
    /// The 13 units this entry holds (terminator and padding included).
    pub fn units(&self) -> [u16; 13] {
        let mut b = Vec::with_capacity(26);
        b.extend_from_slice(&self.name_1.0);
        b.extend_from_slice(&self.name_2.0);
        b.extend_from_slice(&self.name_3.0);
        std::array::from_fn(|i| u16::from_le_bytes([b[2 * i], b[2 * i + 1]]))
    }

    /// The entry holding `units`, in order `order`, for a short name with `checksum`.
    pub fn new(order: u8, units: &[u16; 13], checksum: u8) -> LfnEntry {
        let b: Vec<u8> = units.iter().flat_map(|u| u.to_le_bytes()).collect();
        LfnEntry {
            order,
            name_1: Bytes::padded(&b[..10]).expect("10 bytes"),
            attributes: attr::LONG_NAME,
            kind: 0,
            checksum,
            name_2: Bytes::padded(&b[10..22]).expect("12 bytes"),
            first_cluster: Le::new(0),
            name_3: Bytes::padded(&b[22..26]).expect("4 bytes"),
        }
    }
}

/// The LFN checksum of a short name (FAT spec "ChkSum").
pub(crate) fn lfn_checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b))
}

#[cfg(test)]
mod tests {
    use crate::image::clock::{Clock, DEFAULT_EPOCH};

    #[test]
    fn fat12_entries_pack_two_to_three_bytes() {
        // FAT spec: entries 0x123 and 0x456 are stored as 23 61 45.
        let mut t = vec![0u8; 6];
        set_entry(&mut t, true, 0, 0x123);
        set_entry(&mut t, true, 1, 0x456);
        assert_eq!(&t[..3], &[0x23, 0x61, 0x45]);
        assert_eq!(entry(&t, true, 0), Some(0x123));
        assert_eq!(entry(&t, true, 1), Some(0x456));
        set_entry(&mut t, true, 2, 0xFFF);
        assert_eq!(&t[3..5], &[0xFF, 0x0F]);
        assert_eq!(entry(&t, true, 1), Some(0x456));
        assert_eq!(entry(&t, true, 4), None);
        let mut t16 = vec![0u8; 4];
        set_entry(&mut t16, false, 1, 0xFFF8);
        assert_eq!(t16, [0, 0, 0xF8, 0xFF]);
        assert_eq!(entry(&t16, false, 1), Some(0xFFF8));
    }

    #[test]
    fn fat_words() {
        let words = |epoch| date_time(&Clock::at(epoch).civil());
        // 1980-01-01 00:00:00 → date 0x0021 (day 1, month 1, year 0), time 0.
        assert_eq!(words(DEFAULT_EPOCH), (0x0021, 0));
        // Before 1980 clamps to 1980.
        assert_eq!(words(0), (0x0021, 0));
        // 2024-02-29 12:34:56 → year 44, month 2, day 29; 12:34:28 (2-second units).
        assert_eq!(
            words(1_709_210_096),
            ((44 << 9) | (2 << 5) | 29, (12 << 11) | (34 << 5) | 28)
        );
    }

    use super::*;
    use crate::image::format::record::Record;

    #[test]
    fn record_layouts() {
        let mut e = DirEntry::decode(&[0; 32]).unwrap();
        e.name = Bytes(*b"BOOTX64 EFI");
        e.attributes = attr::ARCHIVE;
        e.first_cluster = Le::new(3);
        e.file_size = Le::new(0x1234);
        let b = e.encode();
        assert_eq!(&b[..11], b"BOOTX64 EFI");
        assert_eq!(b[11], 0x20);
        assert_eq!(&b[26..28], &[3, 0]);
        assert_eq!(&b[28..32], &[0x34, 0x12, 0, 0]);
        let mut units = [0xFFFF; 13];
        units[..3].copy_from_slice(&[u16::from(b'a'), u16::from(b'b'), 0]);
        let l = LfnEntry::new(0x41, &units, 0x5A);
        let lb = l.encode();
        assert_eq!(&lb[..5], &[0x41, b'a', 0, b'b', 0]);
        assert_eq!(&lb[5..7], &[0, 0]);
        assert_eq!(&lb[11..14], &[0x0F, 0, 0x5A]);
        assert_eq!(&lb[28..32], &[0xFF; 4]);
        assert_eq!(LfnEntry::decode(&lb).unwrap().units(), units);
        assert_eq!(BootSector::fields().len(), 22);
    }
}
