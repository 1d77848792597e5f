//! Boot payloads, built by the project and reproducible bit for bit: small programs that
//! prove an image booted by printing one report line on COM1 and leaving QEMU through
//! `isa-debug-exit` (port 0xF4; QEMU then exits with status 33).
//!
//! - [`report`]: the report line, as payloads print it and the boot stage reads it back;
//! - `bios`: the El Torito no-emulation boot program (real mode, 16-bit), with a second
//!   entry point for the MBR, and the hybrid image's MBR boot code that loads it from the
//!   disk view of the image (INT 13h extended read), so BIOS boots from a USB stick or disk;
//! - `uefi`: a UEFI application for `\EFI\BOOT\BOOTX64.EFI`, which also reads
//!   `\isoproof\config.json` through the firmware's file-system protocol and reports its
//!   CRC-32, so the firmware's own FAT driver checks the ESP; `pe` wraps it as PE32+.
//!
//! The machine code comes from iced-x86's assembler (`asm` holds the routines both
//! programs share); there are no external binaries.

mod asm;
pub(crate) mod bios;
pub mod linux;
pub(crate) mod pe;
pub mod report;
pub mod sign;
pub(crate) mod uefi;

pub(crate) use bios::{bios_eltorito, mbr};
pub use report::{report_line, Report, Reported};
pub(crate) use uefi::uefi_app;

/// The I/O port of QEMU's `isa-debug-exit` device, as the harness configures it.
pub(crate) const DEBUG_EXIT_PORT: i32 = 0xF4;
/// The value written to it: QEMU exits with `(0x10 << 1) | 1` = 33.
pub(crate) const DEBUG_EXIT_VALUE: i32 = 0x10;
/// The value written when a payload fails: QEMU exits with 35.
pub(crate) const DEBUG_FAIL_VALUE: i32 = 0x11;
/// The end of the El Torito boot info table (bytes 8..64 of a boot image).
const BOOT_INFO_END: usize = 64;
/// Where the MBR loads the El Torito program (it runs at 0x7C00 itself).
const MBR_LOAD: u16 = 0x8000;
/// The El Torito program's second entry point, used by the MBR (offset 2).
const MBR_ENTRY: u16 = 2;
/// Where the MBR's disk address packet starts: its 64-bit LBA field is then at bytes
/// 432..440, the place xorriso patches in isohybrid MBRs (`-isohybrid-mbr`).
pub(crate) const MBR_DAP: usize = 424;
/// The byte offset of the boot program's LBA (512-byte sectors) in the MBR.
pub(crate) const MBR_LBA_OFFSET: usize = 432;
/// Boot code room of an MBR (the disk signature follows).
pub(crate) const MBR_CODE_LEN: usize = 440;
/// The ESP file the UEFI application reads and reports the CRC-32 of.
pub(crate) const ESP_PROBE_FILE: &str = "isoproof/config.json";

/// QEMU's exit status after a payload wrote [`DEBUG_EXIT_VALUE`].
pub(crate) const PASS_STATUS: i32 = 33;
/// QEMU's exit status after a payload wrote [`DEBUG_FAIL_VALUE`].
pub(crate) const FAIL_STATUS: i32 = 35;
/// How every report line starts.
pub(crate) const REPORT_TAG: &str = "ISOPROOF-BOOT";

/// Why a payload could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The assembler refused the program.
    #[error("assembling the {what}: {source}")]
    Assemble {
        /// Which program.
        what: &'static str,
        /// Why.
        #[source]
        source: iced_x86::IcedError,
    },
    /// A program grew past the room it has.
    #[error("the {what} is {len} bytes; at most {room} fit")]
    TooLarge {
        /// Which program.
        what: &'static str,
        /// Its length.
        len: usize,
        /// Its room.
        room: usize,
    },
    /// The text section did not land where the code was assembled for.
    #[error("writing the UEFI application's PE32+ image: the text section landed at {got:#x}, not {want:#x}")]
    PeLayout {
        /// Where the code expects it.
        want: u64,
        /// Where the writer put it.
        got: u64,
    },
    /// The PE writer failed.
    #[error("writing the UEFI application's PE32+ image: {0}")]
    Pe(#[from] object::write::Error),
}

/// Which boot payload an image carries (`isoImage.bootPayload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Reports and exits (the default).
    Probe,
    /// Never reports: halts forever. Proves the boot harness's deadline.
    Silent,
    /// A live Linux system from a payload root (see [`linux`]), which verifies the image
    /// from inside and reports what it saw.
    Linux,
}

impl Kind {
    /// The option's value for this kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Probe => "probe",
            Kind::Silent => "silent",
            Kind::Linux => "linux",
        }
    }

    /// The kind named by `isoImage.bootPayload`.
    pub fn from_name(s: &str) -> Option<Kind> {
        match s {
            "probe" => Some(Kind::Probe),
            "silent" => Some(Kind::Silent),
            "linux" => Some(Kind::Linux),
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

impl PayloadError {
    /// Its exit class: a program that outgrew its room is the config's doing (a long
    /// hostname, many kernel parameters); the rest are isoproof's own bugs.
    pub fn class(&self) -> crate::exit::Class {
        use crate::exit::Class;
        match self {
            PayloadError::TooLarge { .. } => Class::BadInput,
            PayloadError::Assemble { .. } | PayloadError::PeLayout { .. } | PayloadError::Pe(_) => {
                Class::Internal
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! What the payload tests share.
    use super::Report;
    use iced_x86::{Decoder, DecoderOptions, Formatter, NasmFormatter};

    pub fn report() -> Report {
        Report {
            volume_id: "NIXOS_MINIMAL".into(),
            hostname: "nixos-installer".into(),
            kernel_params: "console=ttyS0,115200 quiet".into(),
            config_sha256: "ab".repeat(32),
        }
    }

    pub fn disassemble(bitness: u32, code: &[u8], ip: u64, n: usize) -> Vec<String> {
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
}
