//! The `linux` payload in the build stage: which parts of the payload root go where in the
//! image (NixOS's names: `/boot/bzImage`, `/boot/initrd`, `/isolinux/…`, the ESP's
//! `\EFI\BOOT\BOOTX64.EFI`, `/nix-store.squashfs`), the one kernel command line, the
//! modules stage 1 loads, and the manifests it verifies the image against.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::spec::ImageSpec;
use super::{OptionError, Origin, PlannedFile};
use crate::image::write::tree::{self, Entry, EntryKind, Source};
use crate::payload::linux::{self, init, modules, root, LinuxError, PayloadRoot, StoreNode};
use crate::resolve::de::{ConfigError, OptionPath, Problem, Segment};

/// The boot programs of a live image.
#[derive(Clone, Debug, PartialEq)]
pub struct LinuxBoot {
    /// The kernel version found in the payload root.
    pub version: String,
    /// The kernel command line (in `isolinux.cfg` and the UKI).
    pub cmdline: String,
    /// `isohdpfx.bin`, the hybrid MBR's code.
    pub isohdpfx: Vec<u8>,
    /// The Unified Kernel Image for the ESP.
    pub uki: Vec<u8>,
    /// The modules stage 1 loads, in order.
    pub modules: Vec<String>,
    /// The `fileSystems` stage 1 mounts: (mount point, fsType), in mount order.
    pub mounts: Vec<(String, String)>,
    /// Every file of the payload root the image is made from (inputs of its golden record),
    /// under the payload root as the scenario names it.
    pub inputs: Vec<std::path::PathBuf>,
}

/// The manifest of the image's structures: `OFFSET LENGTH SHA256 NAME` per line (numbers
/// padded with spaces: a shell reads a leading zero as octal), every
/// extent that is not file data (system area, descriptors, path tables, directories, boot
/// catalog, ESP, GPT and its backup).
pub const BLOCKS: &str = "/isoproof/verify/blocks.sha256";

/// The [`BLOCKS`] text of a laid-out image. Fixed-width fields, so a placeholder of the
/// same length can be planned first.
pub(crate) fn blocks(layout: &crate::image::write::plan::Plan) -> String {
    use crate::image::write::plan::Content;
    let mut out = String::new();
    for e in &layout.extents {
        if e.what.is_file() {
            continue;
        }
        if let Content::Bytes(b) = &e.content {
            let name: String = e
                .what
                .to_string()
                .chars()
                .map(|c| if c.is_whitespace() { '_' } else { c })
                .take(48)
                .collect();
            out.push_str(&format!(
                "{:>12} {:>10} {} {name:<48}\n",
                e.offset,
                b.len(),
                crate::hex::hex(&Sha256::digest(b))
            ));
        }
    }
    out
}

/// Puts `bytes` at `path` (absolute) in a planned tree, creating the file if it is not there.
pub(crate) fn set_file(root: &mut Entry, path: &str, bytes: Vec<u8>) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut at = root;
    for p in &parts[..parts.len() - 1] {
        let EntryKind::Dir(kids) = &mut at.kind else {
            return;
        };
        let Some(k) = kids.iter().position(|c| c.name == *p) else {
            return;
        };
        at = &mut kids[k];
    }
    let EntryKind::Dir(kids) = &mut at.kind else {
        return;
    };
    let name = parts[parts.len() - 1];
    let kind = EntryKind::File {
        size: bytes.len() as u64,
        source: Source::Bytes(bytes.into()),
    };
    match kids.iter_mut().find(|c| c.name == name) {
        Some(e) => e.kind = kind,
        None => {
            kids.push(Entry {
                name: name.into(),
                perm: 0o644,
                kind,
            });
            kids.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        }
    }
}

/// Where ISOLINUX's El Torito image is.
pub const ISOLINUX_BIN: &str = "/isolinux/isolinux.bin";

/// Drivers for the media the image boots from: CD (AHCI, PATA), USB sticks (xHCI, EHCI,
/// usb-storage, uas), disks (virtio, NVMe, SCSI disks).
const MEDIUM_DRIVERS: &[&str] = &[
    "ahci",
    "ata_piix",
    "sr_mod",
    "sd_mod",
    "xhci_pci",
    "ehci_pci",
    "usb_storage",
    "uas",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "nvme",
];

fn at(names: &[&str], source: LinuxError) -> OptionError {
    OptionError::Live {
        path: OptionPath::of(names),
        source,
    }
}

