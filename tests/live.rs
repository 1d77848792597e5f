//! The `linux` payload through the real CLI: bad payload roots and configs are build errors
//! naming the option and its definition (never a partial image), and a built live image's
//! initramfs and store read back with GNU cpio, bsdcpio and unsquashfs.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The payload root `isoproof payload fetch` makes (the test command fetches it first).
fn payload() -> PathBuf {
    std::fs::canonicalize(root().join("payload/root")).unwrap_or_else(|e| {
        panic!("payload/root: {e}; the payload root is made by `isoproof payload fetch` (`just payload`)")
    })
}

/// A scenario in `dir` that imports the installer and makes it live with `extra` config.
fn scenario(dir: &Path, payload_root: &Path, extra: &str) -> PathBuf {
    let p = dir.join("s.yaml");
    std::fs::write(
        &p,
        format!(
            "modules:\n  - imports: [{}]\n  - config:\n      isoImage.bootPayload: linux\n      isoImage.payloadRoot: {}\n{extra}",
            root().join("scenarios/modules/installation-cd-minimal.yaml").display(),
            payload_root.display()
        ),
    )
    .unwrap();
    p
}

/// `isoproof build -o DIR/out.iso SCENARIO`: (exit code, stderr); no output may be left
/// when it fails.
fn build(dir: &Path, s: &Path) -> (Option<i32>, String) {
    let out = dir.join("out.iso");
    let o = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(s)
        .output()
        .unwrap();
    let code = o.status.code();
    if code != Some(0) {
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().contains(".iso"))
            .collect();
        assert!(left.is_empty(), "a failed build left {left:?}");
    }
    (code, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_missing_payload_root_names_the_option() {
    let d = tempfile::tempdir().unwrap();
    let s = scenario(d.path(), &d.path().join("nowhere"), "");
    let (code, err) = build(d.path(), &s);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("isoImage.payloadRoot: no payload root at"),
        "{err}"
    );
    assert!(
        err.contains("isoImage.payloadRoot is defined at s.yaml:5:"),
        "{err}"
    );
}

#[test]
fn modules_of_another_kernel_are_refused() {
    let d = tempfile::tempdir().unwrap();
    // The real parts, but the modules directory of another version.
    let fake = d.path().join("root");
    for part in ["bin", "usr", "boot"] {
        std::fs::create_dir_all(&fake).unwrap();
        std::os::unix::fs::symlink(payload().join(part), fake.join(part)).unwrap();
    }
    std::fs::create_dir_all(fake.join("lib/modules")).unwrap();
    let v = std::fs::read_dir(payload().join("lib/modules"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .file_name();
    std::os::unix::fs::symlink(
        payload().join("lib/modules").join(&v),
        fake.join("lib/modules/9.9.9-other"),
    )
    .unwrap();
    let s = scenario(d.path(), &fake, "");
    let (code, err) = build(d.path(), &s);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("has no modules.dep (modules found for: 9.9.9-other)"),
        "{err}"
    );
}

#[test]
fn an_unknown_module_names_its_definition() {
    let d = tempfile::tempdir().unwrap();
    let s = scenario(
        d.path(),
        &payload(),
        "      boot.initrd.availableKernelModules: [btrfs_nosuch]\n",
    );
    let (code, err) = build(d.path(), &s);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("has no module \"btrfs_nosuch\""), "{err}");
    let sites = err
        .split("boot.initrd.availableKernelModules is defined at ")
        .nth(1)
        .unwrap_or_default();
    assert!(sites.contains("s.yaml:6:"), "{err}");
}

#[test]
fn a_file_system_stage_1_cannot_mount_is_a_build_error() {
    let d = tempfile::tempdir().unwrap();
    let s = scenario(
        d.path(),
        &payload(),
        "      fileSystems: !mkForce {\"/\": {fsType: zfs, device: tank/root}}\n",
    );
    let (code, err) = build(d.path(), &s);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("stage 1 cannot mount /"), "{err}");
    assert!(err.contains("has no file system \"zfs\""), "{err}");
}

