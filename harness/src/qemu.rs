//! The QEMU command line of one boot: a q35 machine with nothing but what the boot needs
//! (`-nodefaults -no-user-config`), the image attached read-only as a CD-ROM, a USB stick
//! (usb-storage on xHCI: the isohybrid path) or a virtio disk, or a netboot directory served
//! by QEMU's user network (its TFTP server, `bootfile=netboot.ipxe`, no route out) to a
//! virtio NIC whose option ROM is QEMU's iPXE (BIOS and EFI in one), SeaBIOS or OVMF
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
    /// OVMF's Secure Boot build with keys enrolled (SMM, secure flash), Secure Boot enforced.
    UefiSecure,
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
    /// The network: a netboot directory over TFTP, booted by iPXE.
    Netboot,
}

impl Firmware {
    /// Every firmware.
    pub const ALL: [Firmware; 3] = [Firmware::Bios, Firmware::Uefi, Firmware::UefiSecure];

    /// `bios` / `uefi` / `uefi-sb`.
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
            Firmware::UefiSecure => "uefi-sb",
        }
    }

    /// Parses [`Firmware::name`].
    pub fn parse(s: &str) -> Option<Firmware> {
        Firmware::ALL.into_iter().find(|f| f.name() == s)
    }

    /// OVMF, with or without Secure Boot.
    pub fn is_uefi(self) -> bool {
        self != Firmware::Bios
    }
}

impl Media {
    /// Every medium.
    pub const ALL: [Media; 4] = [Media::Cdrom, Media::Usb, Media::Disk, Media::Netboot];

    /// `cdrom` / `usb` / `disk` / `netboot`.
    pub fn name(self) -> &'static str {
        match self {
            Media::Cdrom => "cdrom",
            Media::Usb => "usb",
            Media::Disk => "disk",
            Media::Netboot => "netboot",
        }
    }

    /// Whether the image is a directory served over the network (not an image file).
    pub fn is_network(self) -> bool {
        self == Media::Netboot
    }

    /// Parses [`Media::name`].
    pub fn parse(s: &str) -> Option<Media> {
        Media::ALL.into_iter().find(|m| m.name() == s)
    }
}

/// A name that is not a boot mode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected FIRMWARE-MEDIA, e.g. bios-cdrom or uefi-usb")]
pub struct UnknownMode(pub String);

impl std::str::FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Mode, UnknownMode> {
        Mode::parse(s).ok_or_else(|| UnknownMode(s.to_string()))
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
    /// All eleven modes, BIOS first.
    pub fn all() -> Vec<Mode> {
        Firmware::ALL
            .into_iter()
            .flat_map(|firmware| {
                Media::ALL
                    .into_iter()
                    .map(move |media| Mode { firmware, media })
            })
            .filter(Mode::exists)
            .collect()
    }

    /// Secure Boot over the network would need an iPXE signed with the enrolled keys, which
    /// no distribution ships: that one combination is not a mode.
    fn exists(&self) -> bool {
        !(self.firmware == Firmware::UefiSecure && self.media == Media::Netboot)
    }

