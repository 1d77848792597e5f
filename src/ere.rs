//! `strMatching`'s patterns as Nix reads them: `builtins.match` compiles them with
//! `std::regex::extended` (POSIX extended regular expressions, libstdc++ built strictly) and
//! matches the whole string, byte by byte. This translates such a pattern into an equivalent
//! byte-oriented `regex` pattern, or says why Nix would reject it:
//!
//! - `.` and negated brackets match any byte, a newline included; a multi-byte character is
//!   several bytes (`.` does not match `é`, `..` does);
//! - a backslash may only escape one of `^ $ \ . * + ? ( ) [ ] { } |`: `\d`, `\w`, `\n`, `\1`
//!   are errors, as are Perl's `(?i)` groups (a repetition with nothing to repeat);
//! - inside brackets a backslash is an ordinary character, `]` first is literal, and the
//!   classes `[:alpha:]` ... are the ASCII ones.

/// Why Nix would not accept a pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EreError {
    /// The byte offset in the pattern.
    pub at: usize,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for EreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {})", self.what, self.at)
    }
}

/// The characters a backslash may escape in a POSIX extended expression.
const ESCAPABLE: &[u8] = b"^$\\.*+?()[]{}|";

const CLASSES: &[&str] = &[
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space",
    "upper", "xdigit",
];

/// A byte as a `regex` literal in byte mode.
fn byte(out: &mut String, b: u8) {
    out.push_str(&format!("\\x{b:02X}"));
}

/// Translates a POSIX extended pattern into a `regex::bytes` pattern matching the same
/// strings, anchored at both ends as `builtins.match` matches.
pub fn translate(pattern: &str) -> Result<String, EreError> {
    let p = pattern.as_bytes();
    let err = |at: usize, what: &str| EreError {
        at,
        what: what.to_string(),
    };
    let mut out = String::from("(?s-u)^(?:");
    // Whether the last item can be repeated (an atom, a group, a bracket).
    let mut atom = false;
    let mut depth = 0usize;
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        match c {
            b'\\' => {
                let Some(&n) = p.get(i + 1) else {
                    return Err(err(i, "a trailing backslash"));
                };
                if !ESCAPABLE.contains(&n) {
                    return Err(err(
                        i,
                        &format!(
                            "`\\{}` is not a POSIX extended escape (only `^$\\.*+?()[]{{}}|` may be escaped; `\\d`, `\\w`, `\\s` and back-references are Perl's)",
                            String::from_utf8_lossy(&p[i + 1..(i + 2).min(p.len())])
                        ),
                    ));
                }
                byte(&mut out, n);
                atom = true;
                i += 2;
            }
            b'.' => {
                out.push('.');
                atom = true;
                i += 1;
            }
            b'^' | b'$' => {
                out.push(c as char);
                atom = false;
                i += 1;
            }
            b'(' => {
                if p.get(i + 1) == Some(&b'?') {
                    return Err(err(
                        i + 1,
                        "`(?` is a repetition with nothing to repeat: Perl's inline flags and groups (`(?i)`, `(?:`) are not POSIX",
                    ));
                }
                out.push('(');
                depth += 1;
                atom = false;
                i += 1;
            }
            b')' => {
                if depth == 0 {
                    return Err(err(i, "an unmatched `)`"));
                }
                out.push(')');
                depth -= 1;
                atom = true;
                i += 1;
            }
            b'|' => {
                out.push('|');
                atom = false;
                i += 1;
            }
            b'*' | b'+' | b'?' => {
                if !atom {
                    return Err(err(i, &format!("`{}` repeats nothing", c as char)));
                }
                out.push(c as char);
                i += 1;
                // A repetition may follow another (`a**`), as libstdc++ accepts.
            }
            b'{' => {
                if !atom {
                    return Err(err(i, "`{` repeats nothing"));
                }
                let end = p[i..]
                    .iter()
                    .position(|&x| x == b'}')
                    .map(|k| i + k)
                    .ok_or_else(|| err(i, "an unclosed `{` interval"))?;
                let body = std::str::from_utf8(&p[i + 1..end]).unwrap_or("");
                let (lo, hi) = match body.split_once(',') {
                    None => (body, Some(body)),
                    Some((lo, "")) => (lo, None),
                    Some((lo, hi)) => (lo, Some(hi)),
                };
                let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                if !num(lo) || hi.is_some_and(|h| !num(h)) {
                    return Err(err(
                        i,
                        &format!("`{{{body}}}` is not an interval `{{m}}`, `{{m,}}` or `{{m,n}}`"),
                    ));
                }
                let (l, h): (u32, Option<u32>) = (
                    lo.parse()
                        .map_err(|_| err(i, "an interval bound too large"))?,
                    match hi {
                        Some(h) => Some(
                            h.parse()
                                .map_err(|_| err(i, "an interval bound too large"))?,
                        ),
                        None => None,
                    },
                );
                if h.is_some_and(|h| h < l) {
                    return Err(err(
                        i,
                        "an interval whose upper bound is below its lower bound",
                    ));
                }
                if l > 255 || h.is_some_and(|h| h > 255) {
                    return Err(err(i, "an interval bound over 255 (RE_DUP_MAX)"));
                }
                out.push_str(&format!("{{{body}}}"));
                i = end + 1;
            }
            b'[' => {
                i = bracket(p, i, &mut out)?;
                atom = true;
            }
            _ => {
                byte(&mut out, c);
                atom = true;
                i += 1;
            }
        }
    }
    if depth != 0 {
        return Err(err(p.len(), "an unclosed `(`"));
    }
    out.push_str(")$");
    Ok(out)
}

