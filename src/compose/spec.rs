//! [`ImageSpec`]: the options of a resolved config that the image is built from, as types —
//! `isoImage.*`, `fileSystems`, `swapDevices`, `boot.kernelParams`, `networking.hostName` —
//! read with [`Config::deserialize`] and then checked, so every error names the option path
//! it is about.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::image::clock::Clock;
use crate::image::write::plan::check_volume_id;
use crate::payload;
use crate::resolve::de::{ConfigError, OptionPath, Problem, Segment};
use crate::resolve::Config;

/// What the image is made of, as the resolved config says.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ImageSpec {
    /// `isoImage.*`.
    #[serde(rename = "isoImage")]
    pub iso_image: IsoImage,
    /// `fileSystems`, by mount point.
    #[serde(rename = "fileSystems")]
    pub file_systems: BTreeMap<String, FileSystem>,
    /// `swapDevices`.
    #[serde(rename = "swapDevices")]
    pub swap_devices: Vec<SwapDevice>,
    /// `boot.*`.
    pub boot: Boot,
    /// `networking.*`.
    pub networking: Networking,
    /// `image.*` (nixos/modules/image/file-options.nix).
    pub image: ImageFile,
    /// `netboot.*`, declared by the netboot module (nixos/modules/installer/netboot/
    /// netboot.nix): a scenario that imports it builds a netboot directory, not an ISO.
    #[serde(default)]
    pub netboot: Option<Netboot>,
}

/// `netboot.*`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Netboot {
    /// `netboot.storeContents`: files and directories (relative to the scenario's directory,
    /// or absolute) that become the store squashfs appended to the initrd.
    #[serde(rename = "storeContents")]
    pub store_contents: Vec<String>,
}

/// `image.*`: the output's name (NixOS 25.05 renamed `isoImage.isoName` to `image.fileName`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ImageFile {
    /// `image.fileName`: the output's file name.
    #[serde(rename = "fileName")]
    pub file_name: String,
}

/// `isoImage.*` (nixos/modules/installer/cd-dvd/iso-image.nix, and isoproof's own).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IsoImage {
    /// `isoImage.volumeID`.
    #[serde(rename = "volumeID")]
    pub volume_id: String,
    /// `isoImage.publisher`.
    pub publisher: String,
    /// `isoImage.appName`.
    pub app_name: String,
    /// `isoImage.contents`.
    pub contents: Vec<ContentSpec>,
    /// `isoImage.files`: target → text.
    pub files: BTreeMap<String, String>,
    /// `isoImage.makeBiosBootable`.
    pub make_bios_bootable: bool,
    /// `isoImage.makeEfiBootable`.
    pub make_efi_bootable: bool,
    /// `isoImage.makeUsbBootable`.
    pub make_usb_bootable: bool,
    /// `isoImage.bootPayload`.
    pub boot_payload: payload::Kind,
    /// `isoImage.sourceDateEpoch`.
    pub source_date_epoch: i64,
    /// `isoImage.payloadRoot`: the `linux` payload's parts, in Debian's layout (relative to
    /// the scenario's directory, or absolute).
    #[serde(default)]
    pub payload_root: Option<String>,
    /// `isoImage.storeContents`: files and directories (relative to the scenario's
    /// directory) that become `/nix-store.squashfs`.
    #[serde(default)]
    pub store_contents: Vec<String>,
    /// `isoImage.secureBoot`: the key and certificate every EFI binary is signed with.
    #[serde(default)]
    pub secure_boot: SecureBoot,
}

/// `isoImage.secureBoot.*` (isoproof's own): PEM files, relative to the scenario's directory.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SecureBoot {
    /// `isoImage.secureBoot.key`.
    #[serde(default)]
    pub key: Option<String>,
    /// `isoImage.secureBoot.certificate`.
    #[serde(default)]
    pub certificate: Option<String>,
}

