//! Boot payloads, built by the project and reproducible bit for bit: small programs that
//! prove an image booted by printing one report line on COM1 and leaving QEMU through
//! `isa-debug-exit` (port 0xF4; QEMU then exits with status 33).
//!
//! - [`bios_eltorito`]: an El Torito no-emulation boot program (real mode, 16-bit), with a
//!   second entry point for the MBR;
//! - [`mbr`]: the hybrid image's MBR boot code: loads that program from the disk view of the
//!   image (INT 13h extended read) and enters it, so BIOS boots from a USB stick or disk;
//! - [`uefi_app`]: a UEFI application (PE32+, x86-64) for `\EFI\BOOT\BOOTX64.EFI`, which also
//!   reads `\isoproof\config.json` through the firmware's file-system protocol and reports its
//!   CRC-32, so the firmware's own FAT driver checks the ESP.
//!
//! The machine code comes from iced-x86's assembler; there are no external binaries.

use iced_x86::code_asm::*;
use iced_x86::IcedError;
use object::pe;
use object::write::pe::{NtHeaders, Writer};

/// The I/O port of QEMU's `isa-debug-exit` device, as the harness configures it.
pub const DEBUG_EXIT_PORT: i32 = 0xF4;
/// The value written to it: QEMU exits with `(0x10 << 1) | 1` = 33.
pub const DEBUG_EXIT_VALUE: i32 = 0x10;
/// The value written when a payload fails: QEMU exits with 35.
pub const DEBUG_FAIL_VALUE: i32 = 0x11;
/// The end of the El Torito boot info table (bytes 8..64 of a boot image).
const BOOT_INFO_END: usize = 64;
/// Where the MBR loads the El Torito program (it runs at 0x7C00 itself).
const MBR_LOAD: u16 = 0x8000;
/// The El Torito program's second entry point, used by the MBR (offset 2).
const MBR_ENTRY: u16 = 2;
/// Where the MBR's disk address packet starts: its 64-bit LBA field is then at bytes
/// 432..440, the place xorriso patches in isohybrid MBRs (`-isohybrid-mbr`).
pub const MBR_DAP: usize = 424;
/// The byte offset of the boot program's LBA (512-byte sectors) in the MBR.
pub const MBR_LBA_OFFSET: usize = 432;
/// Boot code room of an MBR (the disk signature follows).
pub const MBR_CODE_LEN: usize = 440;
/// The ESP file the UEFI application reads and reports the CRC-32 of.
pub const ESP_PROBE_FILE: &str = "isoproof/config.json";

/// QEMU's exit status after a payload wrote [`DEBUG_EXIT_VALUE`].
pub const PASS_STATUS: i32 = 33;
/// QEMU's exit status after a payload wrote [`DEBUG_FAIL_VALUE`].
pub const FAIL_STATUS: i32 = 35;
/// How every report line starts.
pub const REPORT_TAG: &str = "ISOPROOF-BOOT";

/// Which boot payload an image carries (`isoImage.bootPayload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Reports and exits (the default).
    Probe,
    /// Never reports: halts forever. Proves the boot harness's deadline.
    Silent,
}

impl Kind {
    /// The option's value for this kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Probe => "probe",
            Kind::Silent => "silent",
        }
    }

    /// The kind named by `isoImage.bootPayload`.
    pub fn from_name(s: &str) -> Option<Kind> {
        match s {
            "probe" => Some(Kind::Probe),
            "silent" => Some(Kind::Silent),
            _ => None,
        }
    }
}

/// How a payload was entered, which the report line states (`mode=… via=…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// BIOS, El Torito no-emulation boot from a CD.
    ElTorito,
    /// BIOS, the hybrid image's MBR (USB stick or disk).
    Mbr,
    /// UEFI, `\EFI\BOOT\BOOTX64.EFI` of the ESP.
    Esp,
}

impl Via {
    /// `mode=` of the report line.
    pub fn mode(self) -> &'static str {
        match self {
            Via::ElTorito | Via::Mbr => "bios",
            Via::Esp => "uefi",
        }
    }

    /// `via=` of the report line.
    pub fn name(self) -> &'static str {
        match self {
            Via::ElTorito => "eltorito",
            Via::Mbr => "mbr",
            Via::Esp => "esp",
        }
    }
}

