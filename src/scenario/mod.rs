//! Stage 1, **scenario**: YAML files → [`Scenario`], a list of modules with spans.
//!
//! This stage knows the scenario *format* (see `shared/conformance/README.md`): module fields,
//! flat option declarations, type expressions, tags, dotted paths and imports. It knows nothing
//! of merge semantics; every value keeps the file, line and column it was written at so the
//! resolver can point at it.

mod node;
pub mod path;
pub mod types;
mod yaml;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

pub use node::{FileId, FormatPart, Key, Kind, Node, Span, Text};
pub use types::{EnumValue, IntRange, TypeExpr};
pub use yaml::MAX_DEPTH;

use crate::diag::Diagnostic;

/// Every file a scenario was read from, with its text (for excerpts in errors).
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Debug)]
struct SourceFile {
    display: String,
    path: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl Sources {
    fn add(&mut self, display: String, path: PathBuf, text: String) -> FileId {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        self.files.push(SourceFile {
            display,
            path,
            text,
            line_starts,
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// The name a file is shown by (relative to the scenario's directory).
    pub fn display(&self, id: FileId) -> &str {
        self.files
            .get(id.0 as usize)
            .map_or("<unknown>", |f| &f.display)
    }

    /// The file's path on disk.
    pub fn path(&self, id: FileId) -> Option<&Path> {
        self.files.get(id.0 as usize).map(|f| f.path.as_path())
    }

    /// One line of a file (1-based), without its newline.
    pub fn line_text(&self, id: FileId, line: u32) -> Option<&str> {
        let f = self.files.get(id.0 as usize)?;
        let i = line.checked_sub(1)? as usize;
        let start = *f.line_starts.get(i)?;
        let end = f.line_starts.get(i + 1).map_or(f.text.len(), |e| e - 1);
        Some(&f.text[start..end.max(start)])
    }

    /// Every file, in the order read: (shown name, path).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.files
            .iter()
            .map(|f| (f.display.as_str(), f.path.as_path()))
    }
}

/// An option declaration: one entry of a module's flat `options:` map.
#[derive(Clone, Debug, PartialEq)]
pub struct Declaration {
    /// The option path, split.
    pub path: Vec<Box<str>>,
    /// Where the declaration's key was written.
    pub span: Span,
    /// Its type.
    pub ty: TypeExpr,
    /// Its `default`, a config value (properties and references allowed).
    pub default: Option<Node>,
    /// Its `description`.
    pub description: Option<String>,
    /// Its `readOnly`, when given.
    pub read_only: Option<bool>,
}

/// One module: an item of `modules:` or an imported file.
#[derive(Debug)]
pub struct Module {
    /// The "file" errors and `explain` show: `name:`, the import path, or `scenario.yaml#modules[i]`.
    pub name: String,
    /// Where the module starts.
    pub span: Span,
    /// The modules it imports, as indices into [`Scenario::modules`], in the order written.
    pub imports: Vec<(usize, Span)>,
    /// Its option declarations.
    pub options: Vec<Declaration>,
    /// Its `config:`, with keys split into nested mappings.
    pub config: Option<Node>,
}

/// A loaded scenario.
#[derive(Debug)]
pub struct Scenario {
    /// The files read.
    pub sources: Sources,
    /// `name:`, when given.
    pub name: Option<String>,
    /// `description:`, when given.
    pub description: Option<String>,
    /// Every module loaded: the top-level items first, then imported files in the order found.
    pub modules: Vec<Module>,
    /// The `modules:` list: indices into [`Scenario::modules`].
    pub top: Vec<usize>,
    /// The whole scenario document, for later stages that read more than `modules`.
    pub root: Node,
}

/// A scenario that could not be read: every problem found, and the files read (for excerpts).
#[derive(Debug)]
pub struct LoadError {
    /// The files read before and while failing.
    pub sources: Sources,
    /// Every problem found, not only the first.
    pub errors: Vec<Diagnostic>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rendered: Vec<String> = self
            .errors
            .iter()
            .map(|d| d.render(&self.sources))
            .collect();
        f.write_str(&rendered.join("\n"))
    }
}

impl std::error::Error for LoadError {}

/// Loads a scenario file and every module it imports.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    Loader::default().load(path)
}

/// Loads a scenario from text (for tests and tools); imports are resolved against `dir`.
pub fn load_str(text: &str, display: &str, dir: &Path) -> Result<Scenario, LoadError> {
    let mut l = Loader {
        base: dir.to_path_buf(),
        ..Default::default()
    };
    let file = l
        .sources
        .add(display.to_string(), dir.join(display), text.to_string());
    l.finish_load(file, display)
}

#[derive(Default)]
struct Loader {
    sources: Sources,
    modules: Vec<Module>,
    errors: Vec<Diagnostic>,
    base: PathBuf,
    /// Canonical path → module index, so a file imported twice is loaded once.
    by_path: HashMap<PathBuf, usize>,
    /// Files whose modules still need their imports read: (module index, file, its directory).
    queue: VecDeque<(usize, Node, PathBuf)>,
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let col = good.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        format!("{line}:{col}: the file is not valid UTF-8")
    })
}

