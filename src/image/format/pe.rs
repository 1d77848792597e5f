//! PE/COFF (the Microsoft format UEFI loads), as far as the project reads and extends it:
//! the headers that locate the section table, the section header record, and each section's
//! data by name. The linux payload appends a Unified Kernel Image's sections to systemd-stub
//! with it; `diff` compares two EFI binaries section by section.

use crate::image::format::record::{record, Bytes, Field, Le, Record};

/// Why bytes are not a PE image this module can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PeError(pub String);

record! {
    /// PE/COFF specification, "Section Table (Section Headers)": one 40-byte entry.
    pub struct SectionHeader("PE section header", 40) {
        /// Bytes 0-7: Name, NUL-padded.
        0 name: Bytes<8>,
        /// Bytes 8-11: VirtualSize.
        8 virtual_size: Le<u32>,
        /// Bytes 12-15: VirtualAddress (relative to the image base).
        12 virtual_address: Le<u32>,
        /// Bytes 16-19: SizeOfRawData (a multiple of FileAlignment).
        16 size_of_raw_data: Le<u32>,
        /// Bytes 20-23: PointerToRawData.
        20 pointer_to_raw_data: Le<u32>,
        /// Bytes 24-27: PointerToRelocations.
        24 pointer_to_relocations: Le<u32>,
        /// Bytes 28-31: PointerToLinenumbers.
        28 pointer_to_linenumbers: Le<u32>,
        /// Bytes 32-33: NumberOfRelocations.
        32 number_of_relocations: Le<u16>,
        /// Bytes 34-35: NumberOfLinenumbers.
        34 number_of_linenumbers: Le<u16>,
        /// Bytes 36-39: Characteristics.
        36 characteristics: Le<u32>,
    }
}

/// IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ, as ukify marks its sections.
pub const DATA_READ: u32 = 0x0000_0040 | 0x4000_0000;

/// Offsets in the PE headers (PE/COFF specification).
const E_LFANEW: usize = 0x3C;
const COFF_SECTIONS: usize = 4 + 2; // after "PE\0\0": Machine, then NumberOfSections
const COFF_OPT_SIZE: usize = 4 + 16;
const OPT: usize = 4 + 20;
const OPT_MAGIC_PE32PLUS: u16 = 0x20B;
const OPT_SECTION_ALIGNMENT: usize = 32;
const OPT_FILE_ALIGNMENT: usize = 36;
pub(crate) const OPT_SIZE_OF_IMAGE: usize = 56;
const OPT_SIZE_OF_HEADERS: usize = 60;
pub(crate) const OPT_CHECKSUM: usize = 64;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The stub's headers, as far as appending sections needs them.
pub(crate) struct Layout {
    /// Where NumberOfSections is.
    pub(crate) count_at: usize,
    /// Where the optional header starts.
    pub(crate) opt_at: usize,
    /// Where the section table starts.
    pub(crate) table_at: usize,
    pub(crate) sections: Vec<SectionHeader>,
    pub(crate) section_alignment: u32,
    pub(crate) file_alignment: u32,
    pub(crate) size_of_headers: u32,
}

pub(crate) fn layout(stub: &[u8]) -> Result<Layout, PeError> {
    let bad = |what: &str| PeError(what.to_string());
    if stub.get(..2) != Some(b"MZ") {
        return Err(bad("no MZ header"));
    }
    let pe = u32_at(stub, E_LFANEW).ok_or_else(|| bad("cut short"))? as usize;
    if stub.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err(bad("no PE signature"));
    }
    let count = u16_at(stub, pe + COFF_SECTIONS).ok_or_else(|| bad("cut short"))? as usize;
    let opt_size = u16_at(stub, pe + COFF_OPT_SIZE).ok_or_else(|| bad("cut short"))? as usize;
    let opt_at = pe + OPT;
    if u16_at(stub, opt_at) != Some(OPT_MAGIC_PE32PLUS) {
        return Err(bad("not PE32+"));
    }
    let field = |off: usize| u32_at(stub, opt_at + off).ok_or_else(|| bad("cut short"));
    let table_at = opt_at + opt_size;
    let mut sections = Vec::with_capacity(count.min(96));
    for i in 0..count {
        let at = table_at + i * SectionHeader::LEN;
        sections.push(
            SectionHeader::decode(stub.get(at..).unwrap_or_default())
                .map_err(|e| bad(&e.to_string()))?,
        );
    }
    let l = Layout {
        count_at: pe + COFF_SECTIONS,
        opt_at,
        table_at,
        sections,
        section_alignment: field(OPT_SECTION_ALIGNMENT)?,
        file_alignment: field(OPT_FILE_ALIGNMENT)?,
        size_of_headers: field(OPT_SIZE_OF_HEADERS)?,
    };
    if !l.section_alignment.is_power_of_two() || !l.file_alignment.is_power_of_two() {
        return Err(bad("alignments are not powers of two"));
    }
    Ok(l)
}

/// The sections of a PE image by name, with their data (for `diff` and tests).
pub fn sections(pe: &[u8]) -> Result<Vec<(String, &[u8])>, PeError> {
    let l = layout(pe)?;
    l.sections
        .iter()
        .map(|s| {
            let name = String::from_utf8_lossy(&s.name.0)
                .trim_end_matches('\0')
                .to_string();
            let at = s.pointer_to_raw_data.get() as usize;
            let len = s.virtual_size.get().min(s.size_of_raw_data.get()) as usize;
            let data = pe
                .get(at..at.saturating_add(len))
                .ok_or_else(|| PeError(format!("section {name} reaches past the end")))?;
            Ok((name, data))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_header_layout() {
        // PE/COFF: Name at 0, VirtualSize 8, VirtualAddress 12, SizeOfRawData 16,
        // PointerToRawData 20, … Characteristics 36.
        let h = SectionHeader {
            name: Bytes::padded(b".linux").unwrap(),
            virtual_size: Le::new(0x1234),
            virtual_address: Le::new(0x20000),
            size_of_raw_data: Le::new(0x1400),
            pointer_to_raw_data: Le::new(0x600),
            pointer_to_relocations: Le::new(0),
            pointer_to_linenumbers: Le::new(0),
            number_of_relocations: Le::new(0),
            number_of_linenumbers: Le::new(0),
            characteristics: Le::new(DATA_READ),
        };
        let b = h.encode();
        assert_eq!(&b[0..8], b".linux\0\0");
        assert_eq!(&b[8..12], [0x34, 0x12, 0, 0]);
        assert_eq!(&b[12..16], [0, 0, 2, 0]);
        assert_eq!(&b[16..20], [0, 0x14, 0, 0]);
        assert_eq!(&b[20..24], [0, 6, 0, 0]);
        assert_eq!(&b[36..40], [0x40, 0, 0, 0x40]);
        assert_eq!(SectionHeader::decode(&b).unwrap(), h);
    }
}
