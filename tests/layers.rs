//! The library's layers point one way. Reads every file of `src/` (the library; the binary's
//! `main.rs` and `cli/` stand above it all), takes its `crate::` and `super::` paths outside
//! its tests as edges to the files they lead to, and checks:
//!
//! - no import circle between files but the one the module system itself is: a submodule is
//!   a nested evaluation, so `resolve/types.rs` and `resolve/options.rs` call each other, as
//!   nixpkgs' `types.submodule` calls `evalModules`;
//! - the stages only import stages below them (the order of [`LAYERS`]), and inside the image
//!   stage, formats import neither readers nor writers, and readers and writers not each other.
//!
//! A module's own children (`mod x;`, `pub use x::Y`) are part of it, not edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules from the bottom up; a module may import only those before it.
const LAYERS: &[&[&str]] = &[
    &["hex", "source", "ere", "exit"],
    &["diag", "input"],
    &["publish"],
    &["scenario"],
    &["resolve", "output"],
    &["image"],
    &["payload"],
    &["compose"],
    &["golden"],
    &["boot"],
];

/// The one circle allowed: Nix's own submodule recursion.
const ALLOWED_CIRCLE: &[&str] = &["resolve::options", "resolve::types"];

type Module = Vec<String>;

/// Every library file, by module path (`image::read::inspect`; `lib.rs` is the empty path).
fn files() -> BTreeMap<Module, PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().with_extension("");
            let mut m: Module = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            match m.last().map(String::as_str) {
                Some("mod") => {
                    m.pop();
                }
                Some("lib") if m.len() == 1 => m.clear(),
                _ => {}
            }
            // The binary is above the library.
            if m.first().is_some_and(|f| f == "main" || f == "cli") {
                continue;
            }
            out.insert(m, p);
        }
    }
    out
}

/// The code of a file without its tests and comments.
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths written after `crate::` or `super::` (and `super::super::`), each as the module
/// path it names, groups (`a::{b, c::d}`) expanded.
fn paths(code: &str, me: &Module) -> Vec<Module> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let start_ok = i == 0 || !(word(bytes[i - 1] as char) || bytes[i - 1] == b':');
        let base: Option<(Module, usize)> = if !start_ok {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            // `super` is the parent of the module a file is (a `mod.rs` file is its module).
            let mut parent = me.clone();
            parent.pop();
            let mut len = "super::".len();
            while code[i + len..].starts_with("super::") {
                parent.pop();
                len += "super::".len();
            }
            Some((parent, len))
        } else {
            None
        };
        let Some((base, skip)) = base else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        i += skip;
        let tail: String = code[i..]
            .chars()
            .take_while(|c| {
                word(*c)
                    || *c == ':'
                    || *c == '{'
                    || *c == '}'
                    || *c == ','
                    || c.is_whitespace()
                    || *c == '*'
            })
            .collect();
        expand(&base, &tail, &mut out);
        i += 1;
    }
    out
}

/// `a::b::{c, d::e}` after `base` → the module paths it names.
fn expand(base: &Module, tail: &str, out: &mut Vec<Module>) {
    let mut cur = base.clone();
    let mut rest = tail;
    loop {
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if name.is_empty() {
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let item = item.trim().split(" as ").next().unwrap_or("").trim();
                    if !item.is_empty() && item != "self" {
                        expand(&cur, item, out);
                    }
                }
            }
            out.push(cur);
            return;
        }
        cur.push(name.clone());
        rest = &rest[name.len()..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => {
                out.push(cur);
                return;
            }
        }
    }
}

/// The file a path leads to: its longest prefix that is a file's module.
fn target(files: &BTreeMap<Module, PathBuf>, path: &Module) -> Option<Module> {
    (0..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|m| files.contains_key(m))
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let files = files();
    let mut g = BTreeMap::new();
    for (m, p) in &files {
        let mut to = BTreeSet::new();
        for path in paths(&code(p), m) {
            if let Some(t) = target(&files, &path) {
                if t != *m {
                    to.insert(t);
                }
            }
        }
        g.insert(m.clone(), to);
    }
    g
}

fn show(m: &Module) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("::")
    }
}

/// Strongly connected components of two files or more (Tarjan).
fn circles(g: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on: BTreeSet<&'a Module>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a Module) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        t.on.insert(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = t.g.get_key_value(w).map(|(k, _)| k).unwrap_or(w);
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on.remove(w);
                comp.push(show(w));
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !t.index.contains_key(v) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_only_import_circle_is_nix_s_own() {
    let g = graph();
    assert!(g.len() > 50, "only {} files read", g.len());
    let found = circles(&g);
    let allowed: Vec<String> = ALLOWED_CIRCLE.iter().map(|s| s.to_string()).collect();
    let wrong: Vec<&Vec<String>> = found.iter().filter(|c| **c != allowed).collect();
    assert!(
        wrong.is_empty(),
        "import circles between files of src/: {wrong:?}"
    );
    assert!(
        found.contains(&allowed),
        "the documented circle {allowed:?} is gone: update ALLOWED_CIRCLE and its comments"
    );
}

#[test]
fn stages_import_only_stages_below() {
    let rank = |m: &Module| -> Option<usize> {
        let top = m.first()?;
        LAYERS.iter().position(|l| l.contains(&top.as_str()))
    };
    let mut wrong = Vec::new();
    for (from, to) in graph() {
        let Some(rf) = rank(&from) else {
            assert!(from.is_empty(), "{} is in no layer of LAYERS", show(&from));
            continue;
        };
        for t in &to {
            let Some(rt) = rank(t) else { continue };
            if from[0] != t[0] && rt >= rf {
                wrong.push(format!("{} -> {}", show(&from), show(t)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up or sideways: {wrong:#?}"
    );
}

#[test]
fn image_formats_readers_and_writers_stay_apart() {
    let room = |m: &Module| -> Option<String> {
        (m.first().map(String::as_str) == Some("image"))
            .then(|| m.get(1).cloned().unwrap_or_default())
    };
    let mut wrong = Vec::new();
    for (from, to) in graph() {
        let Some(rf) = room(&from) else { continue };
        for t in &to {
            let Some(rt) = room(t) else { continue };
            let ok = match (rf.as_str(), rt.as_str()) {
                (a, b) if a == b => true,
                // Formats know only the clock's civil time.
                ("format", b) => b == "clock",
                ("read" | "write", b) => b != "read" && b != "write",
                _ => true,
            };
            if !ok {
                wrong.push(format!("{} -> {}", show(&from), show(t)));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn paths_are_read_as_modules() {
    let me: Module = vec!["image".into(), "read".into(), "diff".into()];
    let got = paths(
        "use crate::image::format::{iso9660::SECTOR, mbr};\nlet x = super::inspect::f();",
        &me,
    );
    let shown: Vec<String> = got.iter().map(show).collect();
    assert!(
        shown.contains(&"image::format::iso9660::SECTOR".to_string()),
        "{shown:?}"
    );
    assert!(
        shown.contains(&"image::format::mbr".to_string()),
        "{shown:?}"
    );
    assert!(
        shown.contains(&"image::read::inspect::f".to_string()),
        "{shown:?}"
    );
}