impl Loader {
    fn load(mut self, path: &Path) -> Result<Scenario, LoadError> {
        let display = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let text = match read_text(path) {
            Ok(t) => t,
            Err(e) => {
                let mut d = Diagnostic::parse(
                    Span::default(),
                    format!("cannot read scenario {}: {e}", path.display()),
                );
                d.labels.clear();
                return Err(LoadError {
                    sources: self.sources,
                    errors: vec![d],
                });
            }
        };
        let file = self.sources.add(display.clone(), path.to_path_buf(), text);
        self.finish_load(file, &display)
    }

    fn finish_load(mut self, file: FileId, display: &str) -> Result<Scenario, LoadError> {
        let text = &self.sources.files[file.0 as usize].text;
        let root = yaml::parse_document(text, file);
        let mut root = match root {
            Ok(r) => r,
            Err(e) => {
                return Err(LoadError {
                    sources: self.sources,
                    errors: vec![e],
                })
            }
        };
        let mut name = None;
        let mut description = None;
        let mut top = Vec::new();
        let mut items = Vec::new();
        match &mut root.kind {
            Kind::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    match &*k.name {
                        "name" => name = self.string(v, "name"),
                        "description" => description = self.string(v, "description"),
                        // Moved out, not copied: a large scenario is mostly its modules.
                        "modules" => match &mut v.kind {
                            Kind::List(list) => items = std::mem::take(list),
                            Kind::Null => {}
                            _ => self.errors.push(Diagnostic::parse(
                                v.span,
                                format!("`modules` is a sequence of modules, found {}", v.shape()),
                            )),
                        },
                        // Other top-level keys belong to later stages (image, golden, boot).
                        _ => {}
                    }
                }
            }
            Kind::Null => {}
            _ => self.errors.push(Diagnostic::parse(
                root.span,
                format!(
                    "a scenario is a mapping with a `modules:` list, found {}",
                    root.shape()
                ),
            )),
        }
        for (i, (item, config)) in normalize_configs(items).into_iter().enumerate() {
            let default = format!("{display}#modules[{i}]");
            let base = self.base.clone();
            if let Some(m) = self.module(item, config, default, &base) {
                top.push(m);
            }
        }
        self.drain_imports();
        self.check_import_cycles();
        if !self.errors.is_empty() {
            return Err(LoadError {
                sources: self.sources,
                errors: self.errors,
            });
        }
        Ok(Scenario {
            sources: self.sources,
            name,
            description,
            modules: self.modules,
            top,
            root,
        })
    }

    fn string(&mut self, v: &Node, what: &str) -> Option<String> {
        match &v.kind {
            Kind::Str(s) => Some(s.to_string()),
            _ => {
                self.errors.push(Diagnostic::parse(
                    v.span,
                    format!("`{what}` is a string, found {}", v.shape()),
                ));
                None
            }
        }
    }

    /// Reads one module mapping. Its imports are queued, so they load breadth-first. `config`
    /// is the module's `config:` already normalized, when that was done ahead (see
    /// [`normalize_configs`]); the mapping then holds a placeholder in its place.
    fn module(
        &mut self,
        node: Node,
        mut config: Option<Result<Node, Diagnostic>>,
        default_name: String,
        dir: &Path,
    ) -> Option<usize> {
        let span = node.span;
        let Kind::Map(entries) = node.kind else {
            self.errors.push(Diagnostic::parse(
                span,
                format!(
                    "a module is a mapping with `imports`, `options` and `config`, found {}",
                    node.shape()
                ),
            ));
            return None;
        };
        let mut m = Module {
            name: default_name,
            span,
            imports: Vec::new(),
            options: Vec::new(),
            config: None,
        };
        let mut imports = None;
        for (k, v) in entries {
            match &*k.name {
                "name" => {
                    if let Some(s) = self.string(&v, "name") {
                        m.name = s;
                    }
                }
                "imports" => imports = Some(v),
                "options" => match parse_declarations(&v) {
                    Ok(d) => m.options = d,
                    Err(e) => self.errors.push(e),
                },
                "config" => match config.take().unwrap_or_else(|| normalize(v, 0)) {
                    Ok(c) => m.config = Some(c),
                    Err(e) => self.errors.push(e),
                },
                other => self.errors.push(Diagnostic::parse(
                    k.span,
                    format!("unknown module attribute `{other}`; a module has `name`, `imports`, `options` and `config`"),
                )),
            }
        }
        let idx = self.modules.len();
        self.modules.push(m);
        if let Some(imports) = imports {
            self.queue.push_back((idx, imports, dir.to_path_buf()));
        }
        Some(idx)
    }

    /// Loads imported files breadth-first, one wave (every file the queued modules import) at a
    /// time: the wave's files are found and read in import order, parsed together (on several
    /// threads when there is enough text), then turned into modules in import order. Module
    /// numbers, file ids, errors and the next wave come out as they would one file at a time.
    fn drain_imports(&mut self) {
        while !self.queue.is_empty() {
            let wave: Vec<_> = self.queue.drain(..).collect();
            let mut steps = Vec::new();
            let mut fresh: Vec<Fresh> = Vec::new();
            let mut pending: HashMap<PathBuf, usize> = HashMap::new();
            for (idx, imports, dir) in wave {
                let items = match imports.kind {
                    Kind::List(items) => items,
                    Kind::Null => Vec::new(),
                    _ => {
                        steps.push(Step::Error(Diagnostic::parse(
                            imports.span,
                            format!(
                                "`imports` is a sequence of file paths, found {}",
                                imports.shape()
                            ),
                        )));
                        continue;
                    }
                };
                for item in items {
                    steps.push(self.find_import(idx, &item, &dir, &mut fresh, &mut pending));
                }
            }
            let sources = &self.sources;
            let text = |f: &Fresh| &sources.files[f.file.0 as usize].text;
            let parse = |f: &Fresh| yaml::parse_document(text(f), f.file).map(take_config);
            let parsed = if fresh.iter().map(|f| text(f).len()).sum::<usize>() >= PARALLEL_IMPORTS {
                in_parallel(fresh.iter().collect(), parse)
            } else {
                fresh.iter().map(parse).collect()
            };
            // A new file is first imported in the order `fresh` was filled, so the k-th new file
            // becomes a module when `made` has k entries.
            let mut parsed = parsed.into_iter().zip(fresh);
            let mut made: Vec<Option<usize>> = Vec::new();
            for step in steps {
                let (idx, child, span) = match step {
                    Step::Error(e) => {
                        self.errors.push(e);
                        continue;
                    }
                    Step::Import(idx, child, span) => (idx, child, span),
                };
                let child = match child {
                    Child::Loaded(m) => Some(m),
                    Child::Fresh(k) => {
                        if k == made.len() {
                            let (result, f) = parsed.next().expect("one parse per new file");
                            let m = match result {
                                Err(e) => {
                                    self.errors.push(e);
                                    None
                                }
                                Ok((node, config)) => self.module(node, config, f.display, &f.dir),
                            };
                            if let Some(m) = m {
                                self.by_path.insert(f.canon, m);
                            }
                            made.push(m);
                        }
                        made[k]
                    }
                };
                if let Some(child) = child {
                    self.modules[idx].imports.push((child, span));
                }
            }
        }
    }

    /// Where one import of module `idx` leads: a module loaded before, a file of this wave
    /// (read now, once however often it is imported), or an error.
    fn find_import(
        &mut self,
        idx: usize,
        item: &Node,
        dir: &Path,
        fresh: &mut Vec<Fresh>,
        pending: &mut HashMap<PathBuf, usize>,
    ) -> Step {
        let Kind::Str(rel) = &item.kind else {
            return Step::Error(Diagnostic::parse(
                item.span,
                format!("an import is a file path, found {}", item.shape()),
            ));
        };
        let target = dir.join(&**rel);
        let canon = match std::fs::canonicalize(&target) {
            Ok(c) => c,
            Err(e) => {
                return Step::Error(Diagnostic::parse(
                    item.span,
                    format!("cannot import `{rel}`: {} ({e})", target.display()),
                ))
            }
        };
        if let Some(&m) = self.by_path.get(&canon) {
            return Step::Import(idx, Child::Loaded(m), item.span);
        }
        if let Some(&k) = pending.get(&canon) {
            return Step::Import(idx, Child::Fresh(k), item.span);
        }
        let text = match read_text(&canon) {
            Ok(t) => t,
            Err(e) => {
                return Step::Error(Diagnostic::parse(
                    item.span,
                    format!("cannot import {}: {e}", canon.display()),
                ))
            }
        };
        let display = relative_display(&canon, &self.base);
        let file = self.sources.add(display.clone(), canon.clone(), text);
        let dir = canon.parent().map(Path::to_path_buf).unwrap_or_default();
        pending.insert(canon.clone(), fresh.len());
        fresh.push(Fresh {
            file,
            canon,
            dir,
            display,
        });
        Step::Import(idx, Child::Fresh(fresh.len() - 1), item.span)
    }

    /// Nix accepts an import cycle (the second visit is deduplicated); we refuse it because a
    /// cycle is always a mistake in a scenario tree, and say where it closes.
    fn check_import_cycles(&mut self) {
        let n = self.modules.len();
        let mut state = vec![0u8; n];
        for start in 0..n {
            if state[start] != 0 {
                continue;
            }
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            state[start] = 1;
            while let Some(&mut (m, ref mut i)) = stack.last_mut() {
                if let Some(&(child, span)) = self.modules[m].imports.get(*i) {
                    *i += 1;
                    match state[child] {
                        0 => {
                            state[child] = 1;
                            stack.push((child, 0));
                        }
                        1 => {
                            let pos = stack.iter().position(|&(x, _)| x == child).unwrap_or(0);
                            let mut chain: Vec<String> = stack[pos..]
                                .iter()
                                .map(|&(x, _)| self.modules[x].name.clone())
                                .collect();
                            chain.push(self.modules[child].name.clone());
                            let mut d = Diagnostic::parse(
                                span,
                                format!("import cycle: {}", chain.join(" → ")),
                            );
                            d.chain = chain;
                            self.errors.push(d);
                        }
                        _ => {}
                    }
                } else {
                    state[m] = 2;
                    stack.pop();
                }
            }
        }
    }
}

