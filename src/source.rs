//! The files a scenario was read from, and positions in them: what every stage's errors
//! point at (`file:line:col`) and quote (the line itself).

use std::path::{Path, PathBuf};

/// Index of a source file in [`Sources`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileId(pub u32);

/// Where a node starts: file, 1-based line, 1-based column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span {
    /// The file the node was read from.
    pub file: FileId,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
}

/// Every file a scenario was read from, with its text (for excerpts in errors).
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Debug)]
struct SourceFile {
    display: String,
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl Sources {
    pub(crate) fn add(&mut self, display: String, path: PathBuf, text: String) -> FileId {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        self.files.push(SourceFile {
            display,
            path,
            text,
            line_starts,
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// A file's whole text.
    pub(crate) fn text(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map_or("", |f| f.text.as_str())
    }

    /// The name a file is shown by (relative to the scenario's directory).
    pub fn display(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map_or("<unknown>", |f| &f.display)
    }

    /// The file's path on disk.
    pub fn path(&self, id: FileId) -> Option<&Path> {
        self.files.get(id.0 as usize).map(|f| f.path.as_path())
    }

    /// One line of a file (1-based), without its newline.
    pub fn line_text(&self, id: FileId, line: u32) -> Option<&str> {
        let f = self.files.get(id.0 as usize)?;
        let i = line.checked_sub(1)? as usize;
        let start = *f.line_starts.get(i)?;
        let end = f.line_starts.get(i + 1).map_or(f.text.len(), |e| e - 1);
        Some(&f.text[start..end.max(start)])
    }

    /// Every file, in the order read: (shown name, path).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.files
            .iter()
            .map(|f| (f.display.as_str(), f.path.as_path()))
    }
}
