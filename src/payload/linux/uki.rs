//! A Unified Kernel Image, as systemd's `ukify` lays one out: systemd-stub (a PE32+ EFI
//! application) with the sections `.osrel`, `.cmdline`, `.initrd` and `.linux` appended —
//! each after the last one, its virtual address aligned to the stub's SectionAlignment, its
//! file offset to FileAlignment — and SizeOfImage and the section count updated. The stub
//! finds the kernel, initrd and command line by section name (`systemd-stub(7)`).

use crate::image::format::pe::{
    layout, put32, SectionHeader, DATA_READ, OPT_CHECKSUM, OPT_SIZE_OF_IMAGE,
};
use crate::image::format::record::{Bytes, Field, Le};

use super::LinuxError;

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |x| u32::from_le_bytes(x.try_into().unwrap_or_default()))
}

/// Builds the UKI: `stub` with the sections appended in ukify's order.
pub fn build(
    stub: &[u8],
    osrel: &[u8],
    cmdline: &[u8],
    initrd: &[u8],
    linux: &[u8],
) -> Result<Vec<u8>, LinuxError> {
    let mut l = layout(stub).map_err(|e| LinuxError::Stub(e.to_string()))?;
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
        .unwrap_or(u64::from(l.size_of_headers));
    // What follows the stub's sections (its COFF symbol table: no loader reads it) is left
    // out, and the header's pointer to it cleared: between sections it would be a gap that
    // Authenticode verifiers hash differently, so a signed UKI would not verify everywhere.
    let mut out = stub[..(fend as usize).min(stub.len())].to_vec();
    let coff = l.count_at - 2;
    if u64::from(u32_at(&out, coff + 8)) >= fend {
        put32(&mut out, coff + 8, 0);
        put32(&mut out, coff + 12, 0);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let got = crate::image::format::pe::sections(&uki).unwrap();
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
