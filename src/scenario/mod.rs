//! Stage 1, **scenario**: YAML files → [`Scenario`], a list of modules with spans.
//!
//! This stage knows the scenario *format* (see `docs/scenario-format.md`): module fields,
//! flat option declarations, type expressions, tags, dotted paths and imports. It knows nothing
//! of merge semantics; every value keeps the file, line and column it was written at so the
//! resolver can point at it. [`load`] reads files (imports breadth-first, see `load.rs`),
//! `yaml.rs` parses YAML into spanned nodes, `declare.rs` reads `options:` declarations and
//! `normalize.rs` splits dotted keys of configs.

mod declare;
pub mod functions;
mod load;
mod nix;
pub(crate) mod nixos;
mod node;
mod normalize;
pub(crate) mod notation;
pub use nix::{eval_json, NixError};
pub(crate) use nix::{force_deferred, EvalError as NixEvalError, Fetched, NixSession};
pub(crate) mod path;
pub(crate) mod types;
mod yaml;

use std::path::Path;

pub use crate::source::{FileId, Sources, Span};
pub(crate) use declare::{parse_aliases, parse_declarations, Alias, Apply, ApplyFn, Declaration};
pub(crate) use node::{Deferred, FormatPart, Key, Kind, Node, Step, Text};
pub(crate) use normalize::normalize;
pub(crate) use types::{EnumValue, IntRange, TypeExpr};
pub use yaml::MAX_DEPTH;

use crate::diag::Diagnostic;
use load::Loader;

/// One module: an item of `modules:` or an imported file.
#[derive(Debug)]
pub(crate) struct Module {
    /// The "file" errors and `explain` show: `name:`, the import path, or `scenario.yaml#modules[i]`.
    pub(crate) name: String,
    /// The modules it imports, as indices into the scenario's modules, in the order written.
    pub(crate) imports: Vec<(usize, Span)>,
    /// Its option declarations.
    pub(crate) options: Vec<Declaration>,
    /// Its `config:`, with keys split into nested mappings.
    pub(crate) config: Option<Node>,
    /// The file it was read from (canonical), for an imported module.
    pub(crate) path: Option<std::path::PathBuf>,
    /// Its `disabledModules`: files, relative to its own (canonical when they exist).
    pub(crate) disabled: Vec<std::path::PathBuf>,
    /// Its `freeformType` (`_module.freeformType`).
    pub(crate) freeform: Option<TypeExpr>,
}

impl Scenario {
    /// Adds a top module whose only content is `freeformType = anything` (see
    /// `resolve::accept_undeclared`), unless a top module has a freeform type already.
    pub(crate) fn add_freeform_anything(&mut self) {
        if self.top.iter().any(|&m| self.modules[m].freeform.is_some()) {
            return;
        }
        self.modules.push(Module {
            name: "--allow-undeclared".into(),
            imports: Vec::new(),
            options: Vec::new(),
            config: None,
            path: None,
            disabled: Vec::new(),
            freeform: Some(TypeExpr::Anything),
        });
        self.top.push(self.modules.len() - 1);
    }
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
    pub(crate) modules: Vec<Module>,
    /// The `modules:` list: indices into the modules.
    pub(crate) top: Vec<usize>,
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
///
/// # Example
///
/// ```
/// let text = "modules:\n  - options: {x: {type: int}}\n  - config: {x: 1}\n";
/// let s = isoproof::scenario::load_str(text, "s.yaml", std::path::Path::new(".")).unwrap();
/// assert_eq!(s.sources.iter().count(), 1);
/// ```
pub fn load_str(text: &str, display: &str, dir: &Path) -> Result<Scenario, LoadError> {
    Loader::default().load_text(text, display, dir)
}

impl LoadError {
    /// Its exit class: a scenario that cannot be read is bad input.
    pub fn class(&self) -> crate::exit::Class {
        crate::exit::Class::BadInput
    }
}