fn root_err(e: LinuxError) -> OptionError {
    at(&["isoImage", "payloadRoot"], e)
}

/// Adds the live system's files to `files` and returns its boot programs.
pub(crate) fn plan(
    spec: &ImageSpec,
    base: &Path,
    epoch: i64,
    files: &mut Vec<PlannedFile>,
) -> Result<LinuxBoot, OptionError> {
    let i = &spec.iso_image;
    let rel = i.payload_root.as_deref().ok_or_else(|| {
        OptionError::from(ConfigError::at(
            OptionPath::of(&["isoImage", "payloadRoot"]),
            Problem::Value("the linux payload needs a payload root (kernel, modules, busybox, ISOLINUX, systemd-stub in Debian's layout)".into()),
        ))
    })?;
    let root_path = base.join(rel);
    let pr = PayloadRoot::open(&root_path).map_err(root_err)?;
    let ix = modules::Index::open(&pr.modules_dir()).map_err(root_err)?;
    let mtime = u32::try_from(epoch.max(0)).unwrap_or(u32::MAX);

    // Modules: the config's (an unknown name is the config's error), the media's and the
    // file systems' (the payload root's). All go into the initramfs; stage 1 loads
    // `boot.initrd.kernelModules` at once and the others when a device or mount needs them.
    let unknown = |option: &[&str], n: &str| {
        at(
            option,
            LinuxError::UnknownModule {
                version: pr.version.clone(),
                name: n.to_string(),
            },
        )
    };
    let mut names: Vec<String> = Vec::new();
    let mut always: Vec<String> = Vec::new();
    for n in &spec.boot.initrd.kernel_modules {
        let found = ix
            .resolve(n)
            .ok_or_else(|| unknown(&["boot", "initrd", "kernelModules"], n))?;
        always.extend(found.iter().cloned());
        names.extend(found);
    }
    for n in &spec.boot.initrd.available_kernel_modules {
        names.extend(
            ix.resolve(n)
                .ok_or_else(|| unknown(&["boot", "initrd", "availableKernelModules"], n))?,
        );
    }
    for n in MEDIUM_DRIVERS {
        names.extend(ix.resolve(n).ok_or_else(|| {
            root_err(LinuxError::UnknownModule {
                version: pr.version.clone(),
                name: n.to_string(),
            })
        })?);
    }
    let mut mounts = Vec::new();
    for (point, fs) in &spec.file_systems {
        let option = OptionPath::of(&["fileSystems"]).child(Segment::Attr(point.clone()));
        let fs_mod = ix
            .resolve(&format!("fs-{}", fs.fs_type))
            .or_else(|| ix.resolve(&fs.fs_type));
        let mut needs = match fs_mod {
            Some(m) => m,
            None if ["tmpfs", "proc", "sysfs", "devtmpfs", "ramfs"]
                .contains(&fs.fs_type.as_str()) =>
            {
                Vec::new()
            }
            None => {
                return Err(ConfigError::at(
                    option.child(Segment::Attr("fsType".into())),
                    Problem::Value(format!(
                        "stage 1 cannot mount {point}: kernel {} has no file system {:?}",
                        pr.version, fs.fs_type
                    )),
                )
                .into())
            }
        };
        if fs.options.iter().any(|o| o == "loop") {
            needs.extend(ix.resolve("loop").unwrap_or_default());
        }
        names.extend(needs.iter().cloned());
        mounts.push(init::Mount {
            point: point.clone(),
            fs_type: fs.fs_type.clone(),
            device: fs.device.clone(),
            options: fs.options.clone(),
            modules: needs,
        });
    }
    let order = ix.load_order(&names);
    let script = init::script(&always, &i.volume_id, &mounts);
    let index = ix.index_files(&order);
    let initrd = linux::initramfs(&pr, &order, &index, &script, mtime).map_err(root_err)?;

    let mut cmdline = vec![
        format!("root=LABEL={}", i.volume_id),
        "panic=-1".to_string(),
    ];
    cmdline.extend(spec.boot.kernel_params.iter().cloned());
    let cmdline = cmdline.join(" ");

    let read = |rel: &str| linux::read_part(&pr.part(rel)).map_err(root_err);
    let kernel = linux::read_part(&pr.kernel()).map_err(root_err)?;
    let osrel = format!(
        "NAME=NixOS\nID=nixos\nPRETTY_NAME=\"NixOS live ({})\"\n",
        i.volume_id
    );
    let uki = linux::uki::build(
        &read(root::EFI_STUB)?,
        osrel.as_bytes(),
        cmdline.as_bytes(),
        &initrd,
        &kernel,
    )
    .map_err(root_err)?;

    let from = "the payload root";
    let bytes = |target: &str, from: &str, b: Vec<u8>, mode: u32| PlannedFile {
        target: target.into(),
        mode,
        origin: Origin::Generated {
            from: from.into(),
            bytes: b.into(),
        },
    };
    files.push(bytes("/boot/bzImage", from, kernel, 0o644));
    files.push(bytes(
        "/boot/initrd",
        "boot.initrd, fileSystems (stage 1)",
        initrd,
        0o644,
    ));
    files.push(bytes(ISOLINUX_BIN, from, read(root::ISOLINUX_BIN)?, 0o644));
    files.push(bytes(
        "/isolinux/ldlinux.c32",
        from,
        read(root::LDLINUX_C32)?,
        0o644,
    ));
    files.push(bytes(
        "/isolinux/isolinux.cfg",
        "boot.kernelParams",
        isolinux_cfg(&cmdline).into_bytes(),
        0o644,
    ));

    // The store.
    let mut store = Vec::new();
    // The files the store is made of: inputs of the golden record, as copied contents are.
    let mut store_inputs = Vec::new();
    for (n, rel) in i.store_contents.iter().enumerate() {
        let option = OptionPath::of(&["isoImage", "storeContents"]).child(Segment::Index(n));
        let bad = |e: String| ConfigError::at(option.clone(), Problem::Value(e));
        let live = |source: LinuxError| OptionError::Live {
            path: option.clone(),
            source,
        };
        // Inside the scenario's folder, or absolute, as isoImage.contents.
        let real = super::confine(rel, base, &option, true)?;
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let md = std::fs::metadata(&real).map_err(|e| bad(format!("source {rel}: {e}")))?;
        if md.is_dir() {
            let t = tree::scan(&real).map_err(|source| OptionError::Scan {
                path: option.clone(),
                source,
            })?;
            store.push(StoreNode::Dir(name.clone()));
            store_nodes(&t, &name, &mut store, &mut store_inputs).map_err(live)?;
        } else {
            let b = linux::read_part(&real).map_err(live)?;
            store_inputs.push(real.clone());
            let mode = if md_exec(&md) { 0o755 } else { 0o644 };
            store.push(StoreNode::File(name, mode, b));
        }
    }
    let squash =
        linux::squashfs(&store, mtime).map_err(|e| at(&["isoImage", "storeContents"], e))?;
    files.push(bytes(
        "/nix-store.squashfs",
        "isoImage.storeContents",
        squash,
        0o644,
    ));

    // The manifests stage 1 verifies against.
    let mut store_sums = String::new();
    for n in &store {
        if let StoreNode::File(p, _, b) = n {
            store_sums.push_str(&linux::sha256_line(&format!("/{p}"), b));
        }
    }
    manifests(files, store_sums).map_err(|e| at(&["isoImage", "contents"], e))?;

    Ok(LinuxBoot {
        version: pr.version.clone(),
        cmdline,
        isohdpfx: read(root::ISOHDPFX_BIN)?,
        uki,
        modules: order.iter().map(|l| l.file.clone()).collect(),
        inputs: {
            let mut v = vec![pr.kernel()];
            // Every index the module lookup read (modules::Index::open).
            v.extend(
                modules::INDEX_FILES
                    .iter()
                    .map(|f| pr.modules_dir().join(f))
                    .filter(|p| p.is_file()),
            );
            for part in [
                root::BUSYBOX,
                root::ISOLINUX_BIN,
                root::ISOHDPFX_BIN,
                root::LDLINUX_C32,
                root::EFI_STUB,
            ] {
                v.push(pr.part(part));
            }
            v.extend(order.iter().map(|l| pr.modules_dir().join(&l.file)));
            // As the scenario names them (through `payloadRoot`, not where symlinks lead),
            // so that a golden record is the same in every checkout.
            v.into_iter()
                .map(|p| match p.strip_prefix(&pr.root) {
                    Ok(r) => root_path.join(r),
                    Err(_) => p,
                })
                .chain(store_inputs)
                .collect()
        },
        mounts: mounts
            .iter()
            .map(|m| (m.point.clone(), m.fs_type.clone()))
            .collect(),
    })
}

