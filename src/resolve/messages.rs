//! Every user-facing resolve error, in NixOS's wording (`lib/modules.nix` `messages`,
//! `lib/options.nix`, `lib/types.nix`), kept out of the logic as nixpkgs keeps its messages
//! apart. A leaf of the resolver: it takes plain data (names, paths, definitions as
//! [`Shown`]) and knows nothing of values or evaluation. Each error also carries the
//! file:line:col of every definition involved, which Nix cannot show.

use std::rc::Rc;

use crate::diag::{levenshtein, Near};
use crate::diag::{Diagnostic, ErrorKind, Label};
use crate::scenario::{path, Span};

/// An error, shared by everything that depends on it.
type Error = Rc<Diagnostic>;

/// A definition as a message shows it.
#[derive(Clone, Debug)]
pub(crate) struct Shown {
    /// The module it is in, as errors name it.
    pub(crate) file: String,
    /// Where it was written.
    pub(crate) span: Span,
    /// Its value as `lib.generators.toPretty` writes it (`None` when it does not evaluate).
    pub(crate) value: Option<String>,
    /// What it is, for its label: `definition`, `definition, mkForce (50)`, `option default`.
    pub(crate) role: String,
}

const PRIORITY_SUGGESTION: &str = "Use `lib.mkForce value` or `lib.mkDefault value` to change the priority on any of these definitions.";

fn show(loc: &[&str]) -> String {
    path::show(loc)
}

/// `showDefs`: `- In `FILE': VALUE` per definition, values pretty-printed (at most 5 lines).
pub(crate) fn show_defs(defs: &[Shown]) -> String {
    let mut out = String::new();
    for d in defs {
        out.push_str(&format!("\n- In `{}'", d.file));
        if let Some(text) = &d.value {
            let lines: Vec<&str> = text.split('\n').collect();
            let mut value = lines
                .iter()
                .take(5)
                .copied()
                .collect::<Vec<_>>()
                .join("\n    ");
            if lines.len() > 5 {
                value.push_str("\n    ...");
            }
            if lines.len() > 1 {
                out.push_str(":\n    ");
            } else {
                out.push_str(": ");
            }
            out.push_str(&value);
        }
    }
    out
}

fn def_label(d: &Shown) -> Label {
    Label {
        span: d.span,
        note: format!("{} in `{}`", d.role, d.file),
    }
}

fn diag(kind: ErrorKind, loc: &[&str], message: String, defs: &[Shown]) -> Error {
    let mut d = Diagnostic::new(kind, Some(show(loc)), message);
    d.labels = defs.iter().map(def_label).collect();
    Rc::new(d)
}

/// `mergeEqualOption`: two different values at the winning priority.
pub(crate) fn conflict(loc: &[&str], pair: &[Shown; 2]) -> Error {
    let msg = format!(
        "The option `{}' has conflicting definition values:{}\n{PRIORITY_SUGGESTION}",
        show(loc),
        show_defs(pair)
    );
    let mut e = (*diag(ErrorKind::Conflict, loc, msg, pair)).clone();
    e.help = Some("both definitions won at the same priority; give the one that should win a lower number (`!mkForce`, 50) or the other a higher one (`!mkDefault`, 1000)".into());
    Rc::new(e)
}

/// A value not of the option's type. `v2` types say `TypeError:`.
pub(crate) fn not_of_type(loc: &[&str], desc: &str, invalid: &[Shown], v2: bool) -> Error {
    let msg = if v2 {
        format!("A definition for option `{}' is not of type `{desc}'. TypeError: Definition values: {}", show(loc), show_defs(invalid))
    } else {
        format!(
            "A definition for option `{}' is not of type `{desc}'. Definition values:{}",
            show(loc),
            show_defs(invalid)
        )
    };
    diag(ErrorKind::Type, loc, msg, invalid)
}

/// `either`: no branch takes every definition.
pub(crate) fn neither(loc: &[&str], desc: &str, a: &str, b: &str, defs: &[Shown]) -> Error {
    let msg = format!(
        "A definition for option `{}' is not of type `{desc}'. TypeError: The option `{}` is neither a value of type `{a}` nor `{b}`, Definition values: {}",
        show(loc),
        show(loc),
        show_defs(defs)
    );
    diag(ErrorKind::Type, loc, msg, defs)
}

/// `uniq`/`unique`/`raw`: more than one definition.
pub(crate) fn not_unique(loc: &[&str], defs: &[Shown]) -> Error {
    let msg = format!("The option `{}' is defined multiple times while it's expected to be unique.\n\nDefinition values:{}\n{PRIORITY_SUGGESTION}", show(loc), show_defs(defs));
    diag(ErrorKind::Unique, loc, msg, defs)
}

