//! The Apple Partition Map that `xorriso -isohybrid-apm-hfsplus` (and hybrid Mac images)
//! put into the system area: a Driver Descriptor Map in block 0 (`ER`, block size, block
//! count; Inside Macintosh: Devices, 3-12) and a Partition Map Entry (`PM`, 3-13) per
//! block after it. Read, named and shown; never written.

use crate::image::format::record::{record, Be, Bytes};

/// Signature of the driver descriptor map.
pub const DDM_SIGNATURE: &[u8; 2] = b"ER";
/// Signature of a partition map entry.
pub const ENTRY_SIGNATURE: &[u8; 2] = b"PM";
/// At most this many entries are read.
pub const MAX_ENTRIES: u32 = 64;

record! {
    /// Block 0: the Driver Descriptor Map (the first 8 bytes; drivers are not read).
    pub struct DriverDescriptorMap("Apple driver descriptor map", 8) {
        /// Bytes 0-1: sbSig, `ER`.
        0 signature: Bytes<2>,
        /// Bytes 2-3: sbBlkSize, the map's block size.
        2 block_size: Be<u16>,
        /// Bytes 4-7: sbBlkCount, blocks on the device.
        4 block_count: Be<u32>,
    }
}

record! {
    /// One Partition Map Entry, at the start of blocks 1..=map_entries.
    pub struct PartitionMapEntry("Apple partition map entry", 136) {
        /// Bytes 0-1: pmSig, `PM`.
        0 signature: Bytes<2>,
        /// Bytes 2-3: pmSigPad.
        2 pad: Be<u16>,
        /// Bytes 4-7: pmMapBlkCnt, entries in the map.
        4 map_entries: Be<u32>,
        /// Bytes 8-11: pmPyPartStart, first block of the partition.
        8 start: Be<u32>,
        /// Bytes 12-15: pmPartBlkCnt, its blocks.
        12 blocks: Be<u32>,
        /// Bytes 16-47: pmPartName.
        16 name: Bytes<32>,
        /// Bytes 48-79: pmParType (`Apple_partition_map`, `Apple_HFS`, ...).
        48 partition_type: Bytes<32>,
        /// Bytes 80-83: pmLgDataStart.
        80 data_start: Be<u32>,
        /// Bytes 84-87: pmDataCnt.
        84 data_blocks: Be<u32>,
        /// Bytes 88-91: pmPartStatus.
        88 status: Be<u32>,
        /// Bytes 92-135: boot code location, size, entry, checksum and processor.
        92 boot: Bytes<44>,
    }
}

/// A NUL-padded name as text.
pub fn text(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl PartitionMapEntry {
    /// Whether the entry carries its signature.
    pub fn has_signature(&self) -> bool {
        &self.signature.0 == ENTRY_SIGNATURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::format::record::Record;

    #[test]
    fn entry_layout_from_inside_macintosh() {
        let mut b = vec![0u8; 136];
        b[0..2].copy_from_slice(b"PM");
        b[4..8].copy_from_slice(&3u32.to_be_bytes());
        b[8..12].copy_from_slice(&1u32.to_be_bytes());
        b[12..16].copy_from_slice(&3u32.to_be_bytes());
        b[16..26].copy_from_slice(b"Apple\0\0\0\0\0");
        b[48..67].copy_from_slice(b"Apple_partition_map");
        b[88..92].copy_from_slice(&0x33u32.to_be_bytes());
        let e = PartitionMapEntry::decode(&b).unwrap();
        assert!(e.has_signature());
        assert_eq!(e.map_entries.get(), 3);
        assert_eq!((e.start.get(), e.blocks.get()), (1, 3));
        assert_eq!(text(&e.name.0), "Apple");
        assert_eq!(text(&e.partition_type.0), "Apple_partition_map");
        assert_eq!(e.status.get(), 0x33);
        assert_eq!(e.encode(), b);
        let d = DriverDescriptorMap::decode(b"ER\x08\x00\x00\x00\x10\x00").unwrap();
        assert_eq!((d.block_size.get(), d.block_count.get()), (2048, 4096));
        assert!(PartitionMapEntry::decode(&b[..100]).is_err());
    }
}