/// Extracts one file of an ISO with bsdtar.
fn extract(iso: &Path, path: &str, to: &Path) {
    let o = Command::new("bsdtar")
        .arg("-xf")
        .arg(iso)
        .arg("-C")
        .arg(to)
        .arg(path.trim_start_matches('/'))
        .output()
        .expect("bsdtar (libarchive-tools)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn initramfs_and_store_read_back_with_other_tools() {
    let d = tempfile::tempdir().unwrap();
    let iso = d.path().join("live.iso");
    let o = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("build")
        .arg("-o")
        .arg(&iso)
        .arg(root().join("scenarios/live-minimal.yaml"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    extract(&iso, "/boot/initrd", d.path());
    extract(&iso, "/nix-store.squashfs", d.path());
    let gz = std::fs::read(d.path().join("boot/initrd")).unwrap();
    let mut cpio = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut cpio).unwrap();
    let archive = d.path().join("initrd.cpio");
    std::fs::write(&archive, &cpio).unwrap();
    for (tool, args) in [
        ("cpio", &["-itv", "--quiet"][..]),
        ("bsdcpio", &["-itv"][..]),
    ] {
        let o = Command::new(tool)
            .args(args)
            .stdin(std::fs::File::open(&archive).unwrap())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            o.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let list = String::from_utf8_lossy(&o.stdout);
        for want in [
            "init",
            "bin/busybox",
            "dev/console",
            "modules.dep",
            "isofs.ko",
            "sr_mod.ko",
        ] {
            assert!(list.contains(want), "{tool} does not list {want}:\n{list}");
        }
        // Root-owned, directories first.
        assert!(list.lines().next().unwrap().starts_with('d'), "{list}");
        assert!(
            list.lines()
                .all(|l| l.contains(" root ") || l.contains(" 0 ")),
            "{list}"
        );
    }
    let o = Command::new("unsquashfs")
        .arg("-lls")
        .arg(d.path().join("nix-store.squashfs"))
        .output()
        .expect("unsquashfs (squashfs-tools)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let list = String::from_utf8_lossy(&o.stdout);
    assert!(list.contains("hello-2.12.1/bin/hello"), "{list}");
    assert!(list.contains("hello -> bin/hello"), "{list}");
    assert!(list.contains("root/root"), "{list}");
}

/// A store given by an absolute path (as `isoImage.contents` may be), and a kernel command
/// line changed between two builds: `diff` shows the UKI's `.cmdline` section as the text
/// that changed, not as a first differing byte.
#[test]
fn a_changed_command_line_shows_as_the_uki_s_cmdline_text() {
    let d = tempfile::tempdir().unwrap();
    let store = root().join("scenarios/data/store/hello-2.12.1");
    let images: Vec<PathBuf> = ["", "      boot.kernelParams: [nomodeset]\n"]
        .iter()
        .enumerate()
        .map(|(i, extra)| {
            let dir = d.path().join(format!("{i}"));
            std::fs::create_dir(&dir).unwrap();
            let s = scenario(
                &dir,
                &payload(),
                &format!(
                    "      isoImage.storeContents: [{}]\n{extra}",
                    store.display()
                ),
            );
            let (code, err) = build(&dir, &s);
            assert_eq!(code, Some(0), "{err}");
            dir.join("out.iso")
        })
        .collect();
    let o = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("diff")
        .args(&images)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("ESP file /EFI/BOOT/BOOTX64.EFI\n  content:\n    section .cmdline:\n    @@ -1 +1 @@\n    -root=LABEL=NIXOS_MINIMAL panic=-1 loglevel=4"),
        "{out}"
    );
    assert!(out.contains(" nomodeset\n"), "{out}");
    assert!(!out.contains("first differing byte"), "{out}");
}
