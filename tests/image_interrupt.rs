//! Ctrl-C during `isoproof mkiso`: the command stops with status 130, the temporary file
//! beside the target is gone, and an image already at the target is left as it was.

mod support;

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

#[test]
fn ctrl_c_leaves_the_target_as_it_was() {
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
    // Wait until the write has begun (its temporary file exists), then interrupt.
    let start = Instant::now();
    loop {
        let writing = fs::read_dir(&out_dir)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
        if writing {
            break;
        }
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
    run(Command::new("kill").arg("-INT").arg(child.id().to_string()));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    let left: Vec<String> = fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["live.iso"]);
    assert_eq!(fs::read(&target).unwrap(), b"the image from yesterday");
}
