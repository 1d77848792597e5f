//! A Unified Kernel Image, as systemd's `ukify` lays one out: systemd-stub (a PE32+ EFI
//! application) with the sections `.osrel`, `.cmdline`, `.initrd` and `.linux` appended —
//! each after the last one, its virtual address aligned to the stub's SectionAlignment, its
//! file offset to FileAlignment — and SizeOfImage and the section count updated. The stub
//! finds the kernel, initrd and command line by section name (`systemd-stub(7)`).

use crate::image::record::{record, Bytes, Field, Le, Record};

use super::LinuxError;

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
const OPT_SIZE_OF_IMAGE: usize = 56;
const OPT_SIZE_OF_HEADERS: usize = 60;
const OPT_CHECKSUM: usize = 64;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The stub's headers, as far as appending sections needs them.
struct Layout {
    /// Where NumberOfSections is.
    count_at: usize,
    /// Where the optional header starts.
    opt_at: usize,
    /// Where the section table starts.
    table_at: usize,
    sections: Vec<SectionHeader>,
    section_alignment: u32,
    file_alignment: u32,
    size_of_headers: u32,
}

fn layout(stub: &[u8]) -> Result<Layout, LinuxError> {
    let bad = |what: &str| LinuxError::Stub(what.to_string());
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

/// Builds the UKI: `stub` with the sections appended in ukify's order.
pub fn build(
    stub: &[u8],
    osrel: &[u8],
    cmdline: &[u8],
    initrd: &[u8],
    linux: &[u8],
) -> Result<Vec<u8>, LinuxError> {
    let mut l = layout(stub)?;
    let new = [
        (".osrel", osrel),
        (".cmdline", cmdline),
        (".initrd", initrd),
        (".linux", linux),
    ];
    let room = l.size_of_headers as usize;
    if l.table_at + (l.sections.len() + new.len()) * SectionHeader::LEN > room {
        return Err(LinuxError::Stub(format!(
            "no room for {} more section headers",
            new.len()
        )));
    }
    let align = |v: u64, a: u32| v.next_multiple_of(u64::from(a));
    let mut vend = l
        .sections
        .iter()
        .map(|s| u64::from(s.virtual_address.get()) + u64::from(s.virtual_size.get()))
        .max()
        .unwrap_or(u64::from(l.size_of_headers));
    let mut fend = l
        .sections
        .iter()
        .map(|s| u64::from(s.pointer_to_raw_data.get()) + u64::from(s.size_of_raw_data.get()))
        .max()
        .unwrap_or(u64::from(l.size_of_headers))
        .max(stub.len() as u64);
    let mut out = stub.to_vec();
    out.resize(align(fend, l.file_alignment) as usize, 0);
    fend = out.len() as u64;
    for (name, data) in new {
        let va = align(vend, l.section_alignment);
        let raw = align(data.len() as u64, l.file_alignment);
        let too_big = || LinuxError::Stub(format!("section {name} passes 4 GiB"));
        let h = SectionHeader {
            name: Bytes::padded(name.as_bytes()).ok_or_else(too_big)?,
            virtual_size: Le::new(u32::try_from(data.len()).map_err(|_| too_big())?),
            virtual_address: Le::new(u32::try_from(va).map_err(|_| too_big())?),
            size_of_raw_data: Le::new(u32::try_from(raw).map_err(|_| too_big())?),
            pointer_to_raw_data: Le::new(u32::try_from(fend).map_err(|_| too_big())?),
            pointer_to_relocations: Le::new(0),
            pointer_to_linenumbers: Le::new(0),
            number_of_relocations: Le::new(0),
            number_of_linenumbers: Le::new(0),
            characteristics: Le::new(DATA_READ),
        };
        out.extend_from_slice(data);
        out.resize((fend + raw) as usize, 0);
        fend += raw;
        vend = va + data.len() as u64;
        l.sections.push(h);
    }
    for (i, s) in l.sections.iter().enumerate() {
        let at = l.table_at + i * SectionHeader::LEN;
        s.write(&mut out[at..at + SectionHeader::LEN]);
    }
    out[l.count_at..l.count_at + 2].copy_from_slice(&(l.sections.len() as u16).to_le_bytes());
    let image = u32::try_from(align(vend, l.section_alignment))
        .map_err(|_| LinuxError::Stub("the image passes 4 GiB".into()))?;
    put32(&mut out, l.opt_at + OPT_SIZE_OF_IMAGE, image);
    // Firmware does not check it for applications, and ukify leaves it zero too.
    put32(&mut out, l.opt_at + OPT_CHECKSUM, 0);
    Ok(out)
}

/// The sections of a PE image by name, with their data (for tests and `inspect`).
pub fn sections(pe: &[u8]) -> Result<Vec<(String, &[u8])>, LinuxError> {
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
                .ok_or_else(|| LinuxError::Stub(format!("section {name} reaches past the end")))?;
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

    #[test]
    fn a_stub_without_room_is_an_error() {
        let stub = crate::payload::pe::pe32plus(&[0xC3; 16], 0x1000).unwrap();
        assert!(build(&stub, b"", b"", b"", b"").is_err());
        assert!(build(b"MZ", b"", b"", b"", b"").is_err());
        assert!(build(&stub[..100], b"", b"", b"", b"").is_err());
    }

    #[test]
    fn sections_append_after_the_stub_and_read_back_with_object() {
        // The pinned systemd-stub, from the payload root `isoproof payload fetch` makes.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("payload/root")
            .join(super::super::root::EFI_STUB);
        let stub = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; the payload root is made by `isoproof payload fetch` (`just payload`)",
                path.display()
            )
        });
        let uki = build(&stub, b"ID=nixos\n", b"quiet", &[1; 700], &[2; 5000]).unwrap();
        let got = sections(&uki).unwrap();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            &names[names.len() - 4..],
            [".osrel", ".cmdline", ".initrd", ".linux"]
        );
        assert_eq!(got[got.len() - 1].1, &[2; 5000][..]);
        assert_eq!(got[got.len() - 2].1, &[1; 700][..]);
        // An independent reader agrees on every section, its address and its bytes.
        use object::read::pe::PeFile64;
        use object::{Object, ObjectSection};
        let f = PeFile64::parse(&uki[..]).unwrap();
        let mut last_end = 0;
        for (name, data) in [
            (".osrel", &b"ID=nixos\n"[..]),
            (".cmdline", b"quiet"),
            (".initrd", &[1; 700]),
            (".linux", &[2; 5000]),
        ] {
            let s = f.section_by_name(name).unwrap();
            assert_eq!(&s.data().unwrap()[..data.len()], data, "{name}");
            assert!(s.address() >= last_end, "{name} overlaps the one before");
            last_end = s.address() + s.size();
        }
        assert_eq!(
            uki,
            build(&stub, b"ID=nixos\n", b"quiet", &[1; 700], &[2; 5000]).unwrap()
        );
    }
}
