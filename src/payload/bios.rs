//! The BIOS payloads: the El Torito no-emulation boot program and the hybrid image's MBR
//! boot code that loads it from a USB stick or disk.

use iced_x86::code_asm::*;
use iced_x86::IcedError;

use super::asm::{exit, halt, puts};
use super::{
    Kind, PayloadError, Report, Via, BOOT_INFO_END, DEBUG_EXIT_VALUE, DEBUG_FAIL_VALUE,
    MBR_CODE_LEN, MBR_DAP, MBR_ENTRY, MBR_LOAD, REPORT_TAG,
};

/// The El Torito no-emulation boot program: loaded at 0x7C00 by the BIOS (any CS:IP that
/// points there) and entered at offset 0, or loaded by [`mbr`] and entered at offset 2;
/// prints the report line for the way it was entered and exits QEMU.
pub fn bios_eltorito(report: &Report, kind: Kind) -> Result<Vec<u8>, PayloadError> {
    program(report, kind).map_err(|source| PayloadError::Assemble {
        what: "El Torito boot program",
        source,
    })
}

fn program(report: &Report, kind: Kind) -> Result<Vec<u8>, IcedError> {
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
pub fn mbr(sectors: u16) -> Result<Vec<u8>, PayloadError> {
    let mut code = mbr_code().map_err(|source| PayloadError::Assemble {
        what: "MBR boot code",
        source,
    })?;
    if code.len() > MBR_DAP {
        return Err(PayloadError::TooLarge {
            what: "MBR boot code (before its disk address packet)",
            len: code.len(),
            room: MBR_DAP,
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::testing::{disassemble, report};
    use crate::payload::MBR_LBA_OFFSET;

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
    fn a_silent_program_never_reports() {
        let code = bios_eltorito(&report(), Kind::Silent).unwrap();
        assert!(!code
            .windows(REPORT_TAG.len())
            .any(|w| w == REPORT_TAG.as_bytes()));
        assert_eq!(
            disassemble(16, &code[0x47..], 0x7C47, 3),
            ["cli", "hlt", "jmp short 7C48h"]
        );
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
}
