//! Ctrl-C during `isoproof mkiso`: the command stops with status 130, the temporary file
//! beside the target is gone, and an image already at the target is left as it was — after
//! one signal (a clean stop), two quick ones (an immediate exit), or a SIGKILL (the next run
//! beside it removes what was left).

mod support;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A write that takes seconds, started and caught with its temporary file on disk.
struct Writing {
    _dir: tempfile::TempDir,
    child: Child,
    out_dir: PathBuf,
    target: PathBuf,
}

fn start_write() -> Writing {
    let t = tempfile::tempdir().unwrap();
    let src = sub(t.path(), "src");
    // A sparse 8 GiB file: planning is instant, copying takes seconds.
    File::create(src.join("big.img"))
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let out_dir = sub(t.path(), "out");
    let target = out_dir.join("live.iso");
    fs::write(&target, b"the image from yesterday").unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(["mkiso", "-o"])
        .arg(&target)
        .arg(&src)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the write has begun (its temporary file exists).
    let start = Instant::now();
    while temporaries(&out_dir).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "mkiso ended before it could be interrupted"
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the write never began"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    Writing {
        _dir: t,
        child,
        out_dir,
        target,
    }
}

fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".isoproof-tmp"))
        .collect()
}

fn signal(child: &Child, sig: &str) {
    run(Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string()));
}

/// Only the old image is left, unchanged.
fn as_it_was(out_dir: &Path, target: &Path) {
    let left: Vec<String> = fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["live.iso"]);
    assert_eq!(fs::read(target).unwrap(), b"the image from yesterday");
}

#[test]
fn ctrl_c_leaves_the_target_as_it_was() {
    let w = start_write();
    signal(&w.child, "INT");
    let Writing {
        child,
        out_dir,
        target,
        _dir,
    } = w;
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    as_it_was(&out_dir, &target);
}

#[test]
fn two_quick_signals_exit_at_once_and_still_clean_up() {
    let mut w = start_write();
    signal(&w.child, "INT");
    signal(&w.child, "INT");
    let status = w.child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    as_it_was(&w.out_dir, &w.target);
}

#[test]
fn the_next_write_removes_what_a_killed_one_left() {
    let mut w = start_write();
    signal(&w.child, "KILL");
    w.child.wait().unwrap();
    assert_eq!(temporaries(&w.out_dir).len(), 1, "SIGKILL cannot clean up");
    // The next write of that target removes it.
    let small = sub(w.out_dir.parent().unwrap(), "small");
    fs::write(small.join("a"), b"a").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(["mkiso", "-o"])
        .arg(&w.target)
        .arg(&small)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(temporaries(&w.out_dir).is_empty());
}
