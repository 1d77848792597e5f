//! Values written back in the scenario's own notation, on one line: YAML flow mappings and
//! sequences with the module system's tags (`{"/": !mkForce {device: /dev/sda1}}`), strings
//! plain wherever YAML reads them back as the same string. `explain` shows definitions this
//! way, so a user sees what they wrote, never the module system's internal form.

use super::node::{FormatPart, Kind, Node, ORDER_TAGS, OVERRIDE_TAGS};
use super::path;

/// Text that stops growing past a limit (a long value is cut, and the cut is marked).
pub(crate) struct Flow {
    out: String,
    limit: usize,
}

impl Flow {
    /// An empty text that holds about `limit` bytes.
    pub(crate) fn new(limit: usize) -> Flow {
        Flow {
            out: String::new(),
            limit,
        }
    }

    /// Whether the limit is reached (writers stop descending then).
    pub(crate) fn full(&self) -> bool {
        self.out.len() >= self.limit
    }

    /// Appends text.
    pub(crate) fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// The text, with `...` where it was cut.
    pub(crate) fn finish(mut self) -> String {
        if self.out.len() > self.limit {
            let mut cut = self.limit;
            while !self.out.is_char_boundary(cut) {
                cut -= 1;
            }
            self.out.truncate(cut);
            self.out.push_str("...");
        }
        self.out
    }

    /// Writes `items` between `open` and `close`, separated by commas, each by `one`.
    pub(crate) fn seq<T>(
        &mut self,
        open: &str,
        items: impl IntoIterator<Item = T>,
        close: &str,
        mut one: impl FnMut(&mut Flow, T),
    ) {
        self.push(open);
        for (i, x) in items.into_iter().enumerate() {
            if self.full() {
                break;
            }
            if i > 0 {
                self.push(", ");
            }
            one(self, x);
        }
        self.push(close);
    }
}

