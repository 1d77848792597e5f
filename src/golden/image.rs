//! Golden records of images built by any tool (`golden bless --image FILE --name NAME`): the
//! image's [`Snapshot`] — every structure's decoded fields and hash, every file's hash, mode
//! and link target, inside the ESP, squashfs images and cpio archives too — kept as
//! `golden/NAME.json`, without the image. `check` reads the image again and reports what
//! changed from the two records alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::GoldenError;
use crate::image::read::snapshot::{self, RecordDiff, Snapshot};

/// What `golden bless --image` keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The image's file name when it was blessed (for the reader; `check` takes any path).
    pub image: String,
    /// What the image holds.
    #[serde(flatten)]
    pub snapshot: Snapshot,
}

/// The result of checking an image against its record.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageOutcome {
    /// The image is what the record says.
    Same,
    /// It is not: what changed.
    Changed(Box<RecordDiff>),
    /// There is no record of that name yet.
    NoRecord,
}

impl ImageOutcome {
    /// Its exit class.
    pub fn class(&self) -> crate::exit::Class {
        use crate::exit::Class;
        match self {
            ImageOutcome::Same => Class::Ok,
            ImageOutcome::Changed(_) => Class::GoldenRegression,
            ImageOutcome::NoRecord => Class::GoldenNoRecord,
        }
    }

    /// The report of checking `image` against the record `name` in `golden`: one status
    /// line, then what changed, indented.
    pub fn describe(&self, image: &Path, name: &str, golden: &Path) -> String {
        let shown = image.display();
        match self {
            ImageOutcome::Same => format!("ok            {shown} ({name})\n"),
            ImageOutcome::NoRecord => format!(
                "NO RECORD     {shown} (run `isoproof golden bless{} --image {shown} --name {name}`)\n",
                super::golden_flag(golden)
            ),
            ImageOutcome::Changed(d) => {
                let mut s = format!("CHANGED       {shown} ({name})\n");
                for l in d.lines() {
                    s.push_str(&format!("    {l}\n"));
                }
                s
            }
        }
    }
}

impl ImageRecord {
    /// The line that reports `image` blessed as `name`.
    pub fn describe(&self, image: &Path, name: &str) -> String {
        format!(
            "blessed       {} as {name} ({} bytes, sha256 {}; {} structures, {} files)\n",
            image.display(),
            self.snapshot.size,
            self.snapshot.sha256.get(..16).unwrap_or_default(),
            self.snapshot.structures.len(),
            self.snapshot.files.len()
        )
    }
}

/// A record's name must be a plain file name: it becomes `NAME.json` in the golden directory.
fn record_path(golden: &Path, name: &str) -> Result<PathBuf, GoldenError> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') || name.contains('\0') {
        Some("it holds a `/` or a NUL; it names a file in the golden directory")
    } else if name.starts_with('.') {
        Some("it starts with `.`")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else {
        None
    };
    match why {
        Some(why) => Err(GoldenError::Name {
            name: name.to_string(),
            why: why.to_string(),
        }),
        None => Ok(golden.join(format!("{name}.json"))),
    }
}

fn snap(image: &Path) -> Result<Snapshot, GoldenError> {
    snapshot::snapshot(image).map_err(|source| GoldenError::Image {
        path: image.to_path_buf(),
        source,
    })
}

/// Reads a record; `None` when there is none. A scenario's manifest under that name is an
/// error that says so.
pub fn read_record(path: &Path) -> Result<Option<ImageRecord>, GoldenError> {
    let Some(bytes) = super::read_optional(path)? else {
        return Ok(None);
    };
    let bad = |source| GoldenError::Manifest {
        path: path.to_path_buf(),
        source,
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(bad)?;
    if v.get("scenario").is_some() {
        return Err(GoldenError::NotAnImageRecord {
            path: path.to_path_buf(),
        });
    }
    serde_json::from_value(v).map(Some).map_err(bad)
}

/// Records the image at `image` as `golden/NAME.json` (atomically).
pub fn bless_image(image: &Path, name: &str, golden: &Path) -> Result<ImageRecord, GoldenError> {
    let path = record_path(golden, name)?;
    // A scenario's manifest is not overwritten by an image's record.
    read_record(&path)?;
    let record = ImageRecord {
        image: image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        snapshot: snap(image)?,
    };
    std::fs::create_dir_all(golden).map_err(super::write_err(golden))?;
    crate::publish::write_atomic(&path, crate::output::json(&record).as_bytes())
        .map_err(super::write_err(&path))?;
    Ok(record)
}

/// Checks the image at `image` against `golden/NAME.json`.
pub fn check_image(image: &Path, name: &str, golden: &Path) -> Result<ImageOutcome, GoldenError> {
    let path = record_path(golden, name)?;
    let Some(old) = read_record(&path)? else {
        // The image is read all the same: a bad path is reported before "no record".
        snap(image)?;
        return Ok(ImageOutcome::NoRecord);
    };
    let new = snap(image)?;
    let d = snapshot::compare(&old.snapshot, &new);
    Ok(if d.is_empty() {
        ImageOutcome::Same
    } else {
        ImageOutcome::Changed(Box::new(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_names_are_plain_file_names() {
        let g = Path::new("golden");
        assert_eq!(
            record_path(g, "nixos-24.11").unwrap(),
            Path::new("golden/nixos-24.11.json")
        );
        for bad in ["", "a/b", ".hidden", "../x"] {
            assert!(
                matches!(record_path(g, bad), Err(GoldenError::Name { .. })),
                "{bad:?}"
            );
        }
    }
}
