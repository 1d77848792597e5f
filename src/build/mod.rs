//! Stage 3a, **build**: a resolved config → an [`ImagePlan`] — every file of the image, where
//! its bytes come from, and the boot structures — → the image, through the writer of the
//! image stage.
//!
//! The plan carries the resolved config into the image: `/etc/hostname`, `/etc/fstab` from
//! `fileSystems` and `swapDevices`, boot loader configuration with `boot.kernelParams`, and
//! the whole config as `/isoproof/config.json`. Scenario inputs are confined to the
//! scenario's directory: a relative source that escapes it (`..`, or a symlink leading out)
//! is an error; an absolute source is allowed because the scenario names it explicitly.

mod generated;

use std::fmt::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::diag::Diagnostic;
use crate::image::clock::Clock;
use crate::image::plan::{self, Options, Plan};
use crate::image::tree::{self, Entry, EntryKind, Source};
use crate::image::{write, ImageError};
use crate::{output, payload, resolve, scenario};

/// Why a scenario could not become an image.
#[derive(Debug)]
pub enum BuildError {
    /// The scenario could not be read.
    Load(scenario::LoadError),
    /// The scenario resolved to errors.
    Resolve(scenario::Sources, Vec<Diagnostic>),
    /// The resolved config asks for something the image cannot be (names the option).
    Config(String),
    /// The image writer failed.
    Image(ImageError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Load(e) => {
                for d in &e.errors {
                    writeln!(f, "{}", d.render(&e.sources))?;
                }
                Ok(())
            }
            BuildError::Resolve(s, errors) => {
                for d in errors {
                    writeln!(f, "{}", d.render(s))?;
                }
                Ok(())
            }
            BuildError::Config(m) => f.write_str(m),
            BuildError::Image(e) => write!(f, "{e}"),
        }
    }
}

impl From<ImageError> for BuildError {
    fn from(e: ImageError) -> Self {
        BuildError::Image(e)
    }
}

/// Where one file of the image comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// Copied from a scenario input (`isoImage.contents`).
    Copy {
        /// The file on disk.
        source: PathBuf,
        /// The source as the scenario names it (for plans and manifests).
        shown: String,
        /// Its size when planned.
        size: u64,
    },
    /// Generated from the resolved config; `from` names the options it carries.
    Generated {
        /// The options (or `isoImage.files`) it comes from.
        from: String,
        /// Its bytes.
        bytes: Arc<[u8]>,
    },
    /// A symbolic link found in a copied directory.
    Symlink(String),
    /// A directory (from a copied directory; parents of files are implied).
    Dir,
}

/// One file of the image.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedFile {
    /// Its absolute path in the image (`/etc/hostname`).
    pub target: String,
    /// Permission bits.
    pub mode: u32,
    /// Where it comes from.
    pub origin: Origin,
}

/// Everything the image will be, before a byte is written.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePlan {
    /// `isoImage.volumeID`.
    pub volume_id: String,
    /// `isoImage.isoName`: the output's file name.
    pub iso_name: String,
    /// `isoImage.publisher`.
    pub publisher: String,
    /// `isoImage.appName`.
    pub app_name: String,
    /// `isoImage.sourceDateEpoch`: the one clock.
    pub epoch: i64,
    /// Every file, sorted by target.
    pub files: Vec<PlannedFile>,
    /// An El Torito BIOS entry with the BIOS boot payload.
    pub bios: bool,
    /// An El Torito UEFI entry with an ESP holding `\EFI\BOOT\BOOTX64.EFI`.
    pub efi: bool,
    /// The isohybrid MBR/GPT (boot from a USB stick or disk).
    pub usb: bool,
    /// `isoImage.bootPayload`: which boot payload the image carries.
    pub payload: payload::Kind,
    /// What the boot payloads report.
    pub report: payload::Report,
}

fn get<'a>(config: &'a Value, path: &str) -> Result<&'a Value, BuildError> {
    let mut v = config;
    for part in path.split('.') {
        v = v.get(part).ok_or_else(|| {
            BuildError::Config(format!(
                "the resolved config has no option {path}; import the image module (scenarios/modules/iso-image.yaml)"
            ))
        })?;
    }
    Ok(v)
}

fn get_str<'a>(config: &'a Value, path: &str) -> Result<&'a str, BuildError> {
    get(config, path)?
        .as_str()
        .ok_or_else(|| BuildError::Config(format!("{path} is not a string")))
}