/// A string as YAML writes it: plain when YAML's core schema reads it back as this string,
/// else double-quoted.
pub(crate) fn string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.trim() == s
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`~".contains(c))
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.contains(|c: char| c.is_control() || ",[]{}".contains(c))
        && !s.ends_with(':')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "~" | ".inf" | "-.inf" | ".nan"
        )
        && s.parse::<f64>().is_err()
        && !s.starts_with("0x")
        && !s.starts_with("0o");
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

/// A mapping key in a config: a name with a dot is quoted inside the key (`'"a.b"'`), as the
/// scenario must write it; other names are plain when they are words, else double-quoted
/// (`"/"`, as mount points are written).
pub(crate) fn key(k: &str) -> String {
    let word = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if k.contains('.') || k.contains('"') {
        format!("'{}'", path::nix_string(k).replace('\'', "''"))
    } else if word {
        string(k)
    } else {
        serde_json::to_string(k).unwrap_or_default()
    }
}

/// The notation a value is shown in: the one of the file that defined it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// The scenario format's YAML flow with tags.
    Yaml,
    /// A Nix expression, as a `.nix` module writes it.
    Nix,
}

impl Syntax {
    /// The notation of the file at `path`.
    pub(crate) fn of(path: Option<&std::path::Path>) -> Syntax {
        match path.and_then(|p| p.extension()) {
            Some(e) if e == "nix" => Syntax::Nix,
            _ => Syntax::Yaml,
        }
    }

    /// A property applied to `content`: `!mkForce v` or `lib.mkForce v`, ...
    pub(crate) fn override_tag(self, priority: f64, content: &str) -> String {
        match self {
            Syntax::Yaml => override_tag(priority, content),
            Syntax::Nix => nix_property(&OVERRIDE_TAGS, "mkOverride", priority, content),
        }
    }

    /// `!mkBefore v` or `lib.mkBefore v`, ...
    pub(crate) fn order_tag(self, priority: f64, content: &str) -> String {
        match self {
            Syntax::Yaml => order_tag(priority, content),
            Syntax::Nix => nix_property(&ORDER_TAGS, "mkOrder", priority, content),
        }
    }

    /// `!mkIf [c, v]` or `lib.mkIf c v`.
    pub(crate) fn if_tag(self, cond: &str, content: &str) -> String {
        match self {
            Syntax::Yaml => format!("!mkIf [{cond}, {content}]"),
            Syntax::Nix => format!("lib.mkIf {} {}", nix_arg(cond), nix_arg(content)),
        }
    }

    /// `!mkMerge [...]` or `lib.mkMerge [ ... ]`.
    pub(crate) fn merge_tag(self, items: &[String]) -> String {
        match self {
            Syntax::Yaml => format!("!mkMerge [{}]", items.join(", ")),
            Syntax::Nix => format!(
                "lib.mkMerge [ {} ]",
                items
                    .iter()
                    .map(|i| nix_arg(i))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }
}

/// `lib.NAME content` for a priority `named` has a name for (`lib.mkForce v`), else
/// `lib.GENERAL priority content` (`lib.mkOverride 70 v`).
fn nix_property(named: &[(&str, f64)], general: &str, priority: f64, content: &str) -> String {
    match named.iter().find(|(_, p)| *p == priority) {
        Some((name, _)) => format!("lib.{name} {}", nix_arg(content)),
        None => format!("lib.{general} {} {}", number(priority), nix_arg(content)),
    }
}

/// A Nix expression as a function's argument: parenthesized unless it is one term.
fn nix_arg(e: &str) -> String {
    let simple = !e.contains(' ')
        || (e.starts_with('"') && e.ends_with('"'))
        || ((e.starts_with('[') && e.ends_with(']')) || (e.starts_with('{') && e.ends_with('}')));
    if simple {
        e.to_string()
    } else {
        format!("({e})")
    }
}

/// `!mkForce v`, `!mkImageMediaOverride v`, … or `!mkOverride [p, v]`.
pub(crate) fn override_tag(priority: f64, content: &str) -> String {
    match OVERRIDE_TAGS.iter().find(|(_, p)| *p == priority) {
        Some((name, _)) => format!("!{name} {content}"),
        None => format!("!mkOverride [{}, {content}]", number(priority)),
    }
}

/// `!mkBefore v`, `!mkAfter v` or `!mkOrder [p, v]`.
pub(crate) fn order_tag(priority: f64, content: &str) -> String {
    match ORDER_TAGS.iter().find(|(_, p)| *p == priority) {
        Some((name, _)) => format!("!{name} {content}"),
        None => format!("!mkOrder [{}, {content}]", number(priority)),
    }
}

/// A number as YAML writes it (an integral float keeps its point).
pub(crate) fn number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// A node as the scenario wrote it, within `limit` bytes.
pub(crate) fn node(n: &Node, limit: usize) -> String {
    let mut f = Flow::new(limit);
    write(&mut f, n);
    f.finish()
}

/// A node in `syntax`, within `limit` bytes.
pub(crate) fn node_as(n: &Node, limit: usize, syntax: Syntax) -> String {
    match syntax {
        Syntax::Yaml => node(n, limit),
        Syntax::Nix => {
            let mut f = Flow::new(limit);
            write_nix(&mut f, n);
            f.finish()
        }
    }
}

/// A node as a `.nix` module writes it.
fn write_nix(f: &mut Flow, n: &Node) {
    let inner = |n: &Node, limit: usize| node_as(n, limit, Syntax::Nix);
    match &n.kind {
        Kind::Null => f.push("null"),
        Kind::Bool(b) => f.push(&b.to_string()),
        Kind::Int(i) => f.push(&i.to_string()),
        Kind::Float(x) => f.push(&number(*x)),
        Kind::Str(s) => f.push(&path::nix_string(s)),
        Kind::List(xs) => {
            f.push("[ ");
            for x in xs {
                if f.full() {
                    break;
                }
                f.push(&nix_arg(&inner(x, f.limit)));
                f.push(" ");
            }
            f.push("]");
        }
        Kind::Map(es) => {
            f.push("{ ");
            for (k, v) in es {
                if f.full() {
                    break;
                }
                f.push(&match path::split(&k.name) {
                    Ok(parts) => path::show(&parts),
                    Err(_) => path::show(&[&*k.name]),
                });
                f.push(" = ");
                write_nix(f, v);
                f.push("; ");
            }
            f.push("}");
        }
        Kind::If(c, v) => f.push(&Syntax::Nix.if_tag(&inner(c, f.limit), &inner(v, f.limit))),
        Kind::Merge(xs) => {
            let items: Vec<String> = xs.iter().map(|x| inner(x, f.limit)).collect();
            f.push(&Syntax::Nix.merge_tag(&items))
        }
        Kind::Override(p, v) => f.push(&Syntax::Nix.override_tag(*p, &inner(v, f.limit))),
        Kind::Order(p, v) => f.push(&Syntax::Nix.order_tag(*p, &inner(v, f.limit))),
        Kind::Ref(p) => f.push(&format!("config.{}", path::show(p))),
        Kind::Format(parts) => {
            let mut s = String::from("\"");
            for p in parts {
                match p {
                    FormatPart::Text(t) => {
                        let lit = path::nix_string(t);
                        s.push_str(&lit[1..lit.len() - 1]);
                    }
                    FormatPart::Ref(r) => s.push_str(&format!("${{config.{}}}", path::show(r))),
                    FormatPart::Name => s.push_str("${name}"),
                }
            }
            s.push('"');
            f.push(&s);
        }
        Kind::Nix(d) => match d.value.get() {
            Some(done) => write_nix(f, done),
            None => f.push(&one_line(&d.text)),
        },
        // Not written by `.nix` modules; shown as the scenario format would.
        Kind::Call(..) | Kind::Name => write(f, n),
    }
}

fn write(f: &mut Flow, n: &Node) {
    let inner = |n: &Node, limit: usize| node(n, limit);
    match &n.kind {
        Kind::Null => f.push("null"),
        Kind::Bool(b) => f.push(&b.to_string()),
        Kind::Int(i) => f.push(&i.to_string()),
        Kind::Float(x) => {
            let s = number(*x);
            f.push(&if s.contains(['.', 'e', 'i', 'N']) {
                s
            } else {
                format!("{s}.0")
            })
        }
        Kind::Str(s) => f.push(&string(s)),
        Kind::List(xs) => f.seq("[", xs, "]", write),
        Kind::Map(es) => f.seq("{", es, "}", |f, (k, v)| {
            f.push(&key(&k.name));
            f.push(": ");
            write(f, v);
        }),
        Kind::If(c, v) => f.seq("!mkIf [", [&**c, &**v], "]", write),
        Kind::Merge(xs) => f.seq("!mkMerge [", xs, "]", write),
        Kind::Override(p, v) => f.push(&override_tag(*p, &inner(v, f.limit))),
        Kind::Order(p, v) => f.push(&order_tag(*p, &inner(v, f.limit))),
        Kind::Ref(p) => f.push(&format!("!config {}", path::show(p))),
        Kind::Format(parts) => {
            let text: String = parts
                .iter()
                .map(|p| match p {
                    FormatPart::Text(t) => t.to_string(),
                    FormatPart::Ref(r) => format!("${{{}}}", path::show(r)),
                    FormatPart::Name => "${!name}".into(),
                })
                .collect();
            f.push(&format!(
                "!format {}",
                serde_json::to_string(&text).unwrap_or_default()
            ));
        }
        Kind::Call(func, args) => {
            f.push("!call [");
            f.push(func.name());
            for a in args {
                f.push(", ");
                write(f, a);
            }
            f.push("]");
        }
        Kind::Name => f.push("!name"),
        Kind::Nix(d) => match d.value.get() {
            Some(done) => write(f, done),
            None => f.push(&one_line(&d.text)),
        },
    }
}

/// An expression as written, its line breaks and indentation made single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A `.nix` computation as written, on one line, cut at about `limit` bytes.
pub(crate) fn computation(d: &crate::scenario::Deferred, limit: usize) -> String {
    let mut f = Flow::new(limit);
    f.push(&one_line(&d.text));
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Node {
        let s = crate::scenario::load_str(
            &format!(
                "modules:\n  - options: {{x: {{type: anything}}}}\n  - config:\n      x: {text}\n"
            ),
            "s.yaml",
            std::path::Path::new("."),
        )
        .unwrap();
        s.modules[1]
            .config
            .as_ref()
            .unwrap()
            .get("x")
            .unwrap()
            .clone()
    }

    /// What is written reads back as the same node, tags and quoting included.
    #[test]
    fn written_values_read_back_as_themselves() {
        for text in [
            r#"{"/": !mkForce {device: /dev/disk/by-label/nixos, fsType: ext4}}"#,
            r#"[a, "true", "1.5", "x: y", "", " padded", 3, 1.5, null, false]"#,
            r#"!mkOverride [55, !mkAfter [1]]"#,
            r#"!mkIf [!config services.openssh.enable, [console=ttyS0]]"#,
            r#"!mkMerge [{a: 1}, !mkDefault {b: 2}]"#,
            r#"!format "${a.b}-x""#,
            r#"{'"/nix/.ro-store"': {fsType: squashfs}}"#,
            r#"!mkOrder [600, [z]]"#,
        ] {
            let n = parsed(text);
            assert_eq!(node(&n, 1000), text);
        }
    }

    #[test]
    fn a_long_value_is_cut_and_marked() {
        let n = parsed(&format!("[{}]", vec!["word"; 100].join(", ")));
        let shown = node(&n, 40);
        assert!(
            shown.starts_with("[word, word") && shown.ends_with("..."),
            "{shown}"
        );
        assert!(shown.len() <= 43, "{shown}");
    }
}
