//! The values of the Nix language as module files use them, with lazy thunks, and the
//! residual forms that stand for what only the module system knows (`config.a.b`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;

use rnix::ast;

use std::collections::HashMap;
use std::path::Path;

use super::prim::Builtin;
use crate::scenario::{FileId, FormatPart, Node, Span, Step};

/// A value, forced to its head (its parts may still be thunks).
#[derive(Clone)]
pub(crate) enum Value {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(Rc<str>),
    /// A path (absolute, normalized).
    Path(Rc<PathBuf>),
    /// A list.
    List(Rc<Vec<Thunk>>),
    /// An attribute set, sorted by name as Nix sorts it, with where each was defined.
    Attrs(Rc<Attrs>),
    /// A function written in Nix.
    Lambda(Rc<Lambda>),
    /// A built-in function, with the arguments it has been given so far.
    Builtin(Rc<Partial>),
    /// `config.a.b`: the final value of an option, which the module system computes.
    Config(Rc<Vec<Box<str>>>),
    /// A string that interpolates `config` references.
    Format(Rc<Vec<FormatPart>>),
    /// A type of `lib.types`, as the scenario format writes it.
    Type(Rc<Node>),
    /// `pkgs`: every name in it is a package.
    Pkgs,
    /// A package of `pkgs`: opaque, with a stable `outPath` in `/nix/store` form.
    Package(Rc<Package>),
}

/// A package: which attribute of `pkgs` it is, its name, and its text when it is a file
/// `pkgs.writeText` and its kin made.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) attr: Rc<str>,
    pub(crate) name: Rc<str>,
    pub(crate) text: Option<Rc<str>>,
}

impl Package {
    /// `/nix/store/HASH-NAME`: HASH is Nix's base-32 of the first 20 bytes of a SHA-256 of
    /// what the package is (its attribute, or its name and text), so it is the same on
    /// every machine and differs when the package does. It is not the store path nixpkgs
    /// would give: isoproof does not evaluate nixpkgs.
    pub(crate) fn out_path(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"isoproof-package\0");
        h.update(self.attr.as_bytes());
        if let Some(t) = &self.text {
            h.update(b"\0");
            h.update(self.name.as_bytes());
            h.update(b"\0");
            h.update(t.as_bytes());
        }
        let digest = h.finalize();
        format!("/nix/store/{}-{}", nix_base32(&digest[..20]), self.name)
    }
}

/// Nix's base-32 (its alphabet, and its order: the last 5-bit group first).
pub(crate) fn nix_base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";
    let len = (bytes.len() * 8).div_ceil(5);
    (0..len)
        .rev()
        .map(|n| {
            let b = n * 5;
            let (i, j) = (b / 8, b % 8);
            let lo = u16::from(bytes[i]) >> j;
            let hi = bytes.get(i + 1).map_or(0, |&x| u16::from(x) << (8 - j));
            ALPHABET[usize::from((lo | hi) & 0x1f)] as char
        })
        .collect()
}

/// An attribute set.
pub(crate) type Attrs = BTreeMap<Rc<str>, Attr>;

/// One attribute: its value and where it was written (none for built-in sets).
#[derive(Clone)]
pub(crate) struct Attr {
    pub(crate) value: Thunk,
    pub(crate) span: Option<Span>,
}

/// A function written in Nix: its parameter, its body and the scope it closes over.
pub(crate) struct Lambda {
    pub(crate) param: ast::Param,
    pub(crate) body: ast::Expr,
    pub(crate) env: Env,
}

/// A built-in applied to fewer arguments than it takes.
pub(crate) struct Partial {
    pub(crate) builtin: Builtin,
    pub(crate) args: Vec<Thunk>,
}

/// A value that is computed when first needed, once.
#[derive(Clone)]
pub(crate) struct Thunk(pub(crate) Rc<RefCell<State>>);

pub(crate) enum State {
    /// Not yet computed: the expression and its scope.
    Pending(ast::Expr, Env),
    /// `src.name`, not yet selected (`inherit (src) name`).
    Select(Thunk, Rc<str>, Option<Span>),
    /// A value that is an error when needed (an argument isoproof does not provide).
    Error(Rc<str>),
    /// An option's value, asked of the module system when needed (`config.a.b` while the
    /// resolver computes a definition that depends on it).
    Fetch(Rc<[Box<str>]>),
    /// Being computed: forcing it again is infinite recursion.
    Forcing,
    /// Computed.
    Done(Value),
}

impl Thunk {
    /// The expression as written, when it is one not yet computed.
    pub(crate) fn source_text(&self) -> String {
        use rowan::ast::AstNode;
        match &*self.0.borrow() {
            State::Pending(e, _) => e.syntax().text().to_string(),
            State::Select(_, name, _) => name.to_string(),
            _ => String::new(),
        }
    }