/// `nullOr`: null and non-null definitions.
pub(crate) fn null_mix(loc: &[&str], defs: &[Shown]) -> Error {
    let files: Vec<String> = defs.iter().map(|d| format!("`{}'", d.file)).collect();
    let msg = format!(
        "The option `{}` is defined both null and not null, in {}.",
        show(loc),
        files.join(" and ")
    );
    diag(ErrorKind::NullMix, loc, msg, defs)
}

/// `anything`: definitions of different kinds.
pub(crate) fn conflicting_types(loc: &[&str], defs: &[Shown]) -> Error {
    let files: Vec<String> = defs.iter().map(|d| format!("`{}'", d.file)).collect();
    let msg = format!(
        "The option `{}' has conflicting option types in {}",
        show(loc),
        files.join(" and ")
    );
    diag(ErrorKind::Conflict, loc, msg, defs)
}

/// `mergeDefaultOption` (no type): values it cannot combine.
pub(crate) fn cannot_merge(loc: &[&str], defs: &[Shown]) -> Error {
    let msg = format!(
        "Cannot merge definitions of `{}'. Definition values:{}",
        show(loc),
        show_defs(defs)
    );
    diag(ErrorKind::Conflict, loc, msg, defs)
}

/// An option without any definition and without an empty value.
pub(crate) fn undefined(loc: &[&str]) -> Error {
    Rc::new(Diagnostic::new(
        ErrorKind::Undefined,
        Some(show(loc)),
        format!(
            "The option `{}' was accessed but has no value defined. Try setting the option.",
            show(loc)
        ),
    ))
}

/// `mkIf` whose condition is not a boolean.
pub(crate) fn non_bool_condition(def: &Shown, cond: &str) -> Error {
    let mut d = Diagnostic::new(
        ErrorKind::Condition,
        None,
        format!("‘mkIf’ called with a non-Boolean condition\nwhile evaluating definitions from `{}': the condition is {cond}", def.file),
    );
    d.labels.push(Label {
        span: def.span,
        note: format!("mkIf in `{}`", def.file),
    });
    Rc::new(d)
}

