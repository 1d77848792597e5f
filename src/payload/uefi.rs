//! The UEFI payload: an x86-64 application for `\\EFI\\BOOT\\BOOTX64.EFI`.

use iced_x86::code_asm::*;
use iced_x86::IcedError;

use super::asm::{halt, lea_label, putc, puts};
use super::pe::pe32plus;
use super::{Kind, PayloadError, Report, Via, DEBUG_EXIT_PORT, DEBUG_EXIT_VALUE, ESP_PROBE_FILE};

/// The UEFI application: `efi_main(ImageHandle, SystemTable)` prints the report line on COM1
/// (boot services still own the machine, so port I/O is allowed) with the CRC-32 of
/// [`ESP_PROBE_FILE`] read through `EFI_SIMPLE_FILE_SYSTEM_PROTOCOL` of the device it was
/// loaded from, exits QEMU, and returns EFI_SUCCESS if the device is absent. A failing
/// firmware call is reported as `esp-crc32=error-<step>`.
pub fn uefi_app(report: &Report, kind: Kind) -> Result<Vec<u8>, PayloadError> {
    let code = (|| -> Result<Vec<u8>, IcedError> {
        let mut a = CodeAssembler::new(64)?;
        if kind == Kind::Silent {
            halt(&mut a)?;
            return a.assemble(TEXT_RVA);
        }
        let mut head = a.create_label();
        let mut tail = a.create_label();
        let mut guid_loaded_image = a.create_label();
        let mut guid_file_system = a.create_label();
        let mut path = a.create_label();
        let mut fail = a.create_label();
        let mut errors = Vec::new();
        for _ in 0..5 {
            errors.push(a.create_label());
        }
        // Callee-saved registers (Microsoft x64 ABI); seven pushes leave RSP 16-aligned.
        for r in [rbx, rsi, rdi, r12, r13, r14, r15] {
            a.push(r)?;
        }
        // 32 bytes of shadow space, 5th argument, out slots at +0x28..+0x40, buffer at +0x40.
        const BUF: i32 = 0x40;
        const BUF_LEN: i32 = 0x1000;
        a.sub(rsp, BUF + BUF_LEN)?;
        a.mov(r12, rcx)?; // ImageHandle
        a.mov(r14, qword_ptr(rdx + 0x60))?; // SystemTable->BootServices
        a.cld()?;
        lea_label(&mut a, rsi, head)?;
        puts(&mut a)?;
        let check = |a: &mut CodeAssembler, step: CodeLabel| -> Result<(), IcedError> {
            lea_label(a, rdi, step)?;
            a.test(rax, rax)?;
            a.jnz(fail)
        };
        // HandleProtocol(ImageHandle, &LoadedImage, &out)
        a.mov(rcx, r12)?;
        lea_label(&mut a, rdx, guid_loaded_image)?;
        a.lea(r8, qword_ptr(rsp + 0x30))?;
        a.call(qword_ptr(r14 + 0x98))?;
        check(&mut a, errors[0])?;
        // HandleProtocol(LoadedImage->DeviceHandle, &SimpleFileSystem, &out)
        a.mov(rax, qword_ptr(rsp + 0x30))?;
        a.mov(rcx, qword_ptr(rax + 0x18))?;
        lea_label(&mut a, rdx, guid_file_system)?;
        a.lea(r8, qword_ptr(rsp + 0x30))?;
        a.call(qword_ptr(r14 + 0x98))?;
        check(&mut a, errors[1])?;
        // FileSystem->OpenVolume(FileSystem, &Root)
        a.mov(rcx, qword_ptr(rsp + 0x30))?;
        a.lea(rdx, qword_ptr(rsp + 0x30))?;
        a.call(qword_ptr(rcx + 0x08))?;
        check(&mut a, errors[2])?;
        // Root->Open(Root, &File, Path, EFI_FILE_MODE_READ, 0)
        a.mov(rcx, qword_ptr(rsp + 0x30))?;
        a.lea(rdx, qword_ptr(rsp + 0x38))?;
        lea_label(&mut a, r8, path)?;
        a.mov(r9d, 1)?;
        a.mov(qword_ptr(rsp + 0x20), 0)?;
        a.call(qword_ptr(rcx + 0x08))?;
        check(&mut a, errors[3])?;
        a.mov(r15, qword_ptr(rsp + 0x38))?;
        a.mov(ebx, 0xFFFF_FFFFu32)?;
        // Read 4 KiB at a time until a read returns nothing, folding bytes into the CRC.
        let mut read = a.create_label();
        let mut eof = a.create_label();
        a.set_label(&mut read)?;
        a.mov(qword_ptr(rsp + 0x28), BUF_LEN)?;
        a.mov(rcx, r15)?;
        a.lea(rdx, qword_ptr(rsp + 0x28))?;
        a.lea(r8, qword_ptr(rsp + BUF))?;
        a.call(qword_ptr(r15 + 0x20))?;
        check(&mut a, errors[4])?;
        a.mov(rcx, qword_ptr(rsp + 0x28))?;
        a.test(rcx, rcx)?;
        a.jz(eof)?;
        a.lea(rsi, qword_ptr(rsp + BUF))?;
        let mut byte = a.create_label();
        let mut bit = a.create_label();
        let mut no_xor = a.create_label();
        a.set_label(&mut byte)?;
        a.xor(bl, byte_ptr(rsi))?;
        a.mov(edx, 8)?;
        a.set_label(&mut bit)?;
        a.shr(ebx, 1)?;
        a.jnc(no_xor)?;
        a.xor(ebx, 0xEDB8_8320u32 as i32)?;
        a.set_label(&mut no_xor)?;
        a.dec(edx)?;
        a.jnz(bit)?;
        a.inc(rsi)?;
        a.dec(rcx)?;
        a.jnz(byte)?;
        a.jmp(read)?;
        a.set_label(&mut eof)?;
        a.mov(rcx, r15)?;
        a.call(qword_ptr(r15 + 0x10))?; // File->Close(File)
        a.not(ebx)?;
        // Eight lowercase hex digits, most significant first.
        a.mov(edi, 8)?;
        let mut digit = a.create_label();
        let mut decimal = a.create_label();
        a.set_label(&mut digit)?;
        a.rol(ebx, 4)?;
        a.mov(al, bl)?;
        a.and(al, 0x0F)?;
        a.add(al, i32::from(b'0'))?;
        a.cmp(al, i32::from(b'9'))?;
        a.jbe(decimal)?;
        a.add(al, i32::from(b'a' - b'0' - 10))?;
        a.set_label(&mut decimal)?;
        putc(&mut a)?;
        a.dec(edi)?;
        a.jnz(digit)?;
        let mut finish = a.create_label();
        a.set_label(&mut finish)?;
        lea_label(&mut a, rsi, tail)?;
        puts(&mut a)?;
        a.mov(al, DEBUG_EXIT_VALUE as u32)?;
        a.out(DEBUG_EXIT_PORT, al)?;
        a.add(rsp, BUF + BUF_LEN)?;
        for r in [r15, r14, r13, r12, rdi, rsi, rbx] {
            a.pop(r)?;
        }
        a.xor(eax, eax)?;
        a.ret()?;
        // A failed call: its step's name instead of the digest, then the rest of the line.
        a.set_label(&mut fail)?;
        a.mov(rsi, rdi)?;
        puts(&mut a)?;
        a.jmp(finish)?;
        // Data, in the text section (read only).
        a.set_label(&mut head)?;
        a.db(format!("{} esp-crc32=\0", report.head(Via::Esp)).as_bytes())?;
        a.set_label(&mut tail)?;
        a.db(format!("{}\0", report.tail()).as_bytes())?;
        for (label, step) in errors.iter_mut().zip([
            "loaded-image",
            "file-system",
            "open-volume",
            "open-file",
            "read-file",
        ]) {
            a.set_label(label)?;
            a.db(format!("error-{step}\0").as_bytes())?;
        }
        a.set_label(&mut guid_loaded_image)?;
        // EFI_LOADED_IMAGE_PROTOCOL_GUID 5B1B31A1-9562-11D2-8E3F-00A0C969723B
        a.db(&crate::image::format::gpt::Guid::new(
            0x5B1B_31A1,
            0x9562,
            0x11D2,
            [0x8E, 0x3F, 0x00, 0xA0, 0xC9, 0x69, 0x72, 0x3B],
        )
        .0)?;
        a.set_label(&mut guid_file_system)?;
        // EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID 964E5B22-6459-11D2-8E39-00A0C969723B
        a.db(&crate::image::format::gpt::Guid::new(
            0x964E_5B22,
            0x6459,
            0x11D2,
            [0x8E, 0x39, 0x00, 0xA0, 0xC9, 0x69, 0x72, 0x3B],
        )
        .0)?;
        a.set_label(&mut path)?;
        let mut utf16: Vec<u8> = Vec::new();
        for u in format!("\\{}", ESP_PROBE_FILE.replace('/', "\\")).encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        utf16.extend_from_slice(&[0, 0]);
        a.db(&utf16)?;
        // Assembled at the text section's address; the code is position-independent.
        a.assemble(TEXT_RVA)
    })()
    .map_err(|source| PayloadError::Assemble {
        what: "UEFI application",
        source,
    })?;
    pe32plus(&code, TEXT_RVA)
}

