//! Diagnostics shared by every stage: a kind, the option involved, a message in NixOS wording,
//! and the source locations (file:line:col) of every definition involved, rendered with an
//! excerpt of the YAML so the user sees *which* line lost.

use std::fmt::Write as _;

use serde_json::json;

use crate::source::{Sources, Span};

/// The error kinds of the conformance contract (`tests/conformance/nixpkgs/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// Conflicting definition values.
    Conflict,
    /// A value not of the option's type.
    Type,
    /// An option read but without a value.
    Undefined,
    /// A definition of an option that does not exist.
    Undeclared,
    /// A config reference cycle.
    Recursion,
    /// `mkIf` with a non-boolean condition.
    Condition,
    /// The same option declared twice, incompatibly.
    DeclaredTwice,
    /// A `readOnly` option set more than once.
    ReadOnly,
    /// A `uniq`/`unique` option defined more than once.
    Unique,
    /// A `nullOr` option defined both null and not null.
    NullMix,
    /// A scenario that cannot be read as a scenario.
    Parse,
    /// Evaluation passed one of isoproof's bounds (reference depth, computed sizes).
    Limit,
    /// A definition of an option `removedOptions` removed (`mkRemovedOptionModule`).
    Removed,
    /// A `.nix` definition's computation failed (`throw`, `assert`, a value of the wrong
    /// kind), in Nix's words.
    Eval,
}

impl ErrorKind {
    /// The contract's name for the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::Type => "type",
            ErrorKind::Undefined => "undefined",
            ErrorKind::Undeclared => "undeclared",
            ErrorKind::Recursion => "recursion",
            ErrorKind::Condition => "condition",
            ErrorKind::DeclaredTwice => "declared-twice",
            ErrorKind::ReadOnly => "read-only",
            ErrorKind::Unique => "unique",
            ErrorKind::NullMix => "null-mix",
            ErrorKind::Parse => "parse",
            ErrorKind::Limit => "limit",
            ErrorKind::Removed => "removed",
            ErrorKind::Eval => "eval",
        }
    }
}

/// A source location with a short note ("definition, priority 60").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What is there.
    pub note: String,
}

/// One error, with everything needed to render it as text or JSON.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// Which contract kind.
    pub kind: ErrorKind,
    /// The option, as `showOption` prints it, when one is involved.
    pub option: Option<String>,
    /// The message, worded as NixOS words it.
    pub message: String,
    /// Every definition or declaration involved.
    pub labels: Vec<Label>,
    /// For `recursion`: the chain of options, first to last (`a`, `b`, `a`).
    pub chain: Vec<String>,
    /// A hint ("did you mean ...") or other trailing help.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a message and nothing else.
    pub fn new(kind: ErrorKind, option: Option<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            kind,
            option,
            message: message.into(),
            labels: Vec::new(),
            chain: Vec::new(),
            help: None,
        }
    }

    /// A parse error at one place.
    pub fn parse(span: Span, message: impl Into<String>) -> Self {
        let mut d = Diagnostic::new(ErrorKind::Parse, None, message);
        d.labels.push(Label {
            span,
            note: String::new(),
        });
        d
    }

    /// Adds a label.
    pub fn label(mut self, span: Span, note: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            note: note.into(),
        });
        self
    }

    /// The JSON shape of the conformance contract, plus locations and the chain.
    pub fn to_json(&self, sources: &Sources) -> serde_json::Value {
        let locs: Vec<_> = self
            .labels
            .iter()
            .filter(|l| l.span.line > 0)
            .map(|l| {
                json!({
                    "file": sources.display(l.span.file),
                    "line": l.span.line,
                    "column": l.span.col,
                    "note": l.note,
                })
            })
            .collect();
        let mut v = json!({
            "kind": self.kind.as_str(),
            "option": self.option,
            "message": self.message,
            "locations": locs,
        });
        if !self.chain.is_empty() {
            v["chain"] = json!(self.chain);
        }
        if let Some(h) = &self.help {
            v["help"] = json!(h);
        }
        v
    }

    /// Renders the diagnostic for a terminal: headline, message, then each location with the
    /// line of YAML it points at.
    pub fn render(&self, sources: &Sources) -> String {
        let mut out = String::new();
        let mut lines = self.message.lines();
        let first = lines.next().unwrap_or("");
        let _ = writeln!(out, "error[{}]: {}", self.kind.as_str(), first);
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
        if !self.chain.is_empty() {
            let _ = writeln!(out, "  cycle: {}", self.chain.join(" → "));
        }
        for label in self.labels.iter().filter(|l| l.span.line > 0) {
            let s = label.span;
            let _ = writeln!(
                out,
                "  --> {}:{}:{}",
                sources.display(s.file),
                s.line,
                s.col
            );
            if let Some(text) = sources.line_text(s.file, s.line) {
                let num = s.line.to_string();
                let pad = " ".repeat(num.len());
                let _ = writeln!(out, "  {pad} |");
                let at = sources.byte_in_line(s).unwrap_or(0);
                let (shown, caret_pad) = excerpt(text.trim_end(), at);
                let _ = writeln!(out, "  {num} | {shown}");
                let _ = writeln!(out, "  {pad} | {caret_pad}^ {}", label.note);
            }
        }
        if let Some(h) = &self.help {
            let _ = writeln!(out, "  = help: {h}");
        }
        out
    }
}

