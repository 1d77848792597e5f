//! Independent readers — xorriso, bsdtar, pycdlib, isoinfo and 7z — read back an image of
//! the corner-case tree: names, bytes, symlink targets and modes must be what was written.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use support::*;

/// The corner-case tree and its image, built once for all readers.
fn fixture() -> &'static (tempfile::TempDir, BTreeMap<String, Node>) {
    static F: OnceLock<(tempfile::TempDir, BTreeMap<String, Node>)> = OnceLock::new();
    F.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        corner_tree(&src);
        mkiso(&src, &t.path().join("corner.iso"), &[]);
        let d = describe(&src);
        (t, d)
    })
}

fn iso() -> std::path::PathBuf {
    fixture().0.path().join("corner.iso")
}

fn assert_same(got: &BTreeMap<String, Node>, want: &BTreeMap<String, Node>, reader: &str) {
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{reader}: missing {missing:?}, unexpected {extra:?}"
    );
    for (k, v) in want {
        assert_eq!(&got[k], v, "{reader}: {k}");
    }
}

#[test]
fn xorriso_extracts_the_tree() {
    need("xorriso");
    let out = tempfile::tempdir().unwrap();
    let dst = out.path().join("x");
    xorriso_extract(&iso(), &dst);
    assert_same(&describe(&dst), &fixture().1, "xorriso");
}

#[test]
fn bsdtar_extracts_the_tree() {
    need("bsdtar");
    let out = tempfile::tempdir().unwrap();
    bsdtar_extract(&iso(), out.path());
    assert_same(&describe(out.path()), &fixture().1, "bsdtar");
}

#[test]
fn pycdlib_reads_rock_ridge() {
    need("python3");
    let script = r#"
import sys, json, hashlib, io, stat, pycdlib
iso = pycdlib.PyCdlib(); iso.open(sys.argv[1])
out = {}
for path, dirs, files in iso.walk(rr_path='/'):
    for n in dirs + files:
        p = (path.rstrip('/') + '/' + n)
        rec = iso.get_record(rr_path=p)
        mode = rec.rock_ridge.get_file_mode()
        rel = p[1:]
        if stat.S_ISLNK(mode):
            out[rel] = ['link', rec.rock_ridge.symlink_path().decode()]
        elif stat.S_ISDIR(mode):
            out[rel] = ['dir', mode & 0o7777]
        else:
            b = io.BytesIO(); iso.get_file_from_iso_fp(b, rr_path=p)
            out[rel] = ['file', mode & 0o7777, hashlib.sha256(b.getvalue()).hexdigest()]
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(iso())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "pycdlib (pip install pycdlib; .ci/run installs it): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let got = v
        .into_iter()
        .map(|(k, x)| {
            let n = match x[0].as_str().unwrap() {
                "link" => Node::Link(x[1].as_str().unwrap().into()),
                "dir" => Node::Dir(x[1].as_u64().unwrap() as u32),
                _ => Node::File(x[1].as_u64().unwrap() as u32, x[2].as_str().unwrap().into()),
            };
            (k, n)
        })
        .collect::<BTreeMap<_, _>>();
    // pycdlib follows CL/PL and hides relocated directories, but lists the relocation
    // directory itself (as it does for mkisofs images).
    let mut got = got;
    assert_eq!(got.remove("rr_moved"), Some(Node::Dir(0o755)));
    assert_same(&got, &fixture().1, "pycdlib");
}

/// Where a path sits in the ISO 9660 hierarchy: a directory that would be on level 9 or
/// deeper (the root is level 1) lives in `rr_moved` (RRIP 4.1.5), and its subtree counts
/// from level 3 again. Also returns the placeholder left at the directory's real place.
fn iso_hierarchy(path: &str, tree: &BTreeMap<String, Node>) -> (String, Option<String>) {
    let comps: Vec<&str> = path.split('/').collect();
    let (mut at, mut level, mut placeholder) = (String::new(), 1, None);
    for (k, c) in comps.iter().enumerate() {
        let is_dir = matches!(tree[&comps[..=k].join("/")], Node::Dir(_));
        let here = if at.is_empty() {
            c.to_string()
        } else {
            format!("{at}/{c}")
        };
        placeholder = None;
        if is_dir && level == 8 {
            placeholder = Some(here);
            at = format!("rr_moved/{c}");
            level = 3;
        } else {
            at = here;
            level += 1;
        }
    }
    (at, placeholder)
}