/// The text section's relative virtual address: the first section after the headers.
const TEXT_RVA: u64 = 0x1000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::testing::{disassemble, report};
    use crate::payload::REPORT_TAG;

    #[test]
    fn uefi_app_is_a_pe32plus_efi_application() {
        let pe = uefi_app(&report(), Kind::Probe).unwrap();
        assert_eq!(&pe[..2], b"MZ");
        let nt = u32::from_le_bytes(pe[0x3C..0x40].try_into().unwrap()) as usize;
        assert_eq!(&pe[nt..nt + 4], b"PE\0\0");
        // COFF header: machine AMD64, timestamp 0; optional header: magic PE32+, subsystem 10.
        assert_eq!(u16::from_le_bytes([pe[nt + 4], pe[nt + 5]]), 0x8664);
        assert_eq!(&pe[nt + 8..nt + 12], [0, 0, 0, 0]);
        let opt = nt + 24;
        assert_eq!(u16::from_le_bytes([pe[opt], pe[opt + 1]]), 0x20B);
        assert_eq!(u16::from_le_bytes([pe[opt + 68], pe[opt + 69]]), 10);
        let entry = u32::from_le_bytes(pe[opt + 16..opt + 20].try_into().unwrap());
        assert_eq!(u64::from(entry), TEXT_RVA);
        // The entry point's code: the first section's raw data (section headers follow the
        // optional header; PointerToRawData is at +20).
        let opt_len = u16::from_le_bytes([pe[nt + 20], pe[nt + 21]]) as usize;
        let sh = opt + opt_len;
        assert_eq!(&pe[sh..sh + 5], b".text");
        let text_off = u32::from_le_bytes(pe[sh + 20..sh + 24].try_into().unwrap()) as usize;
        let code = disassemble(64, &pe[text_off..], TEXT_RVA, 200);
        assert_eq!(
            code[..10],
            [
                "push rbx",
                "push rsi",
                "push rdi",
                "push r12",
                "push r13",
                "push r14",
                "push r15",
                "sub rsp,1040h",
                "mov r12,rcx",
                "mov r14,[rdx+60h]",
            ]
        );
        // HandleProtocol (BootServices+0x98) twice, OpenVolume and Open (+8), Read (+0x20),
        // Close (+0x10), in that order.
        let calls: Vec<&str> = code
            .iter()
            .filter(|i| i.starts_with("call"))
            .map(String::as_str)
            .collect();
        assert_eq!(
            calls,
            [
                "call qword [r14+98h]",
                "call qword [r14+98h]",
                "call qword [rcx+8]",
                "call qword [rcx+8]",
                "call qword [r15+20h]",
                "call qword [r15+10h]",
            ]
        );
        assert!(
            code.contains(&"xor ebx,0EDB88320h".to_string()),
            "CRC-32 polynomial"
        );
        // The protocol GUIDs and the UTF-16 path are in the section.
        let li = crate::image::format::gpt::Guid::new(
            0x5B1B_31A1,
            0x9562,
            0x11D2,
            [0x8E, 0x3F, 0x00, 0xA0, 0xC9, 0x69, 0x72, 0x3B],
        );
        assert!(pe.windows(16).any(|w| w == li.0));
        let path: Vec<u8> = "\\isoproof\\config.json"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(pe.windows(path.len()).any(|w| w == path));
        let head = format!("{} esp-crc32=", report().head(Via::Esp));
        assert!(pe.windows(head.len()).any(|w| w == head.as_bytes()));
        assert_eq!(
            pe,
            uefi_app(&report(), Kind::Probe).unwrap(),
            "reproducible"
        );
    }

    #[test]
    fn a_silent_app_never_reports() {
        let app = uefi_app(&report(), Kind::Silent).unwrap();
        assert!(!app
            .windows(REPORT_TAG.len())
            .any(|w| w == REPORT_TAG.as_bytes()));
    }
}