/// A bracket expression starting at `p[start] == b'['`; returns the index after it.
fn bracket(p: &[u8], start: usize, out: &mut String) -> Result<usize, EreError> {
    let err = |at: usize, what: &str| EreError {
        at,
        what: what.to_string(),
    };
    let mut i = start + 1;
    let mut class = String::from("[");
    if p.get(i) == Some(&b'^') {
        class.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = p.get(i) else {
            return Err(err(start, "an unclosed `[`"));
        };
        if c == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        if c == b'[' && matches!(p.get(i + 1), Some(b':' | b'=' | b'.')) {
            let kind = p[i + 1];
            let close = [kind, b']'];
            let end = p[i + 2..]
                .windows(2)
                .position(|w| w == close)
                .map(|k| i + 2 + k)
                .ok_or_else(|| err(i, "an unclosed `[:`, `[=` or `[.`"))?;
            let name = std::str::from_utf8(&p[i + 2..end]).unwrap_or("");
            match kind {
                b':' if CLASSES.contains(&name) => class.push_str(&format!("[:{name}:]")),
                b':' => return Err(err(i, &format!("`[:{name}:]` is not a character class"))),
                _ if name.len() == 1 => byte(&mut class, name.as_bytes()[0]),
                _ => {
                    return Err(err(
                        i,
                        "collating elements and equivalence classes of more than one character are not supported",
                    ))
                }
            }
            i = end + 2;
            continue;
        }
        // A range `a-z` (a `-` first or last is literal).
        if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
            let end = p[i + 2];
            if end < c {
                return Err(err(i, "a range whose end comes before its start"));
            }
            byte(&mut class, c);
            class.push('-');
            byte(&mut class, end);
            i += 3;
            continue;
        }
        byte(&mut class, c);
        i += 1;
    }
    class.push(']');
    out.push_str(&class);
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, s: &[u8]) -> bool {
        let re = regex::bytes::Regex::new(&translate(pattern).unwrap()).unwrap();
        re.is_match(s)
    }

    #[test]
    fn dot_matches_any_byte_and_newlines() {
        assert!(matches("a.c", b"a\nc"));
        assert!(!matches(".", "é".as_bytes()));
        assert!(matches("..", "é".as_bytes()));
        assert!(matches("[^x]", b"\n"));
        assert!(!matches("[^x]", "é".as_bytes()));
    }

    #[test]
    fn whole_string_and_posix_syntax() {
        assert!(matches("[a-z]+", b"abc"));
        assert!(!matches("[a-z]+", b"abc1"));
        assert!(matches("a|b", b"b"));
        assert!(matches("(ab){2}c?", b"abab"));
        assert!(matches("x{1,}", b"xxx"));
        assert!(matches("[]a]*", b"]a]"));
        assert!(matches("[\\d]+", b"\\d"));
        assert!(matches("[[:digit:]]+", b"123"));
        assert!(matches("[[:alpha:]_-]+", b"a_-b"));
        assert!(matches("\\.\\*\\[", b".*["));
        assert!(matches("a\\{", b"a{"));
        assert!(matches("é", "é".as_bytes()));
        assert!(matches("^a$", b"a"));
    }

    #[test]
    fn what_nix_rejects_is_rejected() {
        for bad in [
            "\\d+",
            "\\w",
            "\\s",
            "\\n",
            "(?i)abc",
            "(?:a)",
            "a\\1",
            "*a",
            "a|*",
            "(a",
            "a)",
            "[a",
            "a{2",
            "a{x}",
            "a{3,1}",
            "[[:word:]]",
            "[z-a]",
            "\\",
        ] {
            assert!(translate(bad).is_err(), "{bad:?} was accepted");
        }
        let e = translate("\\d").unwrap_err();
        assert!(
            e.to_string()
                .contains("`\\d` is not a POSIX extended escape"),
            "{e}"
        );
    }
}
