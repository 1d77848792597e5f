//! Loading: a scenario file and every file it imports, read breadth-first a wave at a time
//! (parsed and normalized on several threads when there is enough text), import cycles found
//! and refused, every problem collected rather than the first.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};

use super::{
    nixos, normalize, parse_declarations, yaml, FileId, Key, Kind, LoadError, Module, Node,
    Scenario, Sources, Span,
};
use crate::diag::Diagnostic;
use crate::input::{self, InputError};

#[derive(Default)]
pub(super) struct Loader {
    sources: Sources,
    modules: Vec<Module>,
    errors: Vec<Diagnostic>,
    base: PathBuf,
    /// Canonical path → module index, so a file imported twice is loaded once.
    by_path: HashMap<PathBuf, usize>,
    /// Modules written inline in `imports`, by their `key`.
    inline_keys: HashMap<String, usize>,
    /// Files whose modules still need their imports read: (module index, file, its directory).
    queue: VecDeque<(usize, Node, PathBuf)>,
}

/// Why a scenario or import file's text cannot be read. The message leaves out the path,
/// which the caller names.
#[derive(Debug, thiserror::Error)]
enum TextError {
    /// Opening or reading failed.
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// A FIFO, a device, a directory, ...
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than a scenario file may be.
    #[error("it is {size} bytes, more than the {max} read at most")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The most read.
        max: u64,
    },
    /// Bytes that are not UTF-8, at line:column.
    #[error("{line}:{col}: the file is not valid UTF-8")]
    NotUtf8 {
        /// The line of the first bad byte.
        line: usize,
        /// Its column.
        col: usize,
    },
}

/// A scenario or import file's text. Only a regular file of at most
/// [`input::MAX_TEXT`] bytes is read: `/dev/zero` or a FIFO as an import would otherwise
/// read for ever or block.
fn read_text(path: &Path) -> Result<String, TextError> {
    let bytes = input::read_regular(path, input::MAX_TEXT).map_err(|e| match e {
        InputError::Io { source, .. } => TextError::Io(source),
        InputError::NotRegular { kind, .. } => TextError::NotRegular(kind),
        InputError::TooLarge { size, max, .. } => TextError::TooLarge { size, max },
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        TextError::NotUtf8 {
            line: good.iter().filter(|&&b| b == b'\n').count() + 1,
            col: good.iter().rev().take_while(|&&b| b != b'\n').count() + 1,
        }
    })
}

impl Loader {
    /// Loads a scenario given as text; imports are resolved against `dir`.
    pub(super) fn load_text(
        mut self,
        text: &str,
        display: &str,
        dir: &Path,
    ) -> Result<Scenario, LoadError> {
        self.base = dir.to_path_buf();
        let file = self
            .sources
            .add(display.to_string(), dir.join(display), text.to_string());
        self.finish_load(file, display)
    }

    pub(super) fn load(mut self, path: &Path) -> Result<Scenario, LoadError> {
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
        if is_nix(path) {
            return self.finish_nix(file, &display, path);
        }
        self.finish_load(file, &display)
    }

    /// A `.nix` file as the scenario: its module is the one top module (its `imports` bring
    /// the rest), as `nixos-rebuild` takes `configuration.nix`.
    fn finish_nix(
        mut self,
        file: FileId,
        display: &str,
        path: &Path,
    ) -> Result<Scenario, LoadError> {
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let base = self.base.clone();
        let mut top = Vec::new();
        match super::nix::load_module(&mut self.sources, file, &canon, &base) {
            Err(e) => self.errors.push(e),
            Ok(node) => {
                let (item, config) = take_config(node);
                if let Some(m) = self.module(item, config, display.to_string(), &base) {
                    self.modules[m].path = Some(canon.clone());
                    self.by_path.insert(canon, m);
                    top.push(m);
                }
            }
        }
        self.finish(top, None, None)
    }

