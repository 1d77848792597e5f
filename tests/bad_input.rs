//! Broken scenarios, one test per fixture in `tests/bad-input/` (`bad_input::syntax`): each
//! must exit 2 with a parse error at the place its `# expect:` line names, and never panic.
//! `tests/bad-input/imports/` holds files the fixtures import.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input")
}

/// `isoproof resolve --format text FILE`: its standard error and exit status.
fn resolve(file: &Path) -> Result<(String, Option<i32>), Failed> {
    let out = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(["resolve", "--format", "text"])
        .arg(file)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if stderr.contains("panicked") {
        return Err(format!("panicked: {stderr}").into());
    }
    Ok((stderr, out.status.code()))
}

/// The text a fixture's error must contain: its `# expect: ...` line.
fn expectation(file: &Path) -> Result<String, Failed> {
    let bytes = std::fs::read(file)?;
    String::from_utf8_lossy(&bytes)
        .lines()
        .find_map(|l| l.strip_prefix("# expect: ").map(str::to_string))
        .ok_or_else(|| format!("{}: no `# expect:` line", file.display()).into())
}

fn fixture(file: &Path) -> Result<(), Failed> {
    let want = expectation(file)?;
    let (err, code) = resolve(file)?;
    if code != Some(2) {
        return Err(format!("exit {code:?}, expected 2:\n{err}").into());
    }
    if !err.contains("error[parse]") {
        return Err(format!("not a parse error:\n{err}").into());
    }
    if !err.contains(&want) {
        return Err(format!("expected `{want}` in:\n{err}").into());
    }
    Ok(())
}

fn missing_scenario_file() -> Result<(), Failed> {
    let (err, code) = resolve(Path::new("/nonexistent-dir/x.yaml"))?;
    if code != Some(2) || !err.contains("cannot read scenario") {
        return Err(format!("exit {code:?}: {err}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("tests/bad-input")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut trials: Vec<Trial> = files
        .into_iter()
        .map(|f| {
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            Trial::test(format!("bad_input::{name}"), move || fixture(&f))
        })
        .collect();
    trials.push(Trial::test(
        "bad_input::a_missing_scenario_file",
        missing_scenario_file,
    ));
    libtest_mimic::run(&args, trials).exit();
}