fn get_bool(config: &Value, path: &str) -> Result<bool, BuildError> {
    get(config, path)?
        .as_bool()
        .ok_or_else(|| BuildError::Config(format!("{path} is not a boolean")))
}

/// Checks an image path: absolute, normalised, UTF-8 components that are not `.` or `..`.
fn check_target(t: &str, option: &str) -> Result<String, BuildError> {
    let bad = |why: &str| BuildError::Config(format!("{option}: target {t:?} {why}"));
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
    Ok(format!("/{}", parts.join("/")))
}

/// Resolves a content source: relative to the scenario directory and confined to it.
fn confine(source: &str, base: &Path, option: &str) -> Result<PathBuf, BuildError> {
    let p = Path::new(source);
    if p.is_absolute() {
        return std::fs::canonicalize(p)
            .map_err(|e| BuildError::Config(format!("{option}: source {source}: {e}")));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(BuildError::Config(format!(
            "{option}: source {source:?} uses `..`, which would leave the scenario directory {}",
            base.display()
        )));
    }
    let joined = base.join(p);
    let real = std::fs::canonicalize(&joined)
        .map_err(|e| BuildError::Config(format!("{option}: source {}: {e}", joined.display())))?;
    if !real.starts_with(base) {
        return Err(BuildError::Config(format!(
            "{option}: source {source:?} is a symlink leading out of the scenario directory {} (to {})",
            base.display(),
            real.display()
        )));
    }
    Ok(real)
}

/// The mode a copied input gets: only its executable bit counts (0755 or 0644; directories
/// 0755, symlinks 0777), as git keeps it, so the checkout's umask never reaches the image.
fn normal_mode(kind: &EntryKind, perm: u32) -> u32 {
    match kind {
        EntryKind::Dir(_) => 0o755,
        EntryKind::Symlink(_) => 0o777,
        EntryKind::File { .. } if perm & 0o100 != 0 => 0o755,
        EntryKind::File { .. } => 0o644,
    }
}

/// Adds the entries of a scanned directory under `target`.
fn graft(entry: &Entry, target: &str, shown: &str, out: &mut Vec<PlannedFile>) {
    for c in entry.children() {
        let t = if target == "/" {
            format!("/{}", c.name)
        } else {
            format!("{target}/{}", c.name)
        };
        let s = format!("{shown}/{}", c.name);
        let origin = match &c.kind {
            EntryKind::File {
                source: Source::Path(p),
                size,
            } => Origin::Copy {
                source: p.clone(),
                shown: s.clone(),
                size: *size,
            },
            EntryKind::File { .. } => unreachable!("scanned files come from disk"),
            EntryKind::Symlink(l) => Origin::Symlink(l.clone()),
            EntryKind::Dir(_) => Origin::Dir,
        };
        out.push(PlannedFile {
            target: t.clone(),
            mode: normal_mode(&c.kind, c.perm),
            origin,
        });
        graft(c, &t, &s, out);
    }
}

