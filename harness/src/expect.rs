//! What a boot of any image waits for (`isoproof boot --expect RE --expect-screen RE`):
//! regular expressions on the serial console or on the VGA text screen, matched in order,
//! each within its own deadline counted from the match before it. The serial log is matched
//! with terminal escape sequences removed, as a person reads it.

use std::fmt;
use std::fs;
use std::io::Read as _;
use std::path::Path;

use regex::Regex;

/// Where an expectation looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// COM1.
    Serial,
    /// The 80x25 VGA text screen (read through QMP; text mode only, as BIOS firmware and
    /// boot loaders in text mode use it).
    Screen,
}

/// One awaited pattern.
#[derive(Clone, Debug)]
pub struct Expectation {
    /// Where.
    pub source: Source,
    /// What.
    pub pattern: Regex,
}

impl Expectation {
    /// A pattern on `source`; an empty pattern is refused, as it matches any output.
    pub fn new(source: Source, pattern: &str) -> Result<Expectation, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        let pattern = regex::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()?;
        Ok(Expectation { source, pattern })
    }
}

/// Why a pattern cannot be awaited.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// The empty pattern.
    #[error("an empty pattern would match any output")]
    Empty,
    /// Not a regular expression (or one too large).
    #[error(transparent)]
    Regex(#[from] regex::Error),
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = match self.source {
            Source::Serial => "the serial console",
            Source::Screen => "the screen",
        };
        write!(f, "/{}/ on {on}", self.pattern.as_str())
    }
}

/// `s` without terminal escape sequences (CSI `ESC [ ... final`, OSC `ESC ] ... BEL|ST`, two-
/// byte `ESC x`) and without control characters other than newline and tab; carriage
/// returns are dropped.
pub fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => match it.next() {
                Some('[') => {
                    // Parameters and intermediates, then one final byte in @..~.
                    for x in it.by_ref() {
                        if ('@'..='~').contains(&x) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(x) = it.next() {
                        if x == '\u{7}' {
                            break;
                        }
                        if x == '\u{1b}' && it.peek() == Some(&'\\') {
                            it.next();
                            break;
                        }
                    }
                }
                // `ESC intermediates final` (a charset designation such as `ESC ( B`).
                Some(x) if (' '..='/').contains(&x) => {
                    for y in it.by_ref() {
                        if !(' '..='/').contains(&y) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The serial log as it grows: read from where the last poll stopped, kept up to a bound,
/// matched with escapes removed from where the previous expectation matched.
#[derive(Default)]
pub(crate) struct SerialLog {
    file: Option<fs::File>,
    raw: Vec<u8>,
    clean: String,
    /// Where in `clean` the next expectation starts looking.
    from: usize,
    /// Where in `clean` the lines not yet given to [`SerialLog::line`] start.
    lines_from: usize,
    grown: bool,
}

/// The serial log is matched up to this many bytes.
const MAX_LOG: usize = 16 << 20;

impl SerialLog {
    /// Reads what was written since the last poll.
    pub(crate) fn poll(&mut self, path: &Path) {
        if self.file.is_none() {
            self.file = fs::File::open(path).ok();
        }
        let Some(f) = &mut self.file else { return };
        let room = MAX_LOG.saturating_sub(self.raw.len()) as u64;
        let before = self.raw.len();
        let _ = f.take(room).read_to_end(&mut self.raw);
        if self.raw.len() != before {
            self.grown = true;
        }
    }

    /// The log with escapes removed, as of the last poll.
    fn clean(&mut self) -> &str {
        if self.grown {
            self.clean = strip_escapes(&String::from_utf8_lossy(&self.raw));
            self.grown = false;
        }
        &self.clean
    }

    /// The first whole line that `is` accepts among those ended since the last call (each
    /// line is looked at once, however often the log is polled).
    pub(crate) fn line(&mut self, is: fn(&str) -> bool) -> Option<String> {
        let from = self.lines_from;
        let clean = self.clean();
        // The last line may still be growing: only lines that have ended count.
        let end = clean.rfind('\n').map_or(0, |i| i + 1).max(from);
        let found = clean
            .get(from..end)
            .unwrap_or("")
            .lines()
            .map(str::trim)
            .find(|l| is(l))
            .map(str::to_string);
        self.lines_from = end;
        found
    }

    /// Whether `re` matches after the previous match; moves past the match if so.
    pub(crate) fn find(&mut self, re: &Regex) -> bool {
        self.clean();
        match re.find(self.clean.get(self.from..).unwrap_or("")) {
            Some(m) => {
                self.from += m.end();
                true
            }
            None => false,
        }
    }
}

/// The VGA text buffer's 80x25 cells (character, attribute) as text, a line each, trailing
/// blanks removed; bytes outside printable ASCII are shown as spaces.
pub fn screen_text(cells: &[u16]) -> String {
    let mut lines: Vec<String> = cells
        .chunks(80)
        .take(25)
        .map(|row| {
            let s: String = row
                .iter()
                .map(|c| match (c & 0xFF) as u8 {
                    b @ 0x20..=0x7E => b as char,
                    _ => ' ',
                })
                .collect();
            s.trim_end().to_string()
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_removed() {
        let s = "\u{1b}[2J\u{1b}[01;01HSeaBIOS\r\n\u{1b}]0;title\u{7}Booting \u{1b}[1;37mlinux\u{1b}[0m\n\u{1b}(B";
        assert_eq!(strip_escapes(s), "SeaBIOS\nBooting linux\n");
    }

    #[test]
    fn expectations_match_in_order_after_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serial");
        fs::write(&p, "login: \u{1b}[1mISOLINUX\u{1b}[0m 6.04\n").unwrap();
        let mut log = SerialLog::default();
        log.poll(&p);
        let e = |s| Expectation::new(Source::Serial, s).unwrap().pattern;
        assert!(log.find(&e(r"ISOLINUX \d")));
        // "login:" came before the previous match: it is not found again.
        assert!(!log.find(&e("login:")));
        let mut f = fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"log").unwrap();
        log.poll(&p);
        assert!(!log.find(&e("login:")));
        std::io::Write::write_all(&mut f, b"in: ").unwrap();
        log.poll(&p);
        assert!(log.find(&e("login:")));
    }

    #[test]
    fn bad_and_empty_patterns_are_refused() {
        assert!(matches!(
            Expectation::new(Source::Serial, ""),
            Err(PatternError::Empty)
        ));
        let e = Expectation::new(Source::Screen, "(unclosed").unwrap_err();
        assert!(matches!(e, PatternError::Regex(_)));
        assert!(e.to_string().contains("unclosed"), "{e}");
        assert_eq!(
            Expectation::new(Source::Screen, "boot:")
                .unwrap()
                .to_string(),
            "/boot:/ on the screen"
        );
    }

    #[test]
    fn the_text_screen_reads_as_lines() {
        let mut cells = vec![0x0720u16; 80 * 25];
        for (i, b) in "ISOLINUX 6.04".bytes().enumerate() {
            cells[80 + i] = 0x0700 | u16::from(b);
        }
        cells[160] = 0x07C9; // a box-drawing character
        assert_eq!(screen_text(&cells), "\nISOLINUX 6.04");
    }
}
