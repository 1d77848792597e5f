//! insta snapshots of what users read: the resolved config (YAML) of every shipped scenario,
//! `explain` output, and the rendering of each error kind.

use std::path::{Path, PathBuf};
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

fn scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn resolved_config_of_every_scenario() {
    let all = scenarios();
    assert!(all.len() >= 4);
    for s in all {
        let rel = s
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let (out, err, code) = run(&["resolve", "--format", "yaml", &rel]);
        assert_eq!(code, 0, "{rel}: {err}");
        let name = s.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("resolve-{name}"), out);
    }
}

#[test]
fn explain_tells_the_whole_story() {
    for (scenario, option) in [
        ("scenarios/installer-on-host.yaml", "fileSystems"),
        ("scenarios/installer-on-host.yaml", "boot.kernelParams"),
        (
            "scenarios/host-keeps-root-with-force.yaml",
            "fileSystems.\"/\".device",
        ),
        ("scenarios/netboot-root-override.yaml", "fileSystems.\"/\""),
        ("scenarios/installer-on-host.yaml", "networking.hostName"),
    ] {
        let (out, err, code) = run(&["explain", scenario, option]);
        assert_eq!(code, 0, "{scenario} {option}: {err}");
        let name = format!(
            "explain-{}-{}",
            Path::new(scenario).file_stem().unwrap().to_string_lossy(),
            option.replace(['"', '/'], "_")
        );
        insta::assert_snapshot!(name, out);
    }
}

/// One small scenario per error kind, rendered as the CLI renders it.
#[test]
fn rendering_of_each_error_kind() {
    let cases: &[(&str, &str)] = &[
        ("conflict", "modules:\n  - options: {x: {type: str}}\n  - {name: a.yaml, config: {x: from-a}}\n  - {name: b.yaml, config: {x: from-b}}\n"),
        ("type", "modules:\n  - options: {x: {type: int}}\n  - {name: a.yaml, config: {x: \"12\"}}\n"),
        ("undefined", "modules:\n  - options: {x: {type: str}}\n"),
        ("undeclared", "modules:\n  - options: {networking.hostName: {type: str}}\n  - {name: a.yaml, config: {networking.hostname: x}}\n"),
        ("recursion", "modules:\n  - options: {a: {type: str}, b: {type: str}}\n  - {name: a.yaml, config: {a: !format \"${b}-x\", b: !config a}}\n"),
        ("condition", "modules:\n  - options: {x: {type: str}}\n  - {name: a.yaml, config: {x: !mkIf [1, a]}}\n"),
        ("declared-twice", "modules:\n  - {name: d1.yaml, options: {x: {type: str, default: a}}}\n  - {name: d2.yaml, options: {x: {type: str, default: b}}}\n"),
        ("read-only", "modules:\n  - options: {x: {type: str, default: a, readOnly: true}}\n  - {name: a.yaml, config: {x: b}}\n"),
        ("unique", "modules:\n  - options: {x: {type: uniq str}}\n  - {name: a.yaml, config: {x: a}}\n  - {name: b.yaml, config: {x: a}}\n"),
        ("null-mix", "modules:\n  - options: {x: {type: nullOr str}}\n  - {name: a.yaml, config: {x: null}}\n  - {name: b.yaml, config: {x: a}}\n"),
        ("parse", "modules:\n  - config: {x: !mkFroce a}\n"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (kind, text) in cases {
        let f = dir.path().join(format!("{kind}.yaml"));
        std::fs::write(&f, text).unwrap();
        let (_, err, code) = run(&["resolve", "--format", "text", f.to_str().unwrap()]);
        assert_eq!(code, if *kind == "parse" { 2 } else { 1 }, "{kind}: {err}");
        assert!(err.contains(&format!("error[{kind}]")), "{kind}: {err}");
        insta::assert_snapshot!(format!("error-{kind}"), err);
        let (json, _, _) = run(&["resolve", "--format", "json", f.to_str().unwrap()]);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["errors"][0]["kind"], *kind);
    }
}