/// Plans the image of a resolved config; `base` is the scenario's directory (canonical).
pub fn plan_image(config: &Value, base: &Path) -> Result<ImagePlan, BuildError> {
    let volume_id = get_str(config, "isoImage.volumeID")?.to_string();
    plan::check_volume_id(&volume_id)
        .map_err(|e| BuildError::Config(format!("isoImage.volumeID: {e}")))?;
    let epoch = get(config, "isoImage.sourceDateEpoch")?
        .as_i64()
        .ok_or_else(|| BuildError::Config("isoImage.sourceDateEpoch is not an integer".into()))?;
    Clock::checked(epoch)
        .map_err(|e| BuildError::Config(format!("isoImage.sourceDateEpoch: {}", e.0)))?;
    let hostname = get_str(config, "networking.hostName")?.to_string();
    let params: Vec<String> = get(config, "boot.kernelParams")?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let (bios, efi, usb) = (
        get_bool(config, "isoImage.makeBiosBootable")?,
        get_bool(config, "isoImage.makeEfiBootable")?,
        get_bool(config, "isoImage.makeUsbBootable")?,
    );
    if usb && !bios && !efi {
        return Err(BuildError::Config(
            "isoImage.makeUsbBootable needs makeBiosBootable or makeEfiBootable".into(),
        ));
    }
    let payload_name = get_str(config, "isoImage.bootPayload")?;
    let payload = payload::Kind::from_name(payload_name).ok_or_else(|| {
        BuildError::Config(format!(
            "isoImage.bootPayload: unknown payload {payload_name:?} (expected \"probe\" or \"silent\")"
        ))
    })?;
    let config_json = output::json(config);
    let report = payload::Report {
        volume_id: volume_id.clone(),
        hostname: hostname.clone(),
        kernel_params: params.join(" "),
        config_sha256: hex(&Sha256::digest(config_json.as_bytes())),
    };

    let mut files: Vec<PlannedFile> = Vec::new();
    let text = |target: &str, from: &str, s: String| PlannedFile {
        target: target.to_string(),
        mode: 0o644,
        origin: Origin::Generated {
            from: from.to_string(),
            bytes: s.into_bytes().into(),
        },
    };
    files.push(text(
        "/etc/hostname",
        "networking.hostName",
        format!("{hostname}\n"),
    ));
    files.push(text(
        "/etc/fstab",
        "fileSystems, swapDevices",
        generated::fstab(get(config, "fileSystems")?, get(config, "swapDevices")?),
    ));
    if bios {
        files.push(text(
            "/isolinux/isolinux.cfg",
            "boot.kernelParams",
            generated::isolinux_cfg(&volume_id, &params),
        ));
    }
    if efi {
        files.push(text(
            "/EFI/BOOT/grub.cfg",
            "boot.kernelParams",
            generated::grub_cfg(&volume_id, &params),
        ));
    }
    files.push(text(
        "/isoproof/config.json",
        "the resolved config",
        config_json,
    ));
    if let Some(m) = get(config, "isoImage.files")?.as_object() {
        for (target, v) in m {
            let t = check_target(target, "isoImage.files")?;
            let s = v.as_str().ok_or_else(|| {
                BuildError::Config(format!("isoImage.files.{target:?} is not a string"))
            })?;
            files.push(text(&t, "isoImage.files", s.to_string()));
        }
    }
    for (i, c) in get(config, "isoImage.contents")?
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let option = format!("isoImage.contents[{i}]");
        let source = c.get("source").and_then(Value::as_str).unwrap_or_default();
        let target = check_target(
            c.get("target").and_then(Value::as_str).unwrap_or_default(),
            &option,
        )?;
        let real = confine(source, base, &option)?;
        let md = std::fs::metadata(&real)
            .map_err(|e| BuildError::Config(format!("{option}: {}: {e}", real.display())))?;
        if md.is_dir() {
            let root = tree::scan(&real)?;
            graft(&root, &target, source, &mut files);
        } else if md.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let kind = EntryKind::File {
                source: Source::Path(real.clone()),
                size: md.len(),
            };
            files.push(PlannedFile {
                target,
                mode: normal_mode(&kind, md.permissions().mode()),
                origin: Origin::Copy {
                    source: real,
                    shown: source.to_string(),
                    size: md.len(),
                },
            });
        } else {
            return Err(BuildError::Config(format!(
                "{option}: source {source} is neither a file nor a directory"
            )));
        }
    }
    files.sort_by(|a, b| a.target.cmp(&b.target));
    for w in files.windows(2) {
        if w[0].target == w[1].target {
            return Err(BuildError::Config(format!(
                "two files want {}: {} and {}",
                w[0].target,
                describe(&w[0].origin),
                describe(&w[1].origin)
            )));
        }
        if w[1].target.starts_with(&format!("{}/", w[0].target))
            && !matches!(w[0].origin, Origin::Dir)
        {
            return Err(BuildError::Config(format!(
                "{} is a file ({}), but {} needs it to be a directory",
                w[0].target,
                describe(&w[0].origin),
                w[1].target
            )));
        }
    }
    Ok(ImagePlan {
        volume_id,
        iso_name: get_str(config, "isoImage.isoName")?.to_string(),
        publisher: get_str(config, "isoImage.publisher")?.to_string(),
        app_name: get_str(config, "isoImage.appName")?.to_string(),
        epoch,
        files,
        bios,
        efi,
        usb,
        payload,
        report,
    })
}

