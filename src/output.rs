//! Renderings of a resolved config: JSON (the conformance contract), YAML (for snapshots and
//! humans) and text (one `path = value;` line per leaf, as `nixos-option` shows options).

use serde_json::Value as J;

use crate::scenario::path;

/// Pretty JSON with sorted keys (the resolver already emits attributes in name order).
pub fn json(v: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

/// Block-style YAML. Strings are quoted whenever a YAML reader could take them for anything
/// else (including YAML 1.1 booleans such as `yes`), so the output reads back unchanged.
pub fn yaml(v: &J) -> String {
    let mut out = String::new();
    match v {
        J::Object(m) if !m.is_empty() => yaml_map(m, 0, &mut out),
        J::Array(a) if !a.is_empty() => yaml_list(a, 0, &mut out),
        other => {
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
    out
}

fn yaml_map(m: &serde_json::Map<String, J>, indent: usize, out: &mut String) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_str(k));
        out.push(':');
        yaml_child(v, indent, out);
    }
}

fn yaml_list(a: &[J], indent: usize, out: &mut String) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            J::Object(m) if !m.is_empty() => {
                // First key on the dash line, the rest aligned under it.
                let mut first = true;
                for (k, x) in m {
                    if first {
                        out.push(' ');
                        first = false;
                    } else {
                        out.push_str(&" ".repeat(indent + 2));
                    }
                    out.push_str(&yaml_str(k));
                    out.push(':');
                    yaml_child(x, indent + 2, out);
                }
            }
            _ => yaml_child(v, indent, out),
        }
    }
}

fn yaml_child(v: &J, indent: usize, out: &mut String) {
    match v {
        J::Object(m) if !m.is_empty() => {
            out.push('\n');
            yaml_map(m, indent + 2, out);
        }
        J::Array(a) if !a.is_empty() => {
            out.push('\n');
            yaml_list(a, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&yaml_scalar(other));
            out.push('\n');
        }
    }
}

fn yaml_scalar(v: &J) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => yaml_str(s),
        J::Array(_) => "[]".into(),
        J::Object(_) => "{}".into(),
    }
}

/// A string as a YAML scalar: plain when unambiguous, double-quoted otherwise.
pub(crate) fn yaml_str(s: &str) -> String {
    if is_plain_safe(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@` ".contains(first) || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control()) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "null"
            | "~"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return false;
    }
    // Anything that starts like a number is quoted.
    !(first.is_ascii_digit() || first == '+' || first == '.')
}

/// `path = value;` lines, one per leaf, in name order.
pub fn text(v: &J) -> String {
    let mut out = String::new();
    let mut p = Vec::new();
    text_walk(v, &mut p, &mut out);
    out
}

fn text_walk(v: &J, p: &mut Vec<String>, out: &mut String) {
    match v {
        J::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                p.push(k.clone());
                text_walk(x, p, out);
                p.pop();
            }
        }
        _ => {
            out.push_str(&path::show(p));
            out.push_str(" = ");
            out.push_str(&nix(v));
            out.push_str(";\n");
        }
    }
}

/// A JSON value in Nix syntax, on one line.
pub fn nix(v: &J) -> String {
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => n.to_string(),
        J::String(s) => path::nix_string(s),
        J::Array(a) if a.is_empty() => "[ ]".into(),
        J::Array(a) => format!("[ {} ]", a.iter().map(nix).collect::<Vec<_>>().join(" ")),
        J::Object(m) if m.is_empty() => "{ }".into(),
        J::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, x)| {
                    let mut key = String::new();
                    path::push_component(&mut key, k);
                    format!("{key} = {};", nix(x))
                })
                .collect();
            format!("{{ {} }}", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_quotes_ambiguous_strings() {
        let v = json!({"a": "yes", "b": "0755", "c": "plain text", "d": "x: y", "e": "", "f": [1, {"g": null, "h": "-x"}], "i": {}, "/": "/dev/root"});
        assert_eq!(
            yaml(&v),
            "a: \"yes\"\nb: \"0755\"\nc: plain text\nd: \"x: y\"\ne: \"\"\nf:\n  - 1\n  - g: null\n    h: \"-x\"\ni: {}\n/: /dev/root\n"
        );
    }

    #[test]
    fn text_lines_are_nix() {
        let v = json!({"fileSystems": {"/": {"options": ["a", "b"]}}, "n": 1});
        assert_eq!(
            text(&v),
            "fileSystems.\"/\".options = [ \"a\" \"b\" ];\nn = 1;\n"
        );
    }
}
