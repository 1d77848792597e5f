//! Finding OVMF the way QEMU's own tools do: the firmware descriptors of
//! `docs/interop/firmware.json` (`$XDG_CONFIG_HOME/qemu/firmware`, `/etc/qemu/firmware`, then
//! `share/qemu/firmware` beside the QEMU binary and in `/usr/share`; a file name in an earlier
//! directory hides the same name in later ones; candidates go in file-name order), chosen by
//! interface (`uefi`), architecture (`x86_64`), machine type (q35) and features (no Secure
//! Boot keys or SMM requirement: our payload is unsigned). Then the known paths of Debian,
//! Fedora, Arch, openSUSE and NixOS. SeaBIOS needs no search: it is QEMU's default firmware.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::qemu::Ovmf;

/// One `*.json` firmware descriptor (the fields we choose by).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Descriptor {
    #[serde(default)]
    interface_types: Vec<String>,
    mapping: Mapping,
    #[serde(default)]
    targets: Vec<Target>,
    #[serde(default)]
    features: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Mapping {
    device: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    executable: Option<FileRef>,
    #[serde(default)]
    nvram_template: Option<FileRef>,
}

#[derive(Debug, Deserialize)]
struct FileRef {
    filename: PathBuf,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Target {
    architecture: String,
    #[serde(default)]
    machines: Vec<String>,
}

/// Features that rule a firmware out for an unsigned payload on a plain q35 machine.
const UNWANTED: [&str; 5] = [
    "enrolled-keys",
    "requires-smm",
    "amd-sev-es",
    "amd-sev-snp",
    "intel-tdx",
];

/// Known (code, vars) pairs, per distribution, for machines without descriptors.
pub const KNOWN_PATHS: [(&str, &str, &str); 9] = [
    (
        "Debian/Ubuntu",
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "Debian/Ubuntu (2 MiB)",
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    (
        "Fedora",
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
    (
        "Arch",
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ),
    (
        "Arch (older)",
        "/usr/share/edk2-ovmf/x64/OVMF_CODE.fd",
        "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd",
    ),
    (
        "openSUSE",
        "/usr/share/qemu/ovmf-x86_64-4m-code.bin",
        "/usr/share/qemu/ovmf-x86_64-4m-vars.bin",
    ),
    (
        "openSUSE (2 MiB)",
        "/usr/share/qemu/ovmf-x86_64-code.bin",
        "/usr/share/qemu/ovmf-x86_64-vars.bin",
    ),
    (
        "NixOS (libvirtd)",
        "/run/libvirt/nix-ovmf/OVMF_CODE.fd",
        "/run/libvirt/nix-ovmf/OVMF_VARS.fd",
    ),
    (
        "NixOS (profile)",
        "/run/current-system/sw/share/qemu/edk2-x86_64-code.fd",
        "/run/current-system/sw/share/qemu/edk2-i386-vars.fd",
    ),
];

/// OVMF's Secure Boot build with test keys enrolled, where Debian's `ovmf` package puts it:
/// `OVMF_CODE_4M.snakeoil.fd` with `OVMF_VARS_4M.snakeoil.fd`, whose PK, KEK and db hold the
/// certificate `PkKek-1-snakeoil.pem` shipped beside them. `None` when it is not installed.
pub fn find_secure_ovmf() -> Option<Ovmf> {
    const DIRS: [&str; 2] = ["/usr/share/OVMF", "/usr/share/ovmf"];
    DIRS.iter().find_map(|d| {
        let code = Path::new(d).join("OVMF_CODE_4M.snakeoil.fd");
        let vars = Path::new(d).join("OVMF_VARS_4M.snakeoil.fd");
        (code.is_file() && vars.is_file()).then(|| Ovmf {
            code,
            vars,
            origin: "Debian's Secure Boot build with the snakeoil test keys enrolled".into(),
        })
    })
}

/// Where to look.
#[derive(Clone, Debug)]
pub struct Search {
    /// Descriptor directories, highest priority first.
    pub descriptor_dirs: Vec<PathBuf>,
    /// (label, code, vars) tried in order after the descriptors.
    pub known: Vec<(String, PathBuf, PathBuf)>,
}

impl Search {
    /// The standard places for a QEMU binary at `qemu` (its `../share/qemu/firmware` is where
    /// Nix-built QEMUs keep their descriptors).
    pub fn standard(qemu: Option<&Path>) -> Search {
        let mut dirs = Vec::new();
        match std::env::var_os("XDG_CONFIG_HOME") {
            Some(x) if !x.is_empty() => dirs.push(PathBuf::from(x).join("qemu/firmware")),
            _ => {
                if let Some(h) = std::env::var_os("HOME") {
                    dirs.push(PathBuf::from(h).join(".config/qemu/firmware"));
                }
            }
        }
        dirs.push("/etc/qemu/firmware".into());
        if let Some(prefix) = qemu
            .and_then(|q| q.canonicalize().ok())
            .and_then(|q| q.parent()?.parent().map(Path::to_path_buf))
        {
            let d = prefix.join("share/qemu/firmware");
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        let usr = PathBuf::from("/usr/share/qemu/firmware");
        if !dirs.contains(&usr) {
            dirs.push(usr);
        }
        Search {
            descriptor_dirs: dirs,
            known: KNOWN_PATHS
                .iter()
                .map(|(l, c, v)| (l.to_string(), c.into(), v.into()))
                .collect(),
        }
    }
}

/// No usable OVMF: everything that was looked at, and why each candidate was refused.
#[derive(Debug, thiserror::Error)]
pub struct NotFound {
    /// Descriptor directories searched.
    pub dirs: Vec<PathBuf>,
    /// Descriptor files seen, with why each was not used.
    pub refused: Vec<(PathBuf, Unfit)>,
    /// Known paths tried.
    pub known: Vec<PathBuf>,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "no usable OVMF (UEFI firmware for x86_64) was found")?;
        writeln!(f, "  firmware descriptors searched in:")?;
        for d in &self.dirs {
            writeln!(f, "    {}", d.display())?;
        }
        for (p, why) in &self.refused {
            writeln!(f, "    {}: {why}", p.display())?;
        }
        writeln!(f, "  known paths tried:")?;
        for p in &self.known {
            writeln!(f, "    {}", p.display())?;
        }
        write!(
            f,
            "  install OVMF (Debian: apt-get install ovmf) or pass --ovmf-code and --ovmf-vars"
        )
    }
}

/// `*` matches any run of characters (QEMU's descriptors use shell globs for machine types).
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(s) = s.strip_prefix(head) else {
                return false;
            };
            (0..=s.len()).any(|i| s.is_char_boundary(i) && glob(rest, &s[i..]))
        }
    }
}

