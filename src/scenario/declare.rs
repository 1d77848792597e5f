//! Option declarations: a module's flat `options:` map (full option path → `type`, `default`,
//! `description`, `readOnly`), read into [`Declaration`]s.

use std::collections::HashMap;

use super::{normalize, path, types, Kind, Node, Span, TypeExpr};
use crate::diag::Diagnostic;

/// An option declaration: one entry of a module's flat `options:` map.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Declaration {
    /// The option path, split.
    pub(crate) path: Vec<Box<str>>,
    /// Where the declaration's key was written.
    pub(crate) span: Span,
    /// Its type.
    pub(crate) ty: TypeExpr,
    /// Its `default`, a config value (properties and references allowed).
    pub(crate) default: Option<Node>,
    /// Its `description`.
    pub(crate) description: Option<String>,
    /// Its `readOnly`, when given.
    pub(crate) read_only: Option<bool>,
    /// Its `apply`: a function of `resolve::functions`, its leading arguments, and where.
    pub(crate) apply: Option<Apply>,
    /// An option made by `renamedOptions`, `aliasedOptions` or `removedOptions`.
    pub(crate) alias: Option<Alias>,
}

/// The option-module helpers of `lib/modules.nix`, as a module's declarations.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Alias {
    /// `mkRenamedOptionModule from to`: definitions go to `to` (priorities kept), with the
    /// warning Nix gives; the old option reads the new one.
    Renamed(Vec<Box<str>>),
    /// `mkAliasOptionModule from to`: the same without a warning.
    Aliased(Vec<Box<str>>),
    /// `mkRemovedOptionModule path instructions`: defining it is an error with these
    /// instructions.
    Removed(String),
}

/// Reads `renamedOptions`/`aliasedOptions` (old path → new path) or `removedOptions` (path
/// → replacement instructions) into declarations of the old paths.
pub(crate) fn parse_aliases(node: &Node, which: &str) -> Result<Vec<Declaration>, Diagnostic> {
    let Kind::Map(entries) = &node.kind else {
        return Err(Diagnostic::parse(
            node.span,
            format!(
                "`{which}` maps option paths to {}, found {}",
                if which == "removedOptions" {
                    "replacement instructions"
                } else {
                    "option paths"
                },
                node.shape()
            ),
        ));
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let from = path::split(&k.name).map_err(|e| Diagnostic::parse(k.span, e.to_string()))?;
        let Kind::Str(text) = &v.kind else {
            return Err(Diagnostic::parse(
                v.span,
                format!(
                    "the value of `{}` in `{which}` is a string, found {}",
                    k.name,
                    v.shape()
                ),
            ));
        };
        let alias = match which {
            "removedOptions" => Alias::Removed(text.to_string()),
            _ => {
                let to = path::split(text).map_err(|e| Diagnostic::parse(v.span, e.to_string()))?;
                if to == from {
                    return Err(Diagnostic::parse(
                        v.span,
                        format!("`{}` cannot be an alias of itself", k.name),
                    ));
                }
                if which == "renamedOptions" {
                    Alias::Renamed(to)
                } else {
                    Alias::Aliased(to)
                }
            }
        };
        out.push(Declaration {
            alias: Some(alias),
            ..Declaration::new(from, k.span)
        });
    }
    Ok(out)
}

impl Declaration {
    /// A declaration of `path` written at `span`, with no type (`unspecified`) and nothing else.
    pub(crate) fn new(path: Vec<Box<str>>, span: Span) -> Declaration {
        Declaration {
            path,
            span,
            ty: TypeExpr::Unspecified,
            default: None,
            description: None,
            read_only: None,
            apply: None,
            alias: None,
        }
    }
}

/// An option's `apply`: `NAME` or `[NAME, ARG...]`, the merged value being the last argument.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Apply {
    /// The function.
    pub(crate) func: ApplyFn,
    /// Its arguments before the value.
    pub(crate) args: Vec<Node>,
    /// Where `apply` was written.
    pub(crate) span: Span,
}

/// An `apply` function: one of `resolve::functions`, or a `.nix` declaration's own.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ApplyFn {
    /// A named function.
    Func(super::functions::Func),
    /// A Nix function, found by its steps.
    Nix(std::sync::Arc<super::Deferred>),
}

fn parse_apply(v: &Node) -> Result<Apply, Diagnostic> {
    use super::functions::Func;
    if let Kind::Nix(d) = &v.kind {
        return Ok(Apply {
            func: ApplyFn::Nix(d.clone()),
            args: Vec::new(),
            span: v.span,
        });
    }
    let (name, args) = match &v.kind {
        Kind::Str(s) => (s.to_string(), Vec::new()),
        Kind::List(items) => match items.split_first() {
            Some((Node { kind: Kind::Str(s), .. }, rest)) => (s.to_string(), rest.to_vec()),
            _ => {
                return Err(Diagnostic::parse(
                    v.span,
                    "`apply` is a function's name, or a sequence of its name and leading arguments",
                ))
            }
        },
        _ => {
            return Err(Diagnostic::parse(
                v.span,
                format!("`apply` is a function's name, or a sequence of its name and leading arguments; found {}", v.shape()),
            ))
        }
    };
    let func = Func::parse(&name).ok_or_else(|| {
        let names: Vec<&str> = Func::names().collect();
        Diagnostic::parse(
            v.span,
            format!(
                "`apply`: no function `{name}`; there are {}",
                names.join(", ")
            ),
        )
    })?;
    if args.len() + 1 != func.arity() {
        return Err(Diagnostic::parse(
            v.span,
            format!(
                "`apply: {name}` takes {} leading argument{} before the value, found {}",
                func.arity() - 1,
                if func.arity() == 2 { "" } else { "s" },
                args.len()
            ),
        ));
    }
    let args = args
        .into_iter()
        .map(|a| normalize(a, 0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Apply {
        func: ApplyFn::Func(func),
        args,
        span: v.span,
    })
}

/// Reads a flat `options:` map: full option path → declaration.
pub(crate) fn parse_declarations(node: &Node) -> Result<Vec<Declaration>, Diagnostic> {
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
        let path = path::split(&k.name).map_err(|e| Diagnostic::parse(k.span, e.to_string()))?;
        let Kind::Map(fields) = &v.kind else {
            return Err(Diagnostic::parse(v.span, format!("the declaration of `{}` is a mapping with `type`, `default`, `description`, `readOnly`; found {}", k.name, v.shape())));
        };
        let mut d = Declaration::new(path, k.span);
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
                "apply" => d.apply = Some(parse_apply(fv)?),
                other => {
                    return Err(Diagnostic::parse(fk.span, format!("unknown declaration field `{other}` of `{}`; a declaration has `type`, `default`, `description`, `readOnly`, `apply`", k.name)))
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
