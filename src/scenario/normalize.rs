//! Normalisation of config values: dotted keys split into nested mappings, keys sorted, and
//! a path defined twice in one module refused, as Nix refuses `{ a.b = 1; a.b = 2; }`.

use super::{path, yaml::MAX_DEPTH, Key, Kind, Node, Span, Text};
use crate::diag::Diagnostic;

/// Splits dotted keys of every mapping in a config value into nested mappings, sorts keys, and
/// rejects a path defined twice in one module (as Nix rejects `{ a.b = 1; a.b = 2; }`). Two
/// plain mappings at one path merge, as `{ a.b = 1; a.c = 2; }` does in Nix.
pub(crate) fn normalize(mut node: Node, depth: usize) -> Result<Node, Diagnostic> {
    normalize_in_place(&mut node, depth)?;
    Ok(node)
}

/// [`normalize`] without moving the tree: only mappings with dotted keys are rebuilt. A large
/// scenario's config is mostly plain values, and rebuilding every vector of it doubled the
/// memory churn of loading.
fn normalize_in_place(node: &mut Node, depth: usize) -> Result<(), Diagnostic> {
    if depth > MAX_DEPTH {
        return Err(Diagnostic::parse(
            node.span,
            format!("nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    match &mut node.kind {
        Kind::Map(entries) => {
            if entries.iter().all(|(k, _)| !k.name.contains(['.', '"'])) {
                for (k, v) in entries.iter_mut() {
                    if k.name.is_empty() {
                        return Err(Diagnostic::parse(k.span, "empty option path"));
                    }
                    normalize_in_place(v, depth + 1)?;
                }
                if !entries.windows(2).all(|w| w[0].0.name < w[1].0.name) {
                    entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
                }
            } else {
                let written = std::mem::take(entries);
                let mut out: Vec<(Key, Node)> = Vec::with_capacity(written.len());
                let mut longest = 0;
                for (k, mut v) in written {
                    let parts = path::split(&k.name)
                        .map_err(|e| Diagnostic::parse(k.span, e.to_string()))?;
                    longest = longest.max(parts.len());
                    normalize_in_place(&mut v, depth + 1)?;
                    insert_path(&mut out, &parts, k.span, v)?;
                }
                shrink_built(&mut out, longest);
                *entries = out;
            }
        }
        Kind::List(items) | Kind::Merge(items) => {
            for n in items {
                normalize_in_place(n, depth + 1)?;
            }
        }
        Kind::If(c, v) => {
            normalize_in_place(c, depth + 1)?;
            normalize_in_place(v, depth + 1)?;
        }
        Kind::Override(_, v) | Kind::Order(_, v) => normalize_in_place(v, depth + 1)?,
        _ => {}
    }
    Ok(())
}

/// Gives back the room left in mappings built from dotted keys: `a.b: 1` and `a.c: 2` make one
/// mapping `a` grown an entry at a time, and the level itself was sized for every key. Only the
/// `levels` below, where the longest path ends and its value may have been merged into, can
/// have any; written mappings are exact already.
fn shrink_built(entries: &mut Vec<(Key, Node)>, levels: usize) {
    entries.shrink_to_fit();
    if levels == 0 {
        return;
    }
    for (_, v) in entries {
        if let Kind::Map(inner) = &mut v.kind {
            shrink_built(inner, levels - 1);
        }
    }
}

/// Inserts `value` at `parts` into a sorted entry list, merging plain mappings.
fn insert_path(
    entries: &mut Vec<(Key, Node)>,
    parts: &[Box<str>],
    key_span: Span,
    value: Node,
) -> Result<(), Diagnostic> {
    let name = &parts[0];
    let pos = entries.binary_search_by(|(k, _)| (*k.name).cmp(name));
    if parts.len() == 1 {
        match pos {
            Err(i) => entries.insert(
                i,
                (
                    Key {
                        name: Text::from(&**name),
                        span: key_span,
                    },
                    value,
                ),
            ),
            Ok(i) => {
                let existing = &mut entries[i];
                // Moved, not cloned: only a second plain mapping at the same path merges.
                let (Kind::Map(old), Kind::Map(new)) = (&mut existing.1.kind, value.kind) else {
                    return Err(defined_twice(&existing.0, key_span));
                };
                for (k, v) in new {
                    let kspan = k.span;
                    insert_path(old, &[Box::from(k.name.as_str())], kspan, v)?;
                }
            }
        }
        return Ok(());
    }
    let i = match pos {
        Ok(i) => i,
        Err(i) => {
            entries.insert(
                i,
                (
                    Key {
                        name: Text::from(&**name),
                        span: key_span,
                    },
                    Node {
                        span: key_span,
                        kind: Kind::Map(Vec::new()),
                    },
                ),
            );
            i
        }
    };
    let (k, n) = &mut entries[i];
    match &mut n.kind {
        Kind::Map(inner) => insert_path(inner, &parts[1..], key_span, value),
        _ => Err(defined_twice(k, key_span)),
    }
}

fn defined_twice(first: &Key, second: Span) -> Diagnostic {
    Diagnostic::parse(
        second,
        format!(
            "`{}` is defined twice in one module (as Nix, a module may define each path once)",
            first.name
        ),
    )
    .label(first.span, "first defined here")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{yaml, FileId};

    fn cfg(text: &str) -> Result<Node, Diagnostic> {
        let n = yaml::parse_document(text, FileId(0)).unwrap();
        normalize(n, 0)
    }

    fn keys(n: &Node) -> Vec<String> {
        match &n.kind {
            Kind::Map(es) => es.iter().map(|(k, _)| k.name.to_string()).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn dotted_and_nested_keys_mean_the_same() {
        let n = cfg("a.b: 1\na.c: 2\nz: 0\n'fileSystems.\"/boot\"': {device: x}\n").unwrap();
        assert_eq!(keys(&n), ["a", "fileSystems", "z"]);
        assert_eq!(keys(n.get("a").unwrap()), ["b", "c"]);
        assert_eq!(keys(n.get("fileSystems").unwrap()), ["/boot"]);
        let m = cfg("a.b: 1\na: {c: 2}\n").unwrap();
        assert_eq!(keys(m.get("a").unwrap()), ["b", "c"]);
    }

    #[test]
    fn dotted_levels_keep_no_spare_room() {
        let n = cfg("a.b.c: 1\na.b.d: 2\na.e: 3\nf.g: {x: 1}\n").unwrap();
        fn exact(n: &Node) -> bool {
            match &n.kind {
                Kind::Map(es) => es.capacity() == es.len() && es.iter().all(|(_, v)| exact(v)),
                _ => true,
            }
        }
        assert!(exact(&n));
    }

    #[test]
    fn same_path_twice_is_an_error() {
        let e = cfg("a.b: 1\na: {b: 2}\n").unwrap_err();
        assert!(e.message.contains("defined twice"), "{}", e.message);
        assert!(cfg("a.b: 1\na: !mkForce {c: 2}\n").is_err());
    }
}
