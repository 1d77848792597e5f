//! The golden-image suite through the real CLI: every shipped scenario matches its manifest;
//! builds do not depend on the environment; the config read back from the image is what
//! `resolve` says; a changed input is reported as such and a changed image as a regression,
//! both with the structural diff against the blessed image; `diff` reports by structure;
//! inputs are confined to the scenario's directory.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cli(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn scenarios() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".nix"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_scenario_matches_its_manifest() {
    let o = cli(&["golden", "check"], &repo());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.ends_with(&format!(
        "{} match, 0 differ, 0 failed to build\n",
        scenarios().len()
    )));
}

/// Copies the scenarios tree, creating entries in reverse order with shuffled mtimes.
fn copy_tree(from: &Path, to: &Path, seed: u64) {
    fs::create_dir_all(to).unwrap();
    let mut items: Vec<_> = fs::read_dir(from).unwrap().map(|e| e.unwrap()).collect();
    items.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
    for (i, e) in items.iter().enumerate() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&src, &dst, seed + i as u64);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
            continue;
        } else {
            fs::copy(&src, &dst).unwrap();
        }
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(1_000_000 * (seed + i as u64 * 7919));
        fs::File::options()
            .write(true)
            .open(&dst)
            .map(|f| f.set_modified(t))
            .ok();
    }
}

/// An output's sha256 as its golden record states it: an image's own, or for a netboot
/// directory that of its `sha256sum`-style listing (`HEX  ./NAME`, by name).
fn output_sha256(out: &Path) -> String {
    if !out.is_dir() {
        return sha256_hex(&fs::read(out).unwrap());
    }
    let mut names: Vec<_> = fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let listing: String = names
        .iter()
        .map(|n| {
            format!(
                "{}  ./{}\n",
                sha256_hex(&fs::read(out.join(n)).unwrap()),
                n.to_string_lossy()
            )
        })
        .collect();
    sha256_hex(listing.as_bytes())
}

#[test]
fn builds_do_not_depend_on_the_environment() {
    need("sh");
    let mut images: Vec<Vec<(String, String)>> = Vec::new();
    for (k, (tz, lang, umask, epoch)) in [
        ("UTC", "C", "022", "1"),
        ("Pacific/Kiritimati", "de_DE.UTF-8", "077", "1700000000"),
    ]
    .into_iter()
    .enumerate()
    {
        let t = tempfile::tempdir().unwrap();
        let tree = t.path().join(format!("checkout-{k}/deeper"));
        copy_tree(
            &repo().join("scenarios"),
            &tree.join("scenarios"),
            k as u64 + 1,
        );
        // The live scenarios read the payload root the checkout fetched.
        std::os::unix::fs::symlink(repo().join("payload"), tree.join("payload")).unwrap();
        let mut got = Vec::new();
        for s in scenarios() {
            let out = t.path().join(format!("{s}.iso"));
            let o = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "umask {umask} && exec \"$0\" build -o \"$1\" \"$2\""
                ))
                .arg(env!("CARGO_BIN_EXE_isoproof"))
                .arg(&out)
                .arg(format!("scenarios/{s}"))
                .current_dir(&tree)
                .env("TZ", tz)
                .env("LC_ALL", lang)
                .env("SOURCE_DATE_EPOCH", epoch)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{s}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            got.push((s, output_sha256(&out)));
        }
        images.push(got);
    }
    assert_eq!(images[0], images[1]);
    // And both are the blessed images.
    for (s, h) in &images[0] {
        let m: serde_json::Value = serde_json::from_slice(
            &fs::read(
                repo()
                    .join("golden")
                    .join(std::path::Path::new(s).with_extension("json")),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(m["output"]["sha256"], h.as_str(), "{s}");
    }
}

#[test]
fn the_config_in_the_image_is_what_resolve_says() {
    need("bsdtar");
    let t = tempfile::tempdir().unwrap();
    for s in scenarios() {
        let iso = t.path().join(format!("{s}.iso"));
        let scenario = repo().join("scenarios").join(&s);
        isoproof(
            &[
                "build",
                "-o",
                iso.to_str().unwrap(),
                scenario.to_str().unwrap(),
            ],
            &[],
        );
        // A netboot directory's files are in its initrd (whose first archive bsdtar reads).
        let held = if iso.is_dir() {
            iso.join("initrd")
        } else {
            iso.clone()
        };
        let inside = Command::new("bsdtar")
            .args(["-xOf"])
            .arg(&held)
            .arg("isoproof/config.json")
            .output()
            .unwrap();
        assert!(inside.status.success());
        let resolved = isoproof(
            &["resolve", "--format", "json", scenario.to_str().unwrap()],
            &[],
        );
        assert_eq!(
            String::from_utf8(inside.stdout).unwrap(),
            String::from_utf8(resolved.stdout).unwrap(),
            "{s}"
        );
        let hostname = Command::new("bsdtar")
            .arg("-xOf")
            .arg(&held)
            .arg("etc/hostname")
            .output()
            .unwrap();
        let cfg: serde_json::Value = serde_json::from_str(
            &String::from_utf8(isoproof(&["resolve", scenario.to_str().unwrap()], &[]).stdout)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(hostname.stdout).unwrap(),
            format!("{}\n", cfg["networking"]["hostName"].as_str().unwrap())
        );
    }
}

/// The image plan of every shipped scenario (`build --plan`).
#[test]
fn image_plan() {
    insta::glob!("../scenarios", "*.{yaml,nix}", |path| {
        let o = isoproof(&["build", "--plan", path.to_str().unwrap()], &[]);
        insta::assert_snapshot!(String::from_utf8(o.stdout).unwrap());
    });
}

/// A scenario in a temporary copy of the scenarios tree, with one module edited.
fn edited(edit: &str, with: &str) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("scenarios"), &t.path().join("scenarios"), 1);
    let m = t.path().join("scenarios/modules/workstation.yaml");
    let text = fs::read_to_string(&m).unwrap();
    assert!(text.contains(edit));
    fs::write(&m, text.replace(edit, with)).unwrap();
    t
}

