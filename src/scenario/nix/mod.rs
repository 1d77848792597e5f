//! Stage 1's second front end: `.nix` module files → the module mappings a YAML module gives,
//! so the rest of the stage (imports, declarations, dotted paths) and the resolver treat both
//! alike. The Nix language is parsed with `rnix` (the Nix community's lossless parser, with
//! spans) and evaluated lazily here (`eval.rs`, `builtins.rs`, with `value.rs`); `lib` is
//! nixpkgs' functions written over isoproof's builtins (`lib.nix`); `module.rs` turns a
//! module's value into definitions. `config.a.b` inside a module is a reference the module
//! system resolves (its fixpoint), exactly as the YAML format's `!config`: in `lib.mkIf`
//! conditions, as whole values and in strings.

pub(crate) use value::{EvalError, Fetched, Provider};

/// The resolver's handle on its `.nix` computations.
pub(crate) use Session as NixSession;

mod builtins;
mod eval;
mod module;
mod prim;
mod value;

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::scenario::{Deferred, FileId, Kind, Node, Sources, Span, Step};
use eval::Machine;

/// isoproof's `lib` (see `lib.nix`).
pub(crate) const LIB: &str = include_str!("lib.nix");

/// The module in the `.nix` file `file` (its text already in `sources`), as the mapping a
/// YAML module is; files it reads must be inside `root`.
pub(crate) fn load_module(
    sources: &mut Sources,
    file: FileId,
    path: &Path,
    root: &Path,
) -> Result<Node, Diagnostic> {
    let start = Span::start(file);
    on_big_stack(|| evaluate_module(sources, file, path, root))
        .unwrap_or_else(|| Err(Diagnostic::parse(start, NO_THREAD)))
}

/// The modules of several `.nix` files, as [`load_module`] reads one, evaluated on up to
/// [`MAX_WORKERS`] threads (each file alone, as one file's evaluation never needs another's
/// values). Each sees the scenario's files through an [`Overlay`]; files one reads anew (an
/// `import` expression, `readFile`) are added afterwards in the files' order, and the ids in
/// its nodes moved to theirs, so the result is the same however the threads ran.
pub(crate) fn load_modules(
    sources: &mut Sources,
    files: &[(FileId, PathBuf)],
    root: &Path,
) -> Vec<Result<Node, Diagnostic>> {
    if files.len() < 2 {
        return files
            .iter()
            .map(|(f, p)| load_module(sources, *f, p, root))
            .collect();
    }
    // `lib` is read by every evaluation: one copy, in the scenario's files.
    value::Files::add(sources, LIB_NAME.into(), PathBuf::new(), LIB.into());
    let base: &Sources = sources;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS)
        .min(files.len());
    let one = |(file, path): &(FileId, PathBuf)| -> (Result<Node, Diagnostic>, Sources) {
        let mut overlay = Overlay {
            base,
            extra: Sources::default(),
        };
        let r = evaluate_module(&mut overlay, *file, path, root);
        (r, overlay.extra)
    };
    let shares: Vec<Vec<usize>> = (0..workers)
        .map(|w| (w..files.len()).step_by(workers).collect())
        .collect();
    let mut results: Vec<Option<(Result<Node, Diagnostic>, Sources)>> =
        (0..files.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .iter()
            .map(|share| {
                let one = &one;
                std::thread::Builder::new()
                    .name("nix-eval".into())
                    .stack_size(256 << 20)
                    .spawn_scoped(s, move || {
                        share
                            .iter()
                            .map(|&i| (i, one(&files[i])))
                            .collect::<Vec<_>>()
                    })
            })
            .collect();
        for h in handles {
            if let Ok(Ok(done)) = h.map(|h| h.join()) {
                for (i, r) in done {
                    results[i] = Some(r);
                }
            }
        }
    });
    let base_len = sources.len() as u32;
    files
        .iter()
        .zip(results)
        .map(|((file, _), r)| {
            let start = Span::start(*file);
            let Some((r, extra)) = r else {
                return Err(Diagnostic::parse(start, NO_THREAD));
            };
            // This evaluation's new files, in the scenario's files now.
            let moved: Vec<FileId> = extra
                .into_files()
                .map(|(display, path, text)| value::Files::add(sources, display, path, text))
                .collect();
            let at = |f: FileId| match f.0.checked_sub(base_len) {
                Some(i) => moved.get(i as usize).copied().unwrap_or(f),
                None => f,
            };
            match r {
                Ok(mut node) => {
                    move_spans(&mut node, &at);
                    Ok(node)
                }
                Err(mut d) => {
                    for l in &mut d.labels {
                        l.span.file = at(l.span.file);
                    }
                    Err(d)
                }
            }
        })
        .collect()
}

