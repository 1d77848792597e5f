//! Stage 1's second front end: `.nix` module files → the module mappings a YAML module gives,
//! so the rest of the stage (imports, declarations, dotted paths) and the resolver treat both
//! alike. The Nix language is parsed with `rnix` (the Nix community's lossless parser, with
//! spans) and evaluated lazily here (`eval.rs`, `builtins.rs`, with `value.rs`); `lib` is
//! nixpkgs' functions written over isoproof's builtins (`lib.nix`); `module.rs` turns a
//! module's value into definitions. `config.a.b` inside a module is a reference the module
//! system resolves (its fixpoint), exactly as the YAML format's `!config`: in `lib.mkIf`
//! conditions, as whole values and in strings.

pub(crate) use value::{EvalError, Fetched, Provider};

mod builtins;
mod eval;
mod module;
mod prim;
mod value;

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::scenario::{Deferred, FileId, Node, Sources, Span};
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
    let text = sources.text(file).to_string();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let start = Span {
        file,
        line: 1,
        col: 1,
    };
    on_big_stack(|| {
        let mut m = Machine::new(sources, root.to_path_buf());
        m.route.file = Some(file);
        m.route.root = root.to_path_buf();
        let result = m
            .eval_text(file, &dir, &text)
            .and_then(|v| module::module_node(&mut m, v, start));
        result.map_err(|e| diagnostic(e, start))
    })
    .unwrap_or_else(|| {
        Err(Diagnostic::parse(
            start,
            "the evaluation of this file failed inside isoproof (a bug)",
        ))
    })
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
const MAX_NESTED: usize = 32;

thread_local! {
    static NESTED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The definition `d` stands for, computed: its file evaluated again with `config` answered
/// by `provider` (the resolver), the same steps taken to it, and it read whole. Runs on the
/// caller's thread, which is the resolver's (its stack holds nested evaluations).
pub(crate) fn force_deferred(
    sources: &Sources,
    d: &Deferred,
    span: Span,
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
        let text = sources.text(d.file).to_string();
        let mut m = Machine::with_provider(&mut overlay, d.root.clone(), provider);
        let v = m.eval_text(d.file, &dir, &text)?;
        module::walk(&mut m, v, &d.route, span)
    })();
    NESTED.with(|n| n.set(depth));
    r
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
        let id = self.extra.add(display, path, text);
        FileId(self.base.len() as u32 + id.0)
    }

    fn display(&self, id: FileId) -> &str {
        match (id.0 as usize).checked_sub(self.base.len()) {
            Some(i) => self.extra.display(FileId(i as u32)),
            None => self.base.display(id),
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
    .unwrap_or_else(|| {
        Err(EvalError::new(
            None,
            "the evaluation failed inside isoproof (a bug)",
        ))
    });
    r.map_err(|e| NixError {
        at: e
            .span
            .map(|s| format!("{}:{}:{}", sources.display(s.file), s.line, s.col)),
        message: e.message,
    })
}
