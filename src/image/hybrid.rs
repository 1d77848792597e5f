//! isohybrid: the MBR and GPT that make the image a disk as well as a CD. The MBR is
//! protective (one 0xEE entry) and keeps its 440 bytes of boot code room; the GPT (UEFI 2.10,
//! chapter 5) has a primary header at LBA 1 with its entries at LBA 2–33 and a backup at the
//! end of the image, and two partitions that do not overlap: the ISO 9660 data and the ESP.
//! Every GUID and the MBR disk signature are derived from the image's content digest.

use sha2::{Digest, Sha256};

/// 512-byte logical blocks of the disk view.
pub const LBA: u64 = 512;
/// Sectors of one cylinder of the 64-head, 32-sector geometry isohybrid uses (1 MiB).
pub const CYLINDER_SECTORS: u64 = 64 * 32;
/// Boot code room of the MBR (the disk signature follows at byte 440).
pub const MBR_CODE_LEN: usize = 440;
/// Partition entries in the array (and so 32 sectors of 128-byte entries).
pub const ENTRIES: usize = 128;
/// Sectors taken by the entry array.
pub const ENTRY_SECTORS: u64 = (ENTRIES as u64 * 128) / LBA;

/// `EFI System Partition` type GUID, C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
pub const ESP_TYPE: [u8; 16] = guid(
    0xC12A_7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);
/// `Microsoft basic data` type GUID, EBD0A0A2-B9E5-4433-87C0-68B6B72699C7.
pub const BASIC_DATA_TYPE: [u8; 16] = guid(
    0xEBD0_A0A2,
    0xB9E5,
    0x4433,
    [0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7],
);

/// A GUID in its on-disk (mixed-endian) form.
pub const fn guid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// A version-8 (custom) UUID in on-disk form from a digest and a purpose label: the same
/// content gives the same GUIDs, different purposes different ones.
pub fn derived_guid(digest: &[u8; 32], purpose: &str) -> [u8; 16] {
    let h = Sha256::new()
        .chain_update(digest)
        .chain_update(purpose.as_bytes())
        .finalize();
    let mut u = [0u8; 16];
    u.copy_from_slice(&h[..16]);
    u[6] = (u[6] & 0x0F) | 0x80; // version 8
    u[8] = (u[8] & 0x3F) | 0x80; // RFC 4122 variant
                                 // The UUID's fields are big-endian; GPT stores the first three little-endian.
    guid(
        u32::from_be_bytes([u[0], u[1], u[2], u[3]]),
        u16::from_be_bytes([u[4], u[5]]),
        u16::from_be_bytes([u[6], u[7]]),
        [u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]],
    )
}

/// One GPT partition.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    /// Type GUID (on-disk form).
    pub type_guid: [u8; 16],
    /// Unique GUID (on-disk form).
    pub guid: [u8; 16],
    /// First LBA.
    pub first: u64,
    /// Last LBA (inclusive).
    pub last: u64,
    /// Name (UTF-16LE, at most 36 units).
    pub name: String,
}

