//! The BIOS payloads: the El Torito no-emulation boot program and the hybrid image's MBR
//! boot code that loads it from a USB stick or disk.

use iced_x86::code_asm::*;
use iced_x86::IcedError;

use super::asm::{exit, halt, putc, puts};
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

/// The offset of the instruction after the program's `call` that finds its own address:
/// the jumps at 0 and 2, the boot info table, the entries (7 bytes), `cli`, `push cs`,
/// `pop ds`, `cld`, `mov di,dx` (2) and the `call` (3). A unit test checks it.
const HERE_OFFSET: u16 = BOOT_INFO_END as u16 + 7 + 4 + 2 + 3;

/// Where the primary volume descriptor is read to (free conventional memory).
const PVD_BUFFER: u16 = 0x0600;
/// The volume identifier's offset in the primary volume descriptor (ECMA-119 8.4.6).
const VOLUME_ID_AT: u16 = 40;

/// Emits: read the primary volume descriptor — its 2048-byte LBA from the boot info table
/// (`bi_pvd`, the program's bytes 8..12, BX = the program's start), on drive DI, in 2048-byte
/// sectors from a CD (BP = 0) or 512-byte sectors from a disk (BP = 1) — with INT 13h
/// AH=42h, and print its volume identifier without the trailing spaces (`?` when the read
/// fails). Keeps DS (= CS).
fn read_volume_id(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut cd = a.create_label();
    let mut failed = a.create_label();
    let mut trim = a.create_label();
    let mut print = a.create_label();
    let mut done = a.create_label();
    a.mov(ax, word_ptr(bx + 8))?;
    a.mov(cx, 1u32)?;
    a.test(bp, bp)?;
    a.jz(cd)?;
    a.shl(ax, 2u32)?;
    a.mov(cx, 4u32)?;
    a.set_label(&mut cd)?;
    // The disk address packet on the stack: size 16, count CX, buffer 0000:PVD_BUFFER, LBA AX.
    a.xor(dx, dx)?;
    a.push(dx)?;
    a.push(dx)?;
    a.push(dx)?;
    a.push(ax)?;
    a.push(dx)?;
    a.mov(ax, PVD_BUFFER as u32)?;
    a.push(ax)?;
    a.push(cx)?;
    a.mov(ax, 0x10u32)?;
    a.push(ax)?;
    a.push(ds)?;
    a.mov(ax, ss)?;
    a.mov(ds, ax)?;
    a.mov(si, sp)?;
    a.add(si, 2u32)?;
    a.mov(dx, di)?;
    a.mov(ah, 0x42u32)?;
    a.sti()?;
    a.int(0x13)?;
    a.cli()?;
    // CX = -1 when the read failed (carry), before the stack is cleaned up.
    a.sbb(cx, cx)?;
    a.pop(ds)?;
    a.add(sp, 16u32)?;
    a.test(cx, cx)?;
    a.jnz(failed)?;
    a.push(ds)?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    a.mov(si, (PVD_BUFFER + VOLUME_ID_AT) as u32)?;
    a.mov(cx, 32u32)?;
    a.set_label(&mut trim)?;
    a.mov(bx, si)?;
    a.add(bx, cx)?;
    a.cmp(byte_ptr(bx - 1), 0x20)?;
    a.jne(print)?;
    a.dec(cx)?;
    a.jnz(trim)?;
    a.jmp(done)?;
    a.set_label(&mut print)?;
    a.lodsb()?;
    putc(a)?;
    a.dec(cx)?;
    a.jnz(print)?;
    a.set_label(&mut done)?;
    a.pop(ds)?;
    let mut end = a.create_label();
    a.jmp(end)?;
    a.set_label(&mut failed)?;
    a.mov(al, b'?' as u32)?;
    putc(a)?;
    a.set_label(&mut end)?;
    Ok(())
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
        // DS = CS, and SI = a message's offset, whatever CS:IP the BIOS jumped to.
        a.push(cs)?;
        a.pop(ds)?;
        a.cld()?;
        // DL is the boot drive (the BIOS's, or the MBR's, which it leaves alone): kept in
        // DI, since printing clobbers DX.
        a.mov(di, dx)?;
        // BX = where the program starts in CS (0x7C00 from a CD, 0x8000 from the MBR).
        let mut here = a.create_label();
        a.call(here)?;
        a.set_label(&mut here)?;
        a.pop(bx)?;
        a.sub(bx, HERE_OFFSET as u32)?;
        let mut print = a.create_label();
        let mut after_cd = a.create_label();
        a.call(after_cd)?;
        a.db(report.prefix(Via::ElTorito).as_bytes())?;
        a.db(&[0])?;
        a.set_label(&mut after_cd)?;
        a.pop(si)?;
        a.test(bp, bp)?;
        a.jz(print)?;
        let mut after_mbr = a.create_label();
        a.call(after_mbr)?;
        a.db(report.prefix(Via::Mbr).as_bytes())?;
        a.db(&[0])?;
        a.set_label(&mut after_mbr)?;
        a.pop(si)?;
        a.set_label(&mut print)?;
        puts(&mut a)?;
        read_volume_id(&mut a)?;
        let mut after_rest = a.create_label();
        a.call(after_rest)?;
        a.db(report.after_volume(Via::ElTorito).as_bytes())?;
        a.db(report.tail().as_bytes())?;
        a.db(&[0])?;
        a.set_label(&mut after_rest)?;
        a.pop(si)?;
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
        // Both prefixes are in the program, NUL-terminated, and one rest of the line (the
        // volume ID between them comes from the disk).
        for via in [Via::ElTorito, Via::Mbr] {
            let mut z = report().prefix(via).into_bytes();
            z.push(0);
            assert!(code.windows(z.len()).any(|w| w == z), "{via:?}");
        }
        let mut rest = (report().after_volume(Via::Mbr) + &report().tail()).into_bytes();
        rest.push(0);
        assert!(code.windows(rest.len()).any(|w| w == rest));
        assert!(!code
            .windows(b"volume=NIXOS".len())
            .any(|w| w == b"volume=NIXOS"));
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
    fn the_program_finds_its_start_and_reads_the_pvd() {
        let code = bios_eltorito(&report(), Kind::Probe).unwrap();
        // The call that finds the program's address jumps to the next instruction, which
        // is HERE_OFFSET bytes into the program.
        let call = HERE_OFFSET as usize - 3;
        assert_eq!(code[call..call + 3], [0xE8, 0, 0]);
        let text = disassemble(
            16,
            &code[HERE_OFFSET as usize..],
            0x7C00 + HERE_OFFSET as u64,
            2,
        );
        assert_eq!(
            text,
            ["pop bx", format!("sub bx,{:X}h", HERE_OFFSET).as_str()]
        );
        let all = disassemble(16, &code, 0x7C00, 600).join("\n");
        assert!(
            all.contains("mov ax,[bx+8]"),
            "bi_pvd from the boot info table"
        );
        assert!(all.contains("int 13h"));
        assert!(
            all.contains("mov si,628h"),
            "the volume identifier at PVD offset 40"
        );
        // The prefix is printed, then what the disk says, then the embedded fields.
        let prefix = report().prefix(Via::ElTorito);
        assert!(code.windows(prefix.len()).any(|w| w == prefix.as_bytes()));
        let rest = report().after_volume(Via::ElTorito);
        assert!(rest.contains("embedded=hostname,config,params"));
        assert!(code.windows(rest.len()).any(|w| w == rest.as_bytes()));
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
