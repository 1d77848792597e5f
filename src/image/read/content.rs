//! Content-level comparison for the image stage's `diff` and golden records: text files as
//! unified diffs, and the embedded resolved config (`/isoproof/config.json`) as a diff by
//! option, so that a changed image is explained by the options that changed.

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

/// Text files up to this size are compared line by line.
pub const MAX_TEXT: u64 = 1 << 20;

/// The file every isoproof image carries its resolved config in.
pub const CONFIG_PATH: &str = "/isoproof/config.json";

/// `bytes` as text: valid UTF-8, no NUL, at most [`MAX_TEXT`] bytes.
pub fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.len() as u64 > MAX_TEXT || bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// A unified diff of two texts (three lines of context, `@@` hunk headers), one line per
/// element, without the `---`/`+++` header; empty when they are equal.
pub fn unified(a: &str, b: &str) -> Vec<String> {
    let d = TextDiff::from_lines(a, b);
    let mut out = Vec::new();
    for hunk in d.unified_diff().context_radius(3).iter_hunks() {
        out.push(hunk.header().to_string());
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            let line = change.value();
            let text = line.strip_suffix('\n').unwrap_or(line);
            out.push(format!("{sign}{text}"));
            if change.missing_newline() {
                out.push("\\ No newline at end of file".into());
            }
        }
    }
    out
}

/// One option whose value differs between two resolved configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionChange {
    /// The option's path as NixOS writes it (`fileSystems."/".device`).
    pub option: String,
    /// What changed: `+ elem`/`- elem` lines for lists of scalars, else one `a -> b` line.
    pub lines: Vec<String>,
}

/// The options that differ between two resolved configs (JSON as `resolve` writes it), in
/// option order; `None` when either does not parse.
pub fn options(a: &str, b: &str) -> Option<Vec<OptionChange>> {
    let (a, b): (Value, Value) = (serde_json::from_str(a).ok()?, serde_json::from_str(b).ok()?);
    let mut out = Vec::new();
    walk(&mut Vec::new(), Some(&a), Some(&b), &mut out);
    Some(out)
}

/// A value as JSON text: numbers as numbers, strings quoted.
fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(absent)".into(), Value::to_string)
}

fn walk(path: &mut Vec<String>, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<OptionChange>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                path.push(k.clone());
                walk(path, x.get(k), y.get(k), out);
                path.pop();
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y)))
            if x.iter().chain(y).all(|v| !v.is_object() && !v.is_array()) =>
        {
            let (xs, ys): (Vec<String>, Vec<String>) = (
                x.iter().map(Value::to_string).collect(),
                y.iter().map(Value::to_string).collect(),
            );
            let d = similar::capture_diff_slices(similar::Algorithm::Myers, &xs, &ys);
            let mut lines = Vec::new();
            for op in d {
                for change in op.iter_changes(&xs, &ys) {
                    let v = change.value();
                    match change.tag() {
                        ChangeTag::Delete => lines.push(format!("- {v}")),
                        ChangeTag::Insert => lines.push(format!("+ {v}")),
                        ChangeTag::Equal => {}
                    }
                }
            }
            if lines.is_empty() {
                // Same elements, same order: cannot happen when the arrays differ.
                lines.push(format!("{} -> {}", show(a), show(b)));
            }
            out.push(OptionChange {
                option: option_path(path),
                lines,
            });
        }
        _ => out.push(OptionChange {
            option: option_path(path),
            lines: vec![format!("{} -> {}", show(a), show(b))],
        }),
    }
}

/// The report of changed options, a line each (empty when none changed): a heading, then each
/// option with its one change on the same line, or its list changes below it.
pub fn option_lines(changes: &[OptionChange]) -> Vec<String> {
    if changes.is_empty() {
        return Vec::new();
    }
    let mut o = vec![format!(
        "options that changed ({CONFIG_PATH}), which the changes below follow from"
    )];
    for c in changes {
        if let [one] = c.lines.as_slice() {
            o.push(format!("  {}: {one}", c.option));
        } else {
            o.push(format!("  {}:", c.option));
            o.extend(c.lines.iter().map(|l| format!("    {l}")));
        }
    }
    o
}

/// An option path as NixOS prints it: names that are not identifiers are quoted.
pub fn option_path(parts: &[String]) -> String {
    let ident = |s: &str| {
        let mut c = s.chars();
        c.next()
            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
            && c.all(|x| x.is_ascii_alphanumeric() || matches!(x, '_' | '\'' | '-'))
    };
    parts
        .iter()
        .map(|p| {
            if ident(p) {
                p.clone()
            } else {
                format!("{p:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_shows_the_changed_line_with_context() {
        let a = "SERIAL 0\nDEFAULT linux\nLABEL linux\n  APPEND quiet\n";
        let b = "SERIAL 0\nDEFAULT linux\nLABEL linux\n  APPEND quiet console=ttyS0\n";
        assert_eq!(
            unified(a, b),
            [
                "@@ -1,4 +1,4 @@",
                " SERIAL 0",
                " DEFAULT linux",
                " LABEL linux",
                "-  APPEND quiet",
                "+  APPEND quiet console=ttyS0",
            ]
        );
        assert!(unified(a, a).is_empty());
        assert_eq!(
            unified("x", "x\n"),
            ["@@ -1 +1 @@", "-x", "\\ No newline at end of file", "+x"]
        );
    }

    #[test]
    fn text_is_utf8_without_nul_up_to_a_mib() {
        assert_eq!(as_text(b"ok\n"), Some("ok\n"));
        assert_eq!(as_text(b"\xff"), None);
        assert_eq!(as_text(b"a\0b"), None);
        assert_eq!(as_text(&vec![b'a'; MAX_TEXT as usize + 1]), None);
    }

    #[test]
    fn options_diff_by_path_with_list_elements() {
        let a = r#"{"boot":{"kernelParams":["loglevel=4"]},"fileSystems":{"/":{"device":"a","size":1}},"x":1}"#;
        let b = r#"{"boot":{"kernelParams":["loglevel=4","console=ttyS0,115200"]},"fileSystems":{"/":{"device":"b","size":2}},"y":true}"#;
        let d = options(a, b).unwrap();
        let shown: Vec<(String, Vec<String>)> =
            d.into_iter().map(|c| (c.option, c.lines)).collect();
        assert_eq!(
            shown,
            [
                (
                    "boot.kernelParams".into(),
                    vec!["+ \"console=ttyS0,115200\"".to_string()]
                ),
                (
                    "fileSystems.\"/\".device".into(),
                    vec!["\"a\" -> \"b\"".into()]
                ),
                ("fileSystems.\"/\".size".into(), vec!["1 -> 2".into()]),
                ("x".into(), vec!["1 -> (absent)".into()]),
                ("y".into(), vec!["(absent) -> true".into()]),
            ]
        );
        assert_eq!(options(a, a), Some(vec![]));
        assert_eq!(options("{", a), None);
    }
}
