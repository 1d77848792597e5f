//! Shared helpers of the image tests: building source trees, running the real CLI and the
//! external readers, and describing trees so two of them can be compared.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// What a reader must reproduce of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A file: mode bits and content digest.
    File(u32, String),
    /// A directory and its mode bits.
    Dir(u32),
    /// A symlink and its target.
    Link(String),
}

/// Fails (never skips) when an oracle tool is missing: `.ci/run` installs them all.
pub fn need(tool: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "the oracle `{tool}` is not installed (.ci/run installs it); this test fails rather than passing silently");
}

/// A part of the live payload root that `isoproof payload fetch` makes at `payload/root` from
/// `payload/lock.json` (the test command fetches it first); a missing one fails with the
/// command that makes it.
pub fn payload(part: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("payload/root");
    let p = root.join(part);
    assert!(
        p.exists(),
        "{}: no such file; the payload root is made by `isoproof payload fetch` (`just payload`)",
        p.display()
    );
    p
}

/// Describes a tree: relative path → node.
pub fn describe(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let md = fs::symlink_metadata(&p).unwrap();
        if md.file_type().is_symlink() {
            out.insert(
                rel,
                Node::Link(fs::read_link(&p).unwrap().to_string_lossy().into_owned()),
            );
        } else if md.is_dir() {
            out.insert(rel, Node::Dir(md.permissions().mode() & 0o7777));
            walk(root, &p, out);
        } else {
            let digest = sha256_hex(&fs::read(&p).unwrap());
            out.insert(rel, Node::File(md.permissions().mode() & 0o7777, digest));
        }
    }
}

/// The sha256 of bytes, as lowercase hex.
pub fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Deterministic filler bytes.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 31) as u8
                ^ seed
        })
        .collect()
}

fn file(dir: &Path, name: &str, data: &[u8], mode: u32) {
    let p = dir.join(name);
    fs::write(&p, data).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

/// The corner-case tree of the ISO writer issue.
pub fn corner_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    for (i, n) in [0usize, 1, 2047, 2048, 2049].iter().enumerate() {
        file(root, &format!("size-{n}"), &bytes(*n, i as u8), 0o644);
    }
    file(root, "big-24MiB.bin", &bytes(24 << 20, 7), 0o644);
    file(root, &"L".repeat(200), b"two hundred", 0o644);
    file(root, "café.txt", "crème".as_bytes(), 0o644);
    file(root, "日本語のファイル名.txt", b"nihongo", 0o644);
    file(root, "emoji-\u{1F600}.txt", b"outside the BMP", 0o644);
    // Collide after 8.3 / primary mapping and after Joliet mapping (case, forbidden chars).
    file(root, "Makefile", b"upper", 0o644);
    file(root, "makefile", b"lower", 0o644);
    file(root, "a?b.txt", b"question", 0o644);
    file(root, "a_b.txt", b"underscore", 0o644);
    file(root, "a*b.txt", b"star", 0o644);
    file(root, "semi;colon;1", b"semicolons", 0o644);
    file(root, "with spaces in name.txt", b"spaces", 0o644);
    file(root, "script.sh", b"#!/bin/sh\n", 0o755);
    file(root, "secret", b"private", 0o600);
    fs::create_dir(root.join("empty-dir")).unwrap();
    let mut deep = root.join("deep");
    for i in 1..=12 {
        deep = deep.join(format!("level{i}"));
    }
    fs::create_dir_all(&deep).unwrap();
    file(&deep, "bottom.txt", b"twelve levels down", 0o644);
    let many = root.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..3000 {
        file(
            &many,
            &format!("entry-{i:04}.dat"),
            format!("{i}").as_bytes(),
            0o644,
        );
    }
    let links = root.join("links");
    fs::create_dir(&links).unwrap();
    symlink("../size-1", links.join("relative")).unwrap();
    symlink("/etc/hostname", links.join("absolute")).unwrap();
    symlink("does/not/exist", links.join("dangling")).unwrap();
    symlink(
        format!("{}/{}", "x".repeat(150), "y".repeat(150)),
        links.join("long-target"),
    )
    .unwrap();
}

/// Runs `isoproof` with arguments; panics with its stderr when it fails.
pub fn isoproof(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isoproof"));
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "isoproof {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Makes an image of `dir` at `iso` with Rock Ridge and Joliet.
pub fn mkiso(dir: &Path, iso: &Path, extra: &[&str]) {
    let mut args = vec!["mkiso", "-o", iso.to_str().unwrap(), "--volid", "TEST"];
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    isoproof(&args, &[]);
}

/// Extracts an image with xorriso into `dst` (created by xorriso).
pub fn xorriso_extract(iso: &Path, dst: &Path) {
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", "/"])
        .arg(dst));
}

/// Extracts an image with bsdtar (libarchive) into `dst`, creating it.
pub fn bsdtar_extract(iso: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    run(Command::new("bsdtar")
        .arg("-xpf")
        .arg(iso)
        .arg("-C")
        .arg(dst));
}

/// `isoproof inspect --format json ISO`, parsed.
pub fn inspect_json(iso: &Path) -> serde_json::Value {
    let out = isoproof(&["inspect", "--format", "json", iso.to_str().unwrap()], &[]);
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The element of a JSON array whose `key` is `value`.
pub fn find<'a>(list: &'a serde_json::Value, key: &str, value: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no element with {key} = {value:?} in {list}"))
}

/// Runs a command, panicking with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A fresh directory under `base`.
pub fn sub(base: &Path, name: &str) -> PathBuf {
    let p = base.join(name);
    fs::create_dir_all(&p).unwrap();
    p
}