/// `golden check --golden GOLDEN scenarios/installer-on-host.yaml` run in `dir`: its report,
/// and it must exit with `code` (5: inputs changed, 4: a regression).
fn check_installer_on_host(golden: &Path, dir: &Path, code: i32) -> String {
    let o = cli(
        &[
            "golden",
            "check",
            "--golden",
            golden.to_str().unwrap(),
            "scenarios/installer-on-host.yaml",
        ],
        dir,
    );
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(code), "{text}");
    text
}

#[test]
fn a_changed_input_is_not_a_regression() {
    let t = edited("hostName: workstation", "hostName: laptop");
    let text = check_installer_on_host(&repo().join("golden"), t.path(), 5);
    assert!(
        text.starts_with("input changed scenarios/installer-on-host.yaml"),
        "{text}"
    );
    assert!(
        text.contains("input modules/workstation.yaml: sha256 "),
        "{text}"
    );
    assert!(!text.contains("REGRESSION"), "{text}");
    // What the change does to the image, against the blessed one, for the review.
    assert!(
        text.contains("diff ") && text.contains("installer-on-host.iso -> rebuilt image:\n"),
        "{text}"
    );
    assert!(
        text.contains("      file /etc/hostname\n        size: 12 -> 7\n"),
        "{text}"
    );
}

