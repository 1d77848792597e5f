//! Fuzz targets, one per reader, run by `cargo test` on a bounded number of cases (256 each;
//! `FUZZ_CASES=N` for more, as `just fuzz` does):
//!
//! - `iso_reader`: the golden images with bytes changed, mostly where the structures are,
//!   through `inspect` (text and JSON) and `diff` against the original;
//! - `gpt_reader`: the same with the changes in the MBR, the primary GPT and the backup GPT;
//! - `fat_reader`: the golden images' ESPs with bytes changed, through the FAT reader;
//! - `container_readers`: an image holding a gzip cpio initrd, a plain cpio archive and a
//!   squashfs image, with bytes changed inside them, through `snapshot` (the golden record
//!   of any image) and `diff`, which list the files inside;
//! - `scenario_loader`: the scenarios, bad-input fixtures and the conformance corpus with
//!   text changed (YAML and tag tokens put in, lines duplicated, spans cut), through the
//!   loader, the resolver and `explain`.
//!
//! Each may return an error — the input is broken — but never panic; a panic is a finding,
//! which proptest shrinks and records in `tests/fuzz.proptest-regressions`. Time and memory
//! on hostile input are `tests/hostile.rs`'s business, run in a separate process.

use std::path::{Path, PathBuf};

use isoproof::image::{
    format::structure::Structure, read::diff, read::fat, read::inspect, read::snapshot,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config() -> Config {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    Config {
        cases,
        // A finding is kept in tests/fuzz.proptest-regressions and replayed first.
        ..Config::default()
    }
}

/// The golden images: every structure the writer makes, hybrid and not.
fn images() -> Vec<(PathBuf, Vec<u8>)> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(root().join("golden"))
        .expect("golden/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "iso"))
        .map(|p| {
            let b = std::fs::read(&p).expect("a golden image");
            (p, b)
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no golden images to start from");
    v
}

/// A change: at a position (a fraction of `span`, from `base`), one of a few values that
/// make lengths and pointers interesting.
fn change() -> impl Strategy<Value = (f64, u8, u8)> {
    (0.0..1.0f64, 0u8..6, any::<u8>())
}

fn apply(bytes: &mut [u8], base: usize, span: usize, changes: &[(f64, u8, u8)]) {
    let span = span.min(bytes.len().saturating_sub(base));
    if span == 0 {
        return;
    }
    for &(at, kind, v) in changes {
        let i = base + ((at * span as f64) as usize).min(span - 1);
        match kind {
            // A byte anywhere.
            0 | 1 => bytes[i] = v,
            // A little-endian u32 of an extreme value (a length, an LBA, a count).
            2 => {
                let x: u32 =
                    [0, 1, u32::MAX, u32::MAX / 2, 0x800, u32::from(v) << 16][v as usize % 6];
                let end = (i + 4).min(bytes.len());
                bytes[i..end].copy_from_slice(&x.to_le_bytes()[..end - i]);
            }
            // A big-endian one (the other half of ISO 9660's both-endian fields).
            3 => {
                let x: u32 = [0, 1, u32::MAX, 0x10_0000][v as usize % 4];
                let end = (i + 4).min(bytes.len());
                bytes[i..end].copy_from_slice(&x.to_be_bytes()[..end - i]);
            }
            // A bit flipped.
            4 => bytes[i] ^= 1 << (v % 8),
            // A length byte set small (directory record and System Use entry lengths).
            _ => bytes[i] = v % 8,
        }
    }
}

/// Writes the changed image, then reads it the ways users do.
fn read_back(dir: &Path, seed: &Path, bytes: &[u8], cut: Option<f64>) -> Result<(), TestCaseError> {
    let p = dir.join("mutated.iso");
    let len = cut.map_or(bytes.len(), |c| (c * bytes.len() as f64) as usize);
    std::fs::write(&p, &bytes[..len]).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let image = &bytes[..len];
    match inspect::inspect(&p) {
        Ok(r) => {
            let _ = r.to_text();
            let _ = r.to_json();
            holds(&r, image)?;
        }
        Err(e) => names_a_place(&e, image.len() as u64)?,
    }
    if let Ok(d) = diff::diff(seed, &p) {
        let _ = d.to_text();
    }
    if let Ok(d) = diff::diff(&p, seed) {
        let _ = d.to_text();
    }
    if let (Ok(a), Ok(b)) = (snapshot::snapshot(seed), snapshot::snapshot(&p)) {
        let _ = snapshot::compare(&a, &b).lines();
    }
    Ok(())
}

/// What a report read from any bytes must hold: every record decoded re-encodes to the bytes
/// it was read from, and every structure lies inside the image.
fn holds(r: &inspect::Report, image: &[u8]) -> Result<(), TestCaseError> {
    use isoproof::image::format::record::Record;
    use isoproof::image::read::descriptor::VolumeDescriptor;
    for d in &r.descriptors {
        let at = d.sector as usize * 2048;
        let encoded = match &d.vd {
            VolumeDescriptor::Primary(p) => p.encode(),
            VolumeDescriptor::Supplementary(s) => s.encode(),
            VolumeDescriptor::ElTorito(b) => b.encode(),
            VolumeDescriptor::Terminator(t) => t.encode(),
            VolumeDescriptor::Other(h) => h.encode(),
        };
        prop_assert_eq!(
            &image[at..at + encoded.len()],
            &encoded[..],
            "descriptor at sector {} does not re-encode to its bytes",
            d.sector
        );
    }
    if let Some(m) = &r.mbr {
        prop_assert_eq!(&image[..512], &m.encode()[..], "the MBR does not re-encode");
    }
    for o in &r.structures {
        prop_assert!(
            o.start < o.end && o.end <= image.len() as u64,
            "{} claims {}..{} of a {}-byte image",
            o.structure,
            o.start,
            o.end,
            image.len()
        );
    }
    Ok(())
}

/// An error about bytes of the image names a place inside it (a read past the end names
/// where the structure starts, which may be anywhere, and how long the image is).
fn names_a_place(e: &inspect::ReadError, len: u64) -> Result<(), TestCaseError> {
    use inspect::ReadError as E;
    match e {
        E::Record { offset, .. } | E::Invalid { offset, .. } => {
            prop_assert!(
                *offset < len,
                "{e}: offset {offset} outside a {len}-byte image"
            )
        }
        E::PastEnd { size, .. } => prop_assert_eq!(*size, len, "{}", e),
        E::Truncated { cause, .. } => names_a_place(cause, len)?,
        E::NotIso | E::Io { .. } | E::Input(_) => {}
    }
    Ok(())
}

#[test]
fn iso_reader() {
    let seeds = images();
    let dir = tempfile::tempdir().unwrap();
    proptest!(config(), |(
        which in 0..seeds.len(),
        near in proptest::collection::vec(change(), 1..12),
        anywhere in proptest::collection::vec(change(), 0..4),
        cut in proptest::option::weighted(0.1, 0.0..1.0f64),
    )| {
        let (seed, bytes) = &seeds[which];
        let mut b = bytes.clone();
        // Descriptors, path tables and directories sit in the first 64 KiB of these images.
        apply(&mut b, 16 * 2048, 48 << 10, &near);
        let n = b.len();
        apply(&mut b, 0, n, &anywhere);
        read_back(dir.path(), seed, &b, cut)?;
    });
}

#[test]
fn gpt_reader() {
    let seeds: Vec<_> = images()
        .into_iter()
        .filter(|(_, b)| b.len() > 1024 && &b[512..520] == b"EFI PART")
        .collect();
    assert!(!seeds.is_empty(), "no hybrid golden image");
    let dir = tempfile::tempdir().unwrap();
    proptest!(config(), |(
        which in 0..seeds.len(),
        primary in proptest::collection::vec(change(), 0..8),
        backup in proptest::collection::vec(change(), 0..8),
    )| {
        let (seed, bytes) = &seeds[which];
        let mut b = bytes.clone();
        // The MBR, the primary header and entries (LBA 0-33), and the backup at the end.
        apply(&mut b, 0, 34 * 512, &primary);
        let n = b.len();
        apply(&mut b, n - 33 * 512, 33 * 512, &backup);
        read_back(dir.path(), seed, &b, None)?;
    });
}

#[test]
fn fat_reader() {
    let esps: Vec<Vec<u8>> = images()
        .into_iter()
        .filter_map(|(p, b)| {
            let r = inspect::inspect(&p).ok()?;
            let (start, end) = r.range_of(&Structure::EspImage)?;
            Some(b[start as usize..end as usize].to_vec())
        })
        .collect();
    assert!(!esps.is_empty(), "no golden image with an ESP");
    proptest!(config(), |(
        which in 0..esps.len(),
        head in proptest::collection::vec(change(), 0..12),
        anywhere in proptest::collection::vec(change(), 0..6),
    )| {
        let mut b = esps[which].clone();
        // The boot sector, FATs and root directory lead the file system.
        apply(&mut b, 0, 16 << 10, &head);
        let n = b.len();
        apply(&mut b, 0, n, &anywhere);
        if let Ok(files) = fat::files(&b[..]) {
            for f in files {
                // A file read back is as long as its directory entry says, and its runs lie
                // inside the file system.
                for &(at, n) in &f.runs {
                    prop_assert!(at + n <= b.len() as u64, "{}: run {at}+{n} outside", f.path);
                }
                if let Ok(bytes) = f.bytes(&b[..]) {
                    prop_assert_eq!(bytes.len() as u64, f.size, "{}", f.path);
                }
            }
        }
        let _ = fat::read_all(&b);
    });
}

/// An image with a gzip cpio initrd, a plain cpio archive and a squashfs image, and the
/// byte ranges of those three files.
fn container_image(dir: &Path) -> (PathBuf, Vec<u8>, Vec<(usize, usize)>) {
    use std::process::Command;
    let tree = dir.join("tree");
    let rd = dir.join("rd");
    let store = dir.join("store");
    for d in [&tree, &rd, &store] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(rd.join("init"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::create_dir_all(rd.join("lib/modules")).unwrap();
    std::fs::write(rd.join("lib/modules/a.ko"), vec![7u8; 3000]).unwrap();
    std::os::unix::fs::symlink("init", rd.join("sbin-init")).unwrap();
    std::fs::write(store.join("README"), "store\n").unwrap();
    std::fs::write(store.join("blob"), vec![9u8; 20000]).unwrap();
    let sh = |cmd: String| {
        let o = Command::new("sh").arg("-c").arg(&cmd).output().unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    sh(format!(
        "cd {} && find . | LC_ALL=C sort | cpio -o -H newc --quiet > {t}/plain.cpio && gzip -n < {t}/plain.cpio > {t}/initrd",
        rd.display(),
        t = tree.display()
    ));
    sh(format!(
        "mksquashfs {} {}/store.squashfs -quiet -no-progress -all-root",
        store.display(),
        tree.display()
    ));
    let iso = dir.join("containers.iso");
    let o = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(["mkiso", "--volid", "C", "-o"])
        .arg(&iso)
        .arg(&tree)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = inspect::inspect(&iso).unwrap();
    let ranges = r
        .files
        .iter()
        .filter(|f| !f.is_dir)
        .map(|f| {
            let (sector, len) = f.extents[0];
            (sector as usize * 2048, len as usize)
        })
        .collect();
    let bytes = std::fs::read(&iso).unwrap();
    (iso, bytes, ranges)
}

#[test]
fn container_readers() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, bytes, ranges) = container_image(dir.path());
    assert_eq!(ranges.len(), 3);
    let listed = snapshot::snapshot(&seed).unwrap();
    for inner in [
        "/initrd!/init",
        "/plain.cpio!/sbin-init",
        "/store.squashfs!/README",
    ] {
        assert!(
            listed.files.contains_key(inner),
            "{inner}: {:?}",
            listed.files.keys()
        );
    }
    proptest!(config(), |(
        which in 0..3usize,
        head in proptest::collection::vec(change(), 1..10),
        anywhere in proptest::collection::vec(change(), 0..6),
    )| {
        let (start, len) = ranges[which];
        let mut b = bytes.clone();
        // Headers (superblock, tables, cpio headers, the gzip header) lead each file.
        apply(&mut b, start, len.min(512), &head);
        apply(&mut b, start, len, &anywhere);
        read_back(dir.path(), &seed, &b, None)?;
    });
}

/// Every scenario text there is: the project's scenarios and fixtures, and the conformance
/// corpus. Each with the directory its imports resolve in.
fn scenarios() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let dirs = [
        root().join("scenarios"),
        root().join("scenarios/modules"),
        root().join("tests/bad-input"),
        root().join("tests/explain"),
        root().join("tests/error-kinds"),
        root().join("tests/conformance"),
        root().join("tests/conformance/nixpkgs/merge"),
    ];
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            if let Ok(t) = std::fs::read_to_string(&f) {
                out.push((d.clone(), t));
            }
        }
    }
    assert!(out.len() > 10, "too few scenarios to start from");
    out
}

/// Pieces of scenario syntax to put into texts.
const TOKENS: &[&str] = &[
    "!mkForce ",
    "!mkDefault ",
    "!mkOverride [60, ",
    "!mkOrder [500, ",
    "!mkIf [true, ",
    "!mkMerge [",
    "!mkBefore ",
    "!mkAfter ",
    "!config ",
    "!format \"${",
    "}\"",
    "&a ",
    "*a",
    ": ",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "\n  ",
    "\n      ",
    "\"",
    "'",
    "~",
    "null",
    "true",
    "0x7fffffffffffffff",
    "-1",
    "1e309",
    "type: ",
    "listOf (",
    "attrsOf ",
    "submodule",
    "either str int",
    "oneOf [",
    "enum [",
    "ints.between 1 0",
    "nullOr ",
    "default: ",
    "options:",
    "config:",
    "imports: [",
    "disabledModules: [",
    "readOnly: true",
    "a.b.c",
    "\"a.b\"",
    "..",
    "#",
    "---",
    "? ",
    "!!str ",
    "%YAML 1.2\n",
    "\t",
    "é",
    "\u{FEFF}",
];

#[derive(Clone, Debug)]
enum Edit {
    Insert(f64, usize),
    Cut(f64, f64),
    DuplicateLine(f64),
    Byte(f64, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (0.0..1.0f64, 0..TOKENS.len()).prop_map(|(a, t)| Edit::Insert(a, t)),
        2 => (0.0..1.0f64, 0.0..0.05f64).prop_map(|(a, n)| Edit::Cut(a, n)),
        1 => (0.0..1.0f64).prop_map(Edit::DuplicateLine),
        1 => (0.0..1.0f64, any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
    ]
}

fn edited(text: &str, edits: &[Edit]) -> String {
    let mut b = text.as_bytes().to_vec();
    let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
    for e in edits {
        let len = b.len();
        match e {
            Edit::Insert(a, t) => {
                let i = at(*a, len);
                b.splice(i..i, TOKENS[*t].bytes());
            }
            Edit::Cut(a, n) => {
                let i = at(*a, len);
                let j = (i + at(*n, len)).min(len);
                b.drain(i..j);
            }
            Edit::DuplicateLine(a) => {
                let i = at(*a, len);
                let start = b[..i]
                    .iter()
                    .rposition(|&c| c == b'\n')
                    .map_or(0, |p| p + 1);
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(len, |p| i + p + 1);
                let line = b[start..end].to_vec();
                b.splice(start..start, line);
            }
            Edit::Byte(a, v) => {
                if len > 0 {
                    b[at(*a, len - 1)] = *v;
                }
            }
        }
    }
    // The loader reads UTF-8; bytes that are not are a load error tested elsewhere.
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn scenario_loader() {
    let seeds = scenarios();
    proptest!(config(), |(
        which in 0..seeds.len(),
        edits in proptest::collection::vec(edit(), 1..8),
    )| {
        let (dir, text) = &seeds[which];
        let t = edited(text, &edits);
        if let Ok(s) = isoproof::scenario::load_str(&t, "fuzz.yaml", dir) {
            let r = isoproof::resolve::resolve(&s);
            // Explain the first option the config has, or one that does not exist.
            let first = r
                .config
                .as_ref()
                .and_then(|c| c.to_json().as_object().and_then(|o| o.keys().next().cloned()))
                .unwrap_or_else(|| "a.b".into());
            let _ = isoproof::resolve::explain(&s, &first);
        }
    });
}
