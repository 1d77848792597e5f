//! Images built by other tools (xorriso, genisoimage), made inside the tests: `inspect` shows
//! the partition and boot-entry facts xorriso's own reports show, layout by layout (NixOS's
//! hybrid with GPT and an appended ESP, a plain isohybrid MBR, an Apple partition map,
//! several El Torito entries, mkisofs Rock Ridge, zisofs); `golden bless --image` records
//! such an image and `golden check --image` explains a change, down to the changed line.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::*;

fn isohdpfx() -> String {
    payload("usr/lib/ISOLINUX/isohdpfx.bin")
        .display()
        .to_string()
}

/// The mkisofs arguments of an ISOLINUX boot with a boot info table and `mbr` as the
/// isohybrid MBR, after `extra` (Rock Ridge, Joliet...) and `-V volid`.
fn isolinux_args<'a>(volid: &'a str, mbr: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = extra.to_vec();
    v.extend([
        "-V",
        volid,
        "-b",
        "isolinux/isolinux.bin",
        "-c",
        "isolinux/boot.cat",
        "-no-emul-boot",
        "-boot-load-size",
        "4",
        "-boot-info-table",
        "-isohybrid-mbr",
        mbr,
    ]);
    v
}

/// A small live-image tree: ISOLINUX, a config, a kernel-sized blob, a gzip cpio initrd
/// and a squashfs store.
fn tree(dir: &Path, append: &str) -> PathBuf {
    tree_with(dir, append, "hello")
}

/// [`tree`] with `word` in the initrd's `/init` and the store's README.
fn tree_with(dir: &Path, append: &str, word: &str) -> PathBuf {
    let t = sub(dir, "tree");
    fs::create_dir_all(t.join("isolinux")).unwrap();
    fs::create_dir_all(t.join("boot")).unwrap();
    fs::create_dir_all(t.join("etc")).unwrap();
    fs::copy(
        payload("usr/lib/ISOLINUX/isolinux.bin"),
        t.join("isolinux/isolinux.bin"),
    )
    .unwrap();
    fs::write(
        t.join("isolinux/isolinux.cfg"),
        format!("SERIAL 0 115200\nDEFAULT live\nLABEL live\n  KERNEL /boot/bzImage\n  APPEND initrd=/boot/initrd {append}\n"),
    )
    .unwrap();
    fs::write(t.join("boot/bzImage"), bytes(300_000, 7)).unwrap();
    fs::write(t.join("etc/hostname"), "foreign\n").unwrap();
    let rd = sub(dir, "initrd");
    fs::write(rd.join("init"), format!("#!/bin/sh\necho {word}\n")).unwrap();
    run(Command::new("sh").current_dir(&rd).arg("-c").arg(format!(
        "find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -n > {}",
        t.join("boot/initrd").display()
    )));
    let store = sub(dir, "store");
    fs::write(store.join("README"), format!("store file of {word}\n")).unwrap();
    run(Command::new("mksquashfs")
        .arg(&store)
        .arg(t.join("nix-store.squashfs"))
        .args([
            "-quiet",
            "-no-progress",
            "-all-root",
            "-mkfs-time",
            "0",
            "-all-time",
            "0",
        ]));
    t
}

/// A FAT ESP image with a BOOTX64.EFI.
fn esp(dir: &Path) -> PathBuf {
    let img = dir.join("efiboot.img");
    let _ = fs::remove_file(&img);
    run(Command::new("mkfs.vfat")
        .args(["-C", "-n", "EFIBOOT", "-i", "12345678"])
        .arg(&img)
        .arg("2048"));
    run(Command::new("mmd")
        .arg("-i")
        .arg(&img)
        .args(["::/EFI", "::/EFI/BOOT"]));
    let app = dir.join("BOOTX64.EFI");
    fs::write(&app, bytes(5000, 3)).unwrap();
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&img)
        .arg(&app)
        .arg("::/EFI/BOOT/"));
    img
}