/// Why a file has no evaluation: its thread did not start (a 256 MiB stack is reserved for
/// it) or ended early.
const NO_THREAD: &str = "this file could not be evaluated: no thread with a 256 MiB stack could be started (is the address space limited?), or it failed inside isoproof";

/// Threads `.nix` files are evaluated on at most.
const MAX_WORKERS: usize = 8;

/// How `lib`'s text is named among the scenario's files.
const LIB_NAME: &str = "<isoproof lib.nix>";

/// Every span of `n` in a file `at` moves.
fn move_spans(n: &mut Node, at: &impl Fn(FileId) -> FileId) {
    n.span.file = at(n.span.file);
    match &mut n.kind {
        Kind::List(xs) | Kind::Merge(xs) => xs.iter_mut().for_each(|x| move_spans(x, at)),
        Kind::Map(es) => {
            for (k, v) in es {
                k.span.file = at(k.span.file);
                move_spans(v, at);
            }
        }
        Kind::If(c, v) => {
            move_spans(c, at);
            move_spans(v, at);
        }
        Kind::Override(_, v) | Kind::Order(_, v) => move_spans(v, at),
        Kind::Call(_, args) => args.iter_mut().for_each(|x| move_spans(x, at)),
        Kind::Null
        | Kind::Bool(_)
        | Kind::Int(_)
        | Kind::Float(_)
        | Kind::Str(_)
        | Kind::Ref(_)
        | Kind::Format(_)
        | Kind::Name
        | Kind::Nix(_) => {}
    }
}

/// One module file's evaluation (on a thread with a big stack).
fn evaluate_module(
    files: &mut dyn value::Files,
    file: FileId,
    path: &Path,
    root: &Path,
) -> Result<Node, Diagnostic> {
    let start = Span::start(file);
    let text = match files.text(file) {
        Some(t) => t.to_string(),
        None => return Err(Diagnostic::parse(start, "the file's text is missing")),
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut m = Machine::new(files, root.to_path_buf());
    m.route.file = Some(file);
    m.route.root = root.to_path_buf();
    let result = m
        .eval_text(file, &dir, &text)
        .and_then(|v| module::module_node(&mut m, v, start));
    result.map_err(|e| diagnostic(e, start))
}

#[cfg(test)]
/// The store path a package named `name` has in isoproof's evaluation (`pkgs.NAME`'s).
pub(crate) fn package_path(name: &str) -> String {
    value::Package {
        attr: name.into(),
        name: name.into(),
        text: None,
    }
    .out_path()
}

/// Computations the resolver runs may nest (one asks for an option another computes) at
/// most this deep.
const MAX_NESTED: usize = 256;

thread_local! {
    static NESTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The definition `d` stands for, computed: its file evaluated again with `config` answered
/// by `provider` (the resolver), the same steps taken to it, and it read whole. Runs on the
/// caller's thread, which is the resolver's (its stack holds nested evaluations).
pub(crate) fn force_deferred(
    session: &Session,
    sources: &Sources,
    d: &Deferred,
    span: Span,
    apply_to: Option<Fetched>,
    provider: Provider<'_>,
) -> Result<Node, EvalError> {
    let depth = NESTED.with(|n| n.get());
    if depth >= MAX_NESTED {
        return Err(EvalError::new(
            Some(span),
            format!("computations with `config` in .nix definitions depend on one another more than {MAX_NESTED} deep"),
        ));
    }
    if depth == 0 {
        Machine::fresh_budget();
    }
    NESTED.with(|n| n.set(depth + 1));
    let mut overlay = Overlay {
        base: sources,
        extra: Sources::default(),
    };
    let r = (|| {
        let path = sources
            .path(d.file)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut m = Machine::with_provider(&mut overlay, d.root.clone(), provider);
        // The way to the definition, from where an earlier computation of this resolution
        // got to (its thunks computed once, shared as Nix shares them).
        let known = |route: &[Step]| {
            session
                .walked
                .borrow()
                .get(&(d.file, route.to_vec()))
                .cloned()
        };
        let mut at = 0;
        let mut t = match (0..=d.route.len())
            .rev()
            .find_map(|n| known(&d.route[..n]).map(|t| (n, t)))
        {
            Some((n, t)) => {
                at = n;
                t
            }
            None => {
                let text = sources.text(d.file).to_string();
                let t = value::Thunk::value(m.eval_text(d.file, &dir, &text)?);
                session
                    .walked
                    .borrow_mut()
                    .insert((d.file, Vec::new()), t.clone());
                t
            }
        };
        for n in at..d.route.len() {
            t = module::step(&mut m, &t, &d.route[n], span)?;
            session
                .walked
                .borrow_mut()
                .insert((d.file, d.route[..=n].to_vec()), t.clone());
        }
        if let Some(arg) = apply_to {
            // An `apply` function, called on the option's merged value.
            let f = value::Evaluator::force(&mut m, &t)?;
            let arg = value::Thunk::value(eval::fetched_value(&[], arg));
            let r = value::Evaluator::call(&mut m, &f, arg, Some(span))?;
            t = value::Thunk::value(r);
        }
        module::read_whole(&mut m, &t, span)
    })();
    NESTED.with(|n| n.set(depth));
    r
}

/// What the computations of one resolution share: each module file evaluated once, with its
/// `config` answered by that resolution, and the ways already taken into it. A definition's
/// thunks are Nix's: computed once, and a thunk met again while it is computed is infinite
/// recursion, as Nix finds it.
#[derive(Default)]
pub(crate) struct Session {
    walked: std::cell::RefCell<std::collections::HashMap<(FileId, Vec<Step>), value::Thunk>>,
}

/// The scenario's files, and the files an evaluation in the resolver reads anew (`lib`,
/// `import`s): a file the scenario has keeps its id, so spans stay the scenario's.
struct Overlay<'a> {
    base: &'a Sources,
    extra: Sources,
}

impl value::Files for Overlay<'_> {
    fn add(&mut self, display: String, path: PathBuf, text: String) -> FileId {
        if let Some(id) = self.base.find(&display, &path) {
            return id;
        }
        let id = value::Files::add(&mut self.extra, display, path, text);
        FileId(self.base.len() as u32 + id.0)
    }

    fn display(&self, id: FileId) -> &str {
        match (id.0 as usize).checked_sub(self.base.len()) {
            Some(i) => self.extra.display(FileId(i as u32)),
            None => self.base.display(id),
        }
    }

    fn text(&self, id: FileId) -> Option<&str> {
        match (id.0 as usize).checked_sub(self.base.len()) {
            Some(i) => value::Files::text(&self.extra, FileId(i as u32)),
            None => value::Files::text(self.base, id),
        }
    }
}