    /// A thunk that is already a value.
    pub(crate) fn value(v: Value) -> Thunk {
        Thunk(Rc::new(RefCell::new(State::Done(v))))
    }

    /// A thunk of an expression in a scope.
    pub(crate) fn pending(e: ast::Expr, env: Env) -> Thunk {
        Thunk(Rc::new(RefCell::new(State::Pending(e, env))))
    }
}

impl Value {
    /// Nix's name of the value's type (`builtins.typeOf`).
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) | Value::Format(_) => "string",
            Value::Path(_) => "path",
            Value::List(_) => "list",
            Value::Attrs(_) | Value::Type(_) | Value::Pkgs | Value::Package(_) => "set",
            Value::Lambda(_) | Value::Builtin(_) => "lambda",
            Value::Config(_) => "config",
        }
    }

    /// How Nix names the type in "value is X while Y was expected".
    pub(crate) fn noun(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) | Value::Format(_) => "a string",
            Value::Path(_) => "a path",
            Value::List(_) => "a list",
            Value::Attrs(_) | Value::Type(_) | Value::Pkgs | Value::Package(_) => "a set",
            Value::Lambda(_) | Value::Builtin(_) => "a function",
            Value::Config(_) => "an option's value (config)",
        }
    }

    /// An attribute set of the given (name, value) pairs.
    pub(crate) fn attrs<I: IntoIterator<Item = (Rc<str>, Value)>>(items: I) -> Value {
        Value::Attrs(Rc::new(
            items
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        Attr {
                            value: Thunk::value(v),
                            span: None,
                        },
                    )
                })
                .collect(),
        ))
    }

    /// A string value.
    pub(crate) fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }
}

/// Why an expression has no value: Nix's message and where.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EvalError {
    /// Where the failing expression is.
    pub(crate) span: Option<Span>,
    /// What failed, in Nix's words where Nix has words for it.
    pub(crate) message: String,
    /// The option whose final value was needed while modules were read: the definition is
    /// computed later, by the resolver (see [`Step`]).
    pub(crate) needs: Option<Vec<Box<str>>>,
    /// More errors found with this one (a file's further syntax errors).
    pub(crate) also: Vec<(Span, String)>,
}

impl EvalError {
    pub(crate) fn new(span: Option<Span>, message: impl Into<String>) -> EvalError {
        EvalError {
            span,
            message: message.into(),
            needs: None,
            also: Vec::new(),
        }
    }
}

/// An option's value as the module system gives it to a `.nix` computation: data, with an
/// attribute set given by its names (each asked for when read, as Nix's `config` is lazy).
#[derive(Debug)]
pub(crate) enum Fetched {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Fetched>),
    /// A set inside a list, whole.
    Attrs(Vec<(String, Fetched)>),
    /// A set of options or a set-valued option: its names.
    Names(Vec<String>),
}

/// Where module reading is, from a `.nix` file's value: a definition that needs `config`
/// while [`Route::defer`] is on becomes a computation the resolver runs later
/// ([`crate::scenario::Deferred`]), found again by these steps.
#[derive(Default)]
pub(crate) struct Route {
    /// The file the steps start at.
    pub(crate) file: Option<FileId>,
    /// The folder its evaluation may read in.
    pub(crate) root: PathBuf,
    pub(crate) steps: Vec<Step>,
    /// Whether a definition is being read (not `imports`, not the shape of `config`).
    pub(crate) defer: bool,
    /// Whether a submodule type's module is being read (it has a `name`).
    pub(crate) submodule: bool,
}

/// The files an evaluation reads: the scenario's, or (when the resolver runs a computation)
/// the scenario's seen through an overlay that takes files read anew.
pub(crate) trait Files {
    /// Adds a file (or finds it, when the overlay already has it).
    fn add(&mut self, display: String, path: PathBuf, text: String) -> FileId;
    /// Its name.
    fn display(&self, id: FileId) -> &str;
    /// Its text, when it has one.
    fn text(&self, id: FileId) -> Option<&str>;
}

impl Files for crate::scenario::Sources {
    /// A file read before (the same path; `lib` by its name) keeps its id.
    fn add(&mut self, display: String, path: PathBuf, text: String) -> FileId {
        match self.find(&display, &path) {
            Some(id) => id,
            None => crate::scenario::Sources::add(self, display, path, text),
        }
    }
    fn display(&self, id: FileId) -> &str {
        crate::scenario::Sources::display(self, id)
    }
    fn text(&self, id: FileId) -> Option<&str> {
        ((id.0 as usize) < self.len()).then(|| crate::scenario::Sources::text(self, id))
    }
}