/// Characters of a source line shown around the column an error points at. A line can be
/// megabytes long (a flow mapping of 20,000 keys); every error quoting all of it made the
/// report quadratic in size.
const EXCERPT: usize = 100;

/// The part of `line` shown for an error at byte offset `at`, and the padding that puts a
/// caret under that character. A long line is cut to [`EXCERPT`] characters around it, with
/// `…` where text is left out; the work is bounded by the window, not the line.
fn excerpt(line: &str, at: usize) -> (String, String) {
    let mut at = at.min(line.len());
    while !line.is_char_boundary(at) {
        at -= 1;
    }
    let (start, end) = if line.len() <= EXCERPT + EXCERPT / 5 {
        (0, line.len())
    } else {
        let back = |from: usize, n: usize| {
            line[..from]
                .char_indices()
                .rev()
                .take(n)
                .last()
                .map_or(from, |(i, _)| i)
        };
        let start = back(at, EXCERPT / 2);
        let mut chars = line[start..].char_indices();
        match chars.nth(EXCERPT) {
            Some((i, _)) => (start, start + i),
            // Near the end: the window reaches back further instead.
            None => {
                let shown = line[start..].chars().count();
                (back(start, EXCERPT - shown), line.len())
            }
        }
    };
    let mut shown = String::new();
    let mut pad = String::new();
    if start > 0 {
        shown.push('…');
        pad.push(' ');
    }
    shown.push_str(&line[start..end]);
    pad.extend(
        line[start..at]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' }),
    );
    if end < line.len() {
        shown.push('…');
    }
    (shown, pad)
}