/// Parsing and evaluation recurse along the expression (rnix's parser up to 512 levels, the
/// evaluator up to [`eval::MAX_DEPTH`] calls): they run on a thread whose stack holds that
/// with room to spare, whatever stack the caller has. `None` if it panicked.
fn on_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("nix-eval".into())
            .stack_size(256 << 20)
            .spawn_scoped(scope, f)
            .ok()?
            .join()
            .ok()
    })
}

fn diagnostic(e: EvalError, fallback: Span) -> Diagnostic {
    let mut d = Diagnostic::parse(e.span.unwrap_or(fallback), e.message);
    for (span, note) in e.also {
        d.labels.push(crate::diag::Label {
            span,
            note: format!("also: {note}"),
        });
    }
    d
}

/// Why a Nix expression has no value: Nix's message and where (`file:line:col`).
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", at.as_ref().map(|a| format!("{a}: ")).unwrap_or_default())]
pub struct NixError {
    /// Where, when known.
    pub at: Option<String>,
    /// What failed, in Nix's words where Nix has words for it.
    pub message: String,
}

/// Evaluates a Nix expression file strictly to JSON, as `nix-instantiate --eval --strict
/// --json` prints it (for the language's conformance tests). Files it reads must be in the
/// file's folder.
pub fn eval_json(path: &Path) -> Result<serde_json::Value, NixError> {
    let mut sources = Sources::default();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let text = crate::input::read_regular(path, crate::input::MAX_TEXT)
        .map_err(|e| NixError {
            at: None,
            message: e.to_string(),
        })
        .and_then(|b| {
            String::from_utf8(b).map_err(|_| NixError {
                at: None,
                message: format!("{} is not valid UTF-8", path.display()),
            })
        })?;
    let file = sources.add(path.display().to_string(), path.to_path_buf(), text.clone());
    let r = on_big_stack(|| {
        let mut m = Machine::new(&mut sources, dir.clone());
        m.eval_text(file, &dir, &text)
            .and_then(|v| builtins::to_json(&mut m, &v, None))
    })
    .unwrap_or_else(|| Err(EvalError::new(None, NO_THREAD)));
    r.map_err(|e| NixError {
        at: e
            .span
            .map(|s| format!("{}:{}:{}", sources.display(s.file), s.line, s.col)),
        message: e.message,
    })
}
