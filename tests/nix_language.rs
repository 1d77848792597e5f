//! The Nix language as isoproof evaluates it, against real Nix: every `tests/nix-lang/*.nix`
//! is evaluated strictly to JSON, each its own test (`nix_lang::operators`), and compared
//! with what `nix-instantiate --eval --strict --json` gave (`NAME.expected.json`, written by
//! `tests/nix-lang/recompute.py`). Values must be equal; an error must be of the same kind
//! (undefined variable, missing attribute, type error, failed assertion, `throw`, `abort`,
//! infinite recursion, argument errors, duplicate attribute, division by zero, syntax error,
//! calling a non-function) and name the same quoted names. One more test runs the recipe
//! against the installed `nix-instantiate`, so the stored results are Nix's.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nix-lang")
}

/// The kind of an evaluation error, from Nix's message or ours.
fn kind(message: &str) -> &'static str {
    const KINDS: &[(&str, &str)] = &[
        ("undefined variable", "undefined-variable"),
        ("without required argument", "missing-argument"),
        ("unexpected argument", "unexpected-argument"),
        ("' missing", "missing-attribute"),
        ("while a", "type"),
        ("cannot coerce", "type"),
        ("cannot add", "type"),
        ("assertion", "assertion"),
        ("evaluation aborted", "abort"),
        ("infinite recursion", "infinite-recursion"),
        ("already defined", "duplicate-attribute"),
        ("division by zero", "division-by-zero"),
        ("syntax error", "syntax"),
        ("not a function", "not-a-function"),
    ];
    KINDS
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map_or("throw", |(_, k)| k)
}

/// The single-quoted names in a message (`'alpah'`), which both must name.
fn quoted(message: &str) -> Vec<String> {
    let re = regex::Regex::new(r"'([A-Za-z_][A-Za-z0-9_'-]*)'").unwrap();
    re.captures_iter(message)
        .map(|c| c[1].to_string())
        .collect()
}

fn check(case: &Path) -> Result<(), Failed> {
    let want_path = case.with_extension("expected.json");
    let text = std::fs::read_to_string(&want_path).map_err(|e| {
        format!(
            "{}: {e} (every case needs Nix's result)",
            want_path.display()
        )
    })?;
    let dir = corpus().display().to_string();
    let want: serde_json::Value = serde_json::from_str(&text.replace("$DIR", &dir))?;
    let got = isoproof::scenario::eval_json(case);
    match (&want.get("value"), &want.get("error"), got) {
        (Some(v), _, Ok(g)) if **v == g => Ok(()),
        (Some(v), _, Ok(g)) => {
            Err(format!("value differs:\n  isoproof {g}\n  nix      {v}").into())
        }
        (Some(_), _, Err(e)) => Err(format!("nix gives a value, isoproof an error: {e}").into()),
        (_, Some(w), Err(e)) => {
            let w = w.as_str().unwrap_or_default();
            let (kw, kg) = (kind(w), kind(&e.message));
            if kw != kg {
                return Err(
                    format!("error kinds differ: nix {kw} ({w}), isoproof {kg} ({e})").into(),
                );
            }
            // Thrown messages and syntax errors are Nix's own words.
            if matches!(kw, "throw" | "syntax") && !e.message.contains(w) {
                return Err(format!(
                    "thrown messages differ: nix {w:?}, isoproof {:?}",
                    e.message
                )
                .into());
            }
            let missing: Vec<String> = quoted(w)
                .into_iter()
                .filter(|n| !quoted(&e.message).contains(n))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "isoproof's error does not name {missing:?}: nix {w:?}, isoproof {e}"
                )
                .into());
            }
            if e.at.is_none() {
                return Err(format!("isoproof's error has no location: {e}").into());
            }
            Ok(())
        }
        (_, Some(w), Ok(g)) => Err(format!("nix fails ({w}), isoproof gives {g}").into()),
        _ => Err(format!("{}: neither a value nor an error", want_path.display()).into()),
    }
}

/// The stored results are what the installed `nix-instantiate` gives.
fn stored_results_are_nix_s() -> Result<(), Failed> {
    if Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("nix-instantiate is not installed (Debian: nix-bin; .ci/run installs it); this test fails rather than passing silently".into());
    }
    let out = Command::new("python3")
        .arg(corpus().join("recompute.py"))
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus())
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "nix"))
                .collect()
        })
        .unwrap_or_default();
    cases.sort();
    let n = cases.len();
    let mut trials = vec![
        Trial::test("nix_lang::corpus", move || {
            if n < 30 {
                return Err(
                    format!("only {n} cases in tests/nix-lang, expected at least 30").into(),
                );
            }
            Ok(())
        }),
        Trial::test(
            "nix_lang::stored_results_are_nix_instantiate_s",
            stored_results_are_nix_s,
        ),
    ];
    for case in cases {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        trials.push(Trial::test(format!("nix_lang::{name}"), move || {
            check(&case)
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}
