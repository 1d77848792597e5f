//! The `linux` payload in the build stage: which parts of the payload root go where in the
//! image (NixOS's names: `/boot/bzImage`, `/boot/initrd`, `/isolinux/…`, the ESP's
//! `\EFI\BOOT\BOOTX64.EFI`, `/nix-store.squashfs`) or in a netboot directory (`bzImage`,
//! `initrd` with the store appended, `netboot.ipxe`), the one kernel command line, the
//! modules stage 1 loads, and the manifests it verifies the image against.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::spec::ImageSpec;
use super::{OptionError, Origin, PlannedFile};
use crate::image::format::cpio;
use crate::image::write::tree::{self, Entry, EntryKind, Source};
use crate::payload::linux::{self, init, modules, root, LinuxError, PayloadRoot, StoreNode};
use crate::resolve::de::{ConfigError, OptionPath, Problem, Segment};

/// The boot programs of a live image.
#[derive(Clone, Debug, PartialEq)]
pub struct LinuxBoot {
    /// The kernel version found in the payload root.
    pub version: String,
    /// The kernel command line (in `isolinux.cfg` and the UKI, or `netboot.ipxe`).
    pub cmdline: String,
    /// What loads the kernel.
    pub loaders: Loaders,
    /// The modules stage 1 loads, in order.
    pub modules: Vec<String>,
    /// The `fileSystems` stage 1 mounts: (mount point, fsType), in mount order.
    pub mounts: Vec<(String, String)>,
    /// Every file of the payload root the image is made from (inputs of its golden record),
    /// under the payload root as the scenario names it.
    pub inputs: Vec<std::path::PathBuf>,
}

/// What loads a live system's kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum Loaders {
    /// An ISO: ISOLINUX (planned as files), `isohdpfx.bin` for the hybrid MBR, and the
    /// Unified Kernel Image for the ESP.
    Iso {
        /// `isohdpfx.bin`, the hybrid MBR's code.
        isohdpfx: Vec<u8>,
        /// The Unified Kernel Image.
        uki: Vec<u8>,
    },
    /// A netboot directory: iPXE runs `netboot.ipxe`, which loads `bzImage` and `initrd`.
    Netboot,
}

/// The files of a netboot directory, as NixOS's `system.build.netboot` names them.
pub const NETBOOT_FILES: [&str; 3] = ["bzImage", "initrd", "netboot.ipxe"];

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
/// usb-storage, uas), disks (virtio, NVMe, SCSI disks); and efivarfs, through which stage 1
/// reads the firmware's Secure Boot variables.
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
    "efivarfs",
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