/// The whole partitioning of a hybrid image.
#[derive(Clone, Debug, PartialEq)]
pub struct Gpt {
    /// The image size in 512-byte sectors (the backup header is the last one).
    pub disk_sectors: u64,
    /// Disk GUID (on-disk form).
    pub disk_guid: [u8; 16],
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
        let mut a = vec![0u8; ENTRIES * 128];
        for (i, p) in self.partitions.iter().enumerate() {
            let e = &mut a[i * 128..i * 128 + 128];
            e[0..16].copy_from_slice(&p.type_guid);
            e[16..32].copy_from_slice(&p.guid);
            e[32..40].copy_from_slice(&p.first.to_le_bytes());
            e[40..48].copy_from_slice(&p.last.to_le_bytes());
            for (j, u) in p.name.encode_utf16().take(36).enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&u.to_le_bytes());
            }
        }
        a
    }

    /// A header (92 bytes in a 512-byte sector): primary (`backup == false`) or backup.
    pub fn header(&self, backup: bool, entries_crc: u32) -> [u8; 512] {
        let last = self.disk_sectors - 1;
        let (my, alt, entries_lba) = if backup {
            (last, 1, last - ENTRY_SECTORS)
        } else {
            (1, last, 2)
        };
        let mut h = [0u8; 512];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes()); // revision 1.0
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[24..32].copy_from_slice(&my.to_le_bytes());
        h[32..40].copy_from_slice(&alt.to_le_bytes());
        h[40..48].copy_from_slice(&Self::first_usable().to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable().to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&(ENTRIES as u32).to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        // The header CRC is computed with its own field zeroed.
        let crc = crc32fast::hash(&h[..92]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The protective MBR (UEFI 2.10, 5.2.3) over `boot_code` (at most 440 bytes).
    pub fn mbr(&self, boot_code: &[u8]) -> [u8; 512] {
        let mut m = [0u8; 512];
        let n = boot_code.len().min(440);
        m[..n].copy_from_slice(&boot_code[..n]);
        m[440..444].copy_from_slice(&self.mbr_signature.to_le_bytes());
        let e = &mut m[446..462];
        e[0] = 0x00; // not active
        e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
        e[4] = 0xEE;
        e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        e[8..12].copy_from_slice(&1u32.to_le_bytes());
        let size = (self.disk_sectors - 1).min(0xFFFF_FFFF) as u32;
        e[12..16].copy_from_slice(&size.to_le_bytes());
        m[510] = 0x55;
        m[511] = 0xAA;
        m
    }

    /// Sectors 0..=33: the MBR, the primary header and the entries.
    pub fn head(&self, boot_code: &[u8]) -> Vec<u8> {
        let entries = self.entries();
        let crc = crc32fast::hash(&entries);
        let mut out = Vec::with_capacity(34 * 512);
        out.extend_from_slice(&self.mbr(boot_code));
        out.extend_from_slice(&self.header(false, crc));
        out.extend_from_slice(&entries);
        out
    }

    /// The last 33 sectors: backup entries, then the backup header.
    pub fn tail(&self) -> Vec<u8> {
        let entries = self.entries();
        let crc = crc32fast::hash(&entries);
        let mut out = entries;
        out.extend_from_slice(&self.header(true, crc));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpt() -> Gpt {
        Gpt {
            disk_sectors: 4096,
            disk_guid: derived_guid(&[7; 32], "disk"),
            mbr_signature: 0x1234_5678,
            partitions: vec![
                Partition {
                    type_guid: BASIC_DATA_TYPE,
                    guid: [1; 16],
                    first: 64,
                    last: 2047,
                    name: "ISO9660".into(),
                },
                Partition {
                    type_guid: ESP_TYPE,
                    guid: [2; 16],
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
            ESP_TYPE,
            [
                0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E,
                0xC9, 0x3B
            ]
        );
        let g = derived_guid(&[0; 32], "x");
        assert_eq!(
            g[7] >> 4,
            8,
            "version nibble (little-endian field 3, high byte)"
        );
        assert_eq!(g[8] & 0xC0, 0x80, "variant");
        assert_ne!(derived_guid(&[0; 32], "x"), derived_guid(&[0; 32], "y"));
    }

    #[test]
    fn header_crc_with_field_zeroed() {
        let g = gpt();
        let entries = g.entries();
        let crc = crc32fast::hash(&entries);
        let h = g.header(false, crc);
        assert_eq!(&h[0..8], b"EFI PART");
        let mut copy = h[..92].to_vec();
        let stored = u32::from_le_bytes(copy[16..20].try_into().unwrap());
        copy[16..20].fill(0);
        assert_eq!(crc32fast::hash(&copy), stored);
        assert_eq!(u64::from_le_bytes(h[24..32].try_into().unwrap()), 1);
        assert_eq!(u64::from_le_bytes(h[32..40].try_into().unwrap()), 4095);
        assert_eq!(u64::from_le_bytes(h[72..80].try_into().unwrap()), 2);
        let b = g.header(true, crc);
        assert_eq!(u64::from_le_bytes(b[24..32].try_into().unwrap()), 4095);
        assert_eq!(u64::from_le_bytes(b[72..80].try_into().unwrap()), 4095 - 32);
        assert_eq!(u32::from_le_bytes(h[88..92].try_into().unwrap()), crc);
    }

    #[test]
    fn entry_and_mbr_layout() {
        let g = gpt();
        let e = g.entries();
        assert_eq!(&e[0..16], &BASIC_DATA_TYPE);
        assert_eq!(u64::from_le_bytes(e[32..40].try_into().unwrap()), 64);
        assert_eq!(&e[56..60], &[b'I', 0, b'S', 0]);
        let m = g.mbr(&[0x90; 10]);
        assert_eq!(m[0], 0x90);
        assert_eq!(&m[440..444], &0x1234_5678u32.to_le_bytes());
        assert_eq!(m[446 + 4], 0xEE);
        assert_eq!(u32::from_le_bytes(m[454..458].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(m[458..462].try_into().unwrap()), 4095);
        assert_eq!(&m[510..], &[0x55, 0xAA]);
        assert_eq!(g.head(&[]).len(), 34 * 512);
        assert_eq!(g.tail().len(), 33 * 512);
    }
}