fn relative_display(path: &Path, base: &Path) -> String {
    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out.to_string_lossy().into_owned()
}

/// A module item, and its `config:` taken out and normalized (if it has one).
type WithConfig = (Node, Option<Result<Node, Diagnostic>>);

/// Imported files of one wave with less text than this are parsed on the loading thread.
const PARALLEL_IMPORTS: usize = 64 << 10;

/// A file first imported in the current wave, read but not yet parsed.
struct Fresh {
    file: FileId,
    canon: PathBuf,
    dir: PathBuf,
    display: String,
}

/// One import of a wave, in order.
enum Step {
    /// Module `.0` imports `.1`, written at `.2`.
    Import(usize, Child, Span),
    /// The import could not be followed.
    Error(Diagnostic),
}

/// What an import leads to.
enum Child {
    /// A module loaded in an earlier wave.
    Loaded(usize),
    /// The `k`-th new file of this wave.
    Fresh(usize),
}

/// Takes a module item's `config:` out and normalizes it; the item keeps a `null` in its place.
fn take_config(mut item: Node) -> WithConfig {
    let config = match &mut item.kind {
        Kind::Map(entries) => {
            entries
                .iter_mut()
                .find(|(k, _)| &*k.name == "config")
                .map(|(_, v)| {
                    let placeholder = Node {
                        span: v.span,
                        kind: Kind::Null,
                    };
                    normalize(std::mem::replace(v, placeholder), 0)
                })
        }
        _ => None,
    };
    (item, config)
}

