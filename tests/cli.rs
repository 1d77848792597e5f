//! The command line's contract: each outcome exits with its own documented code, a closed
//! pipe ends output quietly, and any other failure to write standard output is an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn isoproof(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_isoproof"));
    c.args(args).current_dir(root());
    c
}

/// Runs and returns (exit code, stdout, stderr).
fn run(c: &mut Command) -> (Option<i32>, String, String) {
    let o = c.output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn resolve_exits_0_1_or_2() {
    let d = tempfile::tempdir().unwrap();
    let ok = write(
        d.path(),
        "ok.yaml",
        "modules:\n  - options: {x: {type: int}}\n  - config: {x: 1}\n",
    );
    let conflict = write(
        d.path(),
        "c.yaml",
        "modules:\n  - options: {x: {type: int}}\n  - config: {x: 1}\n  - config: {x: 2}\n",
    );
    let broken = write(d.path(), "b.yaml", "modules: [\n");
    assert_eq!(
        run(&mut isoproof(&["resolve", ok.to_str().unwrap()])).0,
        Some(0)
    );
    let (code, out, _) = run(&mut isoproof(&["resolve", conflict.to_str().unwrap()]));
    assert_eq!(code, Some(1));
    assert!(out.contains("\"kind\": \"conflict\""), "{out}");
    let (code, out, err) = run(&mut isoproof(&["resolve", broken.to_str().unwrap()]));
    assert_eq!(code, Some(2), "{err}");
    assert!(out.contains("\"kind\": \"parse\""), "{out}");
    // A wrong command line is bad input too.
    assert_eq!(
        run(&mut isoproof(&["resolve", "--format", "xml", "x"])).0,
        Some(2)
    );
}

#[test]
fn a_full_standard_output_is_an_error() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (code, _, err) =
        run(isoproof(&["resolve", "scenarios/installer-minimal.yaml"]).stdout(full));
    assert_eq!(code, Some(9), "{err}");
    assert!(err.contains("error: writing to standard output"), "{err}");
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let mut child = isoproof(&["resolve", "scenarios/writer-corners.yaml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the command writes (it resolves first).
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
}

#[test]
fn an_unwritable_image_target_is_an_output_error() {
    let (code, _, err) = run(&mut isoproof(&[
        "build",
        "-o",
        "/nonexistent-dir/x.iso",
        "scenarios/installer-minimal.yaml",
    ]));
    assert_eq!(code, Some(9), "{err}");
    assert!(err.contains("/nonexistent-dir"), "{err}");
}

#[test]
fn a_config_the_image_cannot_be_is_bad_input_at_its_option() {
    let d = tempfile::tempdir().unwrap();
    let base = root().join("scenarios/modules/installation-cd-minimal.yaml");
    let s = write(
        d.path(),
        "s.yaml",
        &format!(
            "modules:\n  - imports: [{}]\n  - config:\n      isoImage.isoName: !mkForce ../escape.iso\n",
            base.display()
        ),
    );
    let (code, _, err) = run(&mut isoproof(&["build", "--plan", s.to_str().unwrap()]));
    assert_eq!(code, Some(2), "{err}");
    // The old name (renamed in NixOS 25.05) leads to the new option, priority and all.
    assert!(
        err.contains("image.fileName: \"../escape.iso\" is not a file name"),
        "{err}"
    );
    assert!(
        err.contains("image.fileName is defined at s.yaml:4:25"),
        "{err}"
    );
}

/// NixOS 25.05's renamed image options: the old name still sets the new one, with Nix's
/// warning at build time.
#[test]
fn renamed_image_options_keep_working_with_a_warning() {
    let d = tempfile::tempdir().unwrap();
    let base = root().join("scenarios/modules/installation-cd-minimal.yaml");
    let s = write(
        d.path(),
        "s.yaml",
        &format!(
            "modules:
  - imports: [{}]
  - config:
      isoImage.isoName: custom.iso
",
            base.display()
        ),
    );
    let (code, out, err) = run(&mut isoproof(&["build", "--plan", s.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("output        custom.iso"), "{out}");
    assert!(
        err.contains("warning: The option `isoImage.isoName' defined in `s.yaml#modules[1]' has been renamed to `image.fileName'."),
        "{err}"
    );
}

#[test]
fn golden_outcomes_have_their_own_codes() {
    let d = tempfile::tempdir().unwrap();
    let golden = d.path().join("golden");
    let check = || {
        run(&mut isoproof(&[
            "golden",
            "check",
            "--golden",
            golden.to_str().unwrap(),
            "scenarios/netboot-root-override.yaml",
        ]))
    };
    let (code, out, err) = check();
    assert_eq!(code, Some(6), "{out}{err}");
    assert!(out.starts_with("NO MANIFEST"), "{out}");
    // A manifest that does not read as one is bad input, not "no manifest".
    std::fs::create_dir(&golden).unwrap();
    std::fs::write(golden.join("netboot-root-override.json"), "{").unwrap();
    let (code, _, err) = check();
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a golden manifest"), "{err}");
}

#[test]
fn diff_exits_0_when_identical_and_2_on_a_non_image() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.iso");
    let (code, _, err) = run(&mut isoproof(&[
        "build",
        "-o",
        a.to_str().unwrap(),
        "scenarios/installer-on-host.yaml",
    ]));
    assert_eq!(code, Some(0), "{err}");
    let (code, out, _) = run(&mut isoproof(&[
        "diff",
        a.to_str().unwrap(),
        a.to_str().unwrap(),
    ]));
    assert_eq!((code, out.as_str()), (Some(0), "identical\n"));
    let junk = write(d.path(), "junk.iso", "not an image");
    let (code, _, err) = run(&mut isoproof(&[
        "diff",
        a.to_str().unwrap(),
        junk.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("junk.iso"), "{err}");
}

#[test]
fn a_missing_qemu_is_an_environment_error() {
    let (code, _, err) = run(
        isoproof(&["boot", "golden/installer-minimal.iso", "--accel=tcg"])
            .env("ISOPROOF_QEMU", "/nonexistent/qemu"),
    );
    assert_eq!(code, Some(8), "{err}");
    assert!(err.contains("/nonexistent/qemu: no such QEMU"), "{err}");
}

/// An error in one element of an `attrsOf`/`listOf` of submodules does not hide the others:
/// every element's error is reported, in Nix's order (names sorted, list order).
#[test]
fn every_element_of_a_submodule_collection_reports_its_error() {
    let d = tempfile::tempdir().unwrap();
    let s = write(
        d.path(),
        "fs.yaml",
        r#"modules:
  - options:
      fileSystems:
        type: {attrsOf: {submodule: {options: {device: {type: str}, fsType: {type: str, default: auto}}}}}
        default: {}
      l:
        type: {listOf: {submodule: {options: {a: {type: int}}}}}
        default: []
  - config:
      fileSystems."/home": {device: /dev/sda2, fstype: ext4}
      fileSystems."/boot": {device: /dev/sda1}
      fileSystems."/nix": {device: 7}
      l: [{a: 1, b: 2}, {a: x}, 5]
  - config:
      fileSystems."/boot": {device: /dev/sdb1}
"#,
    );
    let (code, out, _) = run(isoproof(&["resolve", "--format", "json"]).arg(&s));
    assert_eq!(code, Some(1), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let got: Vec<(String, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["option"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let fs: Vec<&(String, String)> = got
        .iter()
        .filter(|(_, o)| o.starts_with("fileSystems"))
        .collect();
    assert_eq!(
        fs,
        [
            &(
                "conflict".to_string(),
                r#"fileSystems."/boot".device"#.to_string()
            ),
            &(
                "undeclared".to_string(),
                r#"fileSystems."/home".fstype"#.to_string()
            ),
            &(
                "type".to_string(),
                r#"fileSystems."/nix".device"#.to_string()
            ),
        ]
    );
    let l: Vec<&(String, String)> = got.iter().filter(|(_, o)| o.starts_with('l')).collect();
    assert_eq!(
        l,
        [
            &(
                "undeclared".to_string(),
                r#"l."[definition 1-entry 1]".b"#.to_string()
            ),
            &(
                "type".to_string(),
                r#"l."[definition 1-entry 2]".a"#.to_string()
            ),
            &(
                "type".to_string(),
                r#"l."[definition 1-entry 3]""#.to_string()
            ),
        ]
    );
}

/// NixOS's `assertions` fail a build with every failed message and where it was defined;
/// `warnings` are shown and the build goes on. The image options module asserts the volume
/// ID's length as iso-image.nix does.
#[test]
fn failed_assertions_stop_the_build_and_warnings_are_shown() {
    let d = tempfile::tempdir().unwrap();
    let modules = root().join("scenarios/modules/installation-cd-minimal.yaml");
    let s = write(
        d.path(),
        "long.yaml",
        &format!(
            "modules:\n  - imports: [{}]\n  - config:\n      isoImage.volumeID: NIXOS_A_VOLUME_ID_LONGER_THAN_32_BYTES\n      assertions:\n        - {{assertion: !call [equal, !config networking.hostName, nixos], message: the host must be called nixos}}\n        - {{assertion: true, message: never shown}}\n",
            modules.display()
        ),
    );
    let out = d.path().join("x.iso");
    let (code, _, err) = run(isoproof(&["build", "-o"]).arg(&out).arg(&s));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("error: Failed assertions:\n- "), "{err}");
    assert!(
        err.contains("- isoImage.volumeID NIXOS_A_VOLUME_ID_LONGER_THAN_32_BYTES is 38 characters. That is 6 characters longer than the limit of 32.\n  (assertion defined at "),
        "{err}"
    );
    assert!(
        err.contains("- the host must be called nixos\n  (assertion defined at "),
        "{err}"
    );
    assert!(err.contains("long.yaml:6:11)"), "{err}");
    assert!(!err.contains("never shown"), "{err}");
    assert!(!out.exists());
    let ok = write(
        d.path(),
        "warn.yaml",
        &format!(
            "modules:\n  - imports: [{}]\n  - config:\n      warnings: [\"this image is for tests only\"]\n",
            modules.display()
        ),
    );
    let (code, _, err) = run(isoproof(&["build", "-o"]).arg(&out).arg(&ok));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: this image is for tests only\n"),
        "{err}"
    );
}

/// `!call` runs the pure functions by their Nix names; a wrong name or argument count is a
/// parse error at the call, a wrong argument type an error naming the function.
#[test]
fn calls_of_pure_functions() {
    let d = tempfile::tempdir().unwrap();
    let s = write(
        d.path(),
        "call.yaml",
        "modules:\n  - options:\n      w: {type: str, default: NIXOS_MINIMAL}\n      n: {type: int}\n      s: {type: str}\n      l: {type: listOf str}\n  - config:\n      n: !call [stringLength, !config w]\n      s: !call [concatStringsSep, \",\", !call [sort, [b, a, c, a]]]\n      l: !call [unique, [b, a, b, !config w]]\n",
    );
    let (code, out, err) = run(isoproof(&["resolve", "--format", "json"]).arg(&s));
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["n"], 13);
    assert_eq!(v["s"], "a,a,b,c");
    assert_eq!(v["l"], serde_json::json!(["b", "a", "NIXOS_MINIMAL"]));
    for (text, want) in [
        ("!call [strlen, x]", "no function `strlen`"),
        (
            "!call [stringLength]",
            "`stringLength` takes 1 argument, found 0",
        ),
    ] {
        let bad = write(
            d.path(),
            "bad.yaml",
            &format!("modules:\n  - options: {{n: {{type: int}}}}\n  - config: {{n: {text}}}\n"),
        );
        let (code, _, err) = run(isoproof(&["resolve", "--format", "text"]).arg(&bad));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    }
    let bad = write(
        d.path(),
        "bad.yaml",
        "modules:\n  - options: {n: {type: int}}\n  - config: {n: !call [stringLength, 5]}\n",
    );
    let (code, _, err) = run(isoproof(&["resolve", "--format", "text"]).arg(&bad));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("`stringLength` expects a string, got an integer"),
        "{err}"
    );
}

/// `explain` and the errors a new user meets: a path that does not exist gets the nearest
/// option and a non-zero exit; a list element is explained; an mkIf shows the option its
/// condition reads; a computed value shows its expression; a mount point with a dot written
/// unquoted gets a hint about quoting; a missing import gets the nearest file name; a
/// scenario imported as a module says so.
#[test]
fn explain_and_errors_a_user_can_act_on() {
    let s = "scenarios/installer-on-host.yaml";
    let (code, _, err) = run(&mut isoproof(&["explain", s, "boot.kernelParam"]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("did you mean `boot.kernelParams`?"), "{err}");
    let (code, out, _) = run(&mut isoproof(&["explain", s, "boot.kernelParams.1"]));
    assert_eq!(code, Some(0));
    assert!(out.ends_with("value: \"loglevel=4\"\n"), "{out}");
    let (_, out, _) = run(&mut isoproof(&["explain", s, "boot.kernelParams"]));
    assert!(
        out.contains("mkIf condition: true (!config services.openssh.enable)"),
        "{out}"
    );
    let (_, out, _) = run(&mut isoproof(&["explain", s, "image.fileName"]));
    assert!(
        out.contains("computed by: !format \"${image.baseName}.${image.extension}\""),
        "{out}"
    );

    let d = tempfile::tempdir().unwrap();
    // An option whose value is an error: the story is told, and the exit is 1 (resolve
    // errors), as `resolve` of the same scenario exits.
    let bad = write(
        d.path(),
        "bad.yaml",
        "modules:\n  - options: {a: {type: int}}\n  - config: {a: not a number}\n",
    );
    let (code, out, _) = run(isoproof(&["explain"]).arg(&bad).arg("a"));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("value: error\n  error[type]:"), "{out}");
    let options = root().join("scenarios/modules/nixos-options.yaml");
    let dot = write(
        d.path(),
        "dot.yaml",
        &format!("modules:\n  - imports: [{}]\n  - config:\n      fileSystems./mnt/data.old: {{device: /dev/sdc1}}\n", options.display()),
    );
    let (code, _, err) = run(isoproof(&["resolve", "--format", "text"]).arg(&dot));
    assert_eq!(code, Some(1));
    assert!(
        err.contains("help: `/mnt/data.old` was split at its dots into `/mnt/data`, `old`: a name with a dot must be quoted inside the key, as 'fileSystems.\"/mnt/data.old\"'"),
        "{err}"
    );
    let typo = write(
        d.path(),
        "typo.yaml",
        &format!(
            "modules:\n  - imports: [{}]\n",
            options.display().to_string().replace("options", "option")
        ),
    );
    let (code, _, err) = run(isoproof(&["resolve"]).arg(&typo));
    assert_eq!(code, Some(2));
    assert!(err.contains("nixos-options.yaml`?"), "{err}");
    let scen = write(
        d.path(),
        "scen.yaml",
        &format!(
            "modules:\n  - imports: [{}]\n",
            root().join("scenarios/installer-minimal.yaml").display()
        ),
    );
    let (code, _, err) = run(isoproof(&["resolve"]).arg(&scen));
    assert_eq!(code, Some(2));
    assert!(
        err.contains("is a scenario (it has `modules:`), not a module"),
        "{err}"
    );
}

/// `--timeout` outside its range is refused with the range as it is checked (no QEMU needed).
#[test]
fn boot_timeout_range_is_stated_as_checked() {
    for t in ["0", "-1", "86400", "nan"] {
        let flag = format!("--timeout={t}");
        let (code, _, err) = run(&mut isoproof(&[
            "boot",
            "golden/installer-minimal.iso",
            &flag,
        ]));
        assert_eq!(code, Some(2), "{t}: {err}");
        assert!(
            err.contains("expected seconds more than 0 and less than 86400 (a day)"),
            "{t}: {err}"
        );
    }
}

/// A truncated image: `inspect` shows what it can read, says the volume claims more sectors
/// than the file holds (both numbers) and exits 2; one cut inside its directories fails with
/// the same words before the read that found the end; `diff` says the same.
#[test]
fn a_truncated_image_is_named_as_such() {
    let d = tempfile::tempdir().unwrap();
    let full = std::fs::read(root().join("golden/installer-minimal.iso")).unwrap();
    let cut = |n: usize| {
        let p = d.path().join(format!("cut-{n}.iso"));
        std::fs::write(&p, &full[..n]).unwrap();
        p
    };
    let claim = "its volume space size claims 61 sectors (124928 bytes), but the file holds";
    let (code, out, err) = run(isoproof(&["inspect"]).arg(cut(100_000)));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        out.starts_with(&format!(
            "TRUNCATED: the image is truncated: {claim} 100000 bytes (48 whole sectors)\n"
        )),
        "{out}"
    );
    assert!(out.contains("/etc/hostname"), "{out}");
    assert!(err.contains(claim), "{err}");
    let (code, out, _) = run(isoproof(&["inspect", "--format", "json"]).arg(cut(100_000)));
    assert_eq!(code, Some(2));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["truncated"]["claimed_sectors"], 61);
    assert_eq!(v["truncated"]["size"], 100_000);
    let short = cut(60_000);
    let (code, _, err) = run(isoproof(&["inspect"]).arg(&short));
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!(
            "the image is truncated: {claim} 60000 bytes (29 whole sectors): directory "
        )),
        "{err}"
    );
    let (code, _, err) = run(isoproof(&["diff"])
        .arg(root().join("golden/installer-minimal.iso"))
        .arg(&short));
    assert_eq!(code, Some(2));
    assert!(err.contains(&format!("{claim} 60000 bytes")), "{err}");
    let (code, out, _) = run(isoproof(&["diff"])
        .arg(root().join("golden/installer-minimal.iso"))
        .arg(cut(100_000)));
    assert_eq!(code, Some(3));
    assert!(
        out.contains(&format!(
            "  truncated: no -> yes: {claim} 100000 bytes (48 whole sectors)\n"
        )),
        "{out}"
    );
}

