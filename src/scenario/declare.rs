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
