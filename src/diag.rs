//! Diagnostics shared by every stage: a kind, the option involved, a message in NixOS wording,
//! and the source locations (file:line:col) of every definition involved, rendered with an
//! excerpt of the YAML so the user sees *which* line lost.

use std::fmt::Write as _;

use serde_json::json;

use crate::source::{Sources, Span};

/// The error kinds of the conformance contract (`shared/conformance/README.md`).
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
        }
    }
}

/// A source location with a short note ("definition, priority 60").
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// Where.
    pub span: Span,
    /// What is there.
    pub note: String,
}

/// One error, with everything needed to render it as text or JSON.
#[derive(Clone, Debug, PartialEq)]
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
                let _ = writeln!(out, "  {num} | {}", text.trim_end());
                let caret_pad: String = text
                    .chars()
                    .take(s.col.saturating_sub(1) as usize)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(out, "  {pad} | {caret_pad}^ {}", label.note);
            }
        }
        if let Some(h) = &self.help {
            let _ = writeln!(out, "  = help: {h}");
        }
        out
    }
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