/// How the resolver answers `config.a.b` for a computation.
pub(crate) type Provider<'p> =
    &'p mut dyn FnMut(&[Box<str>], Option<Span>) -> std::result::Result<Fetched, EvalError>;

pub(crate) type Result<T> = std::result::Result<T, EvalError>;

/// A file being evaluated: its id (for spans), its directory (for relative paths), its text.
pub(crate) struct FileCtx {
    pub(crate) file: FileId,
    pub(crate) dir: PathBuf,
    pub(crate) text: Rc<str>,
    line_starts: Vec<usize>,
    /// Every character one byte: a column is a byte offset (no counting).
    ascii: bool,
}

impl FileCtx {
    pub(crate) fn new(file: FileId, dir: PathBuf, text: &str) -> FileCtx {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        FileCtx {
            file,
            dir,
            text: text.into(),
            line_starts,
            ascii: text.is_ascii(),
        }
    }

    /// The span of a syntax node's first character.
    pub(crate) fn span(&self, node: &rnix::SyntaxNode) -> Span {
        self.span_at(usize::from(node.text_range().start()))
    }

    pub(crate) fn span_at(&self, offset: usize) -> Span {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = if self.ascii {
            offset.saturating_sub(start) + 1
        } else {
            self.text
                .get(start..offset)
                .map_or(1, |s| s.chars().count() + 1)
        };
        Span {
            file: self.file,
            line: line as u32,
            col: col as u32,
        }
    }
}

/// A scope: its bindings, or a `with` namespace, and the scope around it.
#[derive(Clone)]
pub(crate) struct Env(pub(crate) Rc<Scope>);

pub(crate) struct Scope {
    vars: RefCell<HashMap<Rc<str>, Thunk>>,
    pub(crate) with: Option<Thunk>,
    pub(crate) parent: Option<Env>,
    pub(crate) file: Rc<FileCtx>,
}

impl Env {
    /// The outermost scope of a file: the global names (`builtins`, `true`, `map`, ...).
    pub(crate) fn root(globals: &Rc<HashMap<Rc<str>, Thunk>>, file: Rc<FileCtx>) -> Env {
        Env(Rc::new(Scope {
            vars: RefCell::new((**globals).clone()),
            with: None,
            parent: None,
            file,
        }))
    }

    pub(crate) fn child(&self) -> Env {
        Env(Rc::new(Scope {
            vars: RefCell::new(HashMap::new()),
            with: None,
            parent: Some(self.clone()),
            file: self.0.file.clone(),
        }))
    }

    pub(crate) fn with(&self, ns: Thunk) -> Env {
        Env(Rc::new(Scope {
            vars: RefCell::new(HashMap::new()),
            with: Some(ns),
            parent: Some(self.clone()),
            file: self.0.file.clone(),
        }))
    }

    pub(crate) fn bind(&self, name: Rc<str>, t: Thunk) {
        self.0.vars.borrow_mut().insert(name, t);
    }

    pub(crate) fn lexical(&self, name: &str) -> Option<Thunk> {
        let mut e = Some(self);
        while let Some(env) = e {
            if let Some(t) = env.0.vars.borrow().get(name) {
                return Some(t.clone());
            }
            e = env.0.parent.as_ref();
        }
        None
    }
}

/// What built-ins and the module conversion need of the evaluator: forcing, calling,
/// coercing, reading files, `lib`. The evaluator (`eval.rs`) implements it; the layers below
/// it see only this.
pub(crate) trait Evaluator: Sized {
    /// Forces a thunk to its head.
    fn force(&mut self, t: &Thunk) -> Result<Value>;
    /// Calls a function with one argument.
    fn call(&mut self, f: &Value, arg: Thunk, at: Option<Span>) -> Result<Value>;
    /// Coerces a value to a string as `"${v}"` does (or `toString v` when `to_string`).
    fn coerce(&mut self, v: &Value, to_string: bool, at: Option<Span>) -> Result<String>;
    /// Forces a value and everything in it.
    fn deep_force(&mut self, v: &Value) -> Result<()>;
    /// Runs `f` one level deeper, refusing past the evaluator's bound.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T>;
    /// `import path`.
    fn import(&mut self, path: &Path, at: Option<Span>) -> Result<Value>;
    /// A file's text, inside the scenario's folder.
    fn read_text(&self, path: &Path, at: Option<Span>) -> Result<String>;
    /// `lib`.
    fn lib(&mut self) -> Result<Value>;
    /// The name of a file, for `__curPos` and messages.
    fn file_name(&self, file: FileId) -> String;
    /// Where module reading is.
    fn route(&mut self) -> &mut Route;
    /// The `config` module argument: symbolic while modules are read, the resolver's
    /// answers while it runs a computation.
    fn config_root(&mut self) -> Result<Value>;
}

