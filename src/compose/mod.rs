//! Stage 3a, **compose** (what `isoproof build` runs): a resolved config → [`ImageSpec`] (the image options as types, see
//! [`spec`]) → [`ImagePlan`] — every file of the image, where its bytes come from, and the
//! boot structures — → the image, through the writer of the image stage.
//!
//! The plan carries the resolved config into the image: `/etc/hostname`, `/etc/fstab` from
//! `fileSystems` and `swapDevices`, boot loader configuration with `boot.kernelParams`, and
//! the whole config as `/isoproof/config.json`. Scenario inputs are confined to the
//! scenario's directory: a relative source that escapes it (`..`, or a symlink leading out)
//! is an error; an absolute source is allowed because the scenario names it explicitly.
//! Every error about the config names the option and where the scenario defines it.

mod generated;
pub mod linux;
pub mod spec;

use std::fmt::{self, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::diag::Diagnostic;
use crate::image::clock::Clock;
use crate::image::format::structure::Structure;
use crate::image::write::plan::{self, Options, Plan};
use crate::image::write::tree::{self, Entry, EntryKind, Source};
use crate::image::{write, ImageError};
use crate::payload::{self, PayloadError};
use crate::publish::Durable;
use crate::resolve::de::{ConfigError, OptionPath, Problem, Segment};
use crate::{output, resolve, scenario};
pub use spec::ImageSpec;

/// Why a scenario could not become an image.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The scenario could not be read.
    #[error("{0}")]
    Load(#[from] scenario::LoadError),
    /// The scenario resolved to errors.
    #[error("{}", render(.sources, .errors))]
    Resolve {
        /// The files read, for excerpts.
        sources: scenario::Sources,
        /// Every error.
        errors: Vec<Diagnostic>,
    },
    /// The resolved config asks for something the image cannot be: the option and the
    /// problem, and where the scenario defines that option.
    #[error("{error}{}", defined_at(.error, .sites))]
    Config {
        /// The option and the problem.
        #[source]
        error: OptionError,
        /// Where the option (or the nearest option above it) is defined, `file:line:col`.
        sites: Vec<String>,
    },
    /// NixOS's `assertions`: every failed one's message, and where it was defined.
    #[error("Failed assertions:{}", failed_list(.failed))]
    Assertions {
        /// (message, `file:line:col` of its definition, when known).
        failed: Vec<(String, Option<String>)>,
    },
    /// A boot payload could not be assembled.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The image could not be made.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// An EFI binary could not be signed.
    #[error("isoImage.secureBoot: {0}")]
    Sign(#[from] payload::sign::SignError),
}

fn render(sources: &scenario::Sources, errors: &[Diagnostic]) -> String {
    errors
        .iter()
        .map(|d| d.render(sources))
        .collect::<Vec<_>>()
        .join("\n")
}

fn failed_list(failed: &[(String, Option<String>)]) -> String {
    failed
        .iter()
        .map(|(m, at)| match at {
            Some(at) => format!("\n- {m}\n  (assertion defined at {at})"),
            None => format!("\n- {m}"),
        })
        .collect()
}

/// NixOS's `assertions` and `warnings` (nixos/modules/misc/assertions.nix), as a system build
/// checks them: every `{assertion, message}` whose `assertion` is false fails the build with
/// all the failed messages; `warnings` are returned to be shown. A config without the options
/// (a scenario that does not declare them) has neither.
fn assertions(
    c: &resolve::config::Config<'_>,
    s: &scenario::Scenario,
) -> Result<Vec<String>, BuildError> {
    use resolve::config::Config;
    let get = |name: &str| match c {
        Config::Attrs(a) => a.iter().find(|(k, _)| *k == name).map(|(_, v)| v),
        _ => None,
    };
    let mut failed = Vec::new();
    if let Some(Config::List(items)) = get("assertions") {
        let sites = resolve::element_sites(s, "assertions").filter(|v| v.len() == items.len());
        for (i, a) in items.iter().enumerate() {
            let field = |f: &str| match a {
                Config::Attrs(x) => x.iter().find(|(k, _)| *k == f).map(|(_, v)| v),
                _ => None,
            };
            let message = match field("message") {
                Some(Config::Str(m)) => m.to_string(),
                _ => format!("(assertion {} has no message string)", i + 1),
            };
            let site = sites.as_ref().map(|v| v[i].clone());
            match field("assertion") {
                Some(Config::Bool(true)) => {}
                Some(Config::Bool(false)) => failed.push((message, site)),
                _ => failed.push((
                    format!(
                        "assertion {} is not a Boolean `assertion` ({message})",
                        i + 1
                    ),
                    site,
                )),
            }
        }
    }
    if !failed.is_empty() {
        return Err(BuildError::Assertions { failed });
    }
    let mut warnings = Vec::new();
    if let Some(Config::List(items)) = get("warnings") {
        for w in items {
            if let Config::Str(w) = w {
                warnings.push(w.to_string());
            }
        }
    }
    Ok(warnings)
}

/// An option the image cannot be made from: where, and why.
#[derive(Debug, thiserror::Error)]
pub enum OptionError {
    /// Its resolved value is not one the image can take.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The live system it names cannot be made: the payload root, its kernel and modules,
    /// the store.
    #[error("{path}: {source}")]
    Live {
        /// The option.
        path: OptionPath,
        /// Why.
        #[source]
        source: crate::payload::linux::LinuxError,
    },
    /// A tree it names cannot be read as image contents.
    #[error("{path}: {source}")]
    Scan {
        /// The option.
        path: OptionPath,
        /// Why.
        #[source]
        source: crate::image::write::tree::ScanError,
    },
}

impl OptionError {
    /// The option it is about.
    pub fn path(&self) -> &OptionPath {
        match self {
            OptionError::Config(e) => &e.path,
            OptionError::Live { path, .. } | OptionError::Scan { path, .. } => path,
        }
    }
}

fn defined_at(e: &OptionError, sites: &[String]) -> String {
    match (e.path().options().first(), sites.is_empty()) {
        (Some(o), false) => format!("\n  {o} is defined at {}", sites.join(", ")),
        _ => String::new(),
    }
}

impl From<ConfigError> for BuildError {
    fn from(error: ConfigError) -> Self {
        BuildError::Config {
            error: error.into(),
            sites: Vec::new(),
        }
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
        /// Its stamp when planned (see [`crate::input::Stamp`]).
        stamp: crate::input::Stamp,
        /// The `isoImage.contents` entry it comes from.
        option: OptionPath,
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
    /// `image.fileName` (formerly `isoImage.isoName`): the output's file name.
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
    /// The live system's boot programs (`isoImage.bootPayload = "linux"`).
    pub linux: Option<linux::LinuxBoot>,
    /// `isoImage.secureBoot`: the key and certificate (PEM texts) every EFI binary of the
    /// image is signed with.
    pub signing: Option<Signing>,
    /// Whether the image's EFI binaries are signed (it is expected to pass Secure Boot).
    pub signed: bool,
}

/// A signing key and its certificate, as PEM text (checked to belong together).
#[derive(Clone, Debug, PartialEq)]
pub struct Signing {
    /// The key.
    pub key: String,
    /// The certificate.
    pub certificate: String,
    /// The certificate's subject.
    pub subject: String,
    /// The certificate as DER (what firmware enrolls).
    pub certificate_der: Vec<u8>,
}

impl Signing {
    fn signer(&self) -> Result<payload::sign::Signer, payload::sign::SignError> {
        payload::sign::Signer::from_pem(&self.key, &self.certificate)
    }
}

/// `isoImage.secureBoot`, read and checked: both or neither, PEM files inside the scenario's
/// directory (or absolute), a key and the certificate of that key.
fn signing(spec: &ImageSpec, base: &Path) -> Result<Option<Signing>, OptionError> {
    let sb = &spec.iso_image.secure_boot;
    let path = |f: &str| OptionPath::of(&["isoImage", "secureBoot", f]);
    let (key, cert) = match (&sb.key, &sb.certificate) {
        (None, None) => return Ok(None),
        (Some(k), Some(c)) => (k, c),
        (Some(_), None) | (None, Some(_)) => {
            let missing = if sb.key.is_none() {
                "key"
            } else {
                "certificate"
            };
            return Err(ConfigError::at(
                path(missing),
                Problem::Value(
                    "signing needs both isoImage.secureBoot.key and .certificate".into(),
                ),
            )
            .into());
        }
    };
    let read = |f: &str, rel: &str| -> Result<String, OptionError> {
        let real = confine(rel, base, &path(f), true)?;
        let b = crate::input::read_regular(&real, 1 << 20)
            .map_err(|e| ConfigError::at(path(f), Problem::Value(e.to_string())))?;
        String::from_utf8(b).map_err(|_| {
            ConfigError::at(path(f), Problem::Value(format!("{rel} is not PEM text"))).into()
        })
    };
    let (key, certificate) = (read("key", key)?, read("certificate", cert)?);
    let s = payload::sign::Signer::from_pem(&key, &certificate).map_err(|e| {
        let f = match e {
            payload::sign::SignError::Certificate(_) => "certificate",
            _ => "key",
        };
        ConfigError::at(path(f), Problem::Value(e.to_string()))
    })?;
    Ok(Some(Signing {
        key,
        certificate,
        subject: s.subject.clone(),
        certificate_der: s.certificate_der().to_vec(),
    }))
}

fn content_error(n: usize, problem: String) -> ConfigError {
    ConfigError::at(spec::content_path(n), Problem::Value(problem))
}

/// Resolves a scenario input named by `option` (a contents source, a store path): relative
/// to the scenario directory and confined to it; an absolute path is taken as named when
/// `absolute` allows it (the scenario names it explicitly).
pub(crate) fn confine(
    source: &str,
    base: &Path,
    option: &OptionPath,
    absolute: bool,
) -> Result<PathBuf, ConfigError> {
    let bad = |problem: String| ConfigError::at(option.clone(), Problem::Value(problem));
    let p = Path::new(source);
    if source.is_empty() {
        return Err(bad("source is empty".into()));
    }
    if p.is_absolute() {
        if !absolute {
            return Err(bad(format!(
                "source {source:?} must be a path inside the scenario directory {}",
                base.display()
            )));
        }
        return std::fs::canonicalize(p).map_err(|e| bad(format!("source {source}: {e}")));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(bad(format!(
            "source {source:?} uses `..`, which would leave the scenario directory {}",
            base.display()
        )));
    }
    let joined = base.join(p);
    let real = std::fs::canonicalize(&joined)
        .map_err(|e| bad(format!("source {}: {e}", joined.display())))?;
    if !real.starts_with(base) {
        return Err(bad(format!(
            "source {source:?} is a symlink leading out of the scenario directory {} (to {})",
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
fn graft(
    entry: &Entry,
    target: &str,
    shown: &str,
    option: &OptionPath,
    out: &mut Vec<PlannedFile>,
) {
    for c in entry.children() {
        let t = if target == "/" {
            format!("/{}", c.name)
        } else {
            format!("{target}/{}", c.name)
        };
        let s = format!("{shown}/{}", c.name);
        let origin = match &c.kind {
            EntryKind::File { source, size } => match source {
                Source::Path(p, stamp) => Origin::Copy {
                    source: p.clone(),
                    shown: s.clone(),
                    size: *size,
                    stamp: *stamp,
                    option: option.clone(),
                },
                // A scan reads files from disk; bytes in memory never come from one.
                Source::Bytes(b) => Origin::Generated {
                    from: s.clone(),
                    bytes: b.clone(),
                },
            },
            EntryKind::Symlink(l) => Origin::Symlink(l.clone()),
            EntryKind::Dir(_) => Origin::Dir,
        };
        out.push(PlannedFile {
            target: t.clone(),
            mode: normal_mode(&c.kind, c.perm),
            origin,
        });
        graft(c, &t, &s, option, out);
    }
}

/// Plans the image of an image spec; `base` is the scenario's directory (canonical) and
/// `config_json` the resolved config as `isoproof resolve` prints it (the image carries it).
pub(crate) fn plan_image(
    spec: &ImageSpec,
    base: &Path,
    config_json: String,
) -> Result<ImagePlan, OptionError> {
    let i = &spec.iso_image;
    let hostname = spec.networking.host_name.clone();
    let params = &spec.boot.kernel_params;
    let report = payload::Report {
        volume_id: i.volume_id.clone(),
        hostname: hostname.clone(),
        kernel_params: params.join(" "),
        config_sha256: crate::hex::hex(&Sha256::digest(config_json.as_bytes())),
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
        generated::fstab(&spec.file_systems, &spec.swap_devices),
    ));
    // A live image writes its own loader configuration (`linux::plan`); the UKI carries the
    // UEFI command line.
    let live = i.boot_payload == payload::Kind::Linux;
    if i.make_bios_bootable && !live {
        files.push(text(
            "/isolinux/isolinux.cfg",
            "boot.kernelParams",
            generated::isolinux_cfg(&i.volume_id, params),
        ));
    }
    if i.make_efi_bootable && !live {
        files.push(text(
            "/EFI/BOOT/grub.cfg",
            "boot.kernelParams",
            generated::grub_cfg(&i.volume_id, params),
        ));
    }
    files.push(text(
        "/isoproof/config.json",
        "the resolved config",
        config_json,
    ));
    for (target, body) in &i.files {
        let option = OptionPath::of(&["isoImage", "files"]).child(Segment::Attr(target.clone()));
        let t = spec::check_target(target, option)?;
        files.push(text(&t, "isoImage.files", body.clone()));
    }
    for (n, c) in i.contents.iter().enumerate() {
        let option = spec::content_path(n);
        let target = spec::check_target(&c.target, option.clone())?;
        let real = confine(&c.source, base, &option, true)?;
        let md = std::fs::metadata(&real)
            .map_err(|e| content_error(n, format!("{}: {e}", real.display())))?;
        if md.is_dir() {
            let root = tree::scan(&real).map_err(|e| content_error(n, e.to_string()))?;
            graft(&root, &target, &c.source, &option, &mut files);
        } else if md.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let kind = EntryKind::File {
                source: Source::Path(real.clone(), crate::input::Stamp::of(&md)),
                size: md.len(),
            };
            files.push(PlannedFile {
                target,
                mode: normal_mode(&kind, md.permissions().mode()),
                origin: Origin::Copy {
                    source: real,
                    shown: c.source.clone(),
                    size: md.len(),
                    stamp: crate::input::Stamp::of(&md),
                    option,
                },
            });
        } else {
            return Err(content_error(
                n,
                format!(
                    "source {} is {}: a contents source is a file or a directory",
                    c.source,
                    crate::input::kind_name(md.file_type())
                ),
            )
            .into());
        }
    }
    let linux = match i.boot_payload {
        payload::Kind::Linux => Some(linux::plan(spec, base, i.source_date_epoch, &mut files)?),
        _ if spec.netboot.is_some() => {
            return Err(ConfigError::at(
                OptionPath::of(&["isoImage", "bootPayload"]),
                Problem::Value(format!(
                    "a netboot image (the netboot module is imported) boots a live Linux, so the payload must be \"linux\", not {:?}",
                    i.boot_payload.name()
                )),
            )
            .into())
        }
        _ => None,
    };
    files.sort_by(|a, b| a.target.cmp(&b.target));
    // Two files at one place, or a file where a directory must be: the error names the
    // contents entry involved (or `isoImage.files` for generated text).
    let option_of = |f: &PlannedFile| match &f.origin {
        Origin::Copy { option, .. } => option.clone(),
        _ => OptionPath::of(&["isoImage", "files"]),
    };
    for w in files.windows(2) {
        let clash = |problem: String| {
            let o = match &w[1].origin {
                Origin::Copy { .. } => option_of(&w[1]),
                _ => option_of(&w[0]),
            };
            OptionError::from(ConfigError::at(o, Problem::Value(problem)))
        };
        if w[0].target == w[1].target {
            return Err(clash(format!(
                "two files want {}: {} and {}",
                w[0].target,
                describe(&w[0].origin),
                describe(&w[1].origin)
            )));
        }
        if w[1].target.starts_with(&format!("{}/", w[0].target))
            && !matches!(w[0].origin, Origin::Dir)
        {
            return Err(clash(format!(
                "{} is a file ({}), but {} needs it to be a directory",
                w[0].target,
                describe(&w[0].origin),
                w[1].target
            )));
        }
    }
    let signing = signing(spec, base)?;
    Ok(ImagePlan {
        signed: signing.is_some(),
        signing,
        volume_id: i.volume_id.clone(),
        iso_name: spec.image.file_name.clone(),
        publisher: i.publisher.clone(),
        app_name: i.app_name.clone(),
        epoch: i.source_date_epoch,
        files,
        bios: i.make_bios_bootable,
        efi: i.make_efi_bootable,
        usb: i.make_usb_bootable,
        payload: i.boot_payload,
        report,
        linux,
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

impl ImagePlan {
    /// The source tree of the image.
    pub(crate) fn tree(&self) -> Entry {
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
                Origin::Copy {
                    source,
                    size,
                    stamp,
                    ..
                } => EntryKind::File {
                    source: Source::Path(source.clone(), *stamp),
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

    /// The writer's plan. A live image also carries [`linux::BLOCKS`], the digests of its
    /// own structures (all but file data) for stage 1 to check from the raw disk: it is
    /// planned with a placeholder of its final size, then its extent is filled in, which
    /// changes no other byte (directory records hold a file's place and size, not its bytes,
    /// and the digest the GUIDs come from skips it).
    pub(crate) fn layout(&self) -> Result<Plan, BuildError> {
        let mut opts = self.options()?;
        let mut tree = self.tree();
        if self.linux.is_none() {
            return Ok(plan::plan(&tree, &opts).map_err(ImageError::from)?);
        }
        opts.digest_skip.push(linux::BLOCKS.into());
        let mut len = 0;
        // The first pass learns the manifest's length; the second has a placeholder that
        // long (unless a directory grew a sector and added a line: then once more).
        for _ in 0..3 {
            linux::set_file(&mut tree, linux::BLOCKS, vec![b'#'; len]);
            let mut layout = plan::plan(&tree, &opts).map_err(ImageError::from)?;
            let text = linux::blocks(&layout);
            if text.len() == len {
                let own = Structure::File(linux::BLOCKS.into());
                if let Some(e) = layout.extents.iter_mut().find(|e| e.what == own) {
                    e.content = plan::Content::Bytes(text.into_bytes());
                    return Ok(layout);
                }
            }
            len = text.len();
        }
        Err(ImageError::Plan(plan::PlanError::Internal(
            "the structure manifest did not settle",
        ))
        .into())
    }

    /// Whether the output is a netboot directory (the files are its three files).
    pub fn is_netboot(&self) -> bool {
        self.linux
            .as_ref()
            .is_some_and(|l| l.loaders == linux::Loaders::Netboot)
    }

    /// The bytes of the generated `/isoproof/config.json`.
    pub(crate) fn config_json(&self) -> &[u8] {
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

    /// The writer's options: boot payloads built from the report, the scenario's clock; with
    /// `isoImage.secureBoot`, every EFI binary on the ESP signed.
    pub(crate) fn options(&self) -> Result<Options, BuildError> {
        let mut o = self.unsigned_options()?;
        if let Some(s) = &self.signing {
            let signer = s.signer()?;
            for (name, bytes) in &mut o.esp_files {
                if name.to_ascii_uppercase().ends_with(".EFI") {
                    *bytes = signer.sign(bytes)?;
                }
            }
        }
        Ok(o)
    }

    fn unsigned_options(&self) -> Result<Options, BuildError> {
        let clock = Clock::at(self.epoch);
        let mut o = Options::new(&self.volume_id, clock);
        o.publisher = self.publisher.clone();
        o.application = self.app_name.clone();
        if let Some(l) = &self.linux {
            if self.bios {
                // ISOLINUX boots from its own file, patched with the boot info table.
                o.bios_boot_file = Some(linux::ISOLINUX_BIN.into());
                if let (true, linux::Loaders::Iso { isohdpfx, .. }) = (self.usb, &l.loaders) {
                    let mut code = isohdpfx.clone();
                    code.resize(payload::MBR_CODE_LEN, 0);
                    o.mbr_code = code;
                    o.mbr_lba_offset = Some(payload::MBR_LBA_OFFSET);
                }
            }
            if let (true, linux::Loaders::Iso { uki, .. }) = (self.efi, &l.loaders) {
                o.esp_files
                    .push(("EFI/BOOT/BOOTX64.EFI".into(), uki.clone()));
            }
            o.hybrid = self.usb;
            return Ok(o);
        }
        if self.bios {
            let program = payload::bios_eltorito(&self.report, self.payload)?;
            if self.usb {
                // The MBR loads the El Torito program from the disk view of the image, at
                // most 127 sectors at a time (INT 13h extended read).
                let sectors = u16::try_from(program.len() / 512)
                    .ok()
                    .filter(|n| *n <= 127)
                    .ok_or(PayloadError::TooLarge {
                        what: "El Torito boot program (for the MBR to load)",
                        len: program.len(),
                        room: 127 * 512,
                    })?;
                o.mbr_code = payload::mbr(sectors)?;
                o.mbr_lba_offset = Some(payload::MBR_LBA_OFFSET);
            }
            o.bios_boot = Some(program);
        }
        if self.efi {
            let app = payload::uefi_app(&self.report, self.payload)?;
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
        let kind = if self.is_netboot() {
            "/ (a directory)"
        } else {
            ""
        };
        let _ = writeln!(o, "output        {}{kind}", self.iso_name);
        let _ = writeln!(o, "publisher     {}", self.publisher);
        let _ = writeln!(o, "application   {}", self.app_name);
        let _ = writeln!(o, "clock         {} (SOURCE_DATE_EPOCH)", self.epoch);
        let _ = writeln!(o, "boot");
        let yes = |b: bool| if b { "yes" } else { "no" };
        if self.is_netboot() {
            let _ = writeln!(o, "  network (iPXE over TFTP; BIOS and UEFI)  yes");
            let _ = writeln!(o, "  payload: linux, stage 1 reports what it verified");
        } else {
            let _ = writeln!(o, "  BIOS (El Torito, no emulation)  {}", yes(self.bios));
            let _ = writeln!(o, "  UEFI (El Torito 0xEF, FAT ESP)  {}", yes(self.efi));
            let _ = writeln!(o, "  USB/disk (isohybrid MBR+GPT)    {}", yes(self.usb));
            let _ = writeln!(
                o,
                "  payload: {}, report: {}",
                self.payload.name(),
                self.report.head(payload::Via::ElTorito)
            );
        }
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
                     "netboot": self.is_netboot(),
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
    /// The image spec read from the resolved config.
    pub spec: ImageSpec,
    /// The image plan.
    pub plan: ImagePlan,
    /// `warnings` of the resolved config, to be shown to the user.
    pub warnings: Vec<String>,
}

/// Adds where the scenario defines the option an error is about (the deepest option on its
/// path that has definitions), so the user finds the line to fix.
fn locate(error: impl Into<OptionError>, s: &scenario::Scenario) -> BuildError {
    let error = error.into();
    let sites = error
        .path()
        .options()
        .iter()
        .map(|o| resolve::definition_sites(s, o))
        .find(|sites| !sites.is_empty())
        .unwrap_or_default();
    BuildError::Config { error, sites }
}

/// Loads, resolves and plans a scenario.
///
/// # Example
///
/// ```
/// let planned = isoproof::compose::plan_scenario("scenarios/installer-minimal.yaml".as_ref())?;
/// assert_eq!(planned.spec.networking.host_name, "nixos-installer");
/// assert!(planned.plan.files.iter().any(|f| f.target == "/etc/hostname"));
/// let dir = tempfile::tempdir()?;
/// let made = isoproof::compose::build(&planned.plan, &dir.path().join("x.iso"), &|| false, &mut |_| {})?;
/// assert_eq!(made.size() % 2048, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_scenario(path: &Path) -> Result<Planned, BuildError> {
    let s = scenario::load(path)?;
    let r = resolve::resolve(&s);
    let (spec, config_json, warnings) = match &r.config {
        Some(c) => (
            ImageSpec::from_config(c),
            output::json(c),
            assertions(c, &s)?,
        ),
        None => {
            let errors = r.errors;
            return Err(BuildError::Resolve {
                sources: s.sources,
                errors,
            });
        }
    };
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            drop(r);
            return Err(locate(e, &s));
        }
    };
    drop(r);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = std::fs::canonicalize(dir).map_err(|e| ImageError::read(dir, e))?;
    let plan = plan_image(&spec, &base, config_json).map_err(|e| locate(e, &s))?;
    Ok(Planned {
        scenario: s,
        spec,
        plan,
        warnings,
    })
}

/// What a build wrote.
#[derive(Debug)]
pub enum Made {
    /// An ISO image, and the writer's plan of it.
    Iso(Plan),
    /// A netboot directory of this many bytes.
    Netboot {
        /// The sum of its files' sizes.
        size: u64,
    },
}

impl Made {
    /// Bytes written.
    pub fn size(&self) -> u64 {
        match self {
            Made::Iso(p) => p.size,
            Made::Netboot { size } => *size,
        }
    }
}

/// Builds the planned image (a file, or a netboot directory) at `out` atomically. `cancel`
/// and `progress` are the writer's.
pub fn build(
    p: &ImagePlan,
    out: &Path,
    cancel: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(write::Progress),
) -> Result<Made, BuildError> {
    build_as(p, out, Durable::Yes, cancel, progress)
}

/// [`build`], synced or (a scratch image read back and thrown away) not.
pub(crate) fn build_as(
    p: &ImagePlan,
    out: &Path,
    durable: Durable,
    cancel: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(write::Progress),
) -> Result<Made, BuildError> {
    if p.is_netboot() {
        let files: Vec<(&str, &[u8])> = p
            .files
            .iter()
            .filter_map(|f| match &f.origin {
                Origin::Generated { bytes, .. } => Some((&f.target[1..], &bytes[..])),
                _ => None,
            })
            .collect();
        let size = files.iter().map(|(_, b)| b.len() as u64).sum();
        let done = crate::publish::publish_dir(out, &files, durable, cancel)
            .map_err(|e| ImageError::write(out, e))?;
        if !done {
            return Err(ImageError::Interrupted.into());
        }
        progress(write::Progress {
            done: size,
            total: size,
        });
        return Ok(Made::Netboot { size });
    }
    let layout = p.layout()?;
    write::write(&layout, out, durable, cancel, progress)?;
    Ok(Made::Iso(layout))
}

impl fmt::Display for ImagePlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl BuildError {
    /// Its exit class.
    pub fn class(&self) -> crate::exit::Class {
        use crate::exit::Class;
        match self {
            BuildError::Load(e) => e.class(),
            BuildError::Config { .. } | BuildError::Assertions { .. } => Class::BadInput,
            BuildError::Resolve { .. } => Class::ResolveErrors,
            BuildError::Payload(e) => e.class(),
            BuildError::Image(e) => e.class(),
            BuildError::Sign(_) => Class::BadInput,
        }
    }
}