/// Adds the live system's files to `files` and returns its boot programs. For a netboot
/// image, `files` (the generated and copied ones) go into the initrd and are replaced by the
/// directory's three files.
pub(crate) fn plan(
    spec: &ImageSpec,
    base: &Path,
    epoch: i64,
    files: &mut Vec<PlannedFile>,
) -> Result<LinuxBoot, OptionError> {
    let i = &spec.iso_image;
    let netboot = spec.netboot.is_some();
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
    // A netboot image has no medium to find: its store came with the initrd. Both read the
    // firmware's Secure Boot variables through efivarfs.
    let media: &[&str] = if netboot {
        &["efivarfs"]
    } else {
        MEDIUM_DRIVERS
    };
    for n in media {
        names.extend(ix.resolve(n).ok_or_else(|| {
            root_err(LinuxError::UnknownModule {
                version: pr.version.clone(),
                name: n.to_string(),
            })
        })?);
    }
    let mut mounts = Vec::new();
    // Stage 1 mounts what NixOS's stage 1 mounts; the others (a host's `/boot`) are
    // stage 2's, which a live image under test does not reach.
    for (point, fs) in spec.file_systems.iter().filter(|(p, f)| f.in_stage1(p)) {
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
    let medium = match netboot {
        true => init::Medium::Netboot,
        false => init::Medium::Label(i.volume_id.clone()),
    };
    let script = init::script(&always, &medium, &mounts);
    let index = ix.index_files(&order);

    // The store.
    let store_option: &[&str] = match netboot {
        true => &["netboot", "storeContents"],
        false => &["isoImage", "storeContents"],
    };
    let store_list = spec
        .netboot
        .as_ref()
        .map_or(&i.store_contents, |n| &n.store_contents);
    let (store, store_inputs) = store_of(store_list, store_option, base)?;
    let squash = linux::squashfs(&store, mtime).map_err(|e| at(store_option, e))?;
    // The manifest stage 1 verifies the store against, file by file.
    let mut store_sums = String::new();
    for n in &store {
        if let StoreNode::File(p, _, b) = n {
            store_sums.push_str(&linux::sha256_line(&format!("/{p}"), b));
        }
    }

    let kernel = linux::read_part(&pr.kernel()).map_err(root_err)?;
    let read = |rel: &str| linux::read_part(&pr.part(rel)).map_err(root_err);
    let (cmdline, loaders) = if netboot {
        let cmdline = netboot_cmdline(&spec.boot.kernel_params);
        let extra = netboot_files(files, &squash, store_sums)
            .map_err(|e| at(&["isoImage", "contents"], e))?;
        let stage1 =
            linux::initramfs(&pr, &order, &index, &script, extra, mtime).map_err(root_err)?;
        let initrd = netboot_initrd(stage1, squash, mtime).map_err(|e| at(store_option, e))?;
        let out = |name: &str, from: &str, b: Vec<u8>| PlannedFile {
            target: format!("/{name}"),
            mode: 0o644,
            origin: Origin::Generated {
                from: from.into(),
                bytes: b.into(),
            },
        };
        let [k, r, x] = NETBOOT_FILES;
        *files = vec![
            out(k, "the payload root", kernel),
            out(r, "boot.initrd, fileSystems, netboot.storeContents", initrd),
            out(x, "boot.kernelParams", ipxe_script(&cmdline).into_bytes()),
        ];
        (cmdline, Loaders::Netboot)
    } else {
        let initrd =
            linux::initramfs(&pr, &order, &index, &script, Vec::new(), mtime).map_err(root_err)?;
        let mut cmdline = vec![
            format!("root=LABEL={}", i.volume_id),
            "panic=-1".to_string(),
        ];
        cmdline.extend(spec.boot.kernel_params.iter().cloned());
        let cmdline = cmdline.join(" ");
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
        let bytes = |target: &str, from: &str, b: Vec<u8>| PlannedFile {
            target: target.into(),
            mode: 0o644,
            origin: Origin::Generated {
                from: from.into(),
                bytes: b.into(),
            },
        };
        files.push(bytes("/boot/bzImage", from, kernel));
        files.push(bytes(
            "/boot/initrd",
            "boot.initrd, fileSystems (stage 1)",
            initrd,
        ));
        files.push(bytes(ISOLINUX_BIN, from, read(root::ISOLINUX_BIN)?));
        files.push(bytes(
            "/isolinux/ldlinux.c32",
            from,
            read(root::LDLINUX_C32)?,
        ));
        files.push(bytes(
            "/isolinux/isolinux.cfg",
            "boot.kernelParams",
            isolinux_cfg(&cmdline).into_bytes(),
        ));
        files.push(bytes(
            "/nix-store.squashfs",
            "isoImage.storeContents",
            squash,
        ));
        // The manifests stage 1 verifies against.
        manifests(files, store_sums).map_err(|e| at(&["isoImage", "contents"], e))?;
        let loaders = Loaders::Iso {
            isohdpfx: read(root::ISOHDPFX_BIN)?,
            uki,
        };
        (cmdline, loaders)
    };

    let parts: &[&str] = if netboot {
        &[root::BUSYBOX]
    } else {
        &[
            root::BUSYBOX,
            root::ISOLINUX_BIN,
            root::ISOHDPFX_BIN,
            root::LDLINUX_C32,
            root::EFI_STUB,
        ]
    };
    Ok(LinuxBoot {
        version: pr.version.clone(),
        cmdline,
        loaders,
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
            v.extend(parts.iter().map(|p| pr.part(p)));
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

/// The store's files (`isoImage.storeContents` or `netboot.storeContents`, named by
/// `option`), and the files on disk they were read from.
fn store_of(
    list: &[String],
    option: &[&str],
    base: &Path,
) -> Result<(Vec<StoreNode>, Vec<std::path::PathBuf>), OptionError> {
    let mut store = Vec::new();
    // The files the store is made of: inputs of the golden record, as copied contents are.
    let mut store_inputs = Vec::new();
    for (n, rel) in list.iter().enumerate() {
        let option = OptionPath::of(option).child(Segment::Index(n));
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
    Ok((store, store_inputs))
}

/// A netboot kernel's command line: NixOS's `init=` and `initrd=` (the EFI stub loads the
/// initrd by that name from iPXE's file system), `panic=-1` so that a failed boot ends
/// QEMU, then `boot.kernelParams`. Stage 1 is the initramfs's `/init` and the last stage.
pub fn netboot_cmdline(params: &[String]) -> String {
    let mut words = vec![
        "init=/init".to_string(),
        "initrd=initrd".to_string(),
        "panic=-1".to_string(),
    ];
    words.extend(params.iter().cloned());
    words.join(" ")
}

/// `netboot.ipxe`, as NixOS writes it: `${cmdline}` lets a chainloading iPXE script add
/// parameters.
pub fn ipxe_script(cmdline: &str) -> String {
    format!(
        "#!ipxe\n# Use the cmdline variable to allow the user to specify custom kernel params\n# when chainloading this script from other iPXE scripts like netboot.xyz\nkernel bzImage {cmdline} ${{cmdline}}\ninitrd initrd\nboot\n"
    )
}

/// The files a netboot initrd carries besides stage 1: the planned ones (`/etc/hostname`,
/// the config, `isoImage.files` and `contents`) with their parent directories, and the
/// manifests stage 1 verifies them, the appended squashfs and the store against.
fn netboot_files(
    files: &[PlannedFile],
    squash: &[u8],
    store_sums: String,
) -> Result<Vec<cpio::Entry>, LinuxError> {
    use cpio::{Entry as C, Kind};
    let mut out: Vec<C> = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    let mut sums = linux::sha256_line("/nix-store.squashfs", squash);
    let parents = |path: &str, dirs: &mut std::collections::BTreeSet<String>| {
        let mut at = path;
        while let Some((parent, _)) = at.rsplit_once('/') {
            dirs.insert(parent.to_string());
            at = parent;
        }
    };
    for f in files {
        let path = f.target.trim_start_matches('/').to_string();
        parents(&path, &mut dirs);
        let kind = match &f.origin {
            Origin::Dir => {
                dirs.insert(path);
                continue;
            }
            Origin::Symlink(t) => Kind::Symlink(t.clone()),
            Origin::Generated { bytes, .. } => Kind::File(bytes.to_vec()),
            Origin::Copy { source, .. } => Kind::File(linux::read_part(source)?),
        };
        if let Kind::File(b) = &kind {
            sums.push_str(&linux::sha256_line(&f.target, b));
        }
        out.push(C {
            path,
            perm: f.mode,
            kind,
        });
    }
    let verify = linux::VERIFY_DIR.trim_start_matches('/');
    for (name, text) in [("store.sha256", store_sums), ("initrd.sha256", sums)] {
        let path = format!("{verify}/{name}");
        parents(&path, &mut dirs);
        out.push(C {
            path,
            perm: 0o644,
            kind: Kind::File(text.into_bytes()),
        });
    }
    out.extend(dirs.into_iter().map(|path| C {
        path,
        perm: 0o755,
        kind: Kind::Dir,
    }));
    Ok(out)
}

/// NixOS's `netbootRamdisk` (`makeInitrdNG` with `prepend`): stage 1's compressed archive,
/// zeros to a 4-byte boundary (where Linux looks for the next archive), then an archive
/// holding `/nix-store.squashfs`. That one is stored, not compressed: a squashfs is
/// compressed already, and Linux unpacks it faster so.
fn netboot_initrd(stage1: Vec<u8>, squash: Vec<u8>, mtime: u32) -> Result<Vec<u8>, LinuxError> {
    let mut out = stage1;
    out.resize(out.len().next_multiple_of(4), 0);
    let store = cpio::write(
        &[cpio::Entry {
            path: "nix-store.squashfs".into(),
            perm: 0o444,
            kind: cpio::Kind::File(squash),
        }],
        mtime,
    )?;
    out.extend_from_slice(&store);
    Ok(out)
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

fn size_of(f: &PlannedFile) -> u64 {
    match &f.origin {
        Origin::Generated { bytes, .. } => bytes.len() as u64,
        Origin::Copy { size, .. } => *size,
        _ => 0,
    }
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
/// link targets), `joliet.list` (`SIZE ./PATH` of the files whose names Joliet keeps as they
/// are: their directory records are checked raw and their bytes through Rock Ridge, so
/// through Joliet each must only be found, at its size) and `store.sha256` under
/// [`linux::VERIFY_DIR`].
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
                    if f.target[1..]
                        .split('/')
                        .all(crate::image::format::joliet::holds)
                    {
                        joliet.push_str(&format!("{} .{}\n", size_of(f), f.target));
                    }
                    sums.push(format!("{d}  .{}\n", f.target));
                }
            }
        }
    }
    let extra = [
        gen("store.sha256", store_sums),
        gen("joliet.list", joliet),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_netboot_initrd_is_stage_1_then_the_store_at_a_4_byte_boundary() {
        // Linux's initramfs unpacker (init/initramfs.c) skips zeros between archives and
        // reads an uncompressed one only where its offset is a multiple of 4.
        let stage1 = linux::gzip(b"070701 not really").unwrap();
        let n = stage1.len();
        let out = netboot_initrd(stage1.clone(), b"hsqs...".to_vec(), 1).unwrap();
        let at = n.next_multiple_of(4);
        assert_eq!(&out[..n], &stage1[..]);
        assert!(out[n..at].iter().all(|&b| b == 0));
        let entries = cpio::read(&out[at..]).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].path, "nix-store.squashfs");
        assert_eq!(&out[at..][entries[0].data.clone()], b"hsqs...");
        // newc: mode 0100444 in 8 hexadecimal digits at bytes 14..22 of the header.
        assert_eq!(&out[at + 14..at + 22], b"00008124");
    }

    #[test]
    fn the_ipxe_script_is_nixos_s() {
        let c = netboot_cmdline(&["quiet".into()]);
        assert_eq!(c, "init=/init initrd=initrd panic=-1 quiet");
        let s = ipxe_script(&c);
        assert!(s.starts_with("#!ipxe\n"));
        assert!(s.ends_with(
            "kernel bzImage init=/init initrd=initrd panic=-1 quiet ${cmdline}\ninitrd initrd\nboot\n"
        ));
    }
}