/// What a payload reports: values of the resolved config, embedded when the image is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The ISO volume ID.
    pub volume_id: String,
    /// `networking.hostName`.
    pub hostname: String,
    /// `boot.kernelParams`, joined by spaces.
    pub kernel_params: String,
    /// The sha256 (hex) of `/isoproof/config.json`.
    pub config_sha256: String,
}

/// Control characters and spaces would split the line or its fields.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == ' ' { '?' } else { c })
        .collect()
}

impl Report {
    /// The fields before the ESP digest: `ISOPROOF-BOOT mode=… via=… volume=… hostname=…
    /// config=…`.
    pub fn head(&self, via: Via) -> String {
        format!(
            "{REPORT_TAG} mode={} via={} volume={} hostname={} config={}",
            via.mode(),
            via.name(),
            clean(&self.volume_id),
            clean(&self.hostname),
            self.config_sha256,
        )
    }

    /// The last field, `params=…` (it may hold spaces), and the line end.
    pub fn tail(&self) -> String {
        let params: String = self
            .kernel_params
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        format!(" params={params}\r\n")
    }

    /// The whole line a payload entered through `via` prints; `esp_crc32` is what a UEFI
    /// payload read from the ESP.
    pub fn line(&self, via: Via, esp_crc32: Option<u32>) -> String {
        let digest = esp_crc32.map_or(String::new(), |c| format!(" esp-crc32={c:08x}"));
        format!("{}{digest}{}", self.head(via), self.tail())
    }
}

/// The first report line in a serial log, from its tag to the line end.
pub fn report_line(log: &str) -> Option<&str> {
    let at = log.find(REPORT_TAG)?;
    log[at..].split(['\r', '\n']).next()
}

/// A report line read back from a serial log, as `key=value` fields in line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    /// The fields; `params` is last and holds the rest of the line.
    pub fields: Vec<(String, String)>,
}

impl Reported {
    /// Finds the first report line in a serial log (firmware output around it is ignored).
    pub fn find(log: &str) -> Option<Reported> {
        let line = &report_line(log)?[REPORT_TAG.len()..];
        let mut fields = Vec::new();
        let mut rest = line.trim_start();
        while !rest.is_empty() {
            if let Some(p) = rest.strip_prefix("params=") {
                fields.push(("params".to_string(), p.to_string()));
                break;
            }
            let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            fields.push((k.to_string(), v.to_string()));
            rest = after.trim_start();
        }
        Some(Reported { fields })
    }

    /// The value of a field.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The El Torito no-emulation boot program: loaded at 0x7C00 by the BIOS (any CS:IP that
/// points there) and entered at offset 0, or loaded by [`mbr`] and entered at offset 2;
/// prints the report line for the way it was entered and exits QEMU.
pub fn bios_eltorito(report: &Report, kind: Kind) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(16)?;
    let mut cd_entry = a.create_label();
    let mut mbr_entry = a.create_label();
    // Offset 0: the El Torito entry; offset 2: the MBR's. Bytes 8..64 are the boot info
    // table, which the image writer patches in (`mkisofs -boot-info-table`).
    a.jmp(cd_entry)?;
    a.jmp(mbr_entry)?;
    a.db(&[0; BOOT_INFO_END - 4])?;
    a.set_label(&mut cd_entry)?;
    a.xor(bp, bp)?;
    let mut common = a.create_label();
    a.jmp(common)?;
    a.set_label(&mut mbr_entry)?;
    a.mov(bp, 1u32)?;
    a.set_label(&mut common)?;
    a.cli()?;
    if kind == Kind::Silent {
        halt(&mut a)?;
    } else {
        // DS = CS, and SI = the message's offset, whatever CS:IP the BIOS jumped to.
        a.push(cs)?;
        a.pop(ds)?;
        a.cld()?;
        let mut print = a.create_label();
        let mut after_cd = a.create_label();
        a.call(after_cd)?;
        a.db(report.line(Via::ElTorito, None).as_bytes())?;
        a.db(&[0])?;
        a.set_label(&mut after_cd)?;
        a.pop(si)?;
        a.test(bp, bp)?;
        a.jz(print)?;
        let mut after_mbr = a.create_label();
        a.call(after_mbr)?;
        a.db(report.line(Via::Mbr, None).as_bytes())?;
        a.db(&[0])?;
        a.set_label(&mut after_mbr)?;
        a.pop(si)?;
        a.set_label(&mut print)?;
        puts(&mut a)?;
        exit(&mut a, DEBUG_EXIT_VALUE)?;
    }
    let mut code = a.assemble(0x7C00)?;
    // El Torito loads whole 512-byte sectors.
    code.resize(code.len().next_multiple_of(512), 0);
    Ok(code)
}

