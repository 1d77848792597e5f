//! The payload root: a directory in Debian's own layout (what `dpkg-deb -x` writes) holding
//! the kernel, its modules, busybox, ISOLINUX and systemd's EFI stub. The kernel version is
//! read from the tree (`boot/vmlinuz-VERSION` with `lib/modules/VERSION`), never assumed.

use std::path::{Path, PathBuf};

use super::LinuxError;

/// Where each part lives in Debian's layout, relative to the root.
pub const BUSYBOX: &str = "bin/busybox";
/// ISOLINUX's El Torito boot image.
pub const ISOLINUX_BIN: &str = "usr/lib/ISOLINUX/isolinux.bin";
/// ISOLINUX's isohybrid MBR code (432 bytes).
pub const ISOHDPFX_BIN: &str = "usr/lib/ISOLINUX/isohdpfx.bin";
/// The syslinux core module ISOLINUX loads.
pub const LDLINUX_C32: &str = "usr/lib/syslinux/modules/bios/ldlinux.c32";
/// systemd-stub, the UKI's front.
pub const EFI_STUB: &str = "usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// The parts found in a payload root.
#[derive(Clone, Debug, PartialEq)]
pub struct PayloadRoot {
    /// The root itself (canonical).
    pub root: PathBuf,
    /// The kernel version (`6.1.0-57-amd64`), from the tree.
    pub version: String,
}

impl PayloadRoot {
    /// Finds the parts under `root`: exactly one kernel `boot/vmlinuz-V` whose modules are in
    /// `lib/modules/V` (with `modules.dep`), and every other part.
    pub fn open(root: &Path) -> Result<PayloadRoot, LinuxError> {
        let missing = |what: &'static str, path: PathBuf| LinuxError::Missing { what, path };
        let not_there = || LinuxError::NoRoot(root.into());
        if !std::fs::metadata(root).map_err(|_| not_there())?.is_dir() {
            return Err(not_there());
        }
        let root = std::fs::canonicalize(root).map_err(|_| not_there())?;
        let boot = root.join("boot");
        let kernels = kernel_versions(&boot)
            .map_err(|_| missing("boot/ with a vmlinuz-VERSION kernel", boot.clone()))?;
        let version = match kernels.as_slice() {
            [] => return Err(missing("kernel boot/vmlinuz-VERSION", boot)),
            [one] => one.clone(),
            several => {
                return Err(LinuxError::SeveralKernels {
                    root: root.clone(),
                    versions: several.to_vec(),
                })
            }
        };
        let modules = root.join("lib/modules").join(&version);
        if !modules.join("modules.dep").is_file() {
            let found: Vec<String> = std::fs::read_dir(root.join("lib/modules"))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            return Err(LinuxError::ModulesOfAnotherKernel {
                version,
                path: modules,
                found,
            });
        }
        let r = PayloadRoot { root, version };
        for part in [BUSYBOX, ISOLINUX_BIN, ISOHDPFX_BIN, LDLINUX_C32, EFI_STUB] {
            let p = r.root.join(part);
            if !p.is_file() {
                return Err(missing(part_name(part), p));
            }
        }
        Ok(r)
    }

    /// The kernel image.
    pub fn kernel(&self) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("vmlinuz-{}", self.version))
    }

    /// `lib/modules/VERSION`.
    pub fn modules_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.version)
    }

    /// A part by its path in the layout.
    pub fn part(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

/// The versions of the kernels in a `boot/` directory (`vmlinuz-VERSION`), sorted.
pub(crate) fn kernel_versions(boot: &Path) -> std::io::Result<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(boot)?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("vmlinuz-"))
                .map(str::to_string)
        })
        .collect();
    v.sort();
    Ok(v)
}

fn part_name(rel: &str) -> &'static str {
    match rel {
        BUSYBOX => "busybox (busybox-static)",
        ISOLINUX_BIN => "isolinux.bin (isolinux)",
        ISOHDPFX_BIN => "isohdpfx.bin (isolinux)",
        LDLINUX_C32 => "ldlinux.c32 (syslinux-common)",
        _ => "linuxx64.efi.stub (systemd-boot-efi)",
    }
}