/// What a new user tripped over: "Did you mean" said once per error; `build` of a scenario
/// that resolves to errors names each error's kind once (`error[undeclared]`, no `error:`
/// before it) and ends with the count; `inspect`'s file list has column headers.
#[test]
fn each_thing_is_said_once() {
    let d = tempfile::tempdir().unwrap();
    let s = write(
        d.path(),
        "typo.yaml",
        "modules:\n  - options: {networking.hostName: {type: str, default: x}}\n  - config: {networking.hostNam: y}\n",
    );
    let (code, _, err) = run(isoproof(&["resolve", "--format", "text"]).arg(&s));
    assert_eq!(code, Some(1));
    assert_eq!(
        err.to_lowercase().matches("did you mean").count(),
        1,
        "{err}"
    );
    let (code, _, err) = run(isoproof(&["build", "-o"])
        .arg(d.path().join("x.iso"))
        .arg(&s));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("error[undeclared]: The option `networking.hostNam'"),
        "{err}"
    );
    assert!(!err.contains("error: error["), "{err}");
    assert!(err.ends_with("\n1 error\n"), "{err}");
    assert_eq!(
        err.to_lowercase().matches("did you mean").count(),
        1,
        "{err}"
    );
    let (code, out, _) =
        run(isoproof(&["inspect"]).arg(root().join("golden/installer-minimal.iso")));
    assert_eq!(code, Some(0));
    assert!(
        out.contains("Files\n     mode        bytes extents (sector+bytes)   path\n"),
        "{out}"
    );
}

