//! PE32+ (the Microsoft PE/COFF format UEFI loads): wraps position-independent x86-64 code
//! as an EFI application with object's PE writer.

use object::pe;
use object::write::pe::{NtHeaders, Writer};

use super::PayloadError;

/// Wraps position-independent code into a PE32+ EFI application: one text section, an
/// empty relocation section, timestamp 0 (so the same code gives the same file).
pub fn pe32plus(code: &[u8], text_rva: u64) -> Result<Vec<u8>, PayloadError> {
    let mut out = Vec::new();
    let mut w = Writer::new(true, 0x1000, 0x200, &mut out);
    w.reserve_dos_header_and_stub();
    w.reserve_nt_headers(16);
    w.reserve_section_headers(2);
    let text = w.reserve_text_section(code.len() as u32);
    if u64::from(text.virtual_address) != text_rva {
        return Err(PayloadError::PeLayout {
            want: text_rva,
            got: u64::from(text.virtual_address),
        });
    }
    w.reserve_reloc_section();
    w.write_dos_header_and_stub()?;
    w.write_nt_headers(NtHeaders {
        machine: pe::IMAGE_FILE_MACHINE_AMD64,
        time_date_stamp: 0,
        characteristics: pe::FileFlags(
            pe::IMAGE_FILE_EXECUTABLE_IMAGE.0 | pe::IMAGE_FILE_LARGE_ADDRESS_AWARE.0,
        ),
        major_linker_version: 0,
        minor_linker_version: 0,
        address_of_entry_point: text.virtual_address,
        image_base: 0x1000_0000,
        major_operating_system_version: 0,
        minor_operating_system_version: 0,
        major_image_version: 0,
        minor_image_version: 0,
        major_subsystem_version: 0,
        minor_subsystem_version: 0,
        subsystem: pe::IMAGE_SUBSYSTEM_EFI_APPLICATION,
        dll_characteristics: pe::DllFlags(0),
        size_of_stack_reserve: 0x10000,
        size_of_stack_commit: 0x1000,
        size_of_heap_reserve: 0,
        size_of_heap_commit: 0,
    });
    w.write_section_headers();
    w.write_section(text.file_offset, code);
    w.write_reloc_section();
    Ok(out)
}