/// The hybrid image's MBR boot code ([`MBR_CODE_LEN`] bytes): loads `sectors` 512-byte
/// sectors of the El Torito program to 0x8000 with INT 13h AH=42h and enters it at offset 2.
/// The program's LBA is left 0 at [`MBR_LBA_OFFSET`]; the image writer patches it in once the
/// program has its place. On a read error it reports `error=mbr-read` and exits with 35.
pub fn mbr(sectors: u16) -> Result<Vec<u8>, String> {
    let mut code = mbr_code().map_err(|e| e.to_string())?;
    if code.len() > MBR_DAP {
        return Err(format!(
            "MBR boot code is {} bytes; {MBR_DAP} fit before the disk address packet",
            code.len()
        ));
    }
    code.resize(MBR_DAP, 0);
    // The disk address packet: size 16, sector count, buffer 0000:8000, LBA (patched).
    code.extend_from_slice(&[0x10, 0x00]);
    code.extend_from_slice(&sectors.to_le_bytes());
    code.extend_from_slice(&MBR_LOAD.to_le_bytes());
    code.extend_from_slice(&0u16.to_le_bytes());
    code.extend_from_slice(&0u64.to_le_bytes());
    debug_assert_eq!(code.len(), MBR_CODE_LEN);
    Ok(code)
}

fn mbr_code() -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(16)?;
    let mut fail = a.create_label();
    let mut msg = a.create_label();
    a.cli()?;
    a.xor(ax, ax)?;
    a.mov(ss, ax)?;
    a.mov(sp, 0x7C00u32)?;
    a.mov(ds, ax)?;
    a.mov(es, ax)?;
    a.sti()?;
    a.cld()?;
    // DL still holds the boot drive the BIOS passed.
    a.mov(si, 0x7C00u32 + MBR_DAP as u32)?;
    a.mov(ah, 0x42u32)?;
    a.int(0x13)?;
    a.jc(fail)?;
    // jmp far 0000:8002 (encoded by hand: the assembler has no far-immediate form).
    let target = MBR_LOAD + MBR_ENTRY;
    a.db(&[0xEA, target as u8, (target >> 8) as u8, 0x00, 0x00])?;
    a.set_label(&mut fail)?;
    // SI = the message's address (DS = 0, code at 0x7C00), by calling over it.
    a.call(msg)?;
    a.db(format!("{REPORT_TAG} mode=bios via=mbr error=mbr-read\r\n\0").as_bytes())?;
    a.set_label(&mut msg)?;
    a.pop(si)?;
    puts(&mut a)?;
    exit(&mut a, DEBUG_FAIL_VALUE)?;
    a.assemble(0x7C00)
}

/// Emits: print the character in AL on COM1 once its transmitter is empty (clobbers AH, DX).
fn putc(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut wait = a.create_label();
    a.mov(ah, al)?;
    a.mov(dx, 0x3FDu32)?;
    a.set_label(&mut wait)?;
    a.in_(al, dx)?;
    a.test(al, 0x20)?;
    a.jz(wait)?;
    a.mov(dx, 0x3F8u32)?;
    a.mov(al, ah)?;
    a.out(dx, al)?;
    Ok(())
}