/// One walk names every record's fields for inspect's JSON, golden records of any image and
/// diff alike: the second GPT entry's GUID is `entry 2.unique_partition_guid` in all three,
/// and the catalog's default entry `default entry.load_rba`.
#[test]
fn a_field_has_one_name_everywhere() {
    let a = root().join("golden/installer-minimal.iso");
    let b = root().join("golden/installer-on-host.iso");
    let (code, out, _) = run(isoproof(&["inspect", "--format", "json"]).arg(&a));
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let named = |structure: &str, name: &str, field: &str| {
        v["records"].as_array().unwrap().iter().any(|r| {
            r["structure"] == structure && r["name"] == name && r["fields"][field].is_string()
        })
    };
    assert!(
        named("primary GPT entries", "entry 2", "unique_partition_guid"),
        "{out}"
    );
    assert!(
        named("El Torito boot catalog", "default entry", "load_rba"),
        "{out}"
    );
    let d = tempfile::tempdir().unwrap();
    let (code, _, err) = run(isoproof(&["golden", "bless", "--golden"])
        .arg(d.path())
        .arg("--image")
        .arg(&a)
        .args(["--name", "a"]));
    assert_eq!(code, Some(0), "{err}");
    let record = std::fs::read_to_string(d.path().join("a.json")).unwrap();
    assert!(
        record.contains("\"entry 2.unique_partition_guid\""),
        "{record}"
    );
    assert!(record.contains("\"default entry.load_rba\""), "{record}");
    let (code, out, _) = run(isoproof(&["diff"]).arg(&a).arg(&b));
    assert_eq!(code, Some(3));
    assert!(
        out.contains("primary GPT entries\n  entry 1.unique_partition_guid: ")
            && out.contains("\n  entry 2.unique_partition_guid: "),
        "{out}"
    );
}

