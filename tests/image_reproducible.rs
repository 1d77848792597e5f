//! Reproducibility: the same tree, created twice in different places in a different order
//! with different mtimes, under a different umask, TZ and locale, gives the same bytes; and
//! `SOURCE_DATE_EPOCH` is the only clock. Also: errors leave nothing at the target.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::*;

fn make(root: &Path, reverse: bool, mtime: &str) {
    let mut items: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("d{}/f{i}.txt", i % 5), bytes(i * 97, i as u8)))
        .collect();
    if reverse {
        items.reverse();
    }
    for (p, b) in items {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        run(Command::new("touch").args(["-h", "-d", mtime]).arg(&path));
    }
    for d in 0..5 {
        fs::set_permissions(
            root.join(format!("d{d}")),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
    }
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
}

fn build(src: &Path, out: &Path, env: &[(&str, &str)], umask: &str) {
    let cmd = format!("umask {umask}; exec \"$0\" mkiso -o \"$1\" --volid REPRO --hybrid \"$2\"");
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .arg(env!("CARGO_BIN_EXE_isoproof"))
        .arg(out)
        .arg(src);
    for (k, v) in env {
        c.env(k, v);
    }
    run(&mut c);
}

#[test]
fn same_tree_same_bytes_anywhere() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = sub(a.path(), "one/src");
    let sb = sub(b.path(), "elsewhere/deeper/src");
    make(&sa, false, "2001-02-03 04:05:06");
    make(&sb, true, "2020-12-31 23:59:59");
    let (ia, ib) = (a.path().join("a.iso"), b.path().join("b.iso"));
    build(&sa, &ia, &[("TZ", "UTC"), ("LC_ALL", "C")], "022");
    build(
        &sb,
        &ib,
        &[("TZ", "Pacific/Chatham"), ("LC_ALL", "C.UTF-8")],
        "077",
    );
    assert!(
        fs::read(&ia).unwrap() == fs::read(&ib).unwrap(),
        "the two images differ"
    );
}

#[test]
fn source_date_epoch_is_the_clock() {
    let t = tempfile::tempdir().unwrap();
    let src = sub(t.path(), "src");
    make(&src, false, "2001-02-03 04:05:06");
    let (x, y, z) = (
        t.path().join("x.iso"),
        t.path().join("y.iso"),
        t.path().join("z.iso"),
    );
    build(&src, &x, &[("SOURCE_DATE_EPOCH", "1700000000")], "022");
    build(&src, &y, &[("SOURCE_DATE_EPOCH", "1700000000")], "022");
    build(&src, &z, &[("SOURCE_DATE_EPOCH", "1700000001")], "022");
    let (bx, by, bz) = (
        fs::read(&x).unwrap(),
        fs::read(&y).unwrap(),
        fs::read(&z).unwrap(),
    );
    assert!(bx == by);
    assert!(bx != bz);
    // The PVD creation date is the epoch: 2023-11-14 22:13:20 UTC.
    assert_eq!(&bx[16 * 2048 + 813..16 * 2048 + 829], b"2023111422132000");
}

#[test]
fn errors_leave_no_image_and_no_temporary_file() {
    let t = tempfile::tempdir().unwrap();
    let src = sub(t.path(), "src");
    fs::write(src.join("ok"), "x").unwrap();
    let out = t.path().join("out.iso");
    let fail = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_isoproof"));
        c.args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = fail(
        &[
            "mkiso",
            "-o",
            out.to_str().unwrap(),
            "--volid",
            "bad volume id!",
            src.to_str().unwrap(),
        ],
        &[],
    );
    assert!(e.contains("volume ID"), "{e}");
    let e = fail(
        &["mkiso", "-o", out.to_str().unwrap(), src.to_str().unwrap()],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    );
    assert!(e.contains("SOURCE_DATE_EPOCH"), "{e}");
    let bad = sub(t.path(), "bad");
    run(Command::new("mkfifo").arg(bad.join("fifo")));
    let e = fail(
        &["mkiso", "-o", out.to_str().unwrap(), bad.to_str().unwrap()],
        &[],
    );
    assert!(e.contains("FIFO"), "{e}");
    let e = fail(
        &[
            "mkiso",
            "-o",
            out.to_str().unwrap(),
            t.path().join("missing").to_str().unwrap(),
        ],
        &[],
    );
    assert!(e.contains("missing"), "{e}");
    let leftovers: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "src" && n != "bad")
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}