/// One entry of `isoImage.contents`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ContentSpec {
    /// A file or directory, relative to the scenario's directory (or absolute).
    pub source: String,
    /// Where it goes in the image.
    pub target: String,
}

/// One entry of `fileSystems`; NixOS's defaults where the option has one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FileSystem {
    /// `device` (null: none).
    #[serde(default)]
    pub device: Option<String>,
    /// `fsType`.
    #[serde(rename = "fsType", default = "auto")]
    pub fs_type: String,
    /// `options`.
    #[serde(default = "defaults")]
    pub options: Vec<String>,
    /// `neededForBoot`: stage 1 mounts it (NixOS's `fsNeededForBoot` adds `/`, `/nix`,
    /// `/nix/store` and a few more).
    #[serde(rename = "neededForBoot", default)]
    pub needed_for_boot: bool,
}

/// Mount points stage 1 mounts whether or not `neededForBoot` says so
/// (nixos/lib/utils.nix, `pathsNeededForBoot`).
const PATHS_NEEDED_FOR_BOOT: &[&str] = &[
    "/",
    "/nix",
    "/nix/store",
    "/var",
    "/var/log",
    "/var/lib",
    "/var/lib/nixos",
    "/etc",
    "/usr",
];

impl FileSystem {
    /// NixOS's `fsNeededForBoot`: whether stage 1 mounts the file system at `point`.
    pub fn in_stage1(&self, point: &str) -> bool {
        self.needed_for_boot || PATHS_NEEDED_FOR_BOOT.contains(&point)
    }
}

fn auto() -> String {
    "auto".into()
}

fn defaults() -> Vec<String> {
    vec!["defaults".into()]
}

/// One entry of `swapDevices`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct SwapDevice {
    /// `device`.
    #[serde(default)]
    pub device: Option<String>,
}

/// `boot.*`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Boot {
    /// `boot.kernelParams`.
    #[serde(rename = "kernelParams")]
    pub kernel_params: Vec<String>,
    /// `boot.initrd.*`.
    #[serde(default)]
    pub initrd: Initrd,
}

/// `boot.initrd.*`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Initrd {
    /// `boot.initrd.availableKernelModules`.
    #[serde(rename = "availableKernelModules", default)]
    pub available_kernel_modules: Vec<String>,
    /// `boot.initrd.kernelModules`.
    #[serde(rename = "kernelModules", default)]
    pub kernel_modules: Vec<String>,
}

/// `networking.*`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Networking {
    /// `networking.hostName`.
    #[serde(rename = "hostName")]
    pub host_name: String,
}

fn at(names: &[&str], problem: String) -> ConfigError {
    ConfigError::at(OptionPath::of(names), Problem::Value(problem))
}

/// An image path: absolute, normalised, UTF-8 components that are not `.` or `..`.
pub(crate) fn check_target(t: &str, option: OptionPath) -> Result<String, ConfigError> {
    let bad = |why: &str| {
        ConfigError::at(
            option.clone(),
            Problem::Value(format!("target {t:?} {why}")),
        )
    };
    if !t.starts_with('/') {
        return Err(bad("must be an absolute path in the image"));
    }
    let parts: Vec<&str> = t.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Err(bad("must not contain . or .. components"));
    }
    if parts.iter().any(|p| p.contains('\0')) {
        return Err(bad("must not contain NUL"));
    }
    if parts.is_empty() {
        return Err(bad("names the image's root, not a file"));
    }
    Ok(format!("/{}", parts.join("/")))
}

