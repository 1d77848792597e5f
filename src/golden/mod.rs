//! Stage 4, **golden**: every scenario's image pinned by a manifest — the output's sha256 and
//! size, the sha256 of every input file, of every structure and of every file of the image —
//! so that a change in override semantics or in the writer shows up as a changed hash, and
//! the report says what changed. [`diff`] compares two images by structure.
//!
//! `check` rebuilds in a temporary directory and compares; a changed input is reported as
//! such, not as a regression. Either way the report carries the structural [`diff`] against
//! the blessed image, which `bless` stores beside the manifest (`golden/<stem>.iso`; images
//! are mostly zeros, and git stores them compressed). `bless` is the only way manifests and
//! images change. Builds depend on the scenario alone: its `isoImage.sourceDateEpoch` is the
//! clock, whatever the environment.

pub mod diff;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::build::{self, hex, BuildError, Origin, Planned};
use crate::image::plan::{Content, Plan};
use crate::image::ImageError;

/// A manifest: what a scenario's image must be.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Manifest {
    /// The scenario, relative to the project root.
    pub scenario: String,
    /// The output's file name (`isoImage.isoName`).
    pub output: String,
    /// The output's sha256.
    pub sha256: String,
    /// The output's size in bytes.
    pub size: u64,
    /// Input files (scenario modules and copied contents): path → sha256.
    pub inputs: BTreeMap<String, String>,
    /// Structures of the image: "what at offset" → (size, sha256).
    pub structures: BTreeMap<String, (u64, String)>,
    /// Files of the image: target → (size, sha256).
    pub files: BTreeMap<String, (u64, String)>,
}

impl Manifest {
    /// The manifest as JSON (stable key order).
    pub fn to_json(&self) -> Value {
        let pairs = |m: &BTreeMap<String, (u64, String)>| -> Value {
            m.iter()
                .map(|(k, (n, h))| (k.clone(), json!({"size": n, "sha256": h})))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        json!({
            "scenario": self.scenario,
            "output": {"name": self.output, "sha256": self.sha256, "size": self.size},
            "inputs": self.inputs,
            "structures": pairs(&self.structures),
            "files": pairs(&self.files),
        })
    }

    /// Reads a manifest.
    pub fn from_json(v: &Value) -> Option<Manifest> {
        let pairs = |v: &Value| -> Option<BTreeMap<String, (u64, String)>> {
            v.as_object()?
                .iter()
                .map(|(k, x)| {
                    Some((
                        k.clone(),
                        (x["size"].as_u64()?, x["sha256"].as_str()?.to_string()),
                    ))
                })
                .collect()
        };
        Some(Manifest {
            scenario: v["scenario"].as_str()?.to_string(),
            output: v["output"]["name"].as_str()?.to_string(),
            sha256: v["output"]["sha256"].as_str()?.to_string(),
            size: v["output"]["size"].as_u64()?,
            inputs: v["inputs"]
                .as_object()?
                .iter()
                .map(|(k, x)| Some((k.clone(), x.as_str()?.to_string())))
                .collect::<Option<_>>()?,
            structures: pairs(&v["structures"])?,
            files: pairs(&v["files"])?,
        })
    }
}

/// Why a golden operation failed (not a mismatch: those are [`Outcome`]s).
#[derive(Debug)]
pub enum GoldenError {
    /// The scenario did not build.
    Build(String, BuildError),
    /// A manifest is missing or unreadable, or a file could not be read.
    Io(String),
}

impl std::fmt::Display for GoldenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoldenError::Build(s, e) => write!(f, "{s}: does not build:\n{e}"),
            GoldenError::Io(m) => f.write_str(m),
        }
    }
}

