//! The files a scenario was read from, and positions in them: what every stage's errors
//! point at (`file:line:col`) and quote (the line itself).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

impl Span {
    /// The start of file `file`.
    pub fn start(file: FileId) -> Span {
        Span {
            file,
            line: 1,
            col: 1,
        }
    }
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
    /// Whether every character is one byte, so a column is a byte offset.
    ascii: bool,
    /// Built on the first column looked up in a file that is not ASCII.
    columns: OnceLock<Columns>,
}

/// Turns character columns into byte offsets in a file with multi-byte characters without
/// scanning from the line's start each time: a line may be megabytes long and carry
/// thousands of errors.
#[derive(Debug)]
struct Columns {
    /// The character index (in the file) each line starts at.
    line_chars: Vec<usize>,
    /// The byte offset of every [`STRIDE`]th character of the file.
    every: Vec<usize>,
}

/// Characters between two entries of [`Columns::every`].
const STRIDE: usize = 64;

impl Columns {
    fn new(text: &str) -> Columns {
        let mut line_chars = vec![0];
        let mut every = Vec::with_capacity(text.len() / STRIDE + 1);
        for (n, (i, c)) in text.char_indices().enumerate() {
            if n % STRIDE == 0 {
                every.push(i);
            }
            if c == '\n' {
                line_chars.push(n + 1);
            }
        }
        Columns { line_chars, every }
    }
}

impl Sources {
    pub(crate) fn add(&mut self, display: String, path: PathBuf, text: String) -> FileId {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        self.files.push(SourceFile {
            display,
            path,
            ascii: text.is_ascii(),
            text,
            line_starts,
            columns: OnceLock::new(),
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// The files, in the order read: (shown name, path, text).
    pub(crate) fn into_files(self) -> impl Iterator<Item = (String, PathBuf, String)> {
        self.files.into_iter().map(|f| (f.display, f.path, f.text))
    }

    /// How many files there are.
    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }

    /// The file read from `path` (or, for text isoproof carries, shown as `display`).
    pub(crate) fn find(&self, display: &str, path: &Path) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| {
                if path.as_os_str().is_empty() {
                    f.path.as_os_str().is_empty() && f.display == display
                } else {
                    f.path == path
                }
            })
            .map(|i| FileId(i as u32))
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

    /// The byte offset in its line (see [`Sources::line_text`]) of the character a span's
    /// column names; past the line's end, the line's length.
    pub fn byte_in_line(&self, span: Span) -> Option<usize> {
        let f = self.files.get(span.file.0 as usize)?;
        let line = self.line_text(span.file, span.line)?;
        let col = span.col.saturating_sub(1) as usize;
        if f.ascii {
            return Some(col.min(line.len()));
        }
        let cols = f.columns.get_or_init(|| Columns::new(&f.text));
        let start = *f.line_starts.get(span.line as usize - 1)?;
        let target = cols.line_chars.get(span.line as usize - 1)? + col;
        let Some(&from) = cols.every.get(target / STRIDE) else {
            return Some(line.len());
        };
        // At most STRIDE - 1 characters from the nearest known one; `from` may lie before
        // the line when the line starts between two known characters.
        let at = f.text[from..]
            .char_indices()
            .nth(target % STRIDE)
            .map_or(f.text.len(), |(i, _)| from + i);
        Some(at.saturating_sub(start).min(line.len()))
    }

    /// Every file, in the order read: (path, text as read).
    pub fn texts(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.files
            .iter()
            .map(|f| (f.path.as_path(), f.text.as_str()))
    }

    /// Every file, in the order read: (shown name, path).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.files
            .iter()
            .map(|f| (f.display.as_str(), f.path.as_path()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_characters() {
        let mut s = Sources::default();
        let long: String = "é".repeat(1000);
        let text = format!("a: 1\n{long}x: é\nb: ü\n");
        let id = s.add("f".into(), PathBuf::new(), text);
        let at = |line, col| {
            s.byte_in_line(Span {
                file: id,
                line,
                col,
            })
            .unwrap()
        };
        assert_eq!(at(1, 1), 0);
        assert_eq!(at(1, 4), 3);
        // 1000 two-byte characters, then `x`.
        assert_eq!(at(2, 1001), 2000);
        assert_eq!(&s.line_text(id, 2).unwrap()[at(2, 1004)..], "é");
        assert_eq!(at(3, 4), 3);
        // Past the end of a line: the line's length.
        assert_eq!(at(3, 99), s.line_text(id, 3).unwrap().len());
        let ascii = s.add("g".into(), PathBuf::new(), "abc\ndef".into());
        assert_eq!(
            s.byte_in_line(Span {
                file: ascii,
                line: 2,
                col: 3
            }),
            Some(2)
        );
    }
}