fn describe(o: &Origin) -> String {
    match o {
        Origin::Copy { shown, .. } => format!("copied from {shown}"),
        Origin::Generated { from, .. } => format!("generated from {from}"),
        Origin::Symlink(t) => format!("a symlink to {t}"),
        Origin::Dir => "a directory".into(),
    }
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

impl ImagePlan {
    /// The source tree of the image.
    pub fn tree(&self) -> Entry {
        let mut root = Entry {
            name: String::new(),
            perm: 0o755,
            kind: EntryKind::Dir(Vec::new()),
        };
        for f in &self.files {
            let parts: Vec<&str> = f.target[1..].split('/').collect();
            let mut at = &mut root;
            for p in &parts[..parts.len() - 1] {
                let EntryKind::Dir(kids) = &mut at.kind else {
                    unreachable!("checked: no file is a parent")
                };
                let k = match kids.iter().position(|c| c.name == *p) {
                    Some(k) => k,
                    None => {
                        kids.push(Entry {
                            name: p.to_string(),
                            perm: 0o755,
                            kind: EntryKind::Dir(Vec::new()),
                        });
                        kids.len() - 1
                    }
                };
                at = &mut kids[k];
            }
            let EntryKind::Dir(kids) = &mut at.kind else {
                unreachable!("checked: no file is a parent")
            };
            let name = parts[parts.len() - 1].to_string();
            let kind = match &f.origin {
                Origin::Copy { source, size, .. } => EntryKind::File {
                    source: Source::Path(source.clone()),
                    size: *size,
                },
                Origin::Generated { bytes, .. } => EntryKind::File {
                    source: Source::Bytes(bytes.clone()),
                    size: bytes.len() as u64,
                },
                Origin::Symlink(t) => EntryKind::Symlink(t.clone()),
                Origin::Dir => EntryKind::Dir(Vec::new()),
            };
            match kids.iter_mut().find(|c| c.name == name) {
                // A directory created as a parent before its own entry: keep its children.
                Some(existing) => existing.perm = f.mode,
                None => kids.push(Entry {
                    name,
                    perm: f.mode,
                    kind,
                }),
            }
        }
        sort(&mut root);
        root
    }

    /// The bytes of the generated `/isoproof/config.json`.
    pub fn config_json(&self) -> &[u8] {
        self.files
            .iter()
            .find_map(|f| match &f.origin {
                Origin::Generated { bytes, .. } if f.target == "/isoproof/config.json" => {
                    Some(&bytes[..])
                }
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The writer's options: boot payloads built from the report, the scenario's clock.
    pub fn options(&self) -> Result<Options, BuildError> {
        let clock = Clock::at(self.epoch);
        let mut o = Options::new(&self.volume_id, clock);
        o.publisher = self.publisher.clone();
        o.application = self.app_name.clone();
        if self.bios {
            let program = payload::bios_eltorito(&self.report, self.payload)
                .map_err(|e| BuildError::Config(format!("BIOS payload: {e}")))?;
            if self.usb {
                // The MBR loads the El Torito program from the disk view of the image.
                let sectors = u16::try_from(program.len() / 512)
                    .ok()
                    .filter(|n| *n <= 127)
                    .ok_or_else(|| BuildError::Config("BIOS payload: too large".into()))?;
                o.mbr_code = payload::mbr(sectors)
                    .map_err(|e| BuildError::Config(format!("MBR boot code: {e}")))?;
                o.mbr_lba_offset = Some(payload::MBR_LBA_OFFSET);
            }
            o.bios_boot = Some(program);
        }
        if self.efi {
            let app = payload::uefi_app(&self.report, self.payload)
                .map_err(|e| BuildError::Config(format!("UEFI payload: {e}")))?;
            o.esp_files.push(("EFI/BOOT/BOOTX64.EFI".into(), app));
            // The file the UEFI payload reads back through the firmware's FAT driver.
            o.esp_files
                .push((payload::ESP_PROBE_FILE.into(), self.config_json().to_vec()));
        }
        o.hybrid = self.usb;
        Ok(o)
    }

    /// The plan as text (`isoproof build --plan`).
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "volume ID     {}", self.volume_id);
        let _ = writeln!(o, "output        {}", self.iso_name);
        let _ = writeln!(o, "publisher     {}", self.publisher);
        let _ = writeln!(o, "application   {}", self.app_name);
        let _ = writeln!(o, "clock         {} (SOURCE_DATE_EPOCH)", self.epoch);
        let _ = writeln!(o, "boot");
        let yes = |b: bool| if b { "yes" } else { "no" };
        let _ = writeln!(o, "  BIOS (El Torito, no emulation)  {}", yes(self.bios));
        let _ = writeln!(o, "  UEFI (El Torito 0xEF, FAT ESP)  {}", yes(self.efi));
        let _ = writeln!(o, "  USB/disk (isohybrid MBR+GPT)    {}", yes(self.usb));
        let _ = writeln!(
            o,
            "  payload: {}, report: {}",
            self.payload.name(),
            self.report.head(payload::Via::ElTorito)
        );
        let _ = writeln!(o, "files");
        for f in &self.files {
            let what = match &f.origin {
                Origin::Copy { shown, size, .. } => format!("{size} bytes from {shown}"),
                Origin::Generated { from, bytes } => {
                    format!("{} bytes generated from {from}", bytes.len())
                }
                Origin::Symlink(t) => format!("-> {t}"),
                Origin::Dir => "directory".into(),
            };
            let _ = writeln!(o, "  {:04o}  {:<28} {what}", f.mode, f.target);
        }
        o
    }

    /// The plan as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "volume_id": self.volume_id, "iso_name": self.iso_name,
            "publisher": self.publisher, "app_name": self.app_name, "epoch": self.epoch,
            "boot": {"bios": self.bios, "efi": self.efi, "usb": self.usb,
                     "payload": self.payload.name(),
                     "report": self.report.head(payload::Via::ElTorito)},
            "files": self.files.iter().map(|f| {
                let mut v = serde_json::json!({"target": f.target, "mode": format!("{:04o}", f.mode)});
                match &f.origin {
                    Origin::Copy { shown, size, .. } => { v["source"] = shown.clone().into(); v["size"] = (*size).into(); }
                    Origin::Generated { from, bytes } => { v["generated_from"] = from.clone().into(); v["size"] = bytes.len().into(); }
                    Origin::Symlink(t) => { v["symlink"] = t.clone().into(); }
                    Origin::Dir => { v["dir"] = true.into(); }
                }
                v
            }).collect::<Vec<_>>(),
        })
    }
}