    /// Loads what the top modules import, then gives the scenario or every error found.
    fn finish(
        mut self,
        top: Vec<usize>,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Scenario, LoadError> {
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
        })
    }

    fn finish_load(mut self, file: FileId, display: &str) -> Result<Scenario, LoadError> {
        let text = self.sources.text(file);
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
        self.finish(top, name, description)
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
        // A scenario imported as if it were a module (items of `modules:` are named
        // `file#modules[i]`; an imported file by its path).
        let imported = !default_name.contains("#modules[");
        if let Some((k, _)) = match &node.kind {
            Kind::Map(es) if imported => es.iter().find(|(k, _)| &*k.name == "modules"),
            _ => None,
        } {
            self.errors.push(Diagnostic::parse(
                k.span,
                format!(
                    "`{default_name}` is a scenario (it has `modules:`), not a module: import the module files its `modules` list imports, or copy its modules into this one"
                ),
            ));
            return None;
        }
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
            imports: Vec::new(),
            options: Vec::new(),
            config: None,
            path: None,
            disabled: Vec::new(),
            freeform: None,
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
                "disabledModules" => self.disabled_modules(&v, dir, &mut m.disabled),
                which @ ("renamedOptions" | "aliasedOptions" | "removedOptions") => {
                    match super::parse_aliases(&v, which) {
                        Ok(d) => m.options.extend(d),
                        Err(e) => self.errors.push(e),
                    }
                }
                "freeformType" => match super::types::parse_type(&v, &parse_declarations) {
                    Ok(t) => m.freeform = Some(t),
                    Err(e) => self.errors.push(e),
                },
                "options" => match parse_declarations(&v) {
                    Ok(d) => m.options.extend(d),
                    Err(e) => self.errors.push(e),
                },
                "config" => match config.take().unwrap_or_else(|| normalize(v, 0)) {
                    Ok(c) => m.config = Some(c),
                    Err(e) => self.errors.push(e),
                },
                other => self.errors.push(Diagnostic::parse(
                    k.span,
                    format!("unknown module attribute `{other}`; a module has `name`, `imports`, `disabledModules`, `freeformType`, `options`, `renamedOptions`, `aliasedOptions`, `removedOptions` and `config`"),
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
            // `.nix` files are evaluated together, and so are YAML files parsed.
            let base = self.base.clone();
            let nix_files: Vec<(FileId, PathBuf)> = fresh
                .iter()
                .filter(|f| is_nix(&f.canon))
                .map(|f| (f.file, f.canon.clone()))
                .collect();
            let mut evaluated =
                super::nix::load_modules(&mut self.sources, &nix_files, &base).into_iter();
            let nix: Vec<Option<Result<WithConfig, Diagnostic>>> = fresh
                .iter()
                .map(|f| {
                    is_nix(&f.canon).then(|| {
                        evaluated
                            .next()
                            .expect("one evaluation per .nix file")
                            .map(take_config)
                    })
                })
                .collect();
            let sources = &self.sources;
            let text = |f: &Fresh| sources.text(f.file);
            let parse = |f: &Fresh| yaml::parse_document(text(f), f.file).map(take_config);
            let yaml: Vec<&Fresh> = fresh.iter().filter(|f| !is_nix(&f.canon)).collect();
            let parsed_yaml =
                if yaml.iter().map(|f| text(f).len()).sum::<usize>() >= PARALLEL_IMPORTS {
                    in_parallel(yaml, parse)
                } else {
                    yaml.into_iter().map(parse).collect()
                };
            let mut parsed_yaml = parsed_yaml.into_iter();
            let parsed: Vec<Result<WithConfig, Diagnostic>> = nix
                .into_iter()
                .map(|n| n.unwrap_or_else(|| parsed_yaml.next().expect("one parse per YAML file")))
                .collect();
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
                                self.modules[m].path = Some(f.canon.clone());
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

    /// A module's `disabledModules`: file paths, relative to the module's own file, as Nix
    /// compares `toString` of a path with each module's key (its file). A path that does not
    /// exist disables nothing, as in Nix.
    fn disabled_modules(&mut self, v: &Node, dir: &Path, out: &mut Vec<PathBuf>) {
        let items = match &v.kind {
            Kind::List(items) => items,
            Kind::Null => return,
            _ => {
                self.errors.push(Diagnostic::parse(
                    v.span,
                    format!(
                        "`disabledModules` is a sequence of module file paths, found {}",
                        v.shape()
                    ),
                ));
                return;
            }
        };
        for item in items {
            let Kind::Str(p) = &item.kind else {
                self.errors.push(Diagnostic::parse(
                    item.span,
                    format!(
                        "an entry of `disabledModules` is a module's file path, found {}",
                        item.shape()
                    ),
                ));
                continue;
            };
            let joined = dir.join(&**p);
            if nixos::is_builtin(&joined) {
                out.extend(nixos::find(&joined).ok().map(|b| b.path));
                continue;
            }
            out.push(std::fs::canonicalize(&joined).unwrap_or(joined));
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
        if let Kind::Map(entries) = &item.kind {
            return self.inline_import(idx, item, entries, dir);
        }
        let Kind::Str(rel) = &item.kind else {
            return Step::Error(Diagnostic::parse(
                item.span,
                format!("an import is a file path, found {}", item.shape()),
            ));
        };
        let mut target = dir.join(&**rel);
        if nixos::is_builtin(&target) {
            return match nixos::find(&target) {
                Ok(b) => self
                    .known(idx, item.span, &b.path, pending)
                    .unwrap_or_else(|| {
                        let found = Found {
                            canon: b.path,
                            display: b.display,
                            text: b.text.into(),
                        };
                        self.fresh_import(idx, item.span, found, fresh, pending)
                    }),
                Err(e) => Step::Error(Diagnostic::parse(
                    item.span,
                    format!("cannot import `{rel}`: {e}"),
                )),
            };
        }
        // A directory imports its `default.nix`, as in Nix.
        if target.is_dir() && target.join("default.nix").is_file() {
            target = target.join("default.nix");
        }
        let canon = match std::fs::canonicalize(&target) {
            Ok(c) => c,
            Err(e) => {
                let mut d = Diagnostic::parse(
                    item.span,
                    format!("cannot import `{rel}`: {} ({e})", target.display()),
                );
                if let Some(near) = near_file(&target) {
                    let shown = Path::new(&**rel).with_file_name(&near);
                    d.help = Some(format!("did you mean `{}`?", shown.display()));
                }
                return Step::Error(d);
            }
        };
        if let Some(step) = self.known(idx, item.span, &canon, pending) {
            return step;
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
        let found = Found {
            canon,
            display,
            text,
        };
        self.fresh_import(idx, item.span, found, fresh, pending)
    }

    /// The import of a file loaded before, or already read in this wave.
    fn known(
        &self,
        idx: usize,
        span: Span,
        canon: &Path,
        pending: &HashMap<PathBuf, usize>,
    ) -> Option<Step> {
        if let Some(&m) = self.by_path.get(canon) {
            return Some(Step::Import(idx, Child::Loaded(m), span));
        }
        pending
            .get(canon)
            .map(|&k| Step::Import(idx, Child::Fresh(k), span))
    }

    /// The import of a file read now: one of this wave's new files.
    fn fresh_import(
        &mut self,
        idx: usize,
        span: Span,
        found: Found,
        fresh: &mut Vec<Fresh>,
        pending: &mut HashMap<PathBuf, usize>,
    ) -> Step {
        let Found {
            canon,
            display,
            text,
        } = found;
        let file = self.sources.add(display.clone(), canon.clone(), text);
        let dir = canon.parent().map(Path::to_path_buf).unwrap_or_default();
        pending.insert(canon.clone(), fresh.len());
        fresh.push(Fresh {
            file,
            canon,
            dir,
            display,
        });
        Step::Import(idx, Child::Fresh(fresh.len() - 1), span)
    }

    /// A module written inline in `imports` (a `.nix` module's `imports = [ { ... } ]`): a
    /// module of its own, imported once per `key` as Nix imports it.
    fn inline_import(
        &mut self,
        idx: usize,
        item: &Node,
        entries: &[(Key, Node)],
        dir: &Path,
    ) -> Step {
        let key = entries.iter().find_map(|(k, v)| match (&*k.name, &v.kind) {
            ("key", Kind::Str(s)) => Some(s.to_string()),
            _ => None,
        });
        if let Some(&m) = key.as_ref().and_then(|k| self.inline_keys.get(k)) {
            return Step::Import(idx, Child::Loaded(m), item.span);
        }
        let kept: Vec<(Key, Node)> = entries
            .iter()
            .filter(|(k, _)| &*k.name != "key")
            .cloned()
            .collect();
        let (node, config) = take_config(Node {
            span: item.span,
            kind: Kind::Map(kept),
        });
        let name = format!(
            "{}#imports",
            self.modules.get(idx).map_or("", |m| m.name.as_str())
        );
        match self.module(node, config, name, dir) {
            Some(m) => {
                if let Some(k) = key {
                    self.inline_keys.insert(k, m);
                }
                Step::Import(idx, Child::Loaded(m), item.span)
            }
            None => Step::Error(Diagnostic::parse(
                item.span,
                "this inline module could not be read",
            )),
        }
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

/// A file an import leads to: its one path, how it is shown, its text.
struct Found {
    canon: PathBuf,
    display: String,
    text: String,
}

/// Whether a file is a Nix module (by its extension, as Nix's tools tell).
fn is_nix(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "nix")
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

/// The file beside a missing import whose name is nearest to it (edit distance at most 3,
/// YAML files first), for "did you mean".
fn near_file(target: &Path) -> Option<String> {
    let want = target.file_name()?.to_str()?;
    let dir = target.parent()?;
    let mut best: Option<(usize, bool, String)> = None;
    for e in std::fs::read_dir(dir).ok()?.flatten().take(10_000) {
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let d = crate::diag::levenshtein(want, &name);
        if d > 3 {
            continue;
        }
        let key = (d, !name.ends_with(".yaml"), name);
        if best.as_ref().is_none_or(|b| key < *b) {
            best = Some(key);
        }
    }
    best.map(|(_, _, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load;

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
}
