//! Runs every case of the shared merge corpus (results computed by the real nixpkgs
//! `lib.evalModules`) through the real CLI and applies the corpus README's comparison rules:
//! configs equal as JSON, or exit 1 with an error of the expected kind at the expected option
//! (`."[definition N-entry M]"` segments dropped on both sides).

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    let dir = std::env::var_os("ISOPROOF_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/merge")
        });
    assert!(
        dir.is_dir(),
        "the conformance corpus is missing at {} (set ISOPROOF_CONFORMANCE_DIR)",
        dir.display()
    );
    dir
}

fn drop_definition_segments(o: &str) -> String {
    let re = regex::Regex::new(r#"\."\[definition [0-9]+-entry [0-9]+\]""#).unwrap();
    re.replace_all(o, "").into_owned()
}

fn check(case: &Path) -> Result<(), String> {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(case.with_extension("expected.json")).unwrap(),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(["resolve", "--format", "json"])
        .arg(case)
        .output()
        .unwrap();
    let code = out.status.code();
    let got: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
    if let Some(cfg) = expected.get("config") {
        if code != Some(0) {
            return Err(format!(
                "exit {code:?}, expected 0: {}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        if got.as_ref() != Some(cfg) {
            return Err(format!(
                "config differs:\n  got      {}\n  expected {cfg}",
                got.map(|g| g.to_string()).unwrap_or_default()
            ));
        }
        return Ok(());
    }
    let e = &expected["error"];
    if code != Some(1) {
        return Err(format!(
            "exit {code:?}, expected 1 with a {} error",
            e["kind"]
        ));
    }
    let errors = got
        .as_ref()
        .and_then(|g| g["errors"].as_array())
        .cloned()
        .unwrap_or_default();
    let want_opt = e["option"].as_str().map(drop_definition_segments);
    let found = errors.iter().any(|g| {
        g["kind"] == e["kind"]
            && want_opt.as_ref().is_none_or(|w| {
                g["option"].as_str().map(drop_definition_segments).as_ref() == Some(w)
            })
    });
    if found {
        Ok(())
    } else {
        let got: Vec<_> = errors
            .iter()
            .map(|g| (g["kind"].to_string(), g["option"].to_string()))
            .collect();
        Err(format!(
            "expected a {} error at {:?}, got {got:?}",
            e["kind"], e["option"]
        ))
    }
}

#[test]
fn every_corpus_case_agrees_with_nix() {
    let dir = corpus();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "yaml") && p.with_extension("expected.json").exists()
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 200,
        "only {} cases found in {}",
        cases.len(),
        dir.display()
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            check(c)
                .err()
                .map(|e| format!("{}: {e}", c.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with Nix:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
