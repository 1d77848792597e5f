//! Stage 4, **golden**: every scenario's image pinned by a manifest — the output's sha256 and
//! size, the sha256 of every input file, of every structure and of every file of the image —
//! so that a change in override semantics or in the writer shows up as a changed hash, and
//! the report says what changed (with the image stage's structural `diff`).
//!
//! `check` rebuilds in a temporary directory and compares; a changed input is reported as
//! such, not as a regression. Either way the report carries the structural diff against
//! the blessed image, which `bless` stores beside the manifest (`golden/<stem>.iso`; images
//! are mostly zeros, and git stores them compressed). `bless` is the only way manifests and
//! images change. Builds depend on the scenario alone: its `isoImage.sourceDateEpoch` is the
//! clock, whatever the environment.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::compose::{self, BuildError, Origin, Planned};
use crate::hex::hex;
use crate::image::read::snapshot::short;
use crate::image::write::plan::{Content, Plan};
use crate::publish::Durable;

pub mod image;

/// The output of a manifest: the image's file name, sha256 and size.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Output {
    /// The output's file name (`image.fileName`).
    pub name: String,
    /// The output's sha256.
    pub sha256: String,
    /// The output's size in bytes.
    pub size: u64,
}

/// A size and a sha256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hashed {
    /// Bytes.
    pub size: u64,
    /// Their sha256.
    pub sha256: String,
}

/// A manifest: what a scenario's image must be.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// The scenario's file name.
    pub scenario: String,
    /// The image.
    pub output: Output,
    /// Input files (scenario modules, copied contents, payload parts): path relative to the
    /// scenario's folder, by its text (`modules/iso-image.yaml`, `../payload/root/bin/busybox`)
    /// → sha256.
    pub inputs: BTreeMap<String, String>,
    /// Structures of the image: "structure at offset" → size and sha256.
    pub structures: BTreeMap<String, Hashed>,
    /// Files of the image: target → size and sha256.
    pub files: BTreeMap<String, Hashed>,
}

