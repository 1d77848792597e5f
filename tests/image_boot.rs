//! Boot structures checked by their own tools: El Torito by `xorriso -report_el_torito`, the
//! ESP by `fsck.fat -n` and mtools (and our FAT reader by mkfs.fat and mtools), the hybrid MBR/GPT by `sgdisk -v` and `fdisk -l`; and
//! `isoproof inspect` agreeing with them.

mod support;

use std::fs;
use std::process::Command;

use support::*;

struct Hybrid {
    _t: tempfile::TempDir,
    iso: std::path::PathBuf,
    efi: Vec<u8>,
}

fn hybrid() -> Hybrid {
    let t = tempfile::tempdir().unwrap();
    let src = sub(t.path(), "src");
    fs::write(src.join("hello.txt"), "hello\n").unwrap();
    let bios = bytes(2048, 1);
    let efi = bytes(70_000, 2);
    fs::write(t.path().join("boot.bin"), &bios).unwrap();
    fs::write(t.path().join("bootx64.efi"), &efi).unwrap();
    let iso = t.path().join("hybrid.iso");
    let bb = t.path().join("boot.bin");
    let eb = t.path().join("bootx64.efi");
    mkiso(
        &src,
        &iso,
        &[
            "--bios-boot",
            bb.to_str().unwrap(),
            "--efi-boot",
            eb.to_str().unwrap(),
            "--hybrid",
        ],
    );
    Hybrid { _t: t, iso, efi }
}

#[test]
fn xorriso_reports_both_boot_entries() {
    need("xorriso");
    let h = hybrid();
    let r = run(Command::new("xorriso").arg("-indev").arg(&h.iso).args([
        "-report_el_torito",
        "plain",
        "-report_system_area",
        "plain",
    ]));
    assert!(
        r.lines()
            .any(|l| l.starts_with("El Torito boot img :   1  BIOS  y   none")),
        "{r}"
    );
    assert!(
        r.lines()
            .any(|l| l.starts_with("El Torito boot img :   2  UEFI  y   none")),
        "{r}"
    );
    assert!(
        r.contains("El Torito img opts :   1  boot-info-table"),
        "{r}"
    );
    assert!(r.contains("MBR protective-msdos-label"), "{r}");
}

#[test]
fn sgdisk_and_fdisk_accept_the_gpt() {
    need("sgdisk");
    need("fdisk");
    let h = hybrid();
    let v = run(Command::new("sgdisk").arg("-v").arg(&h.iso));
    assert!(v.contains("No problems found"), "{v}");
    let l = run(Command::new("fdisk").arg("-l").arg(&h.iso));
    assert!(l.contains("Disklabel type: gpt"), "{l}");
    assert!(l.contains("EFI System"), "{l}");
    assert!(l.contains("Microsoft basic data"), "{l}");
}

#[test]
fn the_esp_passes_fsck_and_holds_the_loader() {
    need("fsck.fat");
    need("mcopy");
    let h = hybrid();
    let r = inspect_json(&h.iso);
    let uefi = find(&r["boot_catalog"], "platform", "uefi");
    let sector = uefi["sector"].as_u64().unwrap();
    let count = uefi["load_sectors_512"].as_u64().unwrap();
    let img = fs::read(&h.iso).unwrap();
    let esp = &img[(sector * 2048) as usize..(sector * 2048 + count * 512) as usize];
    let dir = tempfile::tempdir().unwrap();
    let espf = dir.path().join("esp.img");
    fs::write(&espf, esp).unwrap();
    let f = run(Command::new("fsck.fat").arg("-n").arg(&espf));
    assert!(
        !f.to_lowercase().contains("differ") && !f.contains("Free cluster summary wrong"),
        "{f}"
    );
    let got = dir.path().join("got.efi");
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&espf)
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .arg(&got));
    assert_eq!(fs::read(&got).unwrap(), h.efi);
    // The GPT's ESP partition is the same bytes as the El Torito UEFI image.
    let esp_part = find(&r["gpt"]["partitions"], "name", "EFI system partition");
    assert_eq!(esp_part["first_lba"].as_u64().unwrap(), sector * 4);
    assert!(r["gpt"]["valid"].as_bool().unwrap());
}

/// The FAT reader `diff` uses on ESPs reads a FAT made by mkfs.fat and filled by mtools, long
/// names and a file spanning many clusters included; both FAT12 and FAT16.
#[test]
fn the_fat_reader_reads_what_mkfs_fat_and_mtools_make() {
    need("mkfs.fat");
    need("mcopy");
    need("mmd");
    for (fat, kib) in [("12", "1440"), ("16", "20000")] {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("esp.img");
        run(Command::new("mkfs.fat")
            .args(["-F", fat, "-C"])
            .arg(&img)
            .arg(kib));
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let files = [
            ("EFI/BOOT/BOOTX64.EFI", big),
            ("EFI/BOOT/grub.cfg", b"set timeout=0\n".to_vec()),
            ("a rather long file name.json", b"{}".to_vec()),
        ];
        run(Command::new("mmd")
            .arg("-i")
            .arg(&img)
            .args(["::/EFI", "::/EFI/BOOT"]));
        for (path, bytes) in &files {
            let src = dir.path().join("src");
            fs::write(&src, bytes).unwrap();
            run(Command::new("mcopy")
                .arg("-i")
                .arg(&img)
                .arg(&src)
                .arg(format!("::/{path}")));
        }
        let got = isoproof::image::read::fat::read_all(&fs::read(&img).unwrap()).unwrap();
        let mut want: Vec<(String, Vec<u8>)> = files
            .into_iter()
            .map(|(p, b)| (format!("/{p}"), b))
            .collect();
        want.sort();
        // Names, sizes and digests: a failure should not print 200,000 bytes.
        let digest = |v: &[(String, Vec<u8>)]| -> Vec<(String, usize, String)> {
            v.iter()
                .map(|(p, b)| (p.clone(), b.len(), sha256_hex(b)))
                .collect()
        };
        assert_eq!(digest(&got), digest(&want), "FAT{fat}");
    }
}

#[test]
fn boot_info_table_is_patched() {
    let h = hybrid();
    let r = inspect_json(&h.iso);
    let bios = find(&r["boot_catalog"], "platform", "bios");
    let s = bios["sector"].as_u64().unwrap() as usize;
    let img = fs::read(&h.iso).unwrap();
    let b = &img[s * 2048..s * 2048 + 2048];
    let le = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    assert_eq!(le(8), 16, "bi_pvd");
    assert_eq!(le(12) as usize, s, "bi_file");
    assert_eq!(le(16), 2048, "bi_length");
    let sum = b[64..].chunks(4).fold(0u32, |a, w| {
        a.wrapping_add(u32::from_le_bytes(w.try_into().unwrap()))
    });
    assert_eq!(le(20), sum, "bi_csum");
}