    /// Parses `bios-cdrom`, `uefi-sb-usb` and the like.
    pub fn parse(s: &str) -> Option<Mode> {
        let (f, m) = s.rsplit_once(['-', '/'])?;
        Some(Mode {
            firmware: Firmware::parse(&f.replace('/', "-"))?,
            media: Media::parse(m)?,
        })
        .filter(Mode::exists)
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

/// QEMU's option syntax: a comma inside a value is written twice. Works on the path's bytes,
/// so a path that is not UTF-8 reaches QEMU as it is.
pub fn escape(p: &Path) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut out = Vec::with_capacity(p.as_os_str().len());
    for &b in p.as_os_str().as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

/// `key=value` with the value escaped, after `prefix` (other options).
fn opt(prefix: &str, path: &Path) -> OsString {
    let mut o = OsString::from(prefix);
    o.push(escape(path));
    o
}

/// A read-only or writable raw image as two block nodes, `NAME-file` (the host file) and
/// `NAME` (its raw format). `-blockdev driver=file,filename=` takes the path as a file name
/// and nothing else: `-drive file=` reads `nbd:…`, `file:…` or `json:…` in a name as a
/// protocol, so an image named `file:good.iso` would boot `good.iso`.
fn blockdev(a: &mut Vec<OsString>, name: &str, path: &Path, read_only: bool) {
    let ro = if read_only { ",read-only=on" } else { "" };
    a.push("-blockdev".into());
    let mut file = opt("driver=file,filename=", path);
    file.push(format!(",node-name={name}-file{ro}"));
    a.push(file);
    a.push("-blockdev".into());
    a.push(format!("driver=raw,file={name}-file,node-name={name}{ro}").into());
}

impl Launch {
    /// The arguments after the program name, in a fixed order.
    pub fn args(&self) -> Vec<OsString> {
        // OVMF's Secure Boot build keeps its variables in SMM, behind flash only SMM may write.
        let secure = self.mode.firmware == Firmware::UefiSecure;
        let machine = match (self.ovmf.is_some(), secure) {
            (true, true) => "q35,smm=on,pflash0=ovmf-code,pflash1=ovmf-vars",
            (true, false) => "q35,pflash0=ovmf-code,pflash1=ovmf-vars",
            _ => "q35",
        };
        let mut a: Vec<OsString> = [
            "-nodefaults",
            "-no-user-config",
            "-machine",
            machine,
            "-accel",
            self.accel.name(),
            "-m",
            &self.memory_mib.to_string(),
            "-display",
            "none",
            "-device",
            "VGA",
            "-chardev",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        a.push(opt("file,id=com1,path=", &self.serial));
        a.extend(
            [
                "-serial",
                "chardev:com1",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-no-reboot",
            ]
            .map(OsString::from),
        );
        if let Some((code, vars)) = &self.ovmf {
            blockdev(&mut a, "ovmf-code", code, true);
            blockdev(&mut a, "ovmf-vars", vars, false);
            if secure {
                a.extend(
                    ["-global", "driver=cfi.pflash01,property=secure,value=on"].map(OsString::from),
                );
            }
        }
        // The medium: a controller where one is needed, the read-only image, the device.
        let (controller, device) = match self.mode.media {
            Media::Cdrom => (None, "ide-cd,drive=boot,bus=ide.0"),
            Media::Usb => (
                Some("qemu-xhci,id=xhci"),
                "usb-storage,bus=xhci.0,drive=boot",
            ),
            Media::Disk => (None, "virtio-blk-pci,drive=boot"),
            Media::Netboot => (None, "virtio-net-pci,netdev=net0"),
        };
        if let Some(c) = controller {
            a.extend(["-device".into(), c.into()]);
        }
        if self.mode.media.is_network() {
            // DHCP names the script; iPXE fetches it and the files it names over TFTP. The
            // guest reaches nothing but QEMU's own servers.
            a.push("-netdev".into());
            let mut n = opt("user,id=net0,restrict=on,tftp=", &self.image);
            n.push(",bootfile=netboot.ipxe");
            a.push(n);
        } else {
            blockdev(&mut a, "boot", &self.image, true);
        }
        a.extend(["-device".into(), format!("{device},bootindex=0").into()]);
        if let Some(q) = &self.qmp {
            a.push("-qmp".into());
            let mut o = opt("unix:", q);
            o.push(",server=on,wait=off");
            a.push(o);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_print() {
        assert_eq!(Mode::all().len(), 11);
        assert_eq!(Mode::parse("uefi-sb-netboot"), None);
        assert_eq!(
            Mode::parse("uefi-sb-usb"),
            Some(Mode {
                firmware: Firmware::UefiSecure,
                media: Media::Usb
            })
        );
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
    fn commas_in_paths_are_doubled_and_bytes_kept() {
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(escape(Path::new("a,b/c.iso")), "a,,b/c.iso");
        let odd = Path::new(std::ffi::OsStr::from_bytes(b"x\xff,y.iso"));
        assert_eq!(escape(odd).as_bytes(), b"x\xff,,y.iso");
    }
}
