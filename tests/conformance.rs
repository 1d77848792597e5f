//! Every case of the merge corpus (`tests/conformance/nixpkgs/`: results computed by real Nix
//! with nixpkgs' `lib.evalModules`, see its README), each its own test (`conformance::gen-1-0042`), through the real CLI,
//! with the corpus README's comparison rules: configs equal as JSON, or exit 1 with an error
//! of the expected kind at the expected option (`."[definition N-entry M]"` segments dropped
//! on both sides). A case without its `.expected.json` fails; it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

fn corpus() -> PathBuf {
    std::env::var_os("ISOPROOF_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/nixpkgs/merge")
        })
}

fn drop_definition_segments(o: &str) -> String {
    let re = regex::Regex::new(r#"\."\[definition [0-9]+-entry [0-9]+\]""#).unwrap();
    re.replace_all(o, "").into_owned()
}

fn check(case: &Path, want: &Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(want).map_err(|e| {
        format!(
            "{}: {e} (every case needs its expected result)",
            want.display()
        )
    })?;
    let expected: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", want.display()))?;
    let out = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(["resolve", "--format", "json"])
        .arg(case)
        .output()?;
    let code = out.status.code();
    let got: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
    if let Some(cfg) = expected.get("config") {
        if code != Some(0) {
            return Err(format!(
                "exit {code:?}, expected 0: {}",
                String::from_utf8_lossy(&out.stdout)
            )
            .into());
        }
        if got.as_ref() != Some(cfg) {
            return Err(format!(
                "config differs:\n  got      {}\n  expected {cfg}",
                got.map(|g| g.to_string()).unwrap_or_default()
            )
            .into());
        }
        return Ok(());
    }
    let e = &expected["error"];
    // A scenario that cannot be read exits 2 with a `parse` error (the corpus README).
    let want_code = if e["kind"] == "parse" { 2 } else { 1 };
    if code != Some(want_code) {
        return Err(format!(
            "exit {code:?}, expected {want_code} with a {} error",
            e["kind"]
        )
        .into());
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
        return Ok(());
    }
    let got: Vec<_> = errors
        .iter()
        .map(|g| (g["kind"].to_string(), g["option"].to_string()))
        .collect();
    Err(format!(
        "expected a {} error at {:?}, got {got:?}",
        e["kind"], e["option"]
    )
    .into())
}

/// The cases of a corpus directory (its `*.yaml` files; `modules/` holds imports), sorted.
fn cases(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "the conformance corpus is missing at {} ({e}); set ISOPROOF_CONFORMANCE_DIR",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    Ok(v)
}

/// The cases of the `.nix` corpus: one folder per case, `default.nix` importing the case's
/// modules and `expected.json` beside it, sorted.
fn nix_cases(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| {
            format!(
                "the .nix conformance corpus is missing at {} ({e})",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("default.nix").is_file())
        .collect();
    v.sort();
    Ok(v)
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    let corpora = [
        ("conformance", corpus(), 200),
        (
            "own",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance"),
            29,
        ),
        // The same corpus as `.nix` module files, as NixOS users write them.
        (
            "nix",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/nixpkgs/nix"),
            226,
        ),
        // `.nix` definitions that compute with `config` (the module system's fixpoint), with
        // results from real Nix and nixpkgs lib (`recompute.py --dir=../nix-own`).
        (
            "nix-own",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/nix-own"),
            7,
        ),
    ];
    for (prefix, dir, at_least) in corpora {
        let nix = matches!(prefix, "nix" | "nix-own");
        let found = if nix { nix_cases(&dir) } else { cases(&dir) };
        match found {
            // A missing corpus is a failing test, never no test.
            Err(e) => {
                trials.push(Trial::test(format!("{prefix}::corpus"), move || {
                    Err(e.into())
                }));
            }
            Ok(all) => {
                let n = all.len();
                trials.push(Trial::test(format!("{prefix}::corpus"), move || {
                    if n < at_least {
                        return Err(
                            format!("only {n} cases found, expected at least {at_least}").into(),
                        );
                    }
                    Ok(())
                }));
                for case in all {
                    let name = case.file_stem().unwrap().to_string_lossy().into_owned();
                    let (input, want) = if nix {
                        (case.join("default.nix"), case.join("expected.json"))
                    } else {
                        (case.clone(), case.with_extension("expected.json"))
                    };
                    trials.push(Trial::test(format!("{prefix}::{name}"), move || {
                        check(&input, &want)
                    }));
                }
            }
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