/// `items.map(f)` on up to 8 threads, results in the order of `items`. Items are dealt
/// round-robin, so items of similar size spread evenly: item i is the (i / threads)-th of
/// share i % threads.
fn in_parallel<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(items.len());
    if threads < 2 {
        return items.into_iter().map(f).collect();
    }
    let n = items.len();
    let mut shares: Vec<Vec<T>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        shares[i % threads].push(item);
    }
    let f = &f;
    let mut done: Vec<std::vec::IntoIter<R>> = std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| s.spawn(move || share.into_iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r.into_iter(),
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    (0..n)
        .map(|i| done[i % threads].next().expect("one result per item"))
        .collect()
}

/// The module items of a scenario, each with its `config:` taken out and normalized. A large
/// scenario is mostly config, and normalizing it (splitting dotted keys, sorting) is the part
/// of loading that is not parsing, so it runs on several threads when there are many modules.
/// The results are the same, in the same order, as normalizing one module after another.
fn normalize_configs(items: Vec<Node>) -> Vec<WithConfig> {
    if items.len() < 8 {
        return items.into_iter().map(take_config).collect();
    }
    in_parallel(items, take_config)
}

/// Reads a flat `options:` map: full option path → declaration.
pub fn parse_declarations(node: &Node) -> Result<Vec<Declaration>, Diagnostic> {
    let entries = match &node.kind {
        Kind::Map(es) => es,
        Kind::Null => return Ok(Vec::new()),
        _ => {
            return Err(Diagnostic::parse(
                node.span,
                format!(
                    "`options` maps option paths to declarations, found {}",
                    node.shape()
                ),
            ))
        }
    };
    let mut out: Vec<Declaration> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let path = path::split(&k.name).map_err(|e| Diagnostic::parse(k.span, e))?;
        let Kind::Map(fields) = &v.kind else {
            return Err(Diagnostic::parse(v.span, format!("the declaration of `{}` is a mapping with `type`, `default`, `description`, `readOnly`; found {}", k.name, v.shape())));
        };
        let mut d = Declaration {
            path,
            span: k.span,
            ty: TypeExpr::Unspecified,
            default: None,
            description: None,
            read_only: None,
        };
        let mut has_type = false;
        for (fk, fv) in fields {
            match &*fk.name {
                "type" => {
                    d.ty = types::parse_type(fv, &parse_declarations)?;
                    has_type = true;
                }
                "default" => d.default = Some(normalize(fv.clone(), 0)?),
                "description" => match &fv.kind {
                    Kind::Str(s) => d.description = Some(s.to_string()),
                    _ => return Err(Diagnostic::parse(fv.span, "`description` is a string")),
                },
                "readOnly" => match fv.kind {
                    Kind::Bool(b) => d.read_only = Some(b),
                    _ => return Err(Diagnostic::parse(fv.span, "`readOnly` is true or false")),
                },
                other => {
                    return Err(Diagnostic::parse(fk.span, format!("unknown declaration field `{other}` of `{}`; a declaration has `type`, `default`, `description`, `readOnly`", k.name)))
                }
            }
        }
        if !has_type {
            return Err(Diagnostic::parse(
                k.span,
                format!("the declaration of `{}` has no `type`", k.name),
            ));
        }
        out.push(d);
    }
    // The same path spelled twice (`a.b` and `'a."b"'`) in one module.
    let mut seen: HashMap<&[Box<str>], Span> = HashMap::new();
    for d in &out {
        if let Some(first) = seen.insert(&d.path, d.span) {
            return Err(Diagnostic::parse(
                d.span,
                format!(
                    "option `{}` is declared twice in one module",
                    path::show(&d.path)
                ),
            )
            .label(first, "first declared here"));
        }
    }
    Ok(out)
}