/// `xorriso -as mkisofs ARGS -o OUT TREE` with a fixed clock.
fn xorriso(out: &Path, tree: &Path, args: &[&str]) {
    let _ = fs::remove_file(out);
    run(Command::new("xorriso")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["-as", "mkisofs"])
        .args(args)
        .arg("-o")
        .arg(out)
        .arg(tree));
}

/// NixOS's layout (iso-image.nix): ISOLINUX with a boot info table, an appended ESP as the
/// second El Torito entry, isohdpfx and a GPT behind a non-protective MBR.
fn nixlike(dir: &Path, append: &str) -> PathBuf {
    nixlike_with(dir, append, "hello")
}

fn nixlike_with(dir: &Path, append: &str, word: &str) -> PathBuf {
    need("xorriso");
    need("mksquashfs");
    need("mkfs.vfat");
    need("cpio");
    let t = tree_with(dir, append, word);
    let e = esp(dir);
    let out = dir.join("nixos.iso");
    let e = e.display().to_string();
    let h = isohdpfx();
    xorriso(
        &out,
        &t,
        &[
            "-iso-level",
            "3",
            "-volid",
            "NIXOS_LIKE",
            "-full-iso9660-filenames",
            "-joliet",
            "-rational-rock",
            "-eltorito-boot",
            "isolinux/isolinux.bin",
            "-eltorito-catalog",
            "isolinux/boot.cat",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-boot-info-table",
            "-eltorito-alt-boot",
            "-e",
            "--interval:appended_partition_2:all::",
            "-no-emul-boot",
            "-isohybrid-gpt-basdat",
            "-isohybrid-mbr",
            &h,
            "-append_partition",
            "2",
            "0xef",
            &e,
        ],
    );
    out
}

fn report(iso: &Path, what: &str) -> Vec<Vec<String>> {
    let out = run(Command::new("xorriso")
        .arg("-indev")
        .arg(iso)
        .arg(what)
        .arg("plain"));
    out.lines()
        .filter_map(|l| l.split_once(" : ").map(|(k, v)| (k.trim().to_string(), v)))
        .map(|(k, v)| {
            let mut row = vec![k];
            row.extend(v.split_whitespace().map(str::to_string));
            row
        })
        .collect()
}

/// Rows of one kind (`El Torito boot img`), without the kind.
fn rows(r: &[Vec<String>], kind: &str) -> Vec<Vec<String>> {
    r.iter()
        .filter(|row| row[0] == kind)
        .map(|row| row[1..].to_vec())
        .collect()
}

/// `inspect`'s boot entries as xorriso's rows: N, platform, bootable, emulation, load
/// segment, system type, load size, LBA; and the entries with a boot info table.
fn boot_entries(j: &Value) -> (Vec<Vec<String>>, Vec<String>) {
    let mut rows = Vec::new();
    let mut tables = Vec::new();
    for (i, e) in j["boot_catalog"].as_array().unwrap().iter().enumerate() {
        let n = (i + 1).to_string();
        rows.push(vec![
            n.clone(),
            e["platform"].as_str().unwrap().to_uppercase(),
            if e["bootable"].as_bool().unwrap() {
                "y"
            } else {
                "n"
            }
            .into(),
            e["emulation_name"].as_str().unwrap().into(),
            format!("0x{:04x}", e["load_segment"].as_u64().unwrap()),
            format!("0x{:02x}", e["system_type"].as_u64().unwrap()),
            e["load_sectors_512"].to_string(),
            e["sector"].to_string(),
        ]);
        if e["boot_info_table"].as_bool().unwrap() {
            tables.push(n);
        }
    }
    (rows, tables)
}

