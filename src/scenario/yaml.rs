//! YAML text → [`Node`] tree, straight from saphyr's event stream.
//!
//! We build our own spanned tree from parser events instead of saphyr's `MarkedYamlOwned`: it
//! skips a generic intermediate tree, resolves our tags (`!mkForce`, `!mkIf`, ...) in one pass,
//! and lets a large scenario be parsed on several threads (see [`parse_document`]). Scalars are
//! resolved with the YAML 1.2 core schema, so `yes` and `on` are strings and `0755` is 755.

use std::borrow::Cow;
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan, Tag};

use super::node::{FileId, FormatPart, Key, Kind, Node, Span, Text, ORDER_TAGS, OVERRIDE_TAGS};
use super::path;
use crate::diag::Diagnostic;

/// Deeper nesting than this is refused: no real scenario needs it, and it bounds recursion in
/// every later stage.
pub const MAX_DEPTH: usize = 128;

/// How many nodes aliases may copy in all. An alias copies its anchor's whole tree, so ten
/// anchors each aliasing the one before nine times ("billion laughs") would copy 10^9 nodes
/// from a file of 600 bytes; real scenarios alias a few small mappings.
pub const MAX_ALIAS_NODES: usize = 1_000_000;

/// Files smaller than this are parsed on one thread: splitting costs more than it saves.
const PARALLEL_THRESHOLD: usize = 1 << 20;

/// Parses one YAML document (a scenario or a module file). Keys are kept as written; tags are
/// resolved. An empty document is `null`.
pub(crate) fn parse_document(text: &str, file: FileId) -> Result<Node, Diagnostic> {
    if text.len() >= PARALLEL_THRESHOLD {
        if let Some(node) = parallel::parse(text, file) {
            return Ok(node);
        }
    }
    parse_fragment(text, file, 0)
}

/// Parses `text`, whose first line is line `line_offset + 1` of the file.
fn parse_fragment(text: &str, file: FileId, line_offset: u32) -> Result<Node, Diagnostic> {
    parse_counted(text, file, line_offset).map(|(node, _)| node)
}

