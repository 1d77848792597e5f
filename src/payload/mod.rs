//! Boot payloads, built by the project and reproducible bit for bit: small programs that
//! prove an image booted by printing one report line on COM1 and leaving QEMU through
//! `isa-debug-exit` (port 0xF4; QEMU then exits with status 33).
//!
//! - [`bios_eltorito`]: an El Torito no-emulation boot program (real mode, 16-bit);
//! - [`uefi_app`]: a UEFI application (PE32+, x86-64) for `\EFI\BOOT\BOOTX64.EFI`.
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
/// The end of the El Torito boot info table (bytes 8..64 of a boot image).
const BOOT_INFO_END: usize = 64;

/// QEMU's exit status after a payload wrote [`DEBUG_EXIT_VALUE`].
pub const PASS_STATUS: i32 = 33;

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

impl Report {
    /// The line a payload prints for a boot `mode` (`bios` or `uefi`), ending in a newline.
    /// Control characters are replaced so the line stays one line.
    pub fn line(&self, mode: &str) -> String {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        };
        format!(
            "ISOPROOF-BOOT mode={mode} volume={} hostname={} config={} params={}\r\n",
            clean(&self.volume_id),
            clean(&self.hostname),
            self.config_sha256,
            clean(&self.kernel_params)
        )
    }
}

/// The El Torito no-emulation boot program: loaded at 0x7C00 by the BIOS (any CS:IP that
/// points there), prints the report line and exits QEMU.
pub fn bios_eltorito(report: &Report) -> Result<Vec<u8>, IcedError> {
    let line = report.line("bios");
    let mut a = CodeAssembler::new(16)?;
    let mut after = a.create_label();
    let mut start = a.create_label();
    // Bytes 8..64 are the boot info table, which the image writer patches in
    // (`mkisofs -boot-info-table`): jump over them.
    a.jmp(start)?;
    a.db(&[0; BOOT_INFO_END - 2])?;
    a.set_label(&mut start)?;
    a.cli()?;
    // DS = CS, and SI = the message's offset, whatever CS:IP the BIOS jumped to.
    a.push(cs)?;
    a.pop(ds)?;
    a.call(after)?;
    a.db(line.as_bytes())?;
    a.db(&[0])?;
    a.set_label(&mut after)?;
    a.pop(si)?;
    a.cld()?;
    serial_loop(&mut a)?;
    finish(&mut a)?;
    let mut code = a.assemble(0x7C00)?;
    // El Torito loads whole 512-byte sectors.
    code.resize(code.len().next_multiple_of(512), 0);
    Ok(code)
}

/// Emits: print the NUL-terminated string at DS:SI (or RSI) on COM1, waiting for the
/// transmitter to be empty before each byte.
fn serial_loop(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut next = a.create_label();
    let mut wait = a.create_label();
    let mut done = a.create_label();
    a.set_label(&mut next)?;
    a.lodsb()?;
    a.test(al, al)?;
    a.jz(done)?;
    a.mov(bl, al)?;
    a.set_label(&mut wait)?;
    a.mov(dx, 0x3FDu32)?;
    a.in_(al, dx)?;
    a.test(al, 0x20)?;
    a.jz(wait)?;
    a.mov(dx, 0x3F8u32)?;
    a.mov(al, bl)?;
    a.out(dx, al)?;
    a.jmp(next)?;
    a.set_label(&mut done)?;
    Ok(())
}

/// Emits: exit QEMU through isa-debug-exit; without the device, halt forever.
fn finish(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut hang = a.create_label();
    a.mov(al, DEBUG_EXIT_VALUE as u32)?;
    a.out(DEBUG_EXIT_PORT, al)?;
    a.set_label(&mut hang)?;
    a.hlt()?;
    a.jmp(hang)?;
    Ok(())
}

/// The UEFI application: `efi_main(ImageHandle, SystemTable)` prints the report line on
/// COM1 (boot services still own the machine, so port I/O is allowed), exits QEMU, and
/// returns EFI_SUCCESS if the device is absent.
pub fn uefi_app(report: &Report) -> Result<Vec<u8>, String> {
    let line = report.line("uefi");
    let code = (|| -> Result<Vec<u8>, IcedError> {
        let mut a = CodeAssembler::new(64)?;
        let mut msg = a.create_label();
        a.push(rsi)?;
        a.push(rbx)?;
        a.lea(rsi, ptr(msg))?;
        a.cld()?;
        serial_loop(&mut a)?;
        a.mov(al, DEBUG_EXIT_VALUE as u32)?;
        a.out(DEBUG_EXIT_PORT, al)?;
        a.pop(rbx)?;
        a.pop(rsi)?;
        a.xor(eax, eax)?;
        a.ret()?;
        a.set_label(&mut msg)?;
        a.db(line.as_bytes())?;
        a.db(&[0])?;
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
    fn bios_program_prints_then_exits() {
        let code = bios_eltorito(&report()).unwrap();
        assert_eq!(code.len() % 512, 0);
        let line = report().line("bios");
        // A short jump over the boot info table (bytes 8..64), which stays zero.
        assert_eq!(disassemble(16, &code, 0x7C00, 1), ["jmp short 7C40h"]);
        assert!(code[8..64].iter().all(|b| *b == 0));
        // The call jumps over the NUL-terminated line, pushing its address.
        let at = 64 + 6;
        let after = 0x7C00 + at as u64 + line.len() as u64 + 1;
        assert_eq!(
            disassemble(16, &code[64..], 0x7C40, 4),
            ["cli", "push cs", "pop ds", &format!("call {after:X}h")]
        );
        assert_eq!(&code[at..at + line.len()], line.as_bytes());
        // After the string: pop si, then the serial loop, then the debug-exit write.
        let tail = disassemble(16, &code[at + line.len() + 1..], after, 17);
        assert_eq!(tail[0], "pop si");
        assert!(tail.contains(&"in al,dx".to_string()), "{tail:?}");
        assert!(tail.contains(&"out dx,al".to_string()), "{tail:?}");
        assert!(tail.contains(&"out 0F4h,al".to_string()), "{tail:?}");
        assert_eq!(code, bios_eltorito(&report()).unwrap(), "reproducible");
    }

    #[test]
    fn uefi_app_is_a_pe32plus_efi_application() {
        let pe = uefi_app(&report()).unwrap();
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
        let code = disassemble(64, &pe[text_off..], TEXT_RVA, 3);
        assert_eq!(code[..2], ["push rsi", "push rbx"]);
        assert!(code[2].starts_with("lea rsi,[rel "), "{code:?}");
        let line = report().line("uefi");
        assert!(pe.windows(line.len()).any(|w| w == line.as_bytes()));
        assert_eq!(pe, uefi_app(&report()).unwrap(), "reproducible");
    }

    #[test]
    fn report_line_is_one_line() {
        let mut r = report();
        r.hostname = "evil\nhost".into();
        let l = r.line("bios");
        assert_eq!(l.matches('\n').count(), 1);
        assert!(l.contains("hostname=evil?host"));
    }
}