/// Compares `inspect` with both xorriso reports: every boot entry, boot info tables, every
/// MBR partition, every GPT partition's start and size, every APM partition.
fn same_as_xorriso(iso: &Path) -> Value {
    let j = inspect_json(iso);
    let et = report(iso, "-report_el_torito");
    let (entries, tables) = boot_entries(&j);
    assert_eq!(
        entries,
        rows(&et, "El Torito boot img"),
        "boot entries of {}",
        iso.display()
    );
    let theirs: Vec<String> = rows(&et, "El Torito img opts")
        .into_iter()
        .filter(|r| r.iter().any(|o| o == "boot-info-table"))
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(tables, theirs, "boot info tables");
    let sa = report(iso, "-report_system_area");
    let mbr: Vec<Vec<String>> = j["mbr"]["partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .enumerate()
                .map(|(i, p)| {
                    vec![
                        (i + 1).to_string(),
                        p["status"].as_str().unwrap().into(),
                        p["type"].as_str().unwrap().into(),
                        p["first_lba"].to_string(),
                        p["sectors"].to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(mbr, rows(&sa, "MBR partition"), "MBR partitions");
    let gpt: Vec<Vec<String>> = j["gpt"]["partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let (f, l) = (
                        p["first_lba"].as_u64().unwrap(),
                        p["last_lba"].as_u64().unwrap(),
                    );
                    vec![
                        p["index"].to_string(),
                        f.to_string(),
                        (l + 1 - f).to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(gpt, rows(&sa, "GPT start and size"), "GPT partitions");
    let apm: Vec<Vec<String>> = j["apm"]["partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["type"] != "Apple_partition_map")
                .enumerate()
                .map(|(i, p)| {
                    vec![
                        (i + 1).to_string(),
                        p["start"].to_string(),
                        p["blocks"].to_string(),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(apm, rows(&sa, "APM start and size"), "APM partitions");
    j
}

#[test]
fn nixos_hybrid_layout_reads_as_xorriso_reports_it() {
    let d = tempfile::tempdir().unwrap();
    let iso = nixlike(d.path(), "console=ttyS0,115200");
    let j = same_as_xorriso(&iso);
    // MBR partition 1 is type 0x00 from LBA 0, the GPT lies behind it, the ESP is appended.
    assert_eq!(j["mbr"]["partitions"][0]["type"], "0x00");
    assert_eq!(j["mbr"]["partitions"][1]["type"], "0xef");
    assert_eq!(j["gpt"]["valid"], true);
    let text = run(Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("inspect")
        .arg(&iso));
    assert!(
        text.contains("   N  Section Pltf B  Emul   Ld_seg Hdpt Ldsiz        LBA  Boot info table"),
        "{text}"
    );
    assert!(
        text.contains("   N  Status  Type       Start      Blocks"),
        "{text}"
    );
}

#[test]
fn plain_isohybrid_mbr_and_offsets_read_as_xorriso_reports_them() {
    need("xorriso");
    let d = tempfile::tempdir().unwrap();
    let t = tree(d.path(), "quiet");
    let h = isohdpfx();
    for extra in [&[][..], &["-partition_offset", "16"][..]] {
        let iso = d.path().join("plain.iso");
        let mut args = isolinux_args("PLAIN", &h, &["-R"]);
        args.extend_from_slice(extra);
        xorriso(&iso, &t, &args);
        let j = same_as_xorriso(&iso);
        let ty = j["mbr"]["partitions"][0]["type"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(ty == "0x00" || ty == "0x17", "{ty}");
    }
}

#[test]
fn apple_partition_maps_are_named() {
    need("xorriso");
    let d = tempfile::tempdir().unwrap();
    let t = tree(d.path(), "quiet");
    let iso = d.path().join("apm.iso");
    let h = isohdpfx();
    let mut args = isolinux_args("APM", &h, &["-R", "-J"]);
    args.push("-isohybrid-apm-hfsplus");
    xorriso(&iso, &t, &args);
    let j = same_as_xorriso(&iso);
    assert_eq!(j["apm"]["block_size"], 2048);
    let sa = report(&iso, "-report_system_area");
    let names: Vec<String> = rows(&sa, "APM partition name")
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    let ours: Vec<String> = j["apm"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] != "Apple_partition_map")
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, names);
    let text = run(Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("inspect")
        .arg(&iso));
    assert!(
        text.contains("Apple partition map (block size 2048)"),
        "{text}"
    );
}

#[test]
fn several_el_torito_entries_with_their_segments_and_sizes() {
    need("xorriso");
    let d = tempfile::tempdir().unwrap();
    let t = tree(d.path(), "quiet");
    fs::write(t.join("isolinux/second.bin"), bytes(4096, 9)).unwrap();
    let e = esp(d.path());
    fs::copy(&e, t.join("efiboot.img")).unwrap();
    let iso = d.path().join("multi.iso");
    // genisoimage: xorriso's mkisofs emulation has no -boot-load-seg.
    need("genisoimage");
    run(Command::new("genisoimage")
        .args(["-quiet", "-R", "-V", "MULTI", "-c", "isolinux/boot.cat"])
        .args([
            "-b",
            "isolinux/isolinux.bin",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-boot-info-table",
        ])
        .args([
            "-eltorito-alt-boot",
            "-b",
            "isolinux/second.bin",
            "-no-emul-boot",
            "-boot-load-seg",
            "0x1000",
            "-boot-load-size",
            "8",
        ])
        .args([
            "-eltorito-alt-boot",
            "-e",
            "efiboot.img",
            "-no-emul-boot",
            "-o",
        ])
        .arg(&iso)
        .arg(&t));
    let j = same_as_xorriso(&iso);
    assert_eq!(j["boot_catalog"].as_array().unwrap().len(), 3);
    assert_eq!(j["boot_catalog"][1]["load_segment"], 0x1000);
}

#[test]
fn mkisofs_rock_ridge_and_its_extension_text() {
    need("genisoimage");
    let d = tempfile::tempdir().unwrap();
    let t = tree(d.path(), "quiet");
    std::os::unix::fs::symlink("etc/hostname", t.join("link")).unwrap();
    let iso = d.path().join("mkisofs.iso");
    run(Command::new("genisoimage")
        .args(["-quiet", "-R", "-J", "-V", "MKISOFS", "-o"])
        .arg(&iso)
        .arg(&t));
    let j = inspect_json(&iso);
    let ext = j["extensions"].as_array().unwrap();
    assert!(
        ext.iter()
            .any(|e| e.as_str().unwrap().starts_with("RRIP_1991A")),
        "{ext:?}"
    );
    // Every file bsdtar lists is found under its Rock Ridge name, with its mode and link.
    let listed = run(Command::new("bsdtar").arg("-tf").arg(&iso));
    for p in listed
        .lines()
        .map(|l| l.trim_end_matches('/'))
        .filter(|l| !l.is_empty() && *l != ".")
    {
        let f = find(
            &j["files"],
            "path",
            &format!("/{}", p.trim_start_matches("./")),
        );
        assert_ne!(f["mode"], "0", "{p}");
    }
    assert_eq!(
        find(&j["files"], "path", "/link")["symlink"],
        "etc/hostname"
    );
}

#[test]
fn zisofs_files_are_named_and_sized() {
    need("xorriso");
    let d = tempfile::tempdir().unwrap();
    let t = tree(d.path(), "quiet");
    fs::write(t.join("zeros.bin"), vec![0u8; 100_000]).unwrap();
    let iso = d.path().join("z.iso");
    run(Command::new("xorriso")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .arg("-outdev")
        .arg(&iso)
        .arg("-map")
        .arg(&t)
        .args(["/", "-set_filter_r", "--zisofs", "/", "--"]));
    let j = inspect_json(&iso);
    let f = find(&j["files"], "path", "/zeros.bin");
    assert_eq!(f["zisofs"]["algorithm"], "pz");
    assert_eq!(f["zisofs"]["size"], 100_000);
    assert!(f["size"].as_u64().unwrap() < 1000, "{f}");
}

fn isoproof_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn a_foreign_image_is_pinned_and_a_change_explained() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    let iso = nixlike(&sub(d.path(), "a"), "console=ttyS0,115200");
    let (code, out) = isoproof_in(
        &a,
        &[
            "golden",
            "bless",
            "--image",
            "nixos.iso",
            "--name",
            "nixos",
            "--golden",
            "g",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let record: Value = serde_json::from_slice(&fs::read(a.join("g/nixos.json")).unwrap()).unwrap();
    let files = record["files"].as_object().unwrap();
    for key in [
        "/isolinux/isolinux.cfg",
        "ESP:/EFI/BOOT/BOOTX64.EFI",
        "/boot/initrd!/init",
        "/nix-store.squashfs!/README",
    ] {
        assert!(
            files.contains_key(key),
            "{key} not in {:?}",
            files.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        record["structures"]["MBR"]["fields"]["partitions[1].os_type"].is_string(),
        "{}",
        record["structures"]["MBR"]
    );
    // The record is the image's, wherever the image and the record are.
    let (code, out) = isoproof_in(
        d.path(),
        &[
            "golden",
            "check",
            "--image",
            iso.to_str().unwrap(),
            "--name",
            "nixos",
            "--golden",
            "a/g",
        ],
    );
    assert_eq!(code, 0, "{out}");
    // Another kernel parameter: the check fails and shows the changed line, the store and
    // initrd unchanged.
    let b = sub(d.path(), "b");
    let changed = nixlike(&b, "console=ttyS0,115200 quiet");
    let (code, out) = isoproof_in(
        &a,
        &[
            "golden",
            "check",
            "--image",
            changed.to_str().unwrap(),
            "--name",
            "nixos",
            "--golden",
            "g",
        ],
    );
    assert_eq!(code, 4, "{out}");
    for want in [
        "CHANGED",
        "same structure, other bytes",
        "  /isolinux/isolinux.cfg",
        "-  APPEND initrd=/boot/initrd console=ttyS0,115200",
        "+  APPEND initrd=/boot/initrd console=ttyS0,115200 quiet",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    assert!(!out.contains("/nix-store.squashfs!/README"), "{out}");
    // Without a record: the command that makes one, with this golden directory.
    let (code, out) = isoproof_in(
        &a,
        &[
            "golden",
            "check",
            "--image",
            "nixos.iso",
            "--name",
            "other",
            "--golden",
            "g",
        ],
    );
    assert_eq!(code, 6, "{out}");
    assert!(
        out.contains("golden bless --golden g --image nixos.iso --name other"),
        "{out}"
    );
    // A bad name and a scenario's manifest are refused.
    let (code, out) = isoproof_in(
        &a,
        &[
            "golden",
            "bless",
            "--image",
            "nixos.iso",
            "--name",
            "../x",
            "--golden",
            "g",
        ],
    );
    assert_eq!(code, 2, "{out}");
    fs::write(a.join("g/scen.json"), "{\"scenario\": \"s.yaml\"}").unwrap();
    let (code, out) = isoproof_in(
        &a,
        &[
            "golden",
            "bless",
            "--image",
            "nixos.iso",
            "--name",
            "scen",
            "--golden",
            "g",
        ],
    );
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("a scenario's manifest, not an image record"),
        "{out}"
    );
}

#[test]
fn diff_compares_files_inside_initrds_and_squashfs_images() {
    let d = tempfile::tempdir().unwrap();
    let a = nixlike_with(&sub(d.path(), "a"), "quiet", "hello");
    let b = nixlike_with(&sub(d.path(), "b"), "quiet", "world");
    let (code, out) = isoproof_in(
        d.path(),
        &["diff", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    assert_eq!(code, 3, "{out}");
    for want in [
        "file /boot/initrd!/init\n",
        "    -echo hello\n    +echo world\n",
        "file /nix-store.squashfs!/README\n",
        "    -store file of hello\n    +store file of world\n",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
}
