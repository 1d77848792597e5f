//! Broken scenarios: each must exit 2 with a message naming file:line, and never panic.

use std::process::Command;

fn resolve(dir: &std::path::Path, file: &str) -> (String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(["resolve", "--format", "text"])
        .arg(dir.join(file))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{file} panicked: {stderr}");
    (stderr, out.status.code().unwrap_or(-1))
}

#[test]
fn broken_scenarios_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("cyc-a.yaml"), "imports: [cyc-b.yaml]\n").unwrap();
    std::fs::write(d.join("cyc-b.yaml"), "imports: [cyc-a.yaml]\n").unwrap();
    let deep = format!(
        "modules:\n  - config:\n      x: {}1{}\n",
        "[".repeat(500),
        "]".repeat(500)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "syntax.yaml",
            b"modules:\n  - config: {x: [1, 2}\n".to_vec(),
            "syntax.yaml:2:",
        ),
        (
            "unknown-tag.yaml",
            b"modules:\n  - config:\n      x: !mkFroce 1\n".to_vec(),
            "unknown-tag.yaml:3:10",
        ),
        (
            "arity.yaml",
            b"modules:\n  - config:\n      x: !mkOverride [60]\n".to_vec(),
            "arity.yaml:3:10",
        ),
        (
            "bad-type.yaml",
            b"modules:\n  - options:\n      x: {type: \"listOf\"}\n".to_vec(),
            "bad-type.yaml:3:",
        ),
        (
            "unknown-type.yaml",
            b"modules:\n  - options:\n      x: {type: strr}\n".to_vec(),
            "unknown-type.yaml:3:",
        ),
        (
            "twice.yaml",
            b"modules:\n  - config:\n      a.b: 1\n      a: {b: 2}\n".to_vec(),
            "twice.yaml:4:",
        ),
        (
            "missing-import.yaml",
            b"modules:\n  - imports: [nope.yaml]\n".to_vec(),
            "missing-import.yaml:2:15",
        ),
        (
            "cyclic-import.yaml",
            b"modules:\n  - imports: [cyc-a.yaml]\n".to_vec(),
            "cyc-b.yaml:1:",
        ),
        (
            "not-utf8.yaml",
            b"modules:\n  - config: {x: \"\xff\xfe\"}\n".to_vec(),
            "2:18",
        ),
        ("deep.yaml", deep.into_bytes(), "deep.yaml:3:"),
        (
            "huge-int.yaml",
            b"modules:\n  - config:\n      x: 123456789012345678901234567890\n".to_vec(),
            "huge-int.yaml:3:10",
        ),
        (
            "module-not-map.yaml",
            b"modules:\n  - 5\n".to_vec(),
            "module-not-map.yaml:2:5",
        ),
        (
            "unknown-field.yaml",
            b"modules:\n  - confg: {}\n".to_vec(),
            "unknown-field.yaml:2:5",
        ),
        (
            "no-type.yaml",
            b"modules:\n  - options:\n      x: {default: 1}\n".to_vec(),
            "no-type.yaml:3:7",
        ),
        (
            "bad-path.yaml",
            b"modules:\n  - config:\n      a..b: 1\n".to_vec(),
            "bad-path.yaml:3:7",
        ),
        (
            "dup-key.yaml",
            b"modules:\n  - config:\n      a: 1\n      a: 2\n".to_vec(),
            "dup-key.yaml:4:7",
        ),
        (
            "bad-regex.yaml",
            b"modules:\n  - options:\n      x: {type: 'strMatching \"(\"'}\n".to_vec(),
            "bad-regex.yaml:3:",
        ),
    ];
    for (name, bytes, want) in cases {
        std::fs::write(d.join(name), bytes).unwrap();
        let (err, code) = resolve(d, name);
        assert_eq!(code, 2, "{name}: exit {code}\n{err}");
        assert!(err.contains("error[parse]"), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected `{want}` in\n{err}");
    }
}

#[test]
fn a_missing_scenario_file_is_exit_2() {
    let (err, code) = resolve(std::path::Path::new("/nonexistent-dir"), "x.yaml");
    assert_eq!(code, 2);
    assert!(err.contains("cannot read scenario"), "{err}");
}
