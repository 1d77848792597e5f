//! insta snapshots of what users read: the resolved config (YAML) of every shipped scenario,
//! `explain` output, and the rendering of each error kind. Each family is file-driven
//! (`insta::glob!`), so one mismatch does not hide the others.

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap_or(-1),
    )
}

/// The resolved config of every shipped scenario, as YAML.
#[test]
fn resolved_config() {
    insta::glob!("../scenarios", "*.{yaml,nix}", |path| {
        let (out, err, code) = run(&["resolve", "--format", "yaml", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {err}", path.display());
        insta::assert_snapshot!(out);
    });
}

/// `explain` of the options each `tests/explain/*.txt` names (a scenario, then an option).
#[test]
fn explain() {
    insta::glob!("explain", "*.txt", |path| {
        let case = std::fs::read_to_string(path).unwrap();
        let mut lines = case.lines();
        let (scenario, option) = (lines.next().unwrap(), lines.next().unwrap());
        let (out, err, code) = run(&["explain", scenario, option]);
        assert_eq!(code, 0, "{scenario} {option}: {err}");
        // Definitions are shown as the scenario writes them, never in the module system's
        // internal form.
        assert!(!out.contains("_type"), "{scenario} {option}: {out}");
        insta::assert_snapshot!(out);
    });
}

/// One small scenario per error kind (`tests/error-kinds/<kind>.yaml`), rendered as the CLI
/// renders it; the JSON form names the same kind.
#[test]
fn error_kinds() {
    insta::glob!("error-kinds", "*.yaml", |path| {
        let kind = path.file_stem().unwrap().to_str().unwrap();
        let file = path.to_str().unwrap();
        let (_, err, code) = run(&["resolve", "--format", "text", file]);
        assert_eq!(code, if kind == "parse" { 2 } else { 1 }, "{kind}: {err}");
        assert!(err.contains(&format!("error[{kind}]")), "{kind}: {err}");
        insta::assert_snapshot!(err.replace(&*root().to_string_lossy(), "<root>"));
        let (json, _, _) = run(&["resolve", "--format", "json", file]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["errors"][0]["kind"], kind);
    });
}