fn sort(e: &mut Entry) {
    if let EntryKind::Dir(kids) = &mut e.kind {
        kids.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        kids.iter_mut().for_each(sort);
    }
}

/// A scenario, loaded, resolved and planned.
pub struct Planned {
    /// The scenario as loaded (its files are inputs of the image).
    pub scenario: scenario::Scenario,
    /// The resolved config.
    pub config: Value,
    /// The image plan.
    pub plan: ImagePlan,
}

/// Image options whose errors get the places they were defined.
const LOCATED: [&str; 9] = [
    "isoImage.contents",
    "isoImage.files",
    "isoImage.volumeID",
    "isoImage.sourceDateEpoch",
    "isoImage.makeUsbBootable",
    "isoImage.bootPayload",
    "fileSystems",
    "swapDevices",
    "networking.hostName",
];

/// Adds `defined at file:line:col` to an error about an image option, so the user finds the
/// definition to fix (the config the image is planned from no longer has positions).
fn locate(e: BuildError, s: &scenario::Scenario) -> BuildError {
    let BuildError::Config(msg) = e else { return e };
    let Some(option) = LOCATED.iter().find(|o| msg.starts_with(**o)) else {
        return BuildError::Config(msg);
    };
    let sites = resolve::definition_sites(s, option);
    if sites.is_empty() {
        return BuildError::Config(msg);
    }
    BuildError::Config(format!(
        "{msg}\n  {option} is defined at {}",
        sites.join(", ")
    ))
}

/// Loads, resolves and plans a scenario.
pub fn plan_scenario(path: &Path) -> Result<Planned, BuildError> {
    let s = scenario::load(path).map_err(BuildError::Load)?;
    let r = resolve::resolve(&s);
    let (config, errors) = (r.config.as_ref().map(resolve::Config::to_json), r.errors);
    let Some(config) = config else {
        return Err(BuildError::Resolve(s.sources, errors));
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = std::fs::canonicalize(dir).map_err(|e| ImageError::io(dir, e))?;
    let plan = plan_image(&config, &base).map_err(|e| locate(e, &s))?;
    Ok(Planned {
        scenario: s,
        config,
        plan,
    })
}

/// Builds the planned image at `out` (atomically); returns the writer's plan.
pub fn build(p: &ImagePlan, out: &Path) -> Result<Plan, BuildError> {
    let tree = p.tree();
    let layout = plan::plan(&tree, &p.options()?)?;
    write::write(&layout, out)?;
    Ok(layout)
}