/// Why a golden operation failed (not a mismatch: those are [`Outcome`]s).
#[derive(Debug, thiserror::Error)]
pub enum GoldenError {
    /// The scenario did not build.
    #[error("{}: does not build:\n{source}", scenario.display())]
    Build {
        /// The scenario.
        scenario: PathBuf,
        /// Why.
        #[source]
        source: BuildError,
    },
    /// An input is not a regular file, or too large to read.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// A file or directory could not be written (an image, a manifest, a kept copy, a
    /// temporary directory). What cannot be read is [`GoldenError::Input`].
    #[error("{}: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A manifest that exists but does not read as one.
    #[error("{}: not a golden manifest: {source}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// No scenarios were named and the default folder cannot be listed.
    #[error("{}: {source} (name the scenarios, or run from the folder that holds `scenarios/`)", dir.display())]
    NoScenarios {
        /// The folder.
        dir: PathBuf,
        /// Why it cannot be listed.
        #[source]
        source: std::io::Error,
    },
    /// The caller's cancel check said stop.
    #[error("interrupted")]
    Interrupted,
    /// An image (`--image`) could not be read.
    #[error("{}: {source}", path.display())]
    Image {
        /// The image.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::image::read::inspect::ReadError,
    },
    /// A record name (`--name`) that cannot name a file in the golden directory.
    #[error("record name {name:?}: {why}")]
    Name {
        /// The name.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// `--name` names a scenario's manifest, not an image's record.
    #[error("{}: a scenario's manifest, not an image record; choose another --name", path.display())]
    NotAnImageRecord {
        /// The manifest.
        path: PathBuf,
    },
}

impl GoldenError {
    /// Its exit class.
    pub fn class(&self) -> crate::exit::Class {
        use crate::exit::Class;
        match self {
            GoldenError::Build { source, .. } => source.class(),
            GoldenError::Write { .. } => Class::Output,
            GoldenError::Input(_)
            | GoldenError::Manifest { .. }
            | GoldenError::Image { .. }
            | GoldenError::Name { .. }
            | GoldenError::NoScenarios { .. }
            | GoldenError::NotAnImageRecord { .. } => Class::BadInput,
            GoldenError::Interrupted => Class::Interrupted,
        }
    }
}

/// A write to `path` failed.
pub(crate) fn write_err(path: &Path) -> impl Fn(std::io::Error) -> GoldenError + '_ {
    move |source| GoldenError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn sha256_file(p: &Path) -> Result<String, GoldenError> {
    Ok(crate::input::sha256_hex(p)?)
}

/// A path relative to `root` by its text: inside it, the rest of the path; outside it, with
/// `..` — so the same trees at another place, read from any working directory, give the
/// same manifest.
fn shown(p: &Path, root: &Path) -> String {
    let p = &lexical(p);
    if let Ok(r) = p.strip_prefix(root) {
        return r.to_string_lossy().into_owned();
    }
    if !p.is_absolute() || !root.is_absolute() {
        return p.to_string_lossy().into_owned();
    }
    let a: Vec<_> = p.components().collect();
    let b: Vec<_> = root.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &a[common..] {
        out.push(c);
    }
    out.to_string_lossy().into_owned()
}

/// `p` with `.` and `dir/..` removed by its text alone (no symlink is followed: the path is
/// the one the scenario names).
fn lexical(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Builds a scenario into `dir` and describes the result as a manifest, naming every input
/// relative to the scenario's folder (what the scenario's own paths are relative to).
pub(crate) fn build_manifest(
    scenario: &Path,
    dir: &Path,
    cancel: &dyn Fn() -> bool,
) -> Result<(Manifest, PathBuf), GoldenError> {
    let fail = |source| match source {
        BuildError::Image(crate::image::ImageError::Interrupted) => GoldenError::Interrupted,
        source => GoldenError::Build {
            scenario: scenario.to_path_buf(),
            source,
        },
    };
    let Planned {
        scenario: s, plan, ..
    } = compose::plan_scenario(scenario).map_err(fail)?;
    let absolute = |p: &Path| lexical(&std::path::absolute(p).unwrap_or_else(|_| p.into()));
    let scenario_abs = absolute(scenario);
    let root = scenario_abs.parent().unwrap_or(Path::new("/"));
    let out = dir.join(&plan.iso_name);
    // A scratch image in a private directory: hashed, maybe diffed or copied, then gone.
    let made =
        compose::build_as(&plan, &out, Durable::Scratch, cancel, &mut |_| {}).map_err(fail)?;
    // A netboot directory is recorded as `golden bless --image` records one: its files, the
    // files inside its initrd and store, the initrd's archives as structures.
    let snap = match made {
        compose::Made::Iso(_) => None,
        compose::Made::Netboot { .. } => Some(
            crate::image::read::snapshot::snapshot_dir(&out).map_err(|source| {
                GoldenError::Image {
                    path: out.clone(),
                    source,
                }
            })?,
        ),
    };
    let output = match &snap {
        Some(s) => Output {
            name: plan.iso_name.clone(),
            sha256: s.sha256.clone(),
            size: s.size,
        },
        None => Output {
            name: plan.iso_name.clone(),
            sha256: sha256_file(&out)?,
            size: fs::metadata(&out).map_err(write_err(&out))?.len(),
        },
    };
    let mut m = Manifest {
        scenario: scenario
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        output,
        ..Manifest::default()
    };
    for (p, text) in s.sources.texts() {
        // `.nix` modules' `lib` is part of isoproof, like its code; its built-in NixOS modules
        // are inputs (by their `<nixpkgs/…>` name), as the files on the disk are.
        if p.as_os_str().is_empty() {
            continue;
        }
        let name = if crate::scenario::nixos::is_builtin(p) {
            crate::scenario::nixos::shown(p)
        } else {
            shown(&absolute(p), root)
        };
        m.inputs.insert(name, hashed(text.as_bytes()).sha256);
    }
    for f in &plan.files {
        match &f.origin {
            Origin::Copy { source, size, .. } => {
                let h = sha256_file(source)?;
                m.inputs.insert(shown(&absolute(source), root), h.clone());
                m.files.insert(
                    f.target.clone(),
                    Hashed {
                        size: *size,
                        sha256: h,
                    },
                );
            }
            Origin::Generated { bytes, .. } => {
                m.files.insert(f.target.clone(), hashed(bytes));
            }
            Origin::Symlink(t) => {
                m.files.insert(f.target.clone(), hashed(t.as_bytes()));
            }
            Origin::Dir => {}
        }
    }
    if let Some(l) = &plan.linux {
        for p in &l.inputs {
            m.inputs.insert(shown(&absolute(p), root), sha256_file(p)?);
        }
    }
    match (&made, snap) {
        (compose::Made::Iso(layout), _) => structures(layout, &mut m),
        (_, Some(snap)) => {
            use crate::image::read::snapshot::Kind;
            for (name, f) in snap.files.iter().filter(|(n, _)| n.contains('!')) {
                let h = match (f.kind, &f.sha256, &f.link) {
                    (Kind::File, Some(sha256), _) => Hashed {
                        size: f.size,
                        sha256: sha256.clone(),
                    },
                    (Kind::Symlink, _, Some(t)) => hashed(t.as_bytes()),
                    _ => continue,
                };
                m.files.insert(name.clone(), h);
            }
            for (name, st) in snap.structures {
                m.structures.insert(
                    format!("{name} at {}", st.offset),
                    Hashed {
                        size: st.size,
                        sha256: st.sha256,
                    },
                );
            }
        }
        (_, None) => {}
    }
    Ok((m, out))
}

fn hashed(b: &[u8]) -> Hashed {
    Hashed {
        size: b.len() as u64,
        sha256: hex(&Sha256::digest(b)),
    }
}

fn structures(layout: &Plan, m: &mut Manifest) {
    for e in &layout.extents {
        if let Content::Bytes(b) = &e.content {
            if e.what.is_file() {
                continue; // generated files are listed under files
            }
            m.structures
                .insert(format!("{} at {}", e.what, e.offset), hashed(b));
        }
    }
}

/// The result of checking one scenario.
#[derive(Debug)]
pub enum Outcome {
    /// The image is what the manifest says.
    Same,
    /// Inputs changed since the manifest was blessed: not a regression; bless after review.
    InputChanged(Findings),
    /// Same inputs, different image: a regression.
    Regression(Findings),
    /// No manifest for this scenario yet.
    NoManifest,
}

/// What a check found when the image is not what its manifest says.
#[derive(Debug, Default)]
pub struct Findings {
    /// Inputs changed, added or removed.
    pub inputs: Vec<String>,
    /// How the output changed (regressions).
    pub output: Option<String>,
    /// Structures and files whose hashes differ between the manifests (regressions).
    pub hashes: Vec<String>,
    /// The structural diff of the rebuilt image against the blessed one, or why there is none.
    pub diff: Option<Result<Vec<String>, NoDiff>>,
}

/// Why a changed image could not be diffed against the blessed one.
#[derive(Debug, thiserror::Error)]
pub enum NoDiff {
    /// No blessed image is stored (manifest-only records, or it was removed).
    #[error("no blessed image {} to diff against (`isoproof golden bless` stores it)", .0.display())]
    Missing(PathBuf),
    /// The stored image is not the one the manifest describes.
    #[error("{} is not the image its manifest describes (sha256 {}, manifest {}); bless again", path.display(), short(found), short(manifest))]
    NotBlessed {
        /// The stored image.
        path: PathBuf,
        /// Its sha256.
        found: String,
        /// The manifest's.
        manifest: String,
    },
    /// One of the two images does not read.
    #[error("cannot diff against {}: {source}", path.display())]
    Diff {
        /// The blessed image.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::image::read::diff::DiffError>,
    },
}

impl Findings {
    /// The report's lines: inputs, output, then the diff where there is one (it says all the
    /// hash lines say, and more), else the hash lines and why there is no diff.
    pub fn lines(&self) -> Vec<String> {
        let mut v = self.inputs.clone();
        v.extend(self.output.clone());
        match &self.diff {
            Some(Ok(d)) => v.extend(d.iter().cloned()),
            Some(Err(why)) => {
                v.extend(self.hashes.iter().cloned());
                v.push(why.to_string());
            }
            None => v.extend(self.hashes.iter().cloned()),
        }
        v
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
pub(crate) fn compare(old: &Manifest, new: &Manifest) -> Outcome {
    let keys = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
        let mut v = Vec::new();
        for (k, h) in a {
            match b.get(k) {
                None => v.push(format!("input {k}: removed")),
                Some(x) if x != h => {
                    v.push(format!("input {k}: sha256 {} -> {}", short(h), short(x)))
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
    if inputs.is_empty() && old.output == new.output {
        return Outcome::Same;
    }
    let (o, n) = (&old.output, &new.output);
    let output = if o == n {
        format!(
            "output {}: unchanged ({} bytes sha256 {})",
            o.name,
            o.size,
            short(&o.sha256)
        )
    } else {
        let renamed = if o.name == n.name {
            String::new()
        } else {
            format!("{} ", n.name)
        };
        format!(
            "output {}: {} bytes sha256 {} -> {renamed}{} bytes sha256 {}",
            o.name,
            o.size,
            short(&o.sha256),
            n.size,
            short(&n.sha256)
        )
    };
    let mut lines = Vec::new();
    let pairs = |what: &str,
                 a: &BTreeMap<String, Hashed>,
                 b: &BTreeMap<String, Hashed>,
                 lines: &mut Vec<String>| {
        for (k, x) in a {
            match b.get(k) {
                None => lines.push(format!("{what} {k}: gone")),
                Some(y) if y.sha256 != x.sha256 => lines.push(format!(
                    "{what} {k}: {} bytes sha256 {} -> {} bytes sha256 {}",
                    x.size,
                    short(&x.sha256),
                    y.size,
                    short(&y.sha256)
                )),
                _ => {}
            }
        }
        for (k, y) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
            lines.push(format!("{what} {k}: new, {} bytes", y.size));
        }
    };
    pairs("structure", &old.structures, &new.structures, &mut lines);
    pairs("file", &old.files, &new.files, &mut lines);
    let findings = Findings {
        inputs,
        output: Some(output),
        hashes: lines,
        diff: None,
    };
    if findings.inputs.is_empty() {
        Outcome::Regression(findings)
    } else {
        Outcome::InputChanged(findings)
    }
}

/// The bytes of a golden file; `None` when there is none (anything else that keeps it from
/// being read is an error).
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, GoldenError> {
    use crate::input::{read_regular, InputError, MAX_TEXT};
    match read_regular(path, MAX_TEXT) {
        Ok(b) => Ok(Some(b)),
        Err(InputError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads a manifest; `None` when there is none.
pub fn read_manifest(path: &Path) -> Result<Option<Manifest>, GoldenError> {
    let Some(bytes) = read_optional(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| GoldenError::Manifest {
            path: path.to_path_buf(),
            source,
        })
}

/// Images up to this size are stored beside their manifest (mostly zeros: they compress to
/// a few KB in git); larger ones keep only the manifest.
pub const MAX_STORED_IMAGE: u64 = 4 << 20;

/// Checks one scenario against its manifest; `keep` keeps the rebuilt image there.
pub fn check(
    scenario: &Path,
    golden: &Path,
    keep: Option<&Path>,
    cancel: &dyn Fn() -> bool,
) -> Result<Outcome, GoldenError> {
    let mpath = manifest_path(golden, scenario);
    let tmp = tempfile::tempdir().map_err(write_err(&std::env::temp_dir()))?;
    let (new, out) = build_manifest(scenario, tmp.path(), cancel)?;
    if let Some(k) = keep {
        fs::create_dir_all(k).map_err(write_err(k))?;
        let kept = k.join(&new.output.name);
        keep_output(&out, &kept).map_err(write_err(&kept))?;
    }
    let Some(old) = read_manifest(&mpath)? else {
        return Ok(Outcome::NoManifest);
    };
    let mut outcome = compare(&old, &new);
    // A record of an image too large to keep is its manifest alone (see [`bless`]): the
    // structure and file lines of the two manifests say what changed.
    let stored = old.output.size <= MAX_STORED_IMAGE;
    if let (Outcome::InputChanged(f) | Outcome::Regression(f), true) = (&mut outcome, stored) {
        if old.output != new.output {
            f.diff = Some(against_blessed(&old, &image_path(golden, scenario), &out));
        }
    }
    Ok(outcome)
}

/// Copies a rebuilt output (an image, or a netboot directory) to where `--keep` says.
fn keep_output(out: &Path, kept: &Path) -> std::io::Result<()> {
    if !out.is_dir() {
        return crate::publish::copy_atomic(out, kept);
    }
    let mut files = Vec::new();
    for e in fs::read_dir(out)? {
        let e = e?;
        files.push((
            e.file_name().to_string_lossy().into_owned(),
            fs::read(e.path())?,
        ));
    }
    let named: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), &b[..])).collect();
    crate::publish::publish_dir(kept, &named, Durable::Yes, &|| false).map(|_| ())
}

/// The structural diff of the rebuilt image against the blessed one, as report lines; or why
/// there is none.
fn against_blessed(old: &Manifest, blessed: &Path, rebuilt: &Path) -> Result<Vec<String>, NoDiff> {
    let shown = blessed.display();
    match sha256_file(blessed) {
        Err(_) => return Err(NoDiff::Missing(blessed.to_path_buf())),
        Ok(h) if h != old.output.sha256 => {
            return Err(NoDiff::NotBlessed {
                path: blessed.to_path_buf(),
                found: h,
                manifest: old.output.sha256.clone(),
            })
        }
        Ok(_) => {}
    }
    let d = crate::image::read::diff::diff(blessed, rebuilt).map_err(|e| NoDiff::Diff {
        path: blessed.to_path_buf(),
        source: Box::new(e),
    })?;
    let mut v = vec![format!("diff {shown} -> rebuilt image:")];
    v.extend(d.to_text().lines().map(|l| format!("  {l}")));
    Ok(v)
}

/// Rebuilds a scenario and writes its image and then its manifest, each atomically: an
/// interrupted bless leaves an image its manifest does not describe, which `check` reports.
pub fn bless(
    scenario: &Path,
    golden: &Path,
    cancel: &dyn Fn() -> bool,
) -> Result<Manifest, GoldenError> {
    let tmp = tempfile::tempdir().map_err(write_err(&std::env::temp_dir()))?;
    let (m, out) = build_manifest(scenario, tmp.path(), cancel)?;
    fs::create_dir_all(golden).map_err(write_err(golden))?;
    let image = image_path(golden, scenario);
    if m.output.size <= MAX_STORED_IMAGE {
        crate::publish::copy_atomic(&out, &image).map_err(write_err(&image))?;
    } else if image.exists() {
        // A live image (tens of MB of compressed kernel and store) would grow the repository
        // at every bless: its record is the manifest alone, and a failed check shows the
        // manifest's per-structure lines instead of a diff.
        fs::remove_file(&image).map_err(write_err(&image))?;
    }
    let path = manifest_path(golden, scenario);
    crate::publish::write_atomic(&path, crate::output::json(&m).as_bytes())
        .map_err(write_err(&path))?;
    Ok(m)
}

/// What [`check_all`] and [`bless_all`] report as they go.
#[derive(Debug)]
pub enum Event<'a> {
    /// A scenario was checked.
    Checked {
        /// The scenario.
        scenario: &'a Path,
        /// What the check found.
        outcome: &'a Outcome,
    },
    /// A scenario was blessed.
    Blessed {
        /// The scenario.
        scenario: &'a Path,
        /// Its new manifest.
        manifest: &'a Manifest,
    },
    /// A scenario could not be checked or blessed.
    Failed {
        /// The scenario.
        scenario: &'a Path,
        /// Why.
        error: &'a GoldenError,
    },
}

/// How a run over many scenarios went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Scenarios whose image is what the manifest says (or that were blessed).
    pub ok: usize,
    /// Regressions: same inputs, another image.
    pub regressions: usize,
    /// Inputs changed since blessing.
    pub input_changed: usize,
    /// Scenarios without a manifest.
    pub no_manifest: usize,
    /// Scenarios that could not be checked or blessed.
    pub failed: usize,
    /// Whether the cancel check stopped the run.
    pub interrupted: bool,
}

impl Summary {
    /// Whether every scenario was ok.
    pub fn all_ok(&self) -> bool {
        *self
            == Summary {
                ok: self.ok,
                ..Summary::default()
            }
    }
}

/// Where golden records live and how to run.
#[derive(Clone, Copy)]
pub struct Settings<'a> {
    /// The golden directory.
    pub golden: &'a Path,
    /// Keep rebuilt images here (`check` only).
    pub keep: Option<&'a Path>,
    /// Asked between scenarios and while writing images.
    pub cancel: &'a dyn Fn() -> bool,
}

/// Checks every scenario against its manifest, reporting each as it is done.
///
/// # Example
///
/// ```no_run
/// use std::path::{Path, PathBuf};
/// use isoproof::golden::{check_all, Event, Settings};
///
/// let settings = Settings {
///     golden: Path::new("golden"),
///     keep: None,
///     cancel: &|| false,
/// };
/// let scenarios = vec![PathBuf::from("scenarios/installer-minimal.yaml")];
/// let summary = check_all(&scenarios, &settings, &mut |e| {
///     if let Event::Checked { scenario, outcome } = e {
///         let shown = scenario.display().to_string();
///         print!("{}", isoproof::golden::describe(&shown, outcome, Path::new("golden")));
///     }
/// });
/// assert!(summary.all_ok());
/// ```
pub fn check_all(
    scenarios: &[PathBuf],
    s: &Settings<'_>,
    on: &mut dyn FnMut(Event<'_>),
) -> Summary {
    each(scenarios, s, on, |scenario| {
        let outcome = check(scenario, s.golden, s.keep, s.cancel)?;
        Ok((
            match &outcome {
                Outcome::Same => Tally::Ok,
                Outcome::Regression(_) => Tally::Regression,
                Outcome::InputChanged(_) => Tally::InputChanged,
                Outcome::NoManifest => Tally::NoManifest,
            },
            Done::Checked(outcome),
        ))
    })
}

/// Blesses every scenario, reporting each as it is done.
pub fn bless_all(
    scenarios: &[PathBuf],
    s: &Settings<'_>,
    on: &mut dyn FnMut(Event<'_>),
) -> Summary {
    each(scenarios, s, on, |scenario| {
        let m = bless(scenario, s.golden, s.cancel)?;
        Ok((Tally::Ok, Done::Blessed(m)))
    })
}

/// Which count of a [`Summary`] a scenario adds to.
enum Tally {
    Ok,
    Regression,
    InputChanged,
    NoManifest,
}

/// What was done to one scenario.
enum Done {
    Checked(Outcome),
    Blessed(Manifest),
}

/// Runs `one` on every scenario until the cancel check says stop, counting and reporting.
fn each(
    scenarios: &[PathBuf],
    s: &Settings<'_>,
    on: &mut dyn FnMut(Event<'_>),
    one: impl Fn(&Path) -> Result<(Tally, Done), GoldenError>,
) -> Summary {
    let mut sum = Summary::default();
    for scenario in scenarios {
        if (s.cancel)() {
            sum.interrupted = true;
            break;
        }
        match one(scenario) {
            Ok((tally, done)) => {
                *match tally {
                    Tally::Ok => &mut sum.ok,
                    Tally::Regression => &mut sum.regressions,
                    Tally::InputChanged => &mut sum.input_changed,
                    Tally::NoManifest => &mut sum.no_manifest,
                } += 1;
                on(match &done {
                    Done::Checked(outcome) => Event::Checked { scenario, outcome },
                    Done::Blessed(manifest) => Event::Blessed { scenario, manifest },
                });
            }
            Err(GoldenError::Interrupted) => {
                sum.interrupted = true;
                break;
            }
            Err(error) => {
                sum.failed += 1;
                on(Event::Failed {
                    scenario,
                    error: &error,
                });
            }
        }
    }
    sum
}

/// Every `*.yaml` and `*.nix` file directly in `dir`, sorted: the scenarios a run takes by
/// default.
pub fn scenarios_in(dir: &Path) -> Result<Vec<PathBuf>, GoldenError> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|source| GoldenError::NoScenarios {
            dir: dir.to_path_buf(),
            source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "nix") && p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

/// ` --golden DIR` when `dir` is not the default `golden`, for the commands a report suggests.
pub fn golden_flag(dir: &Path) -> String {
    if dir == Path::new("golden") {
        String::new()
    } else {
        format!(" --golden {}", dir.display())
    }
}

impl Outcome {
    /// Its exit class.
    pub fn class(&self) -> crate::exit::Class {
        use crate::exit::Class;
        match self {
            Outcome::Same => Class::Ok,
            Outcome::Regression(_) => Class::GoldenRegression,
            Outcome::InputChanged(_) => Class::GoldenInputChanged,
            Outcome::NoManifest => Class::GoldenNoRecord,
        }
    }
}

/// Text for one outcome; the commands it suggests write to `golden` (the golden directory).
pub fn describe(scenario: &str, o: &Outcome, golden: &Path) -> String {
    let mut s = String::new();
    match o {
        Outcome::Same => {
            let _ = writeln!(s, "ok            {scenario}");
        }
        Outcome::NoManifest => {
            let _ = writeln!(
                s,
                "NO MANIFEST   {scenario} (run `isoproof golden bless{} {scenario}`)",
                golden_flag(golden)
            );
        }
        Outcome::InputChanged(f) => {
            let _ = writeln!(
                s,
                "input changed {scenario} (review, then `isoproof golden bless{} {scenario}`)",
                golden_flag(golden)
            );
            f.lines().iter().for_each(|l| {
                let _ = writeln!(s, "    {l}");
            });
        }
        Outcome::Regression(f) => {
            let _ = writeln!(s, "REGRESSION    {scenario}");
            f.lines().iter().for_each(|l| {
                let _ = writeln!(s, "    {l}");
            });
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let h = |c: char| c.to_string().repeat(64);
        let hashed = |size, c| Hashed { size, sha256: h(c) };
        Manifest {
            scenario: "scenarios/s.yaml".into(),
            output: Output {
                name: "S.iso".into(),
                sha256: h('a'),
                size: 100,
            },
            inputs: [("scenarios/s.yaml".to_string(), h('b'))].into(),
            structures: [("directory / at 4096".to_string(), hashed(2048, 'c'))].into(),
            files: [("/etc/hostname".to_string(), hashed(5, 'd'))].into(),
        }
    }

    #[test]
    fn paths_are_shown_relative_to_the_root_by_their_text() {
        let root = Path::new("/a/b/checkout");
        assert_eq!(
            shown(Path::new("/a/b/checkout/scenarios/x.yaml"), root),
            "scenarios/x.yaml"
        );
        assert_eq!(
            shown(Path::new("/a/b/checkout/scenarios/../../inputs/p/k"), root),
            "../inputs/p/k"
        );
        assert_eq!(
            shown(Path::new("/a/elsewhere/./p"), root),
            "../../elsewhere/p"
        );
    }

    #[test]
    fn round_trips_through_json() {
        let m = manifest();
        let text = crate::output::json(&m);
        assert!(text.starts_with(
            "{\n  \"scenario\": \"scenarios/s.yaml\",\n  \"output\": {\n    \"name\""
        ));
        assert_eq!(serde_json::from_str::<Manifest>(&text).unwrap(), m);
    }

    #[test]
    fn an_unreadable_manifest_is_an_error_not_a_missing_one() {
        use crate::input::InputError;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        assert!(read_manifest(&p).unwrap().is_none());
        std::fs::write(&p, "{\"scenario\": 1}").unwrap();
        assert!(matches!(
            read_manifest(&p),
            Err(GoldenError::Manifest { .. })
        ));
        std::fs::create_dir(d.path().join("dir.json")).unwrap();
        assert!(matches!(
            read_manifest(&d.path().join("dir.json")),
            Err(GoldenError::Input(InputError::NotRegular { .. }))
        ));
    }

    #[test]
    fn same_inputs_different_output_is_a_regression_by_structure() {
        let old = manifest();
        let mut new = manifest();
        new.output.sha256 = "e".repeat(64);
        new.files.insert(
            "/etc/hostname".into(),
            Hashed {
                size: 6,
                sha256: "f".repeat(64),
            },
        );
        let Outcome::Regression(f) = compare(&old, &new) else {
            panic!("not a regression")
        };
        assert_eq!(
            f.hashes,
            ["file /etc/hostname: 5 bytes sha256 dddddddddddd -> 6 bytes sha256 ffffffffffff"]
        );
        // With a diff against the blessed image, the diff replaces the hash lines.
        let with_diff = Findings {
            diff: Some(Ok(vec!["diff ...".into()])),
            inputs: f.inputs.clone(),
            output: f.output.clone(),
            hashes: f.hashes.clone(),
        };
        assert_eq!(with_diff.lines()[1..], ["diff ..."]);
        let no_image = Findings {
            diff: Some(Err(NoDiff::Missing("golden/x.iso".into()))),
            ..f
        };
        assert_eq!(
            no_image.lines().last().map(String::as_str),
            Some(
                "no blessed image golden/x.iso to diff against (`isoproof golden bless` stores it)"
            )
        );
        assert!(matches!(compare(&old, &old), Outcome::Same));
    }

    #[test]
    fn a_changed_input_wins_over_a_changed_output_and_keeps_its_lines() {
        let old = manifest();
        let mut new = manifest();
        new.output.sha256 = "e".repeat(64);
        new.inputs.insert("scenarios/s.yaml".into(), "0".repeat(64));
        new.files.insert(
            "/etc/hostname".into(),
            Hashed {
                size: 6,
                sha256: "f".repeat(64),
            },
        );
        let Outcome::InputChanged(f) = compare(&old, &new) else {
            panic!("not an input change")
        };
        // An image kept as a manifest alone (a live image) still shows what changed in it.
        assert_eq!(
            f.lines(),
            [
                "input scenarios/s.yaml: sha256 bbbbbbbbbbbb -> 000000000000",
                "output S.iso: 100 bytes sha256 aaaaaaaaaaaa -> 100 bytes sha256 eeeeeeeeeeee",
                "file /etc/hostname: 5 bytes sha256 dddddddddddd -> 6 bytes sha256 ffffffffffff",
            ]
        );
        // Another input, the same image: said so.
        let mut same_image = manifest();
        same_image
            .inputs
            .insert("scenarios/s.yaml".into(), "0".repeat(64));
        let Outcome::InputChanged(f) = compare(&old, &same_image) else {
            panic!("not an input change")
        };
        assert_eq!(
            f.output.as_deref(),
            Some("output S.iso: unchanged (100 bytes sha256 aaaaaaaaaaaa)")
        );
    }
}