/// Nix's "value is X while Y was expected".
pub(crate) fn type_error(v: &Value, want: &str, at: Option<Span>) -> EvalError {
    if let Value::Config(p) = v {
        return config_used(p, &format!("where {want} is needed"), at);
    }
    if let Value::Format(parts) = v {
        return format_used(parts, at);
    }
    EvalError::new(
        at,
        format!("value is {} while {want} was expected", v.noun()),
    )
}

/// `config.a.b` where only its final value would do. Inside a definition, that definition is
/// computed later, when the resolver knows the value ([`EvalError::needs`]); elsewhere (a
/// module's `imports`, the shape of its `config`) Nix itself would recurse for ever.
pub(crate) fn config_used(path: &[Box<str>], how: &str, at: Option<Span>) -> EvalError {
    EvalError {
        needs: Some(path.to_vec()),
        ..EvalError::new(
            at,
            format!(
                "config.{} is used {how} where the module system cannot know it yet: a module's `imports`, and which options its `config` defines, may not depend on `config` (Nix reports infinite recursion)",
                crate::scenario::path::show(path)
            ),
        )
    }
}

/// Fails unless every value of `vs` is known while modules are read: `config.a` and strings
/// built from it (used `how`) wait for the module system.
pub(crate) fn known(vs: &[&Value], how: &str, at: Option<Span>) -> Result<()> {
    for v in vs {
        match v {
            Value::Config(p) => return Err(config_used(p, how, at)),
            Value::Format(parts) => return Err(format_used(parts, at)),
            _ => {}
        }
    }
    Ok(())
}

/// A string built from `config` values (`"${config.a}"`) where its text is needed.
pub(crate) fn format_used(parts: &[FormatPart], at: Option<Span>) -> EvalError {
    if parts.iter().all(|p| !matches!(p, FormatPart::Ref(_))) {
        return EvalError::new(
            at,
            "a submodule's `name` is used where its text is needed: isoproof knows it in the defaults of the submodule's options (whole, or inside a string) only",
        );
    }
    let first = parts.iter().find_map(|p| match p {
        FormatPart::Ref(r) => Some(r.as_slice()),
        FormatPart::Text(_) | FormatPart::Name => None,
    });
    config_used(
        first.unwrap_or_default(),
        "in a string whose text is needed",
        at,
    )
}

/// "attribute 'x' missing", with the nearest names.
pub(crate) fn missing(name: &str, a: &Attrs, at: Option<Span>) -> EvalError {
    let near: Vec<&str> = a
        .keys()
        .map(|k| &**k)
        .filter(|k| crate::diag::levenshtein(name, k) <= 2)
        .take(3)
        .collect();
    let hint = if near.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", near.join(", "))
    };
    EvalError::new(at, format!("attribute '{name}' missing{hint}"))
}

/// A path with `.` and `..` resolved lexically, as Nix resolves path literals.
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// A string or list grows to at most this many bytes or elements: a module that doubles a
/// string sixty times is an error, not an abort.
pub(crate) const MAX_LEN: usize = 16 << 20;

/// `s` as a value, if it is within [`MAX_LEN`].
pub(crate) fn bounded(s: String, at: Option<Span>) -> Result<Value> {
    if s.len() > MAX_LEN {
        return Err(EvalError::new(
            at,
            format!("a string longer than {} MiB", MAX_LEN >> 20),
        ));
    }
    Ok(Value::str(s))
}

/// `xs` as a value, if it is within [`MAX_LEN`] elements.
pub(crate) fn bounded_list(xs: Vec<Thunk>, at: Option<Span>) -> Result<Value> {
    if xs.len() > MAX_LEN / 16 {
        return Err(EvalError::new(
            at,
            format!("a list longer than {} elements", MAX_LEN / 16),
        ));
    }
    Ok(Value::List(Rc::new(xs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn nix_base32_is_nix_s() {
        // `nix-hash --to-base32` of the SHA-256 and SHA-1 of the empty string.
        let sha256 = unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(
            nix_base32(&sha256),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        let sha1 = unhex("da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(nix_base32(&sha1), "143xibwh31h9bvxzalr0sjvbbvpa6ffs");
    }

    #[test]
    fn package_paths_are_stable_and_differ_by_content() {
        let p = |attr: &str, text: Option<&str>| Package {
            attr: attr.into(),
            name: "x".into(),
            text: text.map(Into::into),
        };
        assert_eq!(p("vim", None).out_path(), p("vim", None).out_path());
        assert_ne!(p("vim", None).out_path(), p("git", None).out_path());
        assert_ne!(p("w", Some("a")).out_path(), p("w", Some("b")).out_path());
        let path = p("vim", None).out_path();
        assert!(
            path.starts_with("/nix/store/") && path.ends_with("-x") && path.len() == 11 + 32 + 2
        );
    }
}