/// Why a firmware descriptor cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum Unfit {
    /// It does not read as a descriptor.
    #[error("{0}")]
    Unreadable(#[source] std::io::Error),
    /// It is not JSON of a descriptor's shape.
    #[error("{0}")]
    NotADescriptor(#[source] serde_json::Error),
    /// Not a UEFI firmware.
    #[error("interface {0:?}, not uefi")]
    Interface(Vec<String>),
    /// No x86_64 q35 machine.
    #[error("no x86_64 q35 target")]
    NoQ35,
    /// A feature the harness does not want (Secure Boot with keys, AMD SEV, ...).
    #[error("feature {0:?}")]
    Feature(String),
    /// Not split flash.
    #[error("mapping {device} {mode}, not split flash")]
    Mapping {
        /// The device.
        device: String,
        /// The mode.
        mode: String,
    },
    /// The code and variables files are not named.
    #[error("no executable and nvram-template")]
    NoFiles,
    /// A file in a format other than raw.
    #[error("{} is not raw", .0.display())]
    NotRaw(PathBuf),
    /// A file that does not exist.
    #[error("{} does not exist", .0.display())]
    Absent(PathBuf),
}

/// Why a descriptor cannot serve, or its (code, vars).
fn judge(d: &Descriptor) -> Result<(PathBuf, PathBuf), Unfit> {
    if !d.interface_types.iter().any(|t| t == "uefi") {
        return Err(Unfit::Interface(d.interface_types.clone()));
    }
    // Any pc-q35-<version> machine type.
    if !d
        .targets
        .iter()
        .any(|t| t.architecture == "x86_64" && t.machines.iter().any(|m| glob(m, "pc-q35-9.9")))
    {
        return Err(Unfit::NoQ35);
    }
    if let Some(bad) = d.features.iter().find(|f| UNWANTED.contains(&f.as_str())) {
        return Err(Unfit::Feature(bad.clone()));
    }
    if d.mapping.device != "flash" || d.mapping.mode.as_deref().is_some_and(|m| m != "split") {
        return Err(Unfit::Mapping {
            device: d.mapping.device.clone(),
            mode: d.mapping.mode.clone().unwrap_or_default(),
        });
    }
    let (Some(code), Some(vars)) = (&d.mapping.executable, &d.mapping.nvram_template) else {
        return Err(Unfit::NoFiles);
    };
    for f in [code, vars] {
        if f.format.as_deref().is_some_and(|x| x != "raw") {
            return Err(Unfit::NotRaw(f.filename.clone()));
        }
        if !f.filename.is_file() {
            return Err(Unfit::Absent(f.filename.clone()));
        }
    }
    Ok((code.filename.clone(), vars.filename.clone()))
}

/// Finds OVMF: the first suitable descriptor, else the first known pair that exists.
/// Descriptors with Secure Boot (but no enrolled keys) come after those without.
pub fn find_ovmf(search: &Search) -> Result<Ovmf, NotFound> {
    // File name → path; earlier directories win.
    let mut files: BTreeMap<String, PathBuf> = BTreeMap::new();
    for d in &search.descriptor_dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".json") {
                files.entry(name).or_insert_with(|| e.path());
            }
        }
    }
    let mut refused = Vec::new();
    let mut fits: Vec<(bool, PathBuf, PathBuf, PathBuf)> = Vec::new();
    for path in files.into_values() {
        let parsed = std::fs::read_to_string(&path)
            .map_err(Unfit::Unreadable)
            .and_then(|s| serde_json::from_str::<Descriptor>(&s).map_err(Unfit::NotADescriptor));
        match parsed.and_then(|d| {
            let secure = d.features.iter().any(|f| f == "secure-boot");
            judge(&d).map(|(c, v)| (secure, c, v))
        }) {
            Ok((secure, c, v)) => fits.push((secure, path, c, v)),
            Err(why) => refused.push((path, why)),
        }
    }
    // Stable: file-name order within each group.
    fits.sort_by_key(|f| f.0);
    if let Some((_, path, code, vars)) = fits.into_iter().next() {
        return Ok(Ovmf {
            code,
            vars,
            origin: format!("descriptor {}", path.display()),
        });
    }
    for (label, code, vars) in &search.known {
        if code.is_file() && vars.is_file() {
            return Ok(Ovmf {
                code: code.clone(),
                vars: vars.clone(),
                origin: format!("known path ({label})"),
            });
        }
    }
    Err(NotFound {
        dirs: search.descriptor_dirs.clone(),
        refused,
        known: search.known.iter().map(|(_, c, _)| c.clone()).collect(),
    })
}