/// A host configuration with options no module declares: `undeclared` (exit 1) by default, as
/// in Nix; with `--allow-undeclared` they are freeform values, listed once as a warning, and
/// `explain` works on them.
#[test]
fn undeclared_options_can_be_taken_as_freeform() {
    let dir = tempfile::tempdir().unwrap();
    let host = write(
        dir.path(),
        "configuration.nix",
        "{ lib, ... }: {\n  options.networking.hostName = lib.mkOption { type = lib.types.str; };\n  config = {\n    networking.hostName = \"h\";\n    services.nginx.enable = true;\n    time.timeZone = lib.mkDefault \"UTC\";\n  };\n}\n",
    );
    let host = host.to_str().unwrap();
    let (code, _, err) = run(&mut isoproof(&["resolve", host]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("error[undeclared]"), "{err}");
    let (code, out, err) = run(&mut isoproof(&["resolve", "--allow-undeclared", host]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: 2 options no module declares, taken as freeform values of type anything: services, time"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["services"]["nginx"]["enable"], true);
    assert_eq!(v["time"]["timeZone"], "UTC");
    let (code, out, err) = run(&mut isoproof(&[
        "explain",
        "--allow-undeclared",
        host,
        "time.timeZone",
    ]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("mkDefault (1000)"), "{out}");
}

#[test]
fn modules_path_and_nixpkgs_bring_the_carried_nixos_modules_from_anywhere() {
    // A folder with nothing of the project beside it: the modules come with the binary.
    let dir = tempfile::tempdir().unwrap();
    let host = write(
        dir.path(),
        "configuration.nix",
        "{ modulesPath, ... }: {\n  imports = [\n    \"${modulesPath}/installer/cd-dvd/installation-cd-minimal.nix\"\n    <nixpkgs/nixos/modules/installer/cd-dvd/iso-image.nix>\n  ];\n  networking.hostName = \"host\";\n}\n",
    );
    let host = host.to_str().unwrap();
    let (code, out, err) = run(&mut isoproof(&["resolve", host]));
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["networking"]["hostName"], "host");
    assert_eq!(v["isoImage"]["volumeID"], "NIXOS_MINIMAL");
    // iso-image is imported twice (by the profile and by nixpkgs' name) and loaded once:
    // its mkImageMediaOverride file systems are one definition, not two in conflict.
    assert_eq!(v["fileSystems"]["/"]["fsType"], "tmpfs");
    let (code, out, err) = run(&mut isoproof(&["explain", host, "isoImage.volumeID"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("<nixpkgs/nixos/modules/isoproof/installation-cd-minimal.yaml>:"),
        "{out}"
    );

    let off = write(
        dir.path(),
        "without-profile.nix",
        "{ modulesPath, ... }: {\n  imports = [ ./configuration.nix ];\n  disabledModules = [ \"${modulesPath}/installer/cd-dvd/installation-cd-minimal.nix\" ];\n}\n",
    );
    let (code, out, err) = run(&mut isoproof(&["resolve", off.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_ne!(v["isoImage"]["volumeID"], "NIXOS_MINIMAL");
    assert_eq!(v["fileSystems"]["/"]["fsType"], "tmpfs");
}

#[test]
fn lib_option_modules_rename_alias_remove_and_package_options() {
    let dir = tempfile::tempdir().unwrap();
    let host = write(
        dir.path(),
        "host.nix",
        r#"{ lib, pkgs, ... }: {
  imports = [
    (lib.mkRenamedOptionModule [ "services" "old" "port" ] [ "services" "new" "port" ])
    ({ lib, pkgs, ... }: {
      options.services.new.port = lib.mkOption { type = lib.types.int; default = 1; };
      options.services.new.package = lib.mkPackageOption pkgs "nginx" { };
      options.warnings = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
    })
    { services.old.port = lib.mkForce 22; }
    { services.new.port = 80; }
  ];
}
"#,
    );
    let (code, out, err) = run(&mut isoproof(&["resolve", host.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The old name's mkForce travels with it, as nixpkgs' doRename keeps priorities.
    assert_eq!(v["services"]["new"]["port"], 22);
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("has been renamed to `services.new.port'"),
        "{v}"
    );
    let pkg = v["services"]["new"]["package"].as_str().unwrap();
    assert!(
        pkg.starts_with("/nix/store/") && pkg.ends_with("-nginx"),
        "{pkg}"
    );

    let removed = write(
        dir.path(),
        "removed.nix",
        "{ lib, ... }: {\n  imports = [ (lib.mkRemovedOptionModule [ \"boot\" \"legacy\" ] \"Use boot.loader instead.\") ];\n  boot.legacy = true;\n}\n",
    );
    let (code, _, err) = run(&mut isoproof(&[
        "resolve",
        "--format",
        "text",
        removed.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("error[removed]"), "{err}");
    assert!(err.contains("Use boot.loader instead."), "{err}");
}

#[test]
fn nix_files_evaluated_together_keep_their_imports_positions() {
    // Two modules of one wave, each importing a file of its own: evaluated on several
    // threads, the files they read are named where their definitions are.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "top.nix", "{ imports = [ ./a.nix ./b.nix ]; }\n");
    for (m, opt, helper) in [
        ("a.nix", "p", "helper-a.nix"),
        ("b.nix", "q", "helper-b.nix"),
    ] {
        write(
            d,
            m,
            &format!("{{ lib, ... }}: {{\n  options.{opt} = lib.mkOption {{ type = lib.types.attrsOf lib.types.int; }};\n  config.{opt} = (import ./{helper}).value;\n}}\n"),
        );
    }
    write(
        d,
        "helper-a.nix",
        "# a\n{\n  value = {\n    one = 1;\n  };\n}\n",
    );
    write(
        d,
        "helper-b.nix",
        "# b\n\n\n{\n  value = {\n    port = \"x\";\n  };\n}\n",
    );
    let top = d.join("top.nix");
    let (code, _, err) = run(&mut isoproof(&[
        "resolve",
        "--format",
        "text",
        top.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("helper-b.nix:6:5"), "{err}");
    assert!(err.contains("    port = \"x\";"), "{err}");
    write(d, "helper-b.nix", "{ value = { port = 2; }; }\n");
    let (code, out, err) = run(&mut isoproof(&["resolve", top.to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["p"]["one"], 1);
    assert_eq!(v["q"]["port"], 2);
}

/// A netboot scenario builds a directory (bzImage, initrd, netboot.ipxe) whole, rebuilds
/// over its own output, refuses to replace anything else, and `diff` compares two such
/// directories down to the files inside the initrd.
#[test]
fn netboot_directories_build_replace_and_diff() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.netboot");
    let build = |scenario: &str, out: &Path| {
        run(&mut isoproof(&[
            "build",
            "-o",
            out.to_str().unwrap(),
            scenario,
        ]))
    };
    for _ in 0..2 {
        let (code, _, err) = build("scenarios/netboot-minimal.yaml", &a);
        assert_eq!(code, Some(0), "{err}");
    }
    let mut names: Vec<String> = std::fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["bzImage", "initrd", "netboot.ipxe"]);
    let ipxe = std::fs::read_to_string(a.join("netboot.ipxe")).unwrap();
    assert!(ipxe.starts_with("#!ipxe\n"), "{ipxe}");
    assert!(ipxe.contains("\ninitrd initrd\nboot\n"), "{ipxe}");
    // The same netboot, another host name.
    let repo = root();
    let other = write(
        d.path(),
        "other.yaml",
        &format!(
            "name: other\nmodules:\n  - imports: [{}]\n  - config:\n      networking.hostName: other\n      isoImage.payloadRoot: {}\n      netboot.storeContents: [{}]\n      boot.kernelParams: [\"console=ttyS0,115200\"]\n",
            repo.join("scenarios/modules/netboot.yaml").display(),
            repo.join("payload/root").display(),
            repo.join("scenarios/data/store/hello-2.12.1").display(),
        ),
    );
    let b = d.path().join("b.netboot");
    let (code, _, err) = build(other.to_str().unwrap(), &b);
    assert_eq!(code, Some(0), "{err}");
    let diff = |x: &Path, y: &Path| {
        run(&mut isoproof(&[
            "diff",
            x.to_str().unwrap(),
            y.to_str().unwrap(),
        ]))
    };
    assert_eq!(diff(&a, &a).1, "identical\n");
    let (code, out, err) = diff(&a, &b);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(out.contains("/initrd!/etc/hostname"), "{out}");
    assert!(
        out.contains("-netboot\n") && out.contains("+other\n"),
        "{out}"
    );
    assert!(!out.contains("bzImage"), "the kernel is the same: {out}");
    // A directory with other files, and a regular file, are not replaced.
    std::fs::write(b.join("keep.txt"), "mine").unwrap();
    let (code, _, err) = build("scenarios/netboot-minimal.yaml", &b);
    assert_ne!(code, Some(0));
    assert!(err.contains("keep.txt"), "{err}");
    assert_eq!(std::fs::read(b.join("keep.txt")).unwrap(), b"mine");
    let f = write(d.path(), "plain", "data");
    let (code, _, err) = build("scenarios/netboot-minimal.yaml", &f);
    assert_ne!(code, Some(0));
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(std::fs::read(&f).unwrap(), b"data");
}

/// Signing options name what is wrong with them, at the option: half a pair, a certificate
/// of another key, an encrypted key, a file that is not PEM.
#[test]
fn signing_options_are_checked_at_plan_time() {
    let d = tempfile::tempdir().unwrap();
    let keys = root().join("tests/keys");
    let key = |n: &str| keys.join(format!("{n}.key")).display().to_string();
    let pem = |n: &str| keys.join(format!("{n}.pem")).display().to_string();
    let encrypted = d.path().join("encrypted.key");
    let o = Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:x", "-in"])
        .arg(key("test-signing"))
        .arg("-out")
        .arg(&encrypted)
        .output()
        .expect("openssl");
    assert!(o.status.success());
    let cases = [
        (
            format!("      isoImage.secureBoot.key: {}\n", key("test-signing")),
            "isoImage.secureBoot.certificate: signing needs both",
        ),
        (
            format!(
                "      isoImage.secureBoot.key: {}\n      isoImage.secureBoot.certificate: {}\n",
                key("test-signing"),
                pem("other-test-signing")
            ),
            "the certificate is not the signing key's",
        ),
        (
            format!(
                "      isoImage.secureBoot.key: {}\n      isoImage.secureBoot.certificate: {}\n",
                encrypted.display(),
                pem("test-signing")
            ),
            "the key is encrypted",
        ),
        (
            format!(
                "      isoImage.secureBoot.key: {}\n      isoImage.secureBoot.certificate: {}\n",
                key("test-signing"),
                key("test-signing")
            ),
            "isoImage.secureBoot.certificate",
        ),
    ];
    let base = root().join("scenarios/modules/installation-cd-minimal.yaml");
    for (config, want) in cases {
        let s = write(
            d.path(),
            "s.yaml",
            &format!(
                "modules:\n  - imports: [{}]\n  - config:\n{config}",
                base.display()
            ),
        );
        let (code, _, err) = run(&mut isoproof(&["build", "--plan", s.to_str().unwrap()]));
        assert_eq!(code, Some(2), "{config}: {err}");
        assert!(err.contains(want), "{config}: expected `{want}` in:\n{err}");
    }
}

/// `inspect` lists each EFI binary's signatures and `diff` names a changed signer.
#[test]
fn signatures_are_shown_and_diffed() {
    let d = tempfile::tempdir().unwrap();
    let r = root();
    let scenario = |name: &str, key: &str| {
        write(
            d.path(),
            &format!("{name}.yaml"),
            &format!(
                "modules:\n  - imports: [{m}]\n  - config:\n      isoImage.bootPayload: linux\n      isoImage.payloadRoot: {r}/payload/root\n      isoImage.secureBoot.key: {r}/{key}.key\n      isoImage.secureBoot.certificate: {r}/{key}.pem\n",
                m = r.join("scenarios/modules/installation-cd-minimal.yaml").display(),
                r = r.display()
            ),
        )
    };
    let mut images = Vec::new();
    for (name, key) in [
        ("snakeoil", "scenarios/data/keys/PkKek-1-snakeoil"),
        ("other", "tests/keys/other-test-signing"),
    ] {
        let s = scenario(name, key);
        let out = d.path().join(format!("{name}.iso"));
        let (code, _, err) = run(&mut isoproof(&[
            "build",
            s.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]));
        assert_eq!(code, Some(0), "{err}");
        images.push(out);
    }
    let (code, text, err) = run(&mut isoproof(&["inspect", images[0].to_str().unwrap()]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("EFI binaries in the ESP (Authenticode signatures)\n  /EFI/BOOT/BOOTX64.EFI\n    1  O=SnakeOil,L=Fort Collins,ST=Colorado,C=US, SHA-256 "),
        "{text}"
    );
    assert!(text.trim_end().ends_with("digest matches"), "{text}");
    let (code, text, err) = run(&mut isoproof(&[
        "diff",
        images[0].to_str().unwrap(),
        images[1].to_str().unwrap(),
    ]));
    assert_eq!(code, Some(3), "{err}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("signature 1:"))
        .unwrap_or_else(|| panic!("no signature line in:\n{text}"));
    assert!(
        line.contains("O=SnakeOil") && line.contains("-> CN=isoproof OTHER TEST KEY"),
        "{line}"
    );
}