/// A golden directory whose manifest has the real scenario's inputs but whose image (and
/// output hashes) come from a build with another host name: to `check`, exactly what a change
/// in the merge or the writer looks like.
fn golden_of_another_build() -> (tempfile::TempDir, PathBuf) {
    let t = edited("hostName: workstation", "hostName: laptop");
    let golden = t.path().join("golden");
    let s = "scenarios/installer-on-host.yaml";
    let o = cli(
        &["golden", "bless", "--golden", golden.to_str().unwrap(), s],
        t.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = golden.join("installer-on-host.json");
    let mut edited: serde_json::Value = serde_json::from_slice(&fs::read(&m).unwrap()).unwrap();
    let real: serde_json::Value =
        serde_json::from_slice(&fs::read(repo().join("golden/installer-on-host.json")).unwrap())
            .unwrap();
    edited["inputs"] = real["inputs"].clone();
    fs::write(&m, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    (t, golden)
}

#[test]
fn a_regression_is_reported_with_the_structural_diff() {
    let (_t, golden) = golden_of_another_build();
    let check = || check_installer_on_host(&golden, &repo(), 4);
    let text = check();
    assert!(
        text.starts_with("REGRESSION    scenarios/installer-on-host.yaml\n"),
        "{text}"
    );
    assert!(
        text.contains("      file /etc/hostname\n        size: 7 -> 12\n"),
        "{text}"
    );
    assert!(
        text.contains("      MBR\n        disk_signature: "),
        "{text}"
    );
    assert!(!text.contains("    structure "), "{text}");

    // A blessed image its manifest does not describe is named, not diffed against.
    let image = golden.join("installer-on-host.iso");
    fs::write(&image, b"not the image").unwrap();
    let text = check();
    assert!(
        text.contains("is not the image its manifest describes"),
        "{text}"
    );
    // Without a blessed image, the manifest's lines are all there is, and it says so.
    fs::remove_file(&image).unwrap();
    let text = check();
    assert!(text.contains("no blessed image "), "{text}");
    assert!(
        text.contains("file /etc/hostname: 7 bytes sha256 "),
        "{text}"
    );
}

#[test]
fn diff_reports_a_changed_image_by_structure() {
    let t = edited("hostName: workstation", "hostName: laptop");
    let a = t.path().join("a.iso");
    let b = t.path().join("b.iso");
    let s = "scenarios/installer-on-host.yaml";
    isoproof(
        &[
            "build",
            "-o",
            a.to_str().unwrap(),
            repo().join(s).to_str().unwrap(),
        ],
        &[],
    );
    isoproof(
        &[
            "build",
            "-o",
            b.to_str().unwrap(),
            t.path().join(s).to_str().unwrap(),
        ],
        &[],
    );
    let o = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("diff")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "exit 3: the images differ");
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("file /etc/hostname\n  size: 12 -> 7\n"),
        "{text}"
    );
    insta::assert_snapshot!("diff-hostname-changed", text);
    let same = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("diff")
        .arg(&a)
        .arg(&a)
        .output()
        .unwrap();
    assert_eq!(same.status.code(), Some(0));
    assert_eq!(String::from_utf8(same.stdout).unwrap(), "identical\n");
}

