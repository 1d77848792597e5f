//! Option paths as written in scenarios: `a.b.c`, `'fileSystems."/boot"'`.
//!
//! A key is split on dots that are not inside double quotes; quotes are removed and `\"` / `\\`
//! inside them are escapes. This is how a Nix attribute path reads, so the same text means the
//! same path in both.

/// Why a key is not an option path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    /// The empty key.
    #[error("empty option path")]
    Empty,
    /// A quote that does not end.
    #[error("unterminated quote in option path `{0}`")]
    Unterminated(String),
    /// `a..b`, `.a`, `a.`.
    #[error("empty component in option path `{0}`")]
    EmptyComponent(String),
}

/// Splits a dotted key into its components; an unterminated quote or an empty component
/// (`a..b`, `.a`) is an error.
pub(crate) fn split(key: &str) -> Result<Vec<Box<str>>, PathError> {
    // Fast path: the overwhelming majority of keys are plain identifiers.
    if !key.contains(['.', '"']) {
        if key.is_empty() {
            return Err(PathError::Empty);
        }
        return Ok(vec![key.into()]);
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut quoted_part = false;
    let mut chars = key.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted_part = true;
                loop {
                    match chars.next() {
                        None => return Err(PathError::Unterminated(key.into())),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => cur.push(e),
                            None => return Err(PathError::Unterminated(key.into())),
                        },
                        Some(o) => cur.push(o),
                    }
                }
            }
            '.' => {
                if cur.is_empty() && !quoted_part {
                    return Err(PathError::EmptyComponent(key.into()));
                }
                parts.push(std::mem::take(&mut cur).into_boxed_str());
                quoted_part = false;
            }
            o => cur.push(o),
        }
    }
    if cur.is_empty() && !quoted_part {
        return Err(PathError::EmptyComponent(key.into()));
    }
    parts.push(cur.into_boxed_str());
    Ok(parts)
}

/// Shows a path the way Nix's `showOption` does: components joined by dots, each quoted unless
/// it is a plain identifier (`fileSystems."/boot".device`).
pub(crate) fn show<S: AsRef<str>>(parts: &[S]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_component(&mut out, p.as_ref());
    }
    out
}

/// Appends one component, quoted when needed (`lib.strings.escapeNixIdentifier`).
pub(crate) fn push_component(out: &mut String, p: &str) {
    if is_identifier(p) || matches!(p, "<name>" | "*") {
        out.push_str(p);
    } else {
        push_nix_string(out, p);
    }
}

/// A Nix string literal (`"a\"b"`), as Nix prints strings: the one place isoproof escapes
/// them, for option paths and for values alike.
pub(crate) fn nix_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_nix_string(&mut out, s);
    out
}

fn push_nix_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' => out.push_str("\\$"),
            o => out.push(o),
        }
    }
    out.push('"');
}

/// `[a-zA-Z_][a-zA-Z0-9_'-]*`, the regex `escapeNixIdentifier` uses.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut cs = s.chars();
    match cs.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    cs.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(k: &str) -> Vec<String> {
        split(k).unwrap().into_iter().map(String::from).collect()
    }

    #[test]
    fn splits_on_unquoted_dots() {
        assert_eq!(s("a.b.c"), ["a", "b", "c"]);
        assert_eq!(s(r#"fileSystems."/boot""#), ["fileSystems", "/boot"]);
        assert_eq!(s(r#"a."x.y".z"#), ["a", "x.y", "z"]);
        assert_eq!(s(r#""a\"b""#), ["a\"b"]);
        assert_eq!(s(r#"a."""#), ["a", ""]);
    }

    #[test]
    fn rejects_malformed_paths() {
        assert!(split("a..b").is_err());
        assert!(split(".a").is_err());
        assert!(split("a.").is_err());
        assert!(split(r#"a."b"#).is_err());
        assert!(split("").is_err());
    }

    #[test]
    fn shows_like_nix() {
        assert_eq!(
            show(&["fileSystems", "/", "device"]),
            r#"fileSystems."/".device"#
        );
        assert_eq!(
            show(&["x", "[definition 1-entry 1]"]),
            r#"x."[definition 1-entry 1]""#
        );
        assert_eq!(show(&["a-b", "c'd", "1x"]), r#"a-b.c'd."1x""#);
    }
}