/// Emits: print the NUL-terminated string at DS:SI (or RSI) on COM1.
fn puts(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut next = a.create_label();
    let mut done = a.create_label();
    // Its own first instruction, so a caller's label can sit on the routine.
    a.cld()?;
    a.set_label(&mut next)?;
    a.lodsb()?;
    a.test(al, al)?;
    a.jz(done)?;
    putc(a)?;
    a.jmp(next)?;
    a.set_label(&mut done)?;
    Ok(())
}

/// Emits: exit QEMU through isa-debug-exit with `value`; without the device, halt forever.
fn exit(a: &mut CodeAssembler, value: i32) -> Result<(), IcedError> {
    a.mov(al, value as u32)?;
    a.out(DEBUG_EXIT_PORT, al)?;
    halt(a)
}

/// Emits: halt forever.
fn halt(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut hang = a.create_label();
    a.set_label(&mut hang)?;
    a.hlt()?;
    a.jmp(hang)?;
    Ok(())
}

/// Emits `lea reg, [rel label]`.
fn lea_label(a: &mut CodeAssembler, reg: AsmRegister64, l: CodeLabel) -> Result<(), IcedError> {
    a.lea(reg, ptr(l))
}

/// The UEFI application: `efi_main(ImageHandle, SystemTable)` prints the report line on COM1
/// (boot services still own the machine, so port I/O is allowed) with the CRC-32 of
/// [`ESP_PROBE_FILE`] read through `EFI_SIMPLE_FILE_SYSTEM_PROTOCOL` of the device it was
/// loaded from, exits QEMU, and returns EFI_SUCCESS if the device is absent. A failing
/// firmware call is reported as `esp-crc32=error-<step>`.
pub fn uefi_app(report: &Report, kind: Kind) -> Result<Vec<u8>, String> {
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
        a.db(&crate::image::gpt::Guid::new(
            0x5B1B_31A1,
            0x9562,
            0x11D2,
            [0x8E, 0x3F, 0x00, 0xA0, 0xC9, 0x69, 0x72, 0x3B],
        )
        .0)?;
        a.set_label(&mut guid_file_system)?;
        // EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID 964E5B22-6459-11D2-8E39-00A0C969723B
        a.db(&crate::image::gpt::Guid::new(
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
    .map_err(|e| e.to_string())?;
    pe32plus(&code)
}

/// The text section's relative virtual address: the first section after the headers.
const TEXT_RVA: u64 = 0x1000;

/// Wraps position-independent code into a PE32+ EFI application: one text section, an
/// empty relocation section, timestamp 0 (so the same code gives the same file).
fn pe32plus(code: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut w = Writer::new(true, 0x1000, 0x200, &mut out);
    w.reserve_dos_header_and_stub();
    w.reserve_nt_headers(16);
    w.reserve_section_headers(2);
    let text = w.reserve_text_section(code.len() as u32);
    if u64::from(text.virtual_address) != TEXT_RVA {
        return Err(format!(
            "internal error: text section at {:#x}",
            text.virtual_address
        ));
    }
    w.reserve_reloc_section();
    w.write_dos_header_and_stub().map_err(|e| e.to_string())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Formatter, NasmFormatter};

    fn report() -> Report {
        Report {
            volume_id: "NIXOS_MINIMAL".into(),
            hostname: "nixos-installer".into(),
            kernel_params: "console=ttyS0,115200 quiet".into(),
            config_sha256: "ab".repeat(32),
        }
    }

    fn disassemble(bitness: u32, code: &[u8], ip: u64, n: usize) -> Vec<String> {
        let mut d = Decoder::with_ip(bitness, code, ip, DecoderOptions::NONE);
        let mut f = NasmFormatter::new();
        let mut out = Vec::new();
        for ins in d.iter().take(n) {
            let mut s = String::new();
            f.format(&ins, &mut s);
            out.push(s);
        }
        out
    }

    #[test]
    fn bios_program_has_two_entries_and_prints_then_exits() {
        let code = bios_eltorito(&report(), Kind::Probe).unwrap();
        assert_eq!(code.len() % 512, 0);
        // Offset 0 (El Torito) and offset 2 (MBR) jump over the boot info table (8..64),
        // which stays zero for the writer to patch.
        assert_eq!(disassemble(16, &code, 0x7C00, 1), ["jmp short 7C40h"]);
        assert_eq!(disassemble(16, &code[2..], 0x7C02, 1), ["jmp short 7C44h"]);
        assert!(code[4..64].iter().all(|b| *b == 0));
        assert_eq!(
            disassemble(16, &code[64..], 0x7C40, 8),
            [
                "xor bp,bp",
                "jmp short 7C47h",
                "mov bp,1",
                "cli",
                "push cs",
                "pop ds",
                "cld",
                &disassemble(16, &code[0x4B..], 0x7C4B, 1)[0],
            ]
        );
        // Both lines are in the program, NUL-terminated.
        for via in [Via::ElTorito, Via::Mbr] {
            let line = report().line(via, None);
            let mut z = line.into_bytes();
            z.push(0);
            assert!(code.windows(z.len()).any(|w| w == z), "{via:?}");
        }
        let text = disassemble(16, &code, 0x7C00, 400).join("\n");
        assert!(text.contains("in al,dx"));
        assert!(text.contains("out 0F4h,al"));
        assert_eq!(
            code,
            bios_eltorito(&report(), Kind::Probe).unwrap(),
            "reproducible"
        );
    }

    #[test]
    fn silent_programs_never_report() {
        let code = bios_eltorito(&report(), Kind::Silent).unwrap();
        assert!(!code
            .windows(REPORT_TAG.len())
            .any(|w| w == REPORT_TAG.as_bytes()));
        assert_eq!(
            disassemble(16, &code[0x47..], 0x7C47, 3),
            ["cli", "hlt", "jmp short 7C48h"]
        );
        let app = uefi_app(&report(), Kind::Silent).unwrap();
        assert!(!app
            .windows(REPORT_TAG.len())
            .any(|w| w == REPORT_TAG.as_bytes()));
    }

    #[test]
    fn mbr_loads_the_program_and_enters_its_second_entry() {
        let m = mbr(3).unwrap();
        assert_eq!(m.len(), MBR_CODE_LEN);
        let text = disassemble(16, &m, 0x7C00, 14);
        assert_eq!(
            text[..13],
            [
                "cli",
                "xor ax,ax",
                "mov ss,ax",
                "mov sp,7C00h",
                "mov ds,ax",
                "mov es,ax",
                "sti",
                "cld",
                "mov si,7DA8h",
                "mov ah,42h",
                "int 13h",
                "jb short 7C1Ch",
                "jmp 0:8002h",
            ]
        );
        // The disk address packet (INT 13h AH=42h): size 16, 3 sectors to 0000:8000, and the
        // LBA field at 432..440 left for the writer.
        assert_eq!(0x7C00 + MBR_DAP, 0x7DA8);
        assert_eq!(
            &m[MBR_DAP..MBR_LBA_OFFSET],
            [0x10, 0, 3, 0, 0x00, 0x80, 0, 0]
        );
        assert_eq!(&m[MBR_LBA_OFFSET..], [0; 8]);
        let err = format!("{REPORT_TAG} mode=bios via=mbr error=mbr-read\r\n\0");
        assert!(m.windows(err.len()).any(|w| w == err.as_bytes()));
    }

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
        let li = crate::image::gpt::Guid::new(
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
    fn report_lines_are_one_line_and_read_back() {
        let mut r = report();
        r.hostname = "evil\nhost name".into();
        let l = r.line(Via::Mbr, None);
        assert_eq!(l.matches('\n').count(), 1);
        assert!(l.contains("hostname=evil?host?name"));
        let log = format!(
            "firmware noise\r\n{}",
            report().line(Via::Esp, Some(0xdead_beef))
        );
        let got = Reported::find(&log).unwrap();
        assert_eq!(got.get("mode"), Some("uefi"));
        assert_eq!(got.get("via"), Some("esp"));
        assert_eq!(got.get("esp-crc32"), Some("deadbeef"));
        assert_eq!(got.get("params"), Some("console=ttyS0,115200 quiet"));
        assert_eq!(Reported::find("no line here"), None);
    }
}