/// [`parse_fragment`], also giving the number of nodes aliases copied.
fn parse_counted(text: &str, file: FileId, line_offset: u32) -> Result<(Node, usize), Diagnostic> {
    let mut b = Builder {
        file,
        line_offset,
        stack: Vec::new(),
        items: Vec::new(),
        entries: Vec::new(),
        anchors: HashMap::new(),
        root: None,
        docs: 0,
        nodes: 0,
        copied: 0,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(ev) = parser.next_event() {
        match ev {
            Ok((ev, span)) => b.event(ev, span)?,
            Err(e) => {
                let m = e.marker();
                let span = Span {
                    file,
                    line: m.line() as u32 + line_offset,
                    col: m.col() as u32 + 1,
                };
                // The parser notices an unclosed `{` or `[` only where the text ends or a
                // line no longer fits: point at the bracket that was left open.
                if let Some((line, col, open)) = unclosed_bracket(text, m.index()) {
                    let at = Span {
                        file,
                        line: line + line_offset,
                        col,
                    };
                    return Err(Diagnostic::parse(
                        at,
                        format!(
                            "YAML syntax error: this `{open}` is never closed ({})",
                            e.info()
                        ),
                    )
                    .label(span, "the parser gave up here"));
                }
                return Err(Diagnostic::parse(
                    span,
                    format!("YAML syntax error: {}", e.info()),
                ));
            }
        }
    }
    let root = b.root.unwrap_or(Node {
        span: Span::start(file),
        kind: Kind::Null,
    });
    Ok((root, b.copied))
}

/// The last `{` or `[` of flow syntax still open at byte `end` of `text` (quotes and comments
/// skipped): its line, column and character.
fn unclosed_bracket(text: &str, end: usize) -> Option<(u32, u32, char)> {
    let mut stack: Vec<(u32, u32, char)> = Vec::new();
    let (mut line, mut col) = (1u32, 0u32);
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut prev = ' ';
    for (i, c) in text.char_indices() {
        if i >= end {
            break;
        }
        col += 1;
        if c == '\n' {
            line += 1;
            col = 0;
            comment = false;
            prev = c;
            continue;
        }
        if comment {
            continue;
        }
        match (quote, c) {
            (Some('"'), '\\') if prev != '\\' => {}
            (Some(q), c) if c == q && !(q == '"' && prev == '\\') => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if matches!(prev, ' ' | '{' | '[' | ',' | ':' | '\n') => {
                quote = Some(c)
            }
            (None, '#') if prev == ' ' || col == 1 => comment = true,
            (None, '{' | '[') => stack.push((line, col, c)),
            (None, '}' | ']') => {
                stack.pop();
            }
            _ => {}
        }
        prev = c;
    }
    stack.pop()
}

/// An open collection. Its children wait on the builder's shared scratch stacks from `start`
/// on, and move into a vector of exactly their number when it closes: growing one vector per
/// collection left up to half of every list and mapping unused and churned the allocator.
enum Frame {
    Seq {
        span: Span,
        tag: Option<Tag>,
        anchor: usize,
        start: usize,
        /// [`Builder::nodes`] when it opened.
        nodes: usize,
    },
    Map {
        span: Span,
        tag: Option<Tag>,
        anchor: usize,
        start: usize,
        /// [`Builder::nodes`] when it opened.
        nodes: usize,
        key: Option<Key>,
    },
}

struct Builder {
    file: FileId,
    line_offset: u32,
    stack: Vec<Frame>,
    items: Vec<Node>,
    entries: Vec<(Key, Node)>,
    /// Anchored nodes, with the number of nodes each one's tree holds.
    anchors: HashMap<usize, (Node, usize)>,
    root: Option<Node>,
    docs: usize,
    /// Nodes finished so far, counting every node an alias copied.
    nodes: usize,
    /// Nodes copied by aliases so far (see [`MAX_ALIAS_NODES`]).
    copied: usize,
}

/// A finished node before its tag is applied: scalars keep their text so `!config a.b` and
/// `!!str 12` see what was written, not its core-schema reading.
enum Built {
    Scalar(Text, ScalarStyle),
    Node(Kind),
}

impl Builder {
    fn span(&self, s: YSpan) -> Span {
        Span {
            file: self.file,
            line: s.start.line() as u32 + self.line_offset,
            col: s.start.col() as u32 + 1,
        }
    }

    fn event(&mut self, ev: Event<'_>, ys: YSpan) -> Result<(), Diagnostic> {
        let span = self.span(ys);
        match ev {
            Event::StreamStart | Event::StreamEnd | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                self.docs += 1;
                if self.docs > 1 {
                    return Err(Diagnostic::parse(
                        span,
                        "a scenario file holds one YAML document, found a second `---`",
                    ));
                }
            }
            Event::Alias(id) => {
                let Some(&(_, size)) = self.anchors.get(&id) else {
                    return Err(Diagnostic::parse(span, "alias to an unknown anchor"));
                };
                if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
                    return Err(Diagnostic::parse(
                        span,
                        "an alias cannot be used as a mapping key",
                    ));
                }
                // Counted before copying: the copy is what must not happen past the budget.
                self.copied = self.copied.saturating_add(size);
                if self.copied > MAX_ALIAS_NODES {
                    return Err(Diagnostic::parse(
                        span,
                        format!(
                            "aliases copy more than {MAX_ALIAS_NODES} nodes in all (anchors that alias each other, a \"billion laughs\"?)"
                        ),
                    ));
                }
                let node = self.anchors[&id].0.clone();
                self.finish(node, size);
            }
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(Frame::Map {
                    key: key @ None, ..
                }) = self.stack.last_mut()
                {
                    if tag.is_some() {
                        return Err(Diagnostic::parse(span, "a mapping key cannot carry a tag"));
                    }
                    *key = Some(Key {
                        name: Text::from(text),
                        span,
                    });
                    return Ok(());
                }
                let node = self.apply_tag(
                    Built::Scalar(Text::from(text), style),
                    tag.map(Cow::into_owned),
                    span,
                )?;
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                self.finish(node, 1);
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(span)?;
                self.stack.push(Frame::Seq {
                    span,
                    tag: tag.map(Cow::into_owned),
                    anchor,
                    start: self.items.len(),
                    nodes: self.nodes,
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.open(span)?;
                self.stack.push(Frame::Map {
                    span,
                    tag: tag.map(Cow::into_owned),
                    anchor,
                    start: self.entries.len(),
                    nodes: self.nodes,
                    key: None,
                });
            }
            Event::SequenceEnd => {
                let Some(Frame::Seq {
                    span,
                    tag,
                    anchor,
                    start,
                    nodes,
                }) = self.stack.pop()
                else {
                    unreachable!("the parser balances sequence events")
                };
                let items: Vec<Node> = self.items.drain(start..).collect();
                let node = self.apply_tag(Built::Node(Kind::List(items)), tag, span)?;
                let size = self.nodes - nodes + 1;
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.finish(node, size);
            }
            Event::MappingEnd => {
                let Some(Frame::Map {
                    span,
                    tag,
                    anchor,
                    start,
                    nodes,
                    ..
                }) = self.stack.pop()
                else {
                    unreachable!("the parser balances mapping events")
                };
                let mut entries: Vec<(Key, Node)> = self.entries.drain(start..).collect();
                // Sorted by name, like a Nix attribute set; duplicate keys (an error in YAML)
                // are then neighbours.
                entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
                for w in entries.windows(2) {
                    if w[0].0.name == w[1].0.name {
                        let (first, second) = if w[0].0.span < w[1].0.span {
                            (&w[0].0, &w[1].0)
                        } else {
                            (&w[1].0, &w[0].0)
                        };
                        return Err(Diagnostic::parse(
                            second.span,
                            format!("duplicate key `{}` in a mapping", second.name),
                        )
                        .label(first.span, "first written here"));
                    }
                }
                let node = self.apply_tag(Built::Node(Kind::Map(entries)), tag, span)?;
                let size = self.nodes - nodes + 1;
                if anchor != 0 {
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                self.finish(node, size);
            }
        }
        Ok(())
    }

    fn open(&mut self, span: Span) -> Result<(), Diagnostic> {
        if let Some(Frame::Map { key: None, .. }) = self.stack.last() {
            return Err(Diagnostic::parse(
                span,
                "complex mapping keys (a sequence or mapping used as a key) are not supported",
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(Diagnostic::parse(
                span,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// Places a finished node of `size` nodes in all in the collection that holds it.
    fn finish(&mut self, node: Node, size: usize) {
        self.nodes = self.nodes.saturating_add(size);
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { .. }) => self.items.push(node),
            Some(Frame::Map { key, .. }) => {
                let k = key.take().expect("a value follows its key");
                self.entries.push((k, node));
            }
        }
    }

    fn apply_tag(&self, built: Built, tag: Option<Tag>, span: Span) -> Result<Node, Diagnostic> {
        let Some(tag) = tag else {
            return Ok(Node {
                span,
                kind: untagged(built, span)?,
            });
        };
        if tag.is_yaml_core_schema() {
            return core_tag(&tag.suffix, built, span);
        }
        if tag.handle != "!" {
            return Err(Diagnostic::parse(
                span,
                format!("unknown tag `{}{}`", tag.handle, tag.suffix),
            ));
        }
        let name = tag.suffix.as_str();
        let one = |built: Built| -> Result<Box<Node>, Diagnostic> {
            Ok(Box::new(Node {
                span,
                kind: untagged(built, span)?,
            }))
        };
        if let Some(&(_, p)) = OVERRIDE_TAGS.iter().find(|(t, _)| *t == name) {
            let kind = Kind::Override(p, one(built)?);
            return Ok(Node { span, kind });
        }
        if let Some(&(_, p)) = ORDER_TAGS.iter().find(|(t, _)| *t == name) {
            let kind = Kind::Order(p, one(built)?);
            return Ok(Node { span, kind });
        }
        let kind = match name {
            "mkOverride" | "mkOrder" => {
                let [p, v] = pair(name, built, span)?;
                let prio = match p.kind {
                    Kind::Int(i) => i as f64,
                    Kind::Float(f) => f,
                    _ => {
                        return Err(Diagnostic::parse(
                            p.span,
                            format!(
                                "`!{name}` needs a number as its priority, found {}",
                                p.shape()
                            ),
                        ))
                    }
                };
                if name == "mkOverride" {
                    Kind::Override(prio, Box::new(v))
                } else {
                    Kind::Order(prio, Box::new(v))
                }
            }
            "mkIf" => {
                let [c, v] = pair(name, built, span)?;
                Kind::If(Box::new(c), Box::new(v))
            }
            "mkMerge" => match untagged(built, span)? {
                Kind::List(items) => Kind::Merge(items),
                other => {
                    let n = Node { span, kind: other };
                    return Err(Diagnostic::parse(
                        span,
                        format!(
                            "`!mkMerge` takes a sequence of definitions, found {}",
                            n.shape()
                        ),
                    ));
                }
            },
            "config" => {
                let text = scalar_text(name, built, span)?;
                Kind::Ref(path::split(&text).map_err(|e| Diagnostic::parse(span, e.to_string()))?)
            }
            "format" => {
                let text = scalar_text(name, built, span)?;
                Kind::Format(
                    parse_format(&text).map_err(|e| Diagnostic::parse(span, e.to_string()))?,
                )
            }
            "name" => {
                if !matches!(untagged(built, span)?, Kind::Null) {
                    return Err(Diagnostic::parse(
                        span,
                        "`!name` stands alone (the submodule's name); it takes no value",
                    ));
                }
                Kind::Name
            }
            "call" => {
                let items = match untagged(built, span)? {
                    Kind::List(items) if !items.is_empty() => items,
                    _ => {
                        return Err(Diagnostic::parse(
                            span,
                            "`!call` takes a sequence: a function's name, then its arguments",
                        ))
                    }
                };
                let mut items = items.into_iter();
                let f = items.next().expect("not empty");
                let Kind::Str(fname) = &f.kind else {
                    return Err(Diagnostic::parse(
                        f.span,
                        format!("`!call` needs a function name first, found {}", f.shape()),
                    ));
                };
                let func = super::functions::Func::parse(fname).ok_or_else(|| {
                    let names: Vec<&str> = super::functions::Func::names().collect();
                    Diagnostic::parse(
                        f.span,
                        format!(
                            "`!call`: no function `{fname}`; there are {}",
                            names.join(", ")
                        ),
                    )
                })?;
                let args: Vec<Node> = items.collect();
                if args.len() != func.arity() {
                    return Err(Diagnostic::parse(
                        span,
                        format!(
                            "`{fname}` takes {} argument{}, found {}",
                            func.arity(),
                            if func.arity() == 1 { "" } else { "s" },
                            args.len()
                        ),
                    ));
                }
                Kind::Call(func, args)
            }
            _ => {
                let hint = suggest_tag(name)
                    .map(|t| format!(" (did you mean `!{t}`?)"))
                    .unwrap_or_default();
                return Err(Diagnostic::parse(
                    span,
                    format!("unknown tag `!{name}`{hint}"),
                ));
            }
        };
        Ok(Node { span, kind })
    }
}

const TAGS: &[&str] = &[
    "mkForce",
    "mkImageMediaOverride",
    "mkVMOverride",
    "mkDefault",
    "mkOptionDefault",
    "mkOverride",
    "mkIf",
    "mkMerge",
    "mkOrder",
    "mkBefore",
    "mkAfter",
    "config",
    "format",
    "call",
    "name",
];

fn suggest_tag(name: &str) -> Option<&'static str> {
    crate::diag::closest(name, TAGS, 3, 1).first().copied()
}

fn pair(name: &str, built: Built, span: Span) -> Result<[Node; 2], Diagnostic> {
    match untagged(built, span)? {
        Kind::List(items) if items.len() == 2 => {
            let mut it = items.into_iter();
            Ok([it.next().unwrap(), it.next().unwrap()])
        }
        Kind::List(items) => Err(Diagnostic::parse(
            span,
            format!(
                "`!{name}` takes exactly two items `[{}, value]`, found {}",
                if name == "mkIf" {
                    "condition"
                } else {
                    "priority"
                },
                items.len()
            ),
        )),
        other => Err(Diagnostic::parse(
            span,
            format!(
                "`!{name}` takes a two-item sequence, found {}",
                Node { span, kind: other }.shape()
            ),
        )),
    }
}

fn scalar_text(name: &str, built: Built, span: Span) -> Result<Text, Diagnostic> {
    match built {
        Built::Scalar(s, _) => Ok(s),
        Built::Node(k) => Err(Diagnostic::parse(
            span,
            format!(
                "`!{name}` takes a string, found {}",
                Node { span, kind: k }.shape()
            ),
        )),
    }
}

/// Why a `!format` string does not parse.
#[derive(Debug, thiserror::Error)]
enum FormatError {
    /// `${` without its `}`.
    #[error("unterminated `${{` in `!format \"{0}\"`")]
    Unterminated(String),
    /// What is inside `${}` is not an option path.
    #[error(transparent)]
    Path(#[from] path::PathError),
}

/// `"a ${x.y} b"` → text and references. `$${` is a literal `${`.
fn parse_format(s: &str) -> Result<Vec<FormatPart>, FormatError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            text.push_str(&rest[..i - 1]);
            text.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        text.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| FormatError::Unterminated(s.into()))?;
        if !text.is_empty() {
            parts.push(FormatPart::Text(std::mem::take(&mut text).into_boxed_str()));
        }
        parts.push(FormatPart::Ref(path::split(after[..end].trim())?));
        rest = &after[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() || parts.is_empty() {
        parts.push(FormatPart::Text(text.into_boxed_str()));
    }
    Ok(parts)
}

fn untagged(built: Built, span: Span) -> Result<Kind, Diagnostic> {
    match built {
        Built::Node(k) => Ok(k),
        Built::Scalar(s, ScalarStyle::Plain) => plain_scalar(s, span),
        Built::Scalar(s, _) => Ok(Kind::Str(s)),
    }
}

fn core_tag(suffix: &str, built: Built, span: Span) -> Result<Node, Diagnostic> {
    let kind = match (suffix, built) {
        ("str", Built::Scalar(s, _)) => Kind::Str(s),
        ("int" | "float" | "bool" | "null", Built::Scalar(s, _)) => {
            let k = plain_scalar(s.clone(), span)?;
            let ok = matches!(
                (suffix, &k),
                ("int", Kind::Int(_))
                    | ("float", Kind::Float(_) | Kind::Int(_))
                    | ("bool", Kind::Bool(_))
                    | ("null", Kind::Null)
            );
            if !ok {
                return Err(Diagnostic::parse(
                    span,
                    format!("`{s}` is not a valid !!{suffix}"),
                ));
            }
            match (suffix, k) {
                ("float", Kind::Int(i)) => Kind::Float(i as f64),
                (_, k) => k,
            }
        }
        ("seq", Built::Node(k @ Kind::List(_))) | ("map", Built::Node(k @ Kind::Map(_))) => k,
        (s, _) => {
            return Err(Diagnostic::parse(
                span,
                format!("unsupported or misplaced tag `!!{s}`"),
            ))
        }
    };
    Ok(Node { span, kind })
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn plain_scalar(s: Text, span: Span) -> Result<Kind, Diagnostic> {
    match s.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Kind::Null),
        "true" | "True" | "TRUE" => return Ok(Kind::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Kind::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Ok(Kind::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Kind::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Ok(Kind::Float(f64::NAN)),
        _ => {}
    }
    let b = s.as_bytes();
    let first = b[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Ok(Kind::Str(s));
    }
    let digits = if matches!(first, b'-' | b'+') {
        &s[1..]
    } else {
        &s[..]
    };
    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
        return s.parse::<i64>().map(Kind::Int).map_err(|_| {
            Diagnostic::parse(
                span,
                format!("integer `{s}` does not fit in 64 bits (Nix integers are signed 64-bit)"),
            )
        });
    }
    if let Some(h) = s.strip_prefix("0x") {
        if !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return i64::from_str_radix(h, 16).map(Kind::Int).map_err(|_| {
                Diagnostic::parse(span, format!("integer `{s}` does not fit in 64 bits"))
            });
        }
    }
    if let Some(o) = s.strip_prefix("0o") {
        if !o.is_empty() && o.bytes().all(|c| (b'0'..=b'7').contains(&c)) {
            return i64::from_str_radix(o, 8).map(Kind::Int).map_err(|_| {
                Diagnostic::parse(span, format!("integer `{s}` does not fit in 64 bits"))
            });
        }
    }
    if is_core_float(digits) {
        if let Ok(f) = s.parse::<f64>() {
            return Ok(Kind::Float(f));
        }
    }
    Ok(Kind::Str(s))
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` without the sign.
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let int_digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let e = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if e == 0 {
            return false;
        }
        i += e;
    }
    i == b.len()
}

/// Parsing a large scenario on several threads.
///
/// A big scenario is one top-level mapping whose `modules:` sequence holds many items. Each item
/// starts on a line `<indent>- ` at the sequence's indentation, so the text can be cut at such
/// lines and each piece parsed on its own thread. The cut is only trusted when every piece parses
/// cleanly and the pieces fit together; otherwise (a quoted string spanning a cut, an unusual
/// layout) the caller parses the whole file on one thread, so this never changes a result.
mod parallel {
    use super::*;

    pub(crate) fn parse(text: &str, file: FileId) -> Option<Node> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        if threads < 2 {
            return None;
        }
        let plan = plan(text, threads)?;
        let results: Vec<Result<(Node, usize), Diagnostic>> = std::thread::scope(|s| {
            let handles: Vec<_> = plan
                .pieces
                .iter()
                .map(|&(start, end, line)| {
                    s.spawn(move || parse_counted(&text[start..end], file, line))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Diagnostic::parse(Span::default(), "parser thread failed"))
                    })
                })
                .collect()
        });
        // Each piece kept to the alias budget on its own; together they must too (else the
        // whole file is parsed again on one thread, which reports where the budget ran out).
        let mut copied = 0usize;
        let mut pieces = Vec::with_capacity(results.len());
        for r in results {
            let (node, n) = r.ok()?;
            copied += n;
            pieces.push(node);
        }
        if copied > MAX_ALIAS_NODES {
            return None;
        }
        let mut results = pieces.into_iter();
        // Piece 0 is the head: the top-level mapping up to and including the first items.
        let mut head = results.next()?;
        let mut more = Vec::new();
        for r in results {
            match r.kind {
                Kind::List(items) => more.extend(items),
                _ => return None,
            }
        }
        let Kind::Map(entries) = &mut head.kind else {
            return None;
        };
        let (_, modules) = entries.iter_mut().find(|(k, _)| &*k.name == "modules")?;
        let Kind::List(items) = &mut modules.kind else {
            return None;
        };
        items.extend(more);
        Some(head)
    }

    struct Plan {
        /// (byte start, byte end, lines before start)
        pieces: Vec<(usize, usize, u32)>,
    }

    /// Finds item boundaries of the `modules:` sequence. Refuses (None) unless the file is a
    /// plain block mapping with `modules:` as its last top-level key, so every piece after the
    /// head is nothing but sequence items.
    fn plan(text: &str, threads: usize) -> Option<Plan> {
        let mut offset = 0usize;
        let mut in_modules = false;
        let mut item_indent: Option<usize> = None;
        let mut items: Vec<(usize, u32)> = Vec::new();
        for (line_no, line) in text.split_inclusive('\n').enumerate() {
            let line_no = line_no as u32;
            let trimmed = line.trim_start_matches(' ');
            let indent = line.len() - trimmed.len();
            let blank = trimmed.trim().is_empty() || trimmed.starts_with('#');
            if !blank {
                if trimmed.starts_with('\t') {
                    return None;
                }
                if indent == 0 && !trimmed.starts_with("- ") && trimmed != "-\n" {
                    // A top-level key: only `modules:` may open the sequence, and nothing may follow it.
                    if in_modules {
                        return None;
                    }
                    if trimmed.trim_end() == "modules:" {
                        in_modules = true;
                    } else if trimmed.starts_with("modules:")
                        || trimmed.starts_with("---")
                        || trimmed.starts_with('%')
                    {
                        return None;
                    }
                } else if in_modules {
                    let is_item = trimmed.starts_with("- ") || trimmed.trim_end() == "-";
                    match item_indent {
                        None if is_item => item_indent = Some(indent),
                        None => return None,
                        Some(ii) if is_item && indent == ii => items.push((offset, line_no)),
                        Some(ii) if indent <= ii => return None,
                        _ => {}
                    }
                }
            }
            offset += line.len();
        }
        if !in_modules || items.len() < threads * 2 {
            return None;
        }
        // Cut into `threads` pieces of about equal size, at item starts.
        let target = text.len() / threads;
        let mut pieces = Vec::new();
        let mut start = 0usize;
        let mut start_line = 0u32;
        for &(off, ln) in &items {
            if off - start >= target && pieces.len() + 1 < threads {
                pieces.push((start, off, start_line));
                start = off;
                start_line = ln;
            }
        }
        pieces.push((start, text.len(), start_line));
        if pieces.len() < 2 {
            return None;
        }
        Some(Plan { pieces })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Node, Diagnostic> {
        parse_fragment(s, FileId(0), 0)
    }

    #[test]
    fn core_schema_scalars() {
        let n =
            parse("[yes, on, 0755, 0x1F, 0o17, 1.5, 1e3, .inf, ~, 'true', true, -3, +4, 1_000]")
                .unwrap();
        let Kind::List(items) = n.kind else { panic!() };
        let kinds: Vec<Kind> = items.into_iter().map(|n| n.kind).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::Str("yes".into()),
                Kind::Str("on".into()),
                Kind::Int(755),
                Kind::Int(31),
                Kind::Int(15),
                Kind::Float(1.5),
                Kind::Float(1000.0),
                Kind::Float(f64::INFINITY),
                Kind::Null,
                Kind::Str("true".into()),
                Kind::Bool(true),
                Kind::Int(-3),
                Kind::Int(4),
                Kind::Str("1_000".into()),
            ]
        );
    }

    #[test]
    fn tags_become_properties_with_positions() {
        let n = parse("x: !mkOverride [60, hello]\ny: !mkMerge\n  - {b: 2}\n  - !mkForce {c: 3}\n")
            .unwrap();
        let y = n.get("y").unwrap();
        let Kind::Merge(items) = &y.kind else {
            panic!("{y:?}")
        };
        assert!(matches!(items[1].kind, Kind::Override(p, _) if p == 50.0));
        assert_eq!((items[1].span.line, items[1].span.col), (4, 5));
        let x = n.get("x").unwrap();
        assert!(
            matches!(&x.kind, Kind::Override(p, v) if *p == 60.0 && v.kind == Kind::Str("hello".into()))
        );
    }

    #[test]
    fn bad_input_is_located() {
        // The unclosed `[` is named where it was opened, not where the parser gave up.
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert_eq!((e.labels[0].span.line, e.labels[0].span.col), (2, 4));
        assert!(
            e.message.contains("this `[` is never closed"),
            "{}",
            e.message
        );
        assert_eq!(e.labels[1].span.line, 3);
        let e = parse("a: {x: \"}\", y: [1]\n\nb: 2\n").unwrap_err();
        assert_eq!((e.labels[0].span.line, e.labels[0].span.col), (1, 4));
        let e = parse("a: !mkFroce 1\n").unwrap_err();
        assert!(
            e.message.contains("did you mean `!mkForce`"),
            "{}",
            e.message
        );
        let e = parse("a: !mkIf [true]\n").unwrap_err();
        assert!(e.message.contains("exactly two"), "{}", e.message);
        let e = parse("a: 99999999999999999999\n").unwrap_err();
        assert!(e.message.contains("64 bits"), "{}", e.message);
        let e = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(e.labels[0].span.line, 2);
        let deep = "[".repeat(MAX_DEPTH + 5) + &"]".repeat(MAX_DEPTH + 5);
        assert!(parse(&deep).unwrap_err().message.contains("nesting"));
    }

    #[test]
    fn format_strings() {
        let p = parse_format("a ${x.y} b $${c}").unwrap();
        assert_eq!(
            p,
            vec![
                FormatPart::Text("a ".into()),
                FormatPart::Ref(vec!["x".into(), "y".into()]),
                FormatPart::Text(" b ${c}".into())
            ]
        );
        assert!(parse_format("${x").is_err());
    }

    #[test]
    fn parallel_parse_matches_sequential() {
        let mut s = String::from("name: big\nmodules:\n");
        for i in 0..400 {
            s.push_str(&format!("  - name: m{i}.yaml\n    config:\n      \"a.b{i}\": !mkForce [x, \"y\"]\n      c: |\n        text {i}\n\n"));
        }
        let seq = parse_fragment(&s, FileId(0), 0).unwrap();
        let par = parallel::parse(&s, FileId(0));
        if std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            > 1
        {
            assert_eq!(par.unwrap(), seq);
        }
        // A quoted string spanning a cut makes the split refuse rather than misparse.
        let tricky = s.replacen("name: m200.yaml", "name: \"m200\n  - yaml\"", 1);
        let seq = parse_fragment(&tricky, FileId(0), 0);
        if let Some(par) = parallel::parse(&tricky, FileId(0)) {
            assert_eq!(Ok(par), seq);
        }
    }

    /// Aliases copy their anchor's tree; the copies are counted against a budget, so ten
    /// levels of nine aliases each (10^9 nodes from 600 bytes) stop at once.
    #[test]
    fn alias_copies_are_budgeted() {
        let ok = parse("a: &x {b: [1, 2]}\nc: *x\nd: *x\n").unwrap();
        let Kind::Map(es) = ok.kind else { panic!() };
        assert_eq!(
            es[1].1.kind, es[0].1.kind,
            "an alias is a copy of its anchor"
        );
        let mut laughs = String::from("l0: &l0 [lol]\n");
        for i in 1..10 {
            let prev = format!("*l{}", i - 1);
            laughs.push_str(&format!("l{i}: &l{i} [{}]\n", vec![prev; 9].join(", ")));
        }
        let e = parse(&laughs).unwrap_err();
        assert!(
            e.message.contains("aliases copy more than"),
            "{}",
            e.message
        );
        // l5 holds 125,479 nodes: the copies for l6 (line 7) pass the budget.
        assert_eq!(e.labels[0].span.line, 7);
        // Under the budget parses: an anchor of 100,001 nodes aliased nine times.
        let mut wide = String::from("big: &big [");
        wide.push_str(&vec!["0"; 100_000].join(","));
        wide.push_str("]\ncopies: [*big, *big, *big, *big, *big, *big, *big, *big, *big]\n");
        assert!(parse(&wide).is_ok());
        wide.push_str("more: *big\n");
        assert!(parse(&wide).is_err(), "a tenth copy passes the budget");
    }
}
