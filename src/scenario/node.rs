//! The scenario's value tree: every YAML node with the file, line and column it came from.
//!
//! Tags are already resolved here (`!mkForce v` is an [`Kind::Override`] node), and every mapping
//! in a config position has had its dotted keys split (see [`super::path`]), so the resolver
//! never sees YAML syntax.

pub(crate) use crate::source::{FileId, Span};

/// Text of the scenario: names and strings. Most are short (`enable`, `k12_0`, `v7`) and are
/// kept inline, so reading one is no pointer chase and loading one is no allocation; on a large
/// scenario, key lookups and comparisons were dominated by cache misses on separate strings.
pub(crate) type Text = compact_str::CompactString;

/// A mapping key with its own position (used to point at "defined twice" keys).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    /// One path component (already split and unquoted).
    pub(crate) name: Text,
    /// Where the key was written.
    pub(crate) span: Span,
}

/// One node of a scenario value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    /// Where the node starts.
    pub(crate) span: Span,
    /// What it is.
    pub(crate) kind: Kind,
}

/// The kinds of values and properties a definition can be made of.
///
/// Properties mirror `lib.modules`: `mkIf c v` is `{ _type = "if"; condition; content; }`, and
/// so on. Where a property is not removed by the module system it is data: an attribute set
/// with `_type` (see `resolve::value`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false` (YAML 1.2 core schema).
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(Text),
    /// A sequence.
    List(Vec<Node>),
    /// A mapping. In config positions the keys are single path components, unique and sorted
    /// by name, like a Nix attribute set.
    Map(Vec<(Key, Node)>),
    /// `!mkIf [cond, v]`.
    If(Box<Node>, Box<Node>),
    /// `!mkMerge [v, ...]`.
    Merge(Vec<Node>),
    /// `!mkOverride [p, v]` and its named forms (`!mkForce v`, ...).
    Override(f64, Box<Node>),
    /// `!mkOrder [p, v]`, `!mkBefore v`, `!mkAfter v`.
    Order(f64, Box<Node>),
    /// `!config a.b.c`: the final value of another option.
    Ref(Vec<Box<str>>),
    /// `!format "text ${a.b} more"`: string interpolation of option values.
    Format(Vec<FormatPart>),
    /// `!call [NAME, ARG...]`: one of the pure functions of `resolve::functions`.
    Call(super::functions::Func, Vec<Node>),
    /// `!name`: a submodule's name (the attribute name under `attrsOf`), as the default of
    /// one of its options.
    Name,
    /// A `.nix` definition that computes with `config` (`lib.optional config.x pkgs.y`,
    /// `if config.a then … else …`): evaluated when the resolver needs it, with `config`
    /// answered by the resolver — the module system's fixpoint.
    Nix(std::sync::Arc<Deferred>),
}

/// One step from a `.nix` file's value to a definition inside it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    /// The value is a module: call it with the module arguments if it is a function.
    Module,
    /// An attribute.
    Attr(Box<str>),
    /// A list element.
    Index(usize),
}

/// A `.nix` definition computed when needed: which file's value to start from, the way to
/// the definition, and (once computed) what it is.
#[derive(Debug)]
pub(crate) struct Deferred {
    /// The `.nix` file the steps start at.
    pub(crate) file: FileId,
    /// The folder its evaluation may read in.
    pub(crate) root: std::path::PathBuf,
    /// From the file's value to the definition.
    pub(crate) route: Vec<Step>,
    /// The option it read first (why it waits).
    pub(crate) needs: Vec<Box<str>>,
    /// The expression as written, for explain.
    pub(crate) text: Box<str>,
    /// The definition, once computed (it is the same every time: evaluation is pure).
    pub(crate) value: std::sync::OnceLock<Node>,
    /// When the steps lead to an option's `apply` function: what it gave, for each value it
    /// was applied to (kept while the scenario lives, so the resolver can lend them).
    pub(crate) applied: elsa::sync::FrozenVec<Box<Node>>,
}

impl PartialEq for Deferred {
    fn eq(&self, other: &Deferred) -> bool {
        self.file == other.file && self.route == other.route
    }
}

/// The tags that name an override priority (`!mkForce v` is `mkOverride 50 v`), as
/// `lib.modules` defines them.
pub(crate) const OVERRIDE_TAGS: [(&str, f64); 5] = [
    ("mkVMOverride", 10.0),
    ("mkForce", 50.0),
    ("mkImageMediaOverride", 60.0),
    ("mkDefault", 1000.0),
    ("mkOptionDefault", 1500.0),
];

/// The tags that name an order priority (`!mkBefore v` is `mkOrder 500 v`).
pub(crate) const ORDER_TAGS: [(&str, f64); 2] = [("mkBefore", 500.0), ("mkAfter", 1500.0)];

/// One piece of a `!format` string.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FormatPart {
    /// Literal text.
    Text(Box<str>),
    /// `${a.b.c}`: the value of option `a.b.c`, which must be a string.
    Ref(Vec<Box<str>>),
    /// `${name}` in a `.nix` submodule: its name (the attribute name under `attrsOf`), known
    /// in the defaults of its options.
    Name,
}

impl Node {
    /// Whether evaluating this node can read other options (`!config`, `!format`). Static
    /// nodes can be merged eagerly: they cannot take part in a reference cycle.
    pub(crate) fn is_dynamic(&self) -> bool {
        match &self.kind {
            Kind::Ref(_) | Kind::Format(_) | Kind::Call(..) | Kind::Name | Kind::Nix(_) => true,
            Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) | Kind::Str(_) => false,
            Kind::List(xs) | Kind::Merge(xs) => xs.iter().any(Node::is_dynamic),
            Kind::Map(es) => es.iter().any(|(_, v)| v.is_dynamic()),
            Kind::If(c, v) => c.is_dynamic() || v.is_dynamic(),
            Kind::Override(_, v) | Kind::Order(_, v) => v.is_dynamic(),
        }
    }

    /// Looks up a key of a mapping node.
    pub(crate) fn get(&self, name: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(es) => es.iter().find(|(k, _)| &*k.name == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short noun for the node's YAML shape, for error messages.
    pub(crate) fn shape(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Str(_) => "a string",
            Kind::List(_) => "a sequence",
            Kind::Map(_) => "a mapping",
            Kind::If(..) => "!mkIf",
            Kind::Merge(_) => "!mkMerge",
            Kind::Override(..) => "an override",
            Kind::Order(..) => "!mkOrder",
            Kind::Ref(_) => "!config",
            Kind::Format(_) => "!format",
            Kind::Call(..) => "!call",
            Kind::Name => "!name",
            Kind::Nix(_) => "a Nix computation",
        }
    }
}
