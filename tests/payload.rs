//! `isoproof payload fetch|pin` through the real CLI, against Debian's archive (apt's lists
//! and the network, as `.ci/run` sets them up): the project's root is what its lock pins; a
//! small lock fetches, is then up to date, and a fetch that finds other bytes than the lock
//! says fails naming the file and leaves the root as it was; a version the archive does not
//! have is named with the command that re-pins; `pin` takes the archive's current version.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn isoproof(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(args)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// busybox-static as the project's lock pins it, alone in a lock of its own.
fn busybox_lock(dir: &Path) -> (PathBuf, serde_json::Value) {
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo().join("payload/lock.json")).unwrap()).unwrap();
    let busybox = lock["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "busybox-static")
        .unwrap()
        .clone();
    let small = serde_json::json!({
        "about": "busybox alone",
        "architecture": "amd64",
        "modules": [],
        "packages": [busybox],
        "depmod": {},
    });
    let path = dir.join("lock.json");
    std::fs::write(&path, serde_json::to_string_pretty(&small).unwrap()).unwrap();
    (path, small)
}

#[test]
fn the_project_root_is_what_its_lock_pins() {
    let o = isoproof(&[
        "payload",
        "fetch",
        "--lock",
        repo().join("payload/lock.json").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("up to date (70 files checked"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_lock_fetches_then_is_up_to_date_and_other_bytes_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let (lock, mut value) = busybox_lock(d.path());
    let root = d.path().join("root");
    let fetch = |lock: &Path| {
        isoproof(&[
            "payload",
            "fetch",
            "--lock",
            lock.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ])
    };
    let o = fetch(&lock);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("downloading busybox-static "),
        "{}",
        text(&o)
    );
    let busybox = std::fs::read(root.join("bin/busybox")).unwrap();
    let o = fetch(&lock);
    assert!(
        text(&o).contains("up to date (2 files checked"),
        "{}",
        text(&o)
    );

    // A lock whose sha256 for bin/busybox is not the archive's: refused, root untouched.
    value["packages"][0]["files"]["bin/busybox"] = "0".repeat(64).into();
    let wrong = d.path().join("wrong.json");
    std::fs::write(&wrong, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let o = fetch(&wrong);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let msg = text(&o);
    assert!(
        msg.contains("bin/busybox (from busybox-static ")
            && msg.contains(&format!("but the lock says {}", "0".repeat(64))),
        "{msg}"
    );
    assert_eq!(std::fs::read(root.join("bin/busybox")).unwrap(), busybox);
    // No scratch directory is left beside the root.
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".payload-fetch"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_version_the_archive_does_not_have_names_the_pin_command() {
    let d = tempfile::tempdir().unwrap();
    let (_, mut value) = busybox_lock(d.path());
    value["packages"][0]["version"] = "1:0.1-1".into();
    let lock = d.path().join("old.json");
    std::fs::write(&lock, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let o = isoproof(&["payload", "fetch", "--lock", lock.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(8), "{}", text(&o));
    let msg = text(&o);
    assert!(
        msg.contains("busybox-static 1:0.1-1 is not in the archive apt knows"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("`isoproof payload pin --lock {}`", lock.display())),
        "{msg}"
    );
    assert!(msg.contains("exits 5"), "{msg}");
    assert!(!d.path().join("root").exists());
}

#[test]
fn a_lock_that_is_not_one_is_named_with_its_line() {
    let d = tempfile::tempdir().unwrap();
    let lock = d.path().join("lock.json");
    std::fs::write(&lock, "{\n  \"about\": \"x\",\n  \"architecture\": 5\n}\n").unwrap();
    let o = isoproof(&["payload", "fetch", "--lock", lock.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("{}:3:", lock.display())),
        "{}",
        text(&o)
    );
}

/// `pin` takes the version apt would install now and records what it downloaded.
#[test]
fn pin_takes_the_archive_s_current_version() {
    let d = tempfile::tempdir().unwrap();
    let (lock, mut value) = busybox_lock(d.path());
    value["packages"][0]["version"] = "1:0.1-1".into();
    std::fs::write(&lock, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let o = isoproof(&["payload", "pin", "--lock", lock.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let policy = Command::new("apt-cache")
        .args(["policy", "busybox-static"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let candidate = String::from_utf8_lossy(&policy.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate: ").map(str::to_string))
        .unwrap();
    let pinned: serde_json::Value = serde_json::from_slice(&std::fs::read(&lock).unwrap()).unwrap();
    assert_eq!(pinned["packages"][0]["version"], candidate.as_str());
    let busybox = std::fs::read(d.path().join("root/bin/busybox")).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(&busybox)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(pinned["packages"][0]["files"]["bin/busybox"], sha.as_str());
    // And the pinned lock fetches as up to date.
    let o = isoproof(&["payload", "fetch", "--lock", lock.to_str().unwrap()]);
    assert!(text(&o).contains("up to date"), "{}", text(&o));
}