fn sha256_file(p: &Path) -> Result<String, GoldenError> {
    let mut f = fs::File::open(p).map_err(|e| GoldenError::Io(format!("{}: {e}", p.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| GoldenError::Io(format!("{}: {e}", p.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// A path relative to the project root when it is inside it.
fn shown(p: &Path, root: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// Builds a scenario into `dir` and describes the result as a manifest.
pub fn build_manifest(
    scenario: &Path,
    root: &Path,
    dir: &Path,
) -> Result<(Manifest, PathBuf), GoldenError> {
    let name = scenario.display().to_string();
    let fail = |e| GoldenError::Build(name.clone(), e);
    let Planned {
        scenario: s, plan, ..
    } = build::plan_scenario(scenario).map_err(fail)?;
    let out = dir.join(&plan.iso_name);
    let layout = build::build(&plan, &out).map_err(fail)?;
    let mut m = Manifest {
        scenario: shown(&fs::canonicalize(scenario).unwrap_or(scenario.into()), root),
        output: plan.iso_name.clone(),
        sha256: sha256_file(&out)?,
        size: fs::metadata(&out).map(|m| m.len()).unwrap_or(0),
        ..Manifest::default()
    };
    for (_, p) in s.sources.iter() {
        let real = fs::canonicalize(p).unwrap_or(p.into());
        m.inputs.insert(shown(&real, root), sha256_file(&real)?);
    }
    for f in &plan.files {
        match &f.origin {
            Origin::Copy { source, size, .. } => {
                let h = sha256_file(source)?;
                m.inputs.insert(shown(source, root), h.clone());
                m.files.insert(f.target.clone(), (*size, h));
            }
            Origin::Generated { bytes, .. } => {
                m.files.insert(
                    f.target.clone(),
                    (bytes.len() as u64, hex(&Sha256::digest(bytes))),
                );
            }
            Origin::Symlink(t) => {
                m.files.insert(
                    f.target.clone(),
                    (t.len() as u64, hex(&Sha256::digest(t.as_bytes()))),
                );
            }
            Origin::Dir => {}
        }
    }
    structures(&layout, &mut m);
    Ok((m, out))
}

fn structures(layout: &Plan, m: &mut Manifest) {
    for e in &layout.extents {
        if let Content::Bytes(b) = &e.content {
            if e.what.starts_with("file ") {
                continue; // generated files are listed under files
            }
            m.structures.insert(
                format!("{} at {}", e.what, e.offset),
                (b.len() as u64, hex(&Sha256::digest(b))),
            );
        }
    }
}

/// The result of checking one scenario.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The image is what the manifest says.
    Same,
    /// Inputs changed since the manifest was blessed: not a regression; bless after review.
    /// The lines say which inputs, then how the image changes.
    InputChanged(Vec<String>),
    /// Same inputs, different image: a regression. The lines say what changed.
    Regression(Vec<String>),
    /// No manifest for this scenario yet.
    NoManifest,
}

impl Outcome {
    fn lines_mut(&mut self) -> Option<&mut Vec<String>> {
        match self {
            Outcome::InputChanged(v) | Outcome::Regression(v) => Some(v),
            Outcome::Same | Outcome::NoManifest => None,
        }
    }
}

/// The manifest file of a scenario: `golden/<scenario file stem>.json`.
pub fn manifest_path(golden: &Path, scenario: &Path) -> PathBuf {
    let stem = scenario
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    golden.join(format!("{stem}.json"))
}

/// The blessed image of a scenario: `golden/<scenario file stem>.iso`.
pub fn image_path(golden: &Path, scenario: &Path) -> PathBuf {
    manifest_path(golden, scenario).with_extension("iso")
}

/// Compares two manifests: what differs, by input, output, structure and file.
pub fn compare(old: &Manifest, new: &Manifest) -> Outcome {
    let keys = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
        let mut v = Vec::new();
        for (k, h) in a {
            match b.get(k) {
                None => v.push(format!("input {k}: removed")),
                Some(x) if x != h => {
                    v.push(format!("input {k}: sha256 {} -> {}", &h[..12], &x[..12]))
                }
                _ => {}
            }
        }
        for k in b.keys().filter(|k| !a.contains_key(*k)) {
            v.push(format!("input {k}: added"));
        }
        v
    };
    let inputs = keys(&old.inputs, &new.inputs);
    if !inputs.is_empty() {
        return Outcome::InputChanged(inputs);
    }
    if old.sha256 == new.sha256 && old.size == new.size && old.output == new.output {
        return Outcome::Same;
    }
    let renamed = if old.output == new.output {
        String::new()
    } else {
        format!("{} ", new.output)
    };
    let mut lines = vec![format!(
        "output {}: {} bytes sha256 {} -> {renamed}{} bytes sha256 {}",
        old.output,
        old.size,
        &old.sha256[..12],
        new.size,
        &new.sha256[..12]
    )];
    let pairs = |what: &str,
                 a: &BTreeMap<String, (u64, String)>,
                 b: &BTreeMap<String, (u64, String)>,
                 lines: &mut Vec<String>| {
        for (k, (n, h)) in a {
            match b.get(k) {
                None => lines.push(format!("{what} {k}: gone")),
                Some((m, x)) if x != h => lines.push(format!(
                    "{what} {k}: {n} bytes sha256 {} -> {m} bytes sha256 {}",
                    &h[..12],
                    &x[..12]
                )),
                _ => {}
            }
        }
        for (k, (m, _)) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
            lines.push(format!("{what} {k}: new, {m} bytes"));
        }
    };
    pairs("structure", &old.structures, &new.structures, &mut lines);
    pairs("file", &old.files, &new.files, &mut lines);
    Outcome::Regression(lines)
}

/// Checks one scenario against its manifest; `keep` keeps the rebuilt image there.
pub fn check(
    scenario: &Path,
    root: &Path,
    golden: &Path,
    keep: Option<&Path>,
) -> Result<Outcome, GoldenError> {
    let mpath = manifest_path(golden, scenario);
    let tmp =
        tempfile::tempdir().map_err(|e| GoldenError::Io(format!("temporary directory: {e}")))?;
    let (new, out) = build_manifest(scenario, root, tmp.path())?;
    if let Some(k) = keep {
        fs::create_dir_all(k).map_err(|e| GoldenError::Io(format!("{}: {e}", k.display())))?;
        fs::copy(&out, k.join(&new.output))
            .map_err(|e| GoldenError::Io(format!("{}: {e}", k.display())))?;
    }
    let Ok(text) = fs::read_to_string(&mpath) else {
        return Ok(Outcome::NoManifest);
    };
    let old = serde_json::from_str(&text)
        .ok()
        .and_then(|v| Manifest::from_json(&v))
        .ok_or_else(|| GoldenError::Io(format!("{}: not a golden manifest", mpath.display())))?;
    let mut outcome = compare(&old, &new);
    if let Some(lines) = outcome.lines_mut() {
        match against_blessed(&old, &image_path(golden, scenario), &out) {
            // The diff says all the manifest's structure and file lines say, and more.
            Ok(diff) => {
                lines.retain(|l| !l.starts_with("structure ") && !l.starts_with("file "));
                lines.extend(diff);
            }
            Err(why) => lines.push(why),
        }
    }
    Ok(outcome)
}

/// The structural diff of the rebuilt image against the blessed one, as report lines; or why
/// there is none.
fn against_blessed(old: &Manifest, blessed: &Path, rebuilt: &Path) -> Result<Vec<String>, String> {
    let shown = blessed.display();
    match sha256_file(blessed) {
        Err(_) => {
            return Err(format!(
                "no blessed image {shown} to diff against (`isoproof golden bless` stores it)"
            ))
        }
        Ok(h) if h != old.sha256 => {
            return Err(format!(
            "{shown} is not the image its manifest describes (sha256 {}, manifest {}); bless again",
            &h[..12],
            &old.sha256[..12]
        ))
        }
        Ok(_) => {}
    }
    let d =
        diff::diff(blessed, rebuilt).map_err(|e| format!("cannot diff against {shown}: {e}"))?;
    let mut v = vec![format!("diff {shown} -> rebuilt image:")];
    v.extend(d.to_text().lines().map(|l| format!("  {l}")));
    Ok(v)
}

/// Rebuilds a scenario and writes its image and then its manifest, each atomically: an
/// interrupted bless leaves an image its manifest does not describe, which `check` reports.
pub fn bless(scenario: &Path, root: &Path, golden: &Path) -> Result<Manifest, GoldenError> {
    let tmp =
        tempfile::tempdir().map_err(|e| GoldenError::Io(format!("temporary directory: {e}")))?;
    let (m, out) = build_manifest(scenario, root, tmp.path())?;
    fs::create_dir_all(golden)
        .map_err(|e| GoldenError::Io(format!("{}: {e}", golden.display())))?;
    let image = image_path(golden, scenario);
    crate::output::copy_atomic(&out, &image)
        .map_err(|e| GoldenError::Io(format!("{}: {e}", image.display())))?;
    let path = manifest_path(golden, scenario);
    crate::output::write_atomic(&path, crate::output::json(&m.to_json()).as_bytes())
        .map_err(|e| GoldenError::Io(format!("{}: {e}", path.display())))?;
    Ok(m)
}

/// Text for one outcome.
pub fn describe(scenario: &str, o: &Outcome) -> String {
    let mut s = String::new();
    match o {
        Outcome::Same => {
            let _ = writeln!(s, "ok            {scenario}");
        }
        Outcome::NoManifest => {
            let _ = writeln!(
                s,
                "NO MANIFEST   {scenario} (run `isoproof golden bless {scenario}`)"
            );
        }
        Outcome::InputChanged(v) => {
            let _ = writeln!(s, "input changed {scenario} (review, then bless)");
            v.iter().for_each(|l| {
                let _ = writeln!(s, "    {l}");
            });
        }
        Outcome::Regression(v) => {
            let _ = writeln!(s, "REGRESSION    {scenario}");
            v.iter().for_each(|l| {
                let _ = writeln!(s, "    {l}");
            });
        }
    }
    s
}

/// ImageError → GoldenError, for callers that mix the two.
impl From<ImageError> for GoldenError {
    fn from(e: ImageError) -> Self {
        GoldenError::Io(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let h = |c: char| c.to_string().repeat(64);
        Manifest {
            scenario: "scenarios/s.yaml".into(),
            output: "S.iso".into(),
            sha256: h('a'),
            size: 100,
            inputs: [("scenarios/s.yaml".to_string(), h('b'))].into(),
            structures: [("directory at 4096".to_string(), (2048, h('c')))].into(),
            files: [("/etc/hostname".to_string(), (5, h('d')))].into(),
        }
    }

    #[test]
    fn round_trips_through_json() {
        let m = manifest();
        assert_eq!(Manifest::from_json(&m.to_json()), Some(m));
    }

    #[test]
    fn same_inputs_different_output_is_a_regression_by_structure() {
        let old = manifest();
        let mut new = manifest();
        new.sha256 = "e".repeat(64);
        new.files
            .insert("/etc/hostname".into(), (6, "f".repeat(64)));
        let Outcome::Regression(lines) = compare(&old, &new) else {
            panic!("not a regression")
        };
        assert_eq!(
            lines[1..],
            ["file /etc/hostname: 5 bytes sha256 dddddddddddd -> 6 bytes sha256 ffffffffffff"]
        );
        assert_eq!(compare(&old, &old), Outcome::Same);
    }

    #[test]
    fn a_changed_input_wins_over_a_changed_output() {
        let old = manifest();
        let mut new = manifest();
        new.sha256 = "e".repeat(64);
        new.inputs.insert("scenarios/s.yaml".into(), "0".repeat(64));
        assert_eq!(
            compare(&old, &new),
            Outcome::InputChanged(vec![
                "input scenarios/s.yaml: sha256 bbbbbbbbbbbb -> 000000000000".into()
            ])
        );
    }
}