fn write_scenario(dir: &Path, contents_source: &str) -> PathBuf {
    let modules = repo().join("scenarios/modules/installation-cd-minimal.yaml");
    let p = dir.join("s.yaml");
    fs::write(
        &p,
        format!(
            "name: s\nmodules:\n  - imports: [{}]\n  - config:\n      isoImage.contents: [{{source: {contents_source:?}, target: /x}}]\n",
            modules.display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn inputs_are_confined_to_the_scenario_directory() {
    let t = tempfile::tempdir().unwrap();
    let dir = sub(t.path(), "scenario");
    fs::write(t.path().join("secret"), "outside").unwrap();
    std::os::unix::fs::symlink("../secret", dir.join("sneaky")).unwrap();
    for (source, want) in [
        (
            "../secret",
            "uses `..`, which would leave the scenario directory",
        ),
        (
            "sneaky",
            "is a symlink leading out of the scenario directory",
        ),
        ("missing", "No such file"),
    ] {
        let s = write_scenario(&dir, source);
        let o = cli(&["build", "--plan", s.to_str().unwrap()], t.path());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{source}: {err}");
        assert!(
            err.contains("isoImage.contents[0]") && err.contains(want),
            "{source}: {err}"
        );
        // The definition to fix, with its line and column.
        assert!(
            err.contains("isoImage.contents is defined at s.yaml:5:26"),
            "{source}: {err}"
        );
    }
    // Named explicitly (absolute), a path outside is allowed.
    let s = write_scenario(&dir, t.path().join("secret").to_str().unwrap());
    let o = cli(&["build", "--plan", s.to_str().unwrap()], t.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A file over 4 GiB, made sparse at test time, goes into a scenario's image as a
/// multi-extent file.
#[test]
fn a_scenario_with_a_file_over_4_gib() {
    let t = tempfile::tempdir().unwrap();
    let dir = sub(t.path(), "scenario");
    let f = fs::File::create(dir.join("huge.img")).unwrap();
    f.set_len((4 << 30) + 1).unwrap();
    let s = write_scenario(&dir, "huge.img");
    let iso = t.path().join("huge.iso");
    isoproof(
        &["build", "-o", iso.to_str().unwrap(), s.to_str().unwrap()],
        &[],
    );
    let r = inspect_json(&iso);
    let huge = find(&r["files"], "path", "/x");
    assert_eq!(huge["size"].as_u64().unwrap(), (4 << 30) + 1);
    assert_eq!(huge["extents"].as_array().unwrap().len(), 2);
}

/// A checkout at another path, deeper or shallower, passes `golden check` with the same
/// manifests: every path in them is relative.
#[test]
fn manifests_pass_from_another_checkout_path() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("another/place/isoproof");
    copy_tree(&repo().join("scenarios"), &root.join("scenarios"), 3);
    copy_tree(&repo().join("golden"), &root.join("golden"), 5);
    // The live scenarios read the payload root the checkout fetched.
    std::os::unix::fs::symlink(repo().join("payload"), root.join("payload")).unwrap();
    let o = cli(&["golden", "check"], &root);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A golden directory of another name is named in the command a report suggests.
    let o = cli(
        &[
            "golden",
            "check",
            "--golden",
            "elsewhere",
            "scenarios/installer-minimal.yaml",
        ],
        &root,
    );
    assert_eq!(o.status.code(), Some(6));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(
            "run `isoproof golden bless --golden elsewhere scenarios/installer-minimal.yaml`"
        ),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// A record blessed from one working directory checks from any other: its paths are
/// relative to the scenario's folder, not to where the command ran.
#[test]
fn records_do_not_depend_on_the_working_directory() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("project");
    copy_tree(&repo().join("scenarios"), &root.join("scenarios"), 2);
    let s = "scenarios/installer-minimal.yaml";
    let o = cli(&["golden", "bless", "--golden", "records", s], &root);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ok = |o: std::process::Output| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(text.starts_with("ok "), "{text}");
    };
    // From the scenarios folder, with the record folder given relative to it.
    ok(cli(
        &[
            "golden",
            "check",
            "--golden",
            "../records",
            "installer-minimal.yaml",
        ],
        &root.join("scenarios"),
    ));
    // From somewhere else entirely, with absolute paths.
    ok(cli(
        &[
            "golden",
            "check",
            "--golden",
            root.join("records").to_str().unwrap(),
            root.join(s).to_str().unwrap(),
        ],
        t.path(),
    ));
}

/// `golden check` with no scenario named and no `scenarios/` folder is bad input (exit 2),
/// and says what to do.
#[test]
fn no_scenarios_folder_is_bad_input() {
    let t = tempfile::tempdir().unwrap();
    let o = cli(&["golden", "check"], t.path());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("scenarios: No such file or directory") && err.contains("name the scenarios"),
        "{err}"
    );
}

/// A live image's record is its manifest alone (no 23 MB image in git): a changed payload
/// input is reported as such (exit 5) with the structures and files of the image that
/// changed, from the two manifests, and no complaint about a missing blessed image.
#[test]
fn a_live_scenario_with_a_changed_input_shows_what_changed_in_the_image() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("checkout");
    copy_tree(&repo().join("scenarios"), &root.join("scenarios"), 4);
    copy_tree(&repo().join("golden"), &root.join("golden"), 5);
    // The payload root as fetched, with one byte of busybox changed (as a re-pin would).
    copy_tree(&payload(""), &root.join("payload/root"), 6);
    let busybox = root.join("payload/root/bin/busybox");
    let mut b = fs::read(&busybox).unwrap();
    let last = b.len() - 1;
    b[last] ^= 0xFF;
    fs::write(&busybox, b).unwrap();
    let o = cli(&["golden", "check", "scenarios/live-minimal.yaml"], &root);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(5), "{text}");
    assert!(
        text.starts_with("input changed scenarios/live-minimal.yaml"),
        "{text}"
    );
    assert!(
        text.contains("    input ../payload/root/bin/busybox: sha256 "),
        "{text}"
    );
    assert!(text.contains("    output NIXOS_MINIMAL.iso: "), "{text}");
    assert!(text.contains("    file /boot/initrd: "), "{text}");
    assert!(!text.contains("no blessed image"), "{text}");
}