fn md_exec(md: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    md.permissions().mode() & 0o100 != 0
}

fn store_nodes(
    e: &Entry,
    at: &str,
    out: &mut Vec<StoreNode>,
    inputs: &mut Vec<std::path::PathBuf>,
) -> Result<(), LinuxError> {
    for c in e.children() {
        let p = format!("{at}/{}", c.name);
        match &c.kind {
            EntryKind::Dir(_) => {
                out.push(StoreNode::Dir(p.clone()));
                store_nodes(c, &p, out, inputs)?;
            }
            EntryKind::Symlink(t) => out.push(StoreNode::Symlink(p, t.clone())),
            EntryKind::File { source, .. } => {
                let b = match source {
                    Source::Path(path, _) => {
                        inputs.push(path.clone());
                        linux::read_part(path)?
                    }
                    Source::Bytes(b) => b.to_vec(),
                };
                let mode = if c.perm & 0o100 != 0 { 0o755 } else { 0o644 };
                out.push(StoreNode::File(p, mode, b));
            }
        }
    }
    Ok(())
}

/// `/isolinux/isolinux.cfg` for the live system: boot at once, on the serial console too.
pub fn isolinux_cfg(cmdline: &str) -> String {
    format!(
        "SERIAL 0 115200\nPROMPT 0\nTIMEOUT 0\nDEFAULT linux\n\nLABEL linux\n  LINUX /boot/bzImage\n  INITRD /boot/initrd\n  APPEND {cmdline}\n"
    )
}