/// Every diagnostic rendered for a terminal, then how many there were.
pub fn render_all(sources: &Sources, errors: &[Diagnostic]) -> String {
    let mut s: String = errors.iter().map(|e| e.render(sources) + "\n").collect();
    let _ = writeln!(
        s,
        "{} error{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    s
}

/// The JSON document of the conformance contract: `{"errors": [...]}`.
pub fn errors_json(sources: &Sources, errors: &[Diagnostic]) -> serde_json::Value {
    json!({ "errors": errors.iter().map(|e| e.to_json(sources)).collect::<Vec<_>>() })
}

/// Levenshtein distance (for "did you mean").
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Levenshtein distances from one name to many, each only if it is at most `max`. Only the
/// band of the table within `max` of its diagonal is filled, work on a pair stops as soon as
/// a row has nothing within `max`, and the buffers are reused: comparing a name with
/// thousands of siblings costs little more than reading them.
pub(crate) struct Near {
    a: Vec<char>,
    max: usize,
    b: Vec<char>,
    prev: Vec<usize>,
    cur: Vec<usize>,
}

impl Near {
    pub(crate) fn new(a: &str, max: usize) -> Near {
        Near {
            a: a.chars().collect(),
            max,
            b: Vec::new(),
            prev: Vec::new(),
            cur: Vec::new(),
        }
    }

    /// The distance from the name to `b`, if it is at most `max`.
    pub(crate) fn distance(&mut self, b: &str) -> Option<usize> {
        // Byte lengths bound character counts from above, and four times them from below.
        if b.len() + self.max < self.a.len() || b.len() > 4 * (self.a.len() + self.max) {
            return None;
        }
        self.b.clear();
        self.b.extend(b.chars());
        let (a, b, max) = (&self.a, &self.b, self.max);
        if a.len().abs_diff(b.len()) > max {
            return None;
        }
        // Cells outside the band hold `max + 1`: "too far", which is all that matters there.
        let far = max + 1;
        self.prev.clear();
        self.prev.extend((0..=b.len()).map(|j| j.min(far)));
        self.cur.clear();
        self.cur.resize(b.len() + 1, far);
        for (i, &ca) in a.iter().enumerate() {
            let row = i + 1;
            let lo = row.saturating_sub(max).max(1);
            let hi = (row + max).min(b.len());
            // Only the band and the cells either side of it are read by the next row.
            self.cur[lo - 1] = if lo == 1 { row.min(far) } else { far };
            if hi < b.len() {
                self.cur[hi + 1] = far;
            }
            let mut best = self.cur[lo - 1];
            for j in lo..=hi {
                let cost = usize::from(ca != b[j - 1]);
                let d = (self.prev[j - 1] + cost)
                    .min(self.prev[j] + 1)
                    .min(self.cur[j - 1] + 1)
                    .min(far);
                self.cur[j] = d;
                best = best.min(d);
            }
            if best > max {
                return None;
            }
            std::mem::swap(&mut self.prev, &mut self.cur);
        }
        Some(self.prev[b.len()]).filter(|&d| d <= max)
    }
}

/// The candidates closest to `name` by edit distance, ignoring case: at most `n`, none
/// further than `max` edits, nearest first (ties in the candidates' order).
pub(crate) fn closest<'c>(
    name: &str,
    candidates: &[&'c str],
    max: usize,
    n: usize,
) -> Vec<&'c str> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .iter()
        .map(|c| (levenshtein(&lower, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= max)
        .collect();
    scored.sort_by_key(|(d, _)| *d);
    scored.into_iter().take(n).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn bounded_distance_agrees_with_the_full_one() {
        let words = [
            "",
            "a",
            "ab",
            "abc",
            "kitten",
            "sitting",
            "opt12",
            "opu12",
            "ümlaut",
            "umlaut",
            "abcdefgh",
            "abcdxfgh",
            "bcdefgh",
            "abcdefghij",
            "acbdefhg",
            "hgfedcba",
        ];
        for a in words {
            for b in words {
                for max in 0..4 {
                    let d = super::levenshtein(a, b);
                    assert_eq!(
                        super::Near::new(a, max).distance(b),
                        (d <= max).then_some(d),
                        "{a:?} {b:?} {max}"
                    );
                }
            }
        }
    }

    #[test]
    fn short_lines_are_shown_whole() {
        assert_eq!(
            excerpt("  a: !mkForce 1", 5),
            ("  a: !mkForce 1".to_string(), "     ".to_string())
        );
        assert_eq!(
            excerpt("\tx: 1", 1),
            ("\tx: 1".to_string(), "\t".to_string())
        );
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        for key in ["k", "ké"] {
            let line: String = (0..20_000).map(|i| format!("{key}{i}: 1, ")).collect();
            let want = format!("{key}10000:");
            let at = line.find(&want).unwrap();
            let (shown, pad) = excerpt(&line, at);
            assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
            assert_eq!(shown.chars().count(), super::EXCERPT + 2);
            // The caret still points at the key.
            let under: String = shown
                .chars()
                .skip(pad.chars().count())
                .take(want.chars().count())
                .collect();
            assert_eq!(under, want);
            // Near either end only one side is cut, and the window keeps its width.
            let (head, pad) = excerpt(&line, 0);
            assert!(!head.starts_with('…') && head.ends_with('…') && pad.is_empty());
            let (tail, _) = excerpt(&line, line.len() - 1);
            assert!(tail.starts_with('…') && !tail.ends_with('…'));
            assert_eq!(tail.chars().count(), super::EXCERPT + 1);
        }
    }
}