/// A definition of an option that does not exist, with Nix's suggestions.
pub(crate) fn undeclared(
    prefix: &[&str],
    name: &str,
    siblings: &[&str],
    hints: bool,
    defs: &[Shown],
) -> Error {
    let mut loc = prefix.to_vec();
    loc.push(name);
    let first = &defs[..1];
    let mut msg = format!(
        "The option `{}' does not exist. Definition values:{}",
        show(&loc),
        show_defs(first)
    );
    let mut help = None;
    if siblings.is_empty() {
        if prefix.is_empty() {
            msg.push_str("\n\nIt seems as if you're trying to declare an option by placing it into `config' rather than `options'!");
        } else {
            msg.push_str(&format!(
                "\n\nHowever there are no options defined in `{}'. Are you sure you've declared your options properly? This can happen if you e.g. declared your options in `types.submodule' under `config' rather than `options'.",
                show(prefix)
            ));
        }
    } else {
        // Nix ranks every sibling when there are fewer than 100, and only those within two
        // edits otherwise; the bounded distance gives up on a pair as soon as it passes two,
        // so thousands of undeclared names among thousands of options stay cheap.
        let mut cands: Vec<(usize, &str)> = if siblings.len() < 100 {
            siblings
                .iter()
                .map(|n| (levenshtein(name, n), *n))
                .collect()
        } else if hints {
            let mut near = Near::new(name, 2);
            siblings
                .iter()
                .filter_map(|n| Some((near.distance(n)?, *n)))
                .collect()
        } else {
            // Past the work bound the run ends with that error; this one goes without hints.
            Vec::new()
        };
        cands.sort_by_key(|(d, _)| *d);
        let shown: Vec<String> = cands
            .iter()
            .take(3)
            .map(|(_, n)| {
                let mut p = prefix.to_vec();
                p.push(n);
                format!("`{}'", show(&p))
            })
            .collect();
        if !shown.is_empty() {
            let list = match shown.len() {
                1 => shown[0].clone(),
                n => format!("{} or {}", shown[..n - 1].join(", "), shown[n - 1]),
            };
            // Nix's message says it; a help line would say it twice.
            msg.push_str(&format!("\n\nDid you mean {list}?"));
        }
    }
    // `fileSystems./mnt/data.old` is split at every dot: `/mnt/data` and `old`. A mount point
    // (a name starting with `/`) followed by undeclared names was most likely one name.
    if let Some(i) = prefix.iter().rposition(|c| c.starts_with('/')) {
        let mut parts: Vec<&str> = prefix[i..].to_vec();
        parts.push(name);
        let whole = parts.join(".");
        let parent = show(&prefix[..i]);
        let key = if parent.is_empty() {
            format!("{whole:?}")
        } else {
            format!("{parent}.{whole:?}")
        };
        help = Some(format!(
            "`{whole}` was split at its dots into {}: a name with a dot must be quoted inside the key, as '{key}'",
            parts
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut d = Diagnostic::new(ErrorKind::Undeclared, Some(show(&loc)), msg);
    d.labels = defs
        .iter()
        .map(|x| Label {
            span: x.span,
            note: format!("defined in `{}`", x.file),
        })
        .collect();
    d.help = help;
    Rc::new(d)
}

/// Two declarations of one option that cannot be merged.
pub(crate) fn declared_twice(
    loc: &[&str],
    declarations: &[(String, Span)],
    file: &str,
    span: Span,
    why: &str,
) -> Error {
    let earlier: Vec<String> = declarations
        .iter()
        .filter(|(_, s)| *s != span)
        .map(|(f, _)| format!("`{f}'"))
        .collect();
    let msg = format!(
        "The option `{}' in `{file}' is already declared in {}.",
        show(loc),
        earlier.join(" and ")
    );
    let mut d = Diagnostic::new(ErrorKind::DeclaredTwice, Some(show(loc)), msg);
    d.labels = declarations
        .iter()
        .map(|(f, s)| Label {
            span: *s,
            note: format!("declared in `{f}`"),
        })
        .collect();
    d.help = Some(format!("{why}; declare the option once, or drop `default`/`description` from all but one declaration"));
    Rc::new(d)
}

/// A `readOnly` option with more than one definition (the default counts).
pub(crate) fn read_only(loc: &[&str], defs: &[Shown]) -> Error {
    let msg = format!(
        "The option `{}' is read-only, but it's set multiple times. Definition values:{}",
        show(loc),
        show_defs(defs)
    );
    diag(ErrorKind::ReadOnly, loc, msg, defs)
}

/// A definition that is not an attribute set where options are expected below.
pub(crate) fn not_attrset_module(loc: &[&str], def: &Shown, type_name: &str) -> Error {
    let msg = format!(
        "In module `{}', you're trying to define a value of type `{type_name}'\nrather than an attribute set for the option\n`{}'!",
        def.file,
        show(loc)
    );
    diag(ErrorKind::Type, loc, msg, std::slice::from_ref(def))
}

/// `!config a.b` where `a` is not an attribute set.
pub(crate) fn select_non_set(prefix: &[Box<str>], span: Span) -> Error {
    let mut d = Diagnostic::new(
        ErrorKind::Type,
        Some(path::show(prefix)),
        format!(
            "`config.{}` is not an attribute set, so nothing can be selected from it",
            path::show(prefix)
        ),
    );
    d.labels.push(Label {
        span,
        note: "read here".into(),
    });
    Rc::new(d)
}

/// `!config a.b` where `a` has no attribute `b`.
pub(crate) fn select_missing(p: &[Box<str>], i: usize, span: Span) -> Error {
    let mut d = Diagnostic::new(
        ErrorKind::Undefined,
        Some(path::show(&p[..=i])),
        format!(
            "attribute '{}' missing: `config.{}` does not exist (read by `config.{}`)",
            p[i],
            path::show(&p[..=i]),
            path::show(p)
        ),
    );
    d.labels.push(Label {
        span,
        note: "read here".into(),
    });
    Rc::new(d)
}

/// A `!format` whose result would pass `max` bytes, the bound on computed strings.
pub(crate) fn string_too_long(span: Span, max: usize) -> Error {
    Rc::new(
        Diagnostic::new(
            ErrorKind::Limit,
            None,
            format!(
                "`!format` would make a string longer than {max} bytes (a string that doubles with every reference?); isoproof stops here"
            ),
        )
        .label(span, "this `!format`"),
    )
}

/// `!format` interpolating a value that is not a string.
/// `what` is the value's kind as a noun (`an integer`).
pub(crate) fn cannot_coerce(p: &[Box<str>], what: &str, span: Span) -> Error {
    let mut d = Diagnostic::new(
        ErrorKind::Type,
        Some(path::show(p)),
        format!(
            "cannot coerce {what} to a string: `config.{}` in a `!format` string",
            path::show(p)
        ),
    );
    d.labels.push(Label {
        span,
        note: "interpolated here".into(),
    });
    Rc::new(d)
}