/// isoinfo does not follow relocations: it lists the ISO 9660 hierarchy with Rock Ridge
/// names, so deep directories appear under `rr_moved` with a placeholder at their place.
#[test]
fn isoinfo_lists_rock_ridge_names_and_reads_files() {
    need("isoinfo");
    let listing = run(Command::new("isoinfo").args(["-R", "-f", "-i"]).arg(iso()));
    let mut got: Vec<String> = listing
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(|l| l[1..].to_string())
        .collect();
    let tree = &fixture().1;
    let mut want = vec!["rr_moved".to_string()];
    for p in tree.keys() {
        let (at, placeholder) = iso_hierarchy(p, tree);
        want.push(at);
        want.extend(placeholder);
    }
    got.sort();
    want.sort();
    assert!(want
        .iter()
        .any(|p| p.starts_with("rr_moved/level7/level8/")));
    assert_eq!(got, want, "isoinfo -R -f");
    for (path, n) in &fixture().1 {
        if let (Node::File(_, digest), true) =
            (n, path.starts_with("size-") || path.contains("café"))
        {
            let o = Command::new("isoinfo")
                .args(["-R", "-i"])
                .arg(iso())
                .args(["-x", &format!("/{path}")])
                .output()
                .unwrap();
            assert_eq!(&sha256_hex(&o.stdout), digest, "isoinfo -x /{path}");
        }
    }
    // Modes as isoinfo shows them.
    let long = run(Command::new("isoinfo").args(["-R", "-l", "-i"]).arg(iso()));
    assert!(
        long.lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("script.sh ")),
        "{long}"
    );
    assert!(long
        .lines()
        .any(|l| l.starts_with("-rw-------") && l.ends_with("secret ")));
}

/// Joliet as 7z reads it: every name Joliet can hold comes back unchanged with its bytes;
/// the others come back mapped, all distinct.
#[test]
fn sevenzip_reads_joliet() {
    need("7z");
    let out = tempfile::tempdir().unwrap();
    run(Command::new("7z")
        .arg("x")
        .arg(format!("-o{}", out.path().display()))
        .arg(iso()));
    let got = describe(out.path());
    let joliet_safe = |p: &str| {
        p.split('/').all(|c| {
            c.chars().count() <= 103
                && c.chars()
                    .all(|ch| (ch as u32) <= 0xFFFF && !"*:;?\\".contains(ch))
        })
    };
    let mut files = 0;
    for (path, n) in &fixture().1 {
        if let Node::File(_, digest) = n {
            files += 1;
            if joliet_safe(path) && path != "makefile" && path != "Makefile" {
                match got.get(path) {
                    Some(Node::File(_, d)) => assert_eq!(d, digest, "7z: {path}"),
                    other => panic!("7z: {path}: {other:?}"),
                }
            }
        }
    }
    // Nothing lost: every file (and symlink, which Joliet shows as an empty file) is there.
    let links = fixture()
        .1
        .values()
        .filter(|n| matches!(n, Node::Link(_)))
        .count();
    let got_files = got.values().filter(|n| matches!(n, Node::File(..))).count();
    assert_eq!(
        got_files,
        files + links + usize::from(got.keys().any(|k| k.starts_with("[BOOT]")))
    );
    assert!(
        Path::new(&out.path().join("L".repeat(103))).exists()
            || got.keys().any(|k| k.starts_with(&"L".repeat(100)))
    );
}

/// Directories relocated twice (a 20-level chain) and two relocated directories with the
/// same name come back in place through the readers that follow `CL`/`PL`/`RE`, and the
/// image says where each went.
#[test]
fn deep_directories_are_relocated_and_read_back() {
    need("xorriso");
    need("bsdtar");
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    let mut chain = src.join("chain");
    for i in 1..=20 {
        chain = chain.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&chain).unwrap();
    std::fs::write(chain.join("bottom"), b"twenty levels down").unwrap();
    for side in ["left", "right"] {
        let d = src.join(side).join("2/3/4/5/6/7/same");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("which"), side).unwrap();
    }
    let iso = t.path().join("deep.iso");
    mkiso(&src, &iso, &[]);
    let want = describe(&src);

    let x = t.path().join("x");
    xorriso_extract(&iso, &x);
    assert_same(&describe(&x), &want, "xorriso");
    let b = t.path().join("b");
    bsdtar_extract(&iso, &b);
    assert_same(&describe(&b), &want, "bsdtar");

    // Each placeholder points at its directory's extent; the moved records are marked.
    let report = inspect_json(&iso);
    let files = report["files"].as_array().unwrap();
    let placeholders: Vec<_> = files.iter().filter(|f| !f["moved_to"].is_null()).collect();
    // chain/…/d7, d13 and d19 (each moved from inside the previous one), left/…/same and
    // right/…/same (one name twice in rr_moved).
    assert_eq!(placeholders.len(), 5, "{placeholders:?}");
    for p in placeholders {
        let target = files
            .iter()
            .find(|f| f["extents"][0][0] == p["moved_to"] && f["relocated"] == true)
            .unwrap_or_else(|| panic!("nothing relocated to {}", p["moved_to"]));
        let name = |v: &serde_json::Value| {
            v["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(name(p), name(target));
        assert!(target["path"].as_str().unwrap().starts_with("/rr_moved/"));
    }
    assert_eq!(
        find(&report["files"], "path", "/rr_moved")["relocated"],
        true
    );
}