/// Splits dotted keys of every mapping in a config value into nested mappings, sorts keys, and
/// rejects a path defined twice in one module (as Nix rejects `{ a.b = 1; a.b = 2; }`). Two
/// plain mappings at one path merge, as `{ a.b = 1; a.c = 2; }` does in Nix.
pub fn normalize(mut node: Node, depth: usize) -> Result<Node, Diagnostic> {
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
                    let parts = path::split(&k.name).map_err(|e| Diagnostic::parse(k.span, e))?;
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
    fn configs_normalized_on_threads_equal_one_by_one() {
        // Enough modules for the threaded path, one of them with an error.
        let mut items = Vec::new();
        for i in 0..70 {
            let text = if i == 33 {
                "config: {a.b: 1, a: {b: 2}}\n".to_string()
            } else {
                format!("name: m{i}\nconfig: {{x.y{i}: {i}, x.z: [1, {{q.r: 2}}]}}\n")
            };
            items.push(yaml::parse_document(&text, FileId(i)).unwrap());
        }
        let one_by_one: Vec<_> = items
            .iter()
            .map(|item| {
                let mut item = item.clone();
                let Kind::Map(es) = &mut item.kind else {
                    panic!()
                };
                let i = es.iter().position(|(k, _)| &*k.name == "config").unwrap();
                let span = es[i].1.span;
                let written = std::mem::replace(
                    &mut es[i].1,
                    Node {
                        span,
                        kind: Kind::Null,
                    },
                );
                (item, Some(normalize(written, 0)))
            })
            .collect();
        let threaded = normalize_configs(items);
        assert_eq!(threaded, one_by_one);
        assert!(threaded[33].1.as_ref().unwrap().is_err());
    }

    /// Loads a tree of imports: `top` imports a, b and a again; a imports c and a missing file
    /// (an error); b imports c again, d, and a broken file (another error); d imports top's
    /// directory's a. `pad` lines of comment make the files big enough for threads.
    fn import_tree(pad: usize) -> (Vec<String>, Vec<Vec<usize>>, Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let padding = "# padding to make the file larger than it is\n".repeat(pad);
        let files = [
            (
                "top.yaml",
                "modules:\n  - imports: [a.yaml, sub/b.yaml, a.yaml]\n",
            ),
            (
                "a.yaml",
                "imports: [c.yaml, missing.yaml]\nconfig: {x.a: 1}\n",
            ),
            (
                "sub/b.yaml",
                "imports: [../c.yaml, d.yaml, bad.yaml]\nconfig: {x.b: 2}\n",
            ),
            ("c.yaml", "config: {x.c: 3}\n"),
            (
                "sub/d.yaml",
                "imports: [../a.yaml]\nconfig: {x.d: [1, 2]}\n",
            ),
            ("sub/bad.yaml", "config: {x: [1, 2}\n"),
        ];
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), format!("{text}{padding}")).unwrap();
        }
        let e = load(&dir.path().join("top.yaml")).unwrap_err();
        let sources: Vec<String> = e.sources.iter().map(|(d, _)| d.to_string()).collect();
        let errors = e
            .errors
            .iter()
            .map(|d| {
                let m = d.message.replace(&*dir.path().to_string_lossy(), "<dir>");
                format!("{}:{} {m}", d.labels[0].span.file.0, d.labels[0].span.line)
            })
            .collect();
        // The modules are not returned with errors; load again without the two bad imports.
        std::fs::write(
            dir.path().join("a.yaml"),
            "imports: [c.yaml]\nconfig: {x.a: 1}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sub/b.yaml"),
            "imports: [../c.yaml, d.yaml]\n",
        )
        .unwrap();
        let s = load(&dir.path().join("top.yaml")).unwrap();
        let names = s.modules.iter().map(|m| m.name.clone()).collect();
        let edges = s
            .modules
            .iter()
            .map(|m| m.imports.iter().map(|&(i, _)| i).collect())
            .collect();
        (names, edges, sources, errors)
    }

    #[test]
    fn imports_load_breadth_first_alike_with_and_without_threads() {
        let small = import_tree(0);
        let big = import_tree(2000);
        assert_eq!(small.0, big.0);
        assert_eq!(small.1, big.1);
        assert_eq!(small.2, big.2);
        assert_eq!(small.3.len(), 2, "{:?}", small.3);
        assert_eq!(small.3, big.3);
        assert_eq!(
            small.0,
            [
                "top.yaml#modules[0]",
                "a.yaml",
                "sub/b.yaml",
                "c.yaml",
                "sub/d.yaml"
            ]
        );
        assert_eq!(
            small.1,
            [vec![1, 2, 1], vec![3], vec![3, 4], vec![], vec![1]]
        );
        assert!(small.3[0].contains("missing.yaml"), "{}", small.3[0]);
        assert_eq!(
            small.2,
            [
                "top.yaml",
                "a.yaml",
                "sub/b.yaml",
                "c.yaml",
                "sub/d.yaml",
                "sub/bad.yaml"
            ]
        );
    }

    #[test]
    fn same_path_twice_is_an_error() {
        let e = cfg("a.b: 1\na: {b: 2}\n").unwrap_err();
        assert!(e.message.contains("defined twice"), "{}", e.message);
        assert!(cfg("a.b: 1\na: !mkForce {c: 2}\n").is_err());
    }
}
