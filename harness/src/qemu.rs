//! The QEMU command line of one boot: a q35 machine with nothing but what the boot needs
//! (`-nodefaults -no-user-config`, no network), the image attached read-only as a CD-ROM, a
//! USB stick (usb-storage on xHCI: the isohybrid path) or a virtio disk, SeaBIOS or OVMF
//! (code read-only, a fresh copy of the variables), COM1 into a file, `isa-debug-exit` for
//! the verdict, a VGA for screenshots and a QMP socket to take them.
//!
//! Arguments are built as a list and passed to `std::process::Command`; no shell is involved.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The firmware a boot runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default PC firmware.
    Bios,
    /// OVMF (EDK II for QEMU).
    Uefi,
}

/// How the image is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Media {
    /// An IDE (AHCI) CD-ROM drive: El Torito.
    Cdrom,
    /// A USB stick (usb-storage on an xHCI controller): the isohybrid MBR/GPT.
    Usb,
    /// A virtio-blk disk: the isohybrid MBR/GPT.
    Disk,
}

impl Firmware {
    /// Both firmwares.
    pub const ALL: [Firmware; 2] = [Firmware::Bios, Firmware::Uefi];

    /// `bios` / `uefi`.
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }

    /// Parses [`Firmware::name`].
    pub fn parse(s: &str) -> Option<Firmware> {
        Firmware::ALL.into_iter().find(|f| f.name() == s)
    }
}

impl Media {
    /// Every medium.
    pub const ALL: [Media; 3] = [Media::Cdrom, Media::Usb, Media::Disk];

    /// `cdrom` / `usb` / `disk`.
    pub fn name(self) -> &'static str {
        match self {
            Media::Cdrom => "cdrom",
            Media::Usb => "usb",
            Media::Disk => "disk",
        }
    }

    /// Parses [`Media::name`].
    pub fn parse(s: &str) -> Option<Media> {
        Media::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// A firmware and a medium: one cell of the boot matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mode {
    /// The firmware.
    pub firmware: Firmware,
    /// The medium.
    pub media: Media,
}

impl Mode {
    /// All six modes, BIOS first.
    pub fn all() -> Vec<Mode> {
        Firmware::ALL
            .into_iter()
            .flat_map(|firmware| {
                Media::ALL
                    .into_iter()
                    .map(move |media| Mode { firmware, media })
            })
            .collect()
    }

    /// Parses `bios-cdrom` and the like.
    pub fn parse(s: &str) -> Option<Mode> {
        let (f, m) = s.split_once(['-', '/'])?;
        Some(Mode {
            firmware: Firmware::parse(f)?,
            media: Media::parse(m)?,
        })
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.firmware.name(), self.media.name())
    }
}

/// Hardware acceleration of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// KVM.
    Kvm,
    /// QEMU's software emulator.
    Tcg,
}

impl Accel {
    /// `kvm` / `tcg`.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// OVMF's two flash images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ovmf {
    /// The code (mapped read-only).
    pub code: PathBuf,
    /// The variable store template (copied for every run).
    pub vars: PathBuf,
    /// Where the pair was found (a descriptor file, a known path, the command line).
    pub origin: String,
}

/// Everything one QEMU invocation needs.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The image to boot.
    pub image: PathBuf,
    /// Firmware and medium.
    pub mode: Mode,
    /// Acceleration.
    pub accel: Accel,
    /// OVMF code, and this run's own copy of the variables (UEFI only).
    pub ovmf: Option<(PathBuf, PathBuf)>,
    /// Where COM1 goes.
    pub serial: PathBuf,
    /// The QMP socket (for screenshots), if any.
    pub qmp: Option<PathBuf>,
    /// Guest memory.
    pub memory_mib: u32,
}

/// QEMU's option syntax: a comma inside a value is written twice.
pub fn escape(p: &Path) -> String {
    p.to_string_lossy().replace(',', ",,")
}

impl Launch {
    /// The arguments after the program name, in a fixed order.
    pub fn args(&self) -> Vec<OsString> {
        let image = escape(&self.image);
        let mut a: Vec<String> = vec![
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-machine".into(),
            "q35".into(),
            "-accel".into(),
            self.accel.name().into(),
            "-m".into(),
            self.memory_mib.to_string(),
            "-display".into(),
            "none".into(),
            "-device".into(),
            "VGA".into(),
            "-chardev".into(),
            format!("file,id=com1,path={}", escape(&self.serial)),
            "-serial".into(),
            "chardev:com1".into(),
            "-device".into(),
            "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
            "-no-reboot".into(),
        ];
        if let Some((code, vars)) = &self.ovmf {
            a.push("-drive".into());
            a.push(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                escape(code)
            ));
            a.push("-drive".into());
            a.push(format!("if=pflash,format=raw,unit=1,file={}", escape(vars)));
        }
        // The medium: a controller where one is needed, the read-only drive, the device.
        let (controller, cdrom, device) = match self.mode.media {
            Media::Cdrom => (None, ",media=cdrom", "ide-cd,drive=boot,bus=ide.0"),
            Media::Usb => (
                Some("qemu-xhci,id=xhci"),
                "",
                "usb-storage,bus=xhci.0,drive=boot",
            ),
            Media::Disk => (None, "", "virtio-blk-pci,drive=boot"),
        };
        if let Some(c) = controller {
            a.extend(["-device".into(), c.into()]);
        }
        a.extend([
            "-drive".into(),
            format!("if=none,id=boot,format=raw{cdrom},readonly=on,file={image}"),
            "-device".into(),
            format!("{device},bootindex=0"),
        ]);
        if let Some(q) = &self.qmp {
            a.push("-qmp".into());
            a.push(format!("unix:{},server=on,wait=off", escape(q)));
        }
        a.into_iter().map(OsString::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        assert_eq!(Mode::all().len(), 6);
        for m in Mode::all() {
            assert_eq!(Mode::parse(&m.to_string()), Some(m));
        }
        assert_eq!(
            Mode::parse("bios/usb").map(|m| m.to_string()),
            Some("bios-usb".into())
        );
        assert_eq!(Mode::parse("efi-cdrom"), None);
    }

    #[test]
    fn commas_in_paths_are_doubled() {
        assert_eq!(escape(Path::new("a,b/c.iso")), "a,,b/c.iso");
    }
}