fn digest_of(f: &PlannedFile) -> Result<Option<String>, LinuxError> {
    let hex = |d: &[u8]| crate::hex::hex(d);
    match &f.origin {
        Origin::Generated { bytes, .. } => Ok(Some(hex(&Sha256::digest(bytes)))),
        Origin::Copy { source, .. } => {
            crate::input::sha256_hex(source)
                .map(Some)
                .map_err(|e| LinuxError::Read {
                    path: source.clone(),
                    message: e.to_string(),
                })
        }
        _ => Ok(None),
    }
}

/// Adds `iso.sha256` (every file but itself, by Rock Ridge name), `iso.meta` (modes and
/// link targets), `joliet.sha256` (the files whose names Joliet keeps as they are) and
/// `store.sha256` under [`linux::VERIFY_DIR`].
fn manifests(files: &mut Vec<PlannedFile>, store_sums: String) -> Result<(), LinuxError> {
    let dir = linux::VERIFY_DIR;
    let gen = |name: &str, text: String| PlannedFile {
        target: format!("{dir}/{name}"),
        mode: 0o644,
        origin: Origin::Generated {
            from: "the image's files".into(),
            bytes: Arc::from(text.into_bytes()),
        },
    };
    files.sort_by(|a, b| a.target.cmp(&b.target));
    let mut meta = String::new();
    let mut joliet = String::new();
    let mut sums = Vec::new();
    for f in files.iter() {
        match &f.origin {
            Origin::Symlink(t) => meta.push_str(&format!("link 0 {} {t}\n", f.target)),
            Origin::Dir => {}
            // The writer patches the boot info table (bytes 8..64) with the image's layout:
            // the rest must be the payload root's bytes.
            Origin::Generated { bytes, .. } if f.target == ISOLINUX_BIN => {
                let tail = crate::hex::hex(&Sha256::digest(bytes.get(64..).unwrap_or_default()));
                meta.push_str(&format!("tail64 {tail} {}\n", f.target));
                meta.push_str(&format!("mode {:o} {}\n", f.mode, f.target));
            }
            _ => {
                meta.push_str(&format!("mode {:o} {}\n", f.mode, f.target));
                if let Some(d) = digest_of(f)? {
                    let line = format!("{d}  .{}\n", f.target);
                    if f.target[1..]
                        .split('/')
                        .all(crate::image::format::joliet::holds)
                    {
                        joliet.push_str(&line);
                    }
                    sums.push(line);
                }
            }
        }
    }
    let extra = [
        gen("store.sha256", store_sums),
        gen("joliet.sha256", joliet),
        gen("iso.meta", meta),
    ];
    for f in &extra {
        if let Some(d) = digest_of(f)? {
            sums.push(format!("{d}  .{}\n", f.target));
        }
    }
    files.extend(extra);
    files.push(gen("iso.sha256", sums.concat()));
    Ok(())
}