impl ImageSpec {
    /// Reads the image options of a resolved config and checks what the image needs of them.
    pub fn from_config(config: &Config<'_>) -> Result<ImageSpec, ConfigError> {
        let spec: ImageSpec = config.deserialize()?;
        spec.check()?;
        Ok(spec)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let i = &self.iso_image;
        check_volume_id(&i.volume_id).map_err(|e| at(&["isoImage", "volumeID"], e.to_string()))?;
        Clock::checked(i.source_date_epoch)
            .map_err(|e| at(&["isoImage", "sourceDateEpoch"], e.to_string()))?;
        // The output is written into a directory the caller chose: a name, not a path.
        let name = &self.image.file_name;
        if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
            return Err(at(
                &["image", "fileName"],
                format!("{name:?} is not a file name (no `/`, not `.` or `..`)"),
            ));
        }
        if i.make_usb_bootable && !i.make_bios_bootable && !i.make_efi_bootable {
            return Err(at(
                &["isoImage", "makeUsbBootable"],
                "needs makeBiosBootable or makeEfiBootable".into(),
            ));
        }
        for t in self.iso_image.files.keys() {
            let p = OptionPath::of(&["isoImage", "files"]).child(Segment::Attr(t.clone()));
            check_target(t, p)?;
        }
        for (n, c) in self.iso_image.contents.iter().enumerate() {
            check_target(&c.target, content_path(n))?;
        }
        Ok(())
    }

    /// The image's one clock (`isoImage.sourceDateEpoch`).
    pub fn clock(&self) -> Clock {
        Clock::at(self.iso_image.source_date_epoch)
    }
}

/// The option path of `isoImage.contents[n]`.
pub(crate) fn content_path(n: usize) -> OptionPath {
    OptionPath::of(&["isoImage", "contents"]).child(Segment::Index(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn s(x: &'static str) -> Config<'static> {
        Config::Str(Cow::Borrowed(x))
    }

    fn config(volume: Config<'static>, params: Vec<Config<'static>>) -> Config<'static> {
        Config::Attrs(vec![
            (
                "boot",
                Config::Attrs(vec![("kernelParams", Config::List(params))]),
            ),
            (
                "fileSystems",
                Config::Attrs(vec![("/", Config::Attrs(vec![("fsType", s("tmpfs"))]))]),
            ),
            (
                "isoImage",
                Config::Attrs(vec![
                    ("appName", s("A")),
                    ("bootPayload", s("probe")),
                    ("contents", Config::List(vec![])),
                    ("files", Config::Attrs(vec![])),
                    ("makeBiosBootable", Config::Bool(true)),
                    ("makeEfiBootable", Config::Bool(false)),
                    ("makeUsbBootable", Config::Bool(false)),
                    ("publisher", s("P")),
                    ("sourceDateEpoch", Config::Int(0)),
                    ("volumeID", volume),
                ]),
            ),
            ("image", Config::Attrs(vec![("fileName", s("x.iso"))])),
            ("networking", Config::Attrs(vec![("hostName", s("h"))])),
            ("swapDevices", Config::List(vec![])),
        ])
    }

    #[test]
    fn reads_the_image_options() {
        let spec = ImageSpec::from_config(&config(s("V"), vec![s("quiet")])).unwrap();
        assert_eq!(spec.iso_image.volume_id, "V");
        assert_eq!(spec.boot.kernel_params, ["quiet"]);
        assert_eq!(spec.file_systems["/"].fs_type, "tmpfs");
        assert_eq!(spec.file_systems["/"].options, ["defaults"]);
        assert_eq!(spec.iso_image.boot_payload, payload::Kind::Probe);
    }

    #[test]
    fn wrong_values_are_errors_at_their_option() {
        // A non-string kernel parameter is an error, not silently dropped.
        let e = ImageSpec::from_config(&config(s("V"), vec![s("a"), Config::Int(3)])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "boot.kernelParams[1]: expected a string, found integer `3`"
        );
        assert_eq!(e.path.options(), ["boot.kernelParams", "boot"]);
        let e = ImageSpec::from_config(&config(s("bad id!"), vec![])).unwrap_err();
        assert_eq!(e.path.to_string(), "isoImage.volumeID");
        assert_eq!(
            check_target("rel", content_path(2))
                .unwrap_err()
                .path
                .to_string(),
            "isoImage.contents[2]"
        );
        assert_eq!(check_target("/a//b/", content_path(0)).unwrap(), "/a/b");
    }
}