/// OVMF from `--ovmf-code`/`--ovmf-vars`, checked to exist.
pub fn given(code: &Path, vars: &Path) -> Result<Ovmf, crate::Error> {
    for p in [code, vars] {
        if !p.is_file() {
            return Err(crate::Error::Missing(p.to_path_buf()));
        }
    }
    Ok(Ovmf {
        code: code.to_path_buf(),
        vars: vars.to_path_buf(),
        origin: "command line".into(),
    })
}

/// Whether a serial line is OVMF's boot manager refusing a boot option: Secure Boot's image
/// verification failed (`Access Denied` for a loader from a device, `Security Violation` for
/// one it starts). Other failures (`Not Found`) are not refusals: the firmware goes on.
pub fn refusal(line: &str) -> bool {
    line.starts_with("BdsDxe: failed to ")
        && (line.ends_with(": Access Denied") || line.ends_with(": Security Violation"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_globs() {
        assert!(glob("pc-q35-*", "pc-q35-9.9"));
        assert!(glob("*", "pc-q35-9.9"));
        assert!(!glob("pc-i440fx-*", "pc-q35-9.9"));
        assert!(glob("pc-*-9.9", "pc-q35-9.9"));
        assert!(!glob("pc-q35-8.*", "pc-q35-9.9"));
    }

    #[test]
    fn refusals_are_ovmf_s_secure_boot_lines() {
        // As OVMF prints them when a tampered loader is booted with Secure Boot on.
        assert!(refusal(
            r#"BdsDxe: failed to load Boot0001 "UEFI QEMU DVD-ROM QM00001 " from PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0): Access Denied"#
        ));
        assert!(refusal(
            r#"BdsDxe: failed to start Boot0002 "EFI Internal Shell" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1): Security Violation"#
        ));
        assert!(!refusal(
            r#"BdsDxe: failed to load Boot0001 "UEFI QEMU HARDDISK QM00001 " from PciRoot(0x0)/Pci(0x1F,0x2): Not Found"#
        ));
        assert!(!refusal("isoproof: failed file /Access Denied"));
    }
}
