//! Firmware discovery against descriptor fixtures shaped like the files Debian and Fedora
//! ship (`tests/fixtures/firmware/`), installed into a temporary root.

use std::fs;
use std::path::{Path, PathBuf};

use isoproof_harness::firmware::{find_ovmf, Search};

/// Copies a fixture directory into `root/<dir>`, pointing its paths into `root`.
fn install(root: &Path, fixture: &str, dir: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/firmware")
        .join(fixture);
    let dst = root.join(dir);
    fs::create_dir_all(&dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let text = fs::read_to_string(e.path()).unwrap();
        let root_text = root.to_str().unwrap();
        fs::write(dst.join(e.file_name()), text.replace("@ROOT@", root_text)).unwrap();
    }
    dst
}

/// Creates firmware files (empty: discovery only checks they exist).
fn touch(root: &Path, files: &[&str]) {
    for f in files {
        let p = root.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"").unwrap();
    }
}

fn search(dirs: Vec<PathBuf>) -> Search {
    Search {
        descriptor_dirs: dirs,
        known: Vec::new(),
    }
}

#[test]
fn debian_picks_the_plain_firmware_over_secure_boot_and_enrolled_keys() {
    let t = tempfile::tempdir().unwrap();
    let d = install(t.path(), "debian", "usr/share/qemu/firmware");
    touch(
        t.path(),
        &[
            "share/OVMF/OVMF_CODE_4M.ms.fd",
            "share/OVMF/OVMF_VARS_4M.ms.fd",
            "share/OVMF/OVMF_CODE_4M.secboot.fd",
            "share/OVMF/OVMF_CODE_4M.fd",
            "share/OVMF/OVMF_VARS_4M.fd",
        ],
    );
    let o = find_ovmf(&search(vec![d.clone()])).unwrap();
    assert_eq!(o.code, t.path().join("share/OVMF/OVMF_CODE_4M.fd"));
    assert_eq!(o.vars, t.path().join("share/OVMF/OVMF_VARS_4M.fd"));
    assert_eq!(
        o.origin,
        format!("descriptor {}", d.join("60-edk2-x86_64.json").display())
    );
}

#[test]
fn fedora_falls_back_to_secure_boot_without_keys_and_skips_qcow2_and_sev() {
    let t = tempfile::tempdir().unwrap();
    let d = install(t.path(), "fedora", "usr/share/qemu/firmware");
    touch(
        t.path(),
        &[
            "share/edk2/ovmf/OVMF.amdsev.fd",
            "share/edk2/ovmf/OVMF_VARS.fd",
            "share/edk2/ovmf/OVMF_CODE_4M.secboot.qcow2",
            "share/edk2/ovmf/OVMF_VARS_4M.qcow2",
            "share/edk2/ovmf/OVMF_CODE.secboot.fd",
            "share/edk2/ovmf/OVMF_VARS.secboot.fd",
        ],
    );
    let o = find_ovmf(&search(vec![d])).unwrap();
    assert_eq!(
        o.code,
        t.path().join("share/edk2/ovmf/OVMF_CODE.secboot.fd")
    );
}

#[test]
fn a_user_descriptor_hides_the_system_one_of_the_same_name() {
    let t = tempfile::tempdir().unwrap();
    let user = install(t.path(), "xdg-override", "config/qemu/firmware");
    let system = install(t.path(), "debian", "usr/share/qemu/firmware");
    touch(
        t.path(),
        &[
            "local/OVMF_CODE.fd",
            "local/OVMF_VARS.fd",
            "share/OVMF/OVMF_CODE_4M.fd",
            "share/OVMF/OVMF_VARS_4M.fd",
        ],
    );
    let o = find_ovmf(&search(vec![user, system])).unwrap();
    assert_eq!(o.code, t.path().join("local/OVMF_CODE.fd"));
}

#[test]
fn descriptors_whose_files_are_missing_fall_through_to_known_paths() {
    let t = tempfile::tempdir().unwrap();
    let d = install(t.path(), "debian", "usr/share/qemu/firmware");
    touch(
        t.path(),
        &["edk2/x64/OVMF_CODE.4m.fd", "edk2/x64/OVMF_VARS.4m.fd"],
    );
    let mut s = search(vec![d]);
    s.known = vec![
        (
            "Fedora".into(),
            t.path().join("edk2/ovmf/OVMF_CODE.fd"),
            t.path().join("edk2/ovmf/OVMF_VARS.fd"),
        ),
        (
            "Arch".into(),
            t.path().join("edk2/x64/OVMF_CODE.4m.fd"),
            t.path().join("edk2/x64/OVMF_VARS.4m.fd"),
        ),
    ];
    let o = find_ovmf(&s).unwrap();
    assert_eq!(o.code, t.path().join("edk2/x64/OVMF_CODE.4m.fd"));
    assert_eq!(o.origin, "known path (Arch)");
}

#[test]
fn nothing_found_lists_every_place_and_reason() {
    let t = tempfile::tempdir().unwrap();
    let d = install(t.path(), "fedora", "usr/share/qemu/firmware");
    let mut s = search(vec![t.path().join("etc/qemu/firmware"), d.clone()]);
    s.known = vec![(
        "Debian/Ubuntu".into(),
        t.path().join("OVMF/OVMF_CODE_4M.fd"),
        t.path().join("OVMF/OVMF_VARS_4M.fd"),
    )];
    let e = find_ovmf(&s).unwrap_err().to_string();
    let e = e.replace(t.path().to_str().unwrap(), "ROOT");
    insta::assert_snapshot!(e);
}
