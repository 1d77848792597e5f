//! Routines both payloads assemble: printing on COM1 by polling the UART, leaving QEMU
//! through `isa-debug-exit`, halting, and RIP-relative addresses.

use iced_x86::code_asm::*;
use iced_x86::IcedError;

use super::DEBUG_EXIT_PORT;

/// Emits: print the character in AL on COM1 once its transmitter is empty (clobbers AH, DX).
pub(super) fn putc(a: &mut CodeAssembler) -> Result<(), IcedError> {
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
pub(super) fn puts(a: &mut CodeAssembler) -> Result<(), IcedError> {
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
pub(super) fn exit(a: &mut CodeAssembler, value: i32) -> Result<(), IcedError> {
    a.mov(al, value as u32)?;
    a.out(DEBUG_EXIT_PORT, al)?;
    halt(a)
}

/// Emits: halt forever.
pub(super) fn halt(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut hang = a.create_label();
    a.set_label(&mut hang)?;
    a.hlt()?;
    a.jmp(hang)?;
    Ok(())
}

/// Emits `lea reg, [rel label]`.
pub(super) fn lea_label(
    a: &mut CodeAssembler,
    reg: AsmRegister64,
    l: CodeLabel,
) -> Result<(), IcedError> {
    a.lea(reg, ptr(l))
}
