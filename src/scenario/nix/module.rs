//! Module values to the module mappings the rest of the scenario stage reads, as a YAML
//! module is read: `imports` (paths), `options` (declarations by option path), `config`
//! (definitions, with `mkIf`, `mkMerge`, `mkOverride` and `mkOrder` as properties, and
//! `config.a.b` as the option references the module system resolves).

use std::rc::Rc;

use super::value::{type_error, Attrs, EvalError, Evaluator, Result, State, Thunk, Value};
use crate::scenario::{FormatPart, Key, Kind, Node, Span, Text};

/// The arguments a module function is called with.
pub(crate) fn module_args(m: &mut impl Evaluator) -> Result<Value> {
    let lib = m.lib()?;
    let unavailable =
        |what: &str| Thunk(Rc::new(std::cell::RefCell::new(State::Error(what.into()))));
    let mut a = Attrs::new();
    let mut put = |k: &str, t: Thunk| {
        a.insert(
            k.into(),
            super::value::Attr {
                value: t,
                span: None,
            },
        );
    };
    put("config", Thunk::value(Value::Config(Rc::new(Vec::new()))));
    put("lib", Thunk::value(lib));
    put("pkgs", Thunk::value(Value::Pkgs));
    put(
        "options",
        unavailable(
            "`options`: isoproof does not provide the option declarations to .nix modules yet",
        ),
    );
    put(
        "modulesPath",
        Thunk::value(Value::Path(Rc::new(crate::scenario::nixos::modules_path()))),
    );
    put("specialArgs", Thunk::value(Value::attrs([])));
    Ok(Value::Attrs(Rc::new(a)))
}

/// The module a file's value is: called with the module arguments when it is a function;
/// then the mapping a YAML module would be.
pub(crate) fn module_node(m: &mut impl Evaluator, v: Value, span: Span) -> Result<Node> {
    module_of(m, v, span, false)
}

/// [`module_node`]; a module written inline in `imports` keeps its `key` (Nix imports a key
/// once) and is named by its `_file`.
fn module_of(m: &mut impl Evaluator, v: Value, span: Span, inline: bool) -> Result<Node> {
    let v = match v {
        Value::Lambda(_) | Value::Builtin(_) => {
            let args = module_args(m)?;
            m.call(&v, Thunk::value(args), Some(span))?
        }
        v => v,
    };
    let Value::Attrs(a) = v else {
        return Err(type_error(
            &v,
            "a module (a set, or a function returning one)",
            Some(span),
        ));
    };
    let explicit = a.contains_key("config") || a.contains_key("options");
    let mut entries: Vec<(Key, Node)> = Vec::new();
    let mut shorthand = Attrs::new();
    for (k, attr) in a.iter() {
        let at = attr.span.unwrap_or(span);
        let key = Key {
            name: Text::from(&**k),
            span: at,
        };
        match &**k {
            "imports" => entries.push((key, imports(m, &attr.value, at)?)),
            "disabledModules" => entries.push((key, imports(m, &attr.value, at)?)),
            "options" => {
                let v = m.force(&attr.value)?;
                let mut decls = Vec::new();
                declarations(m, &v, &mut Vec::new(), at, &mut decls)?;
                entries.push((key, Node { span: at, kind: Kind::Map(decls) }));
            }
            "config" => {
                let v = m.force(&attr.value)?;
                entries.push((key, to_node(m, &v, at)?));
            }
            "freeformType" => {
                let v = m.force(&attr.value)?;
                entries.push((key, type_node(&v, at)?));
            }
            "_file" | "key" if inline => {
                let name = if &**k == "_file" { "name" } else { "key" };
                let v = m.force(&attr.value)?;
                let text = match v {
                    Value::Str(s) => s.to_string(),
                    Value::Path(p) => p.display().to_string(),
                    other => return Err(type_error(&other, "a string", Some(at))),
                };
                entries.push((Key { name: name.into(), span: at }, Node { span: at, kind: Kind::Str(Text::from(text)) }));
            }
            "_file" | "key" | "meta" | "_class" => {}
            _ if explicit => {
                return Err(EvalError::new(
                    Some(at),
                    format!("module has an unsupported attribute '{k}'; a module with `config` or `options` has only `imports`, `options`, `config`, `disabledModules`, `freeformType`, `_file`, `key` and `meta`"),
                ))
            }
            _ => {
                shorthand.insert(k.clone(), attr.clone());
            }
        }
    }
    if !shorthand.is_empty() {
        let v = Value::Attrs(Rc::new(shorthand));
        entries.push((
            Key {
                name: "config".into(),
                span,
            },
            to_node(m, &v, span)?,
        ));
    }
    entries.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(Node {
        span,
        kind: Kind::Map(entries),
    })
}

/// `imports` and `disabledModules`: paths (or strings that are paths), as strings.
fn imports(m: &mut impl Evaluator, t: &Thunk, at: Span) -> Result<Node> {
    let list = match m.force(t)? {
        Value::List(l) => l,
        other => return Err(type_error(&other, "a list", Some(at))),
    };
    let mut out = Vec::new();
    for x in list.iter() {
        match m.force(x)? {
            Value::Path(p) => out.push(Node {
                span: at,
                kind: Kind::Str(Text::from(p.display().to_string())),
            }),
            Value::Str(s) => out.push(Node {
                span: at,
                kind: Kind::Str(Text::from(&*s)),
            }),
            v @ (Value::Attrs(_) | Value::Lambda(_)) => {
                out.push(m.nested(|m| module_of(m, v, at, true))?)
            }
            other => return Err(type_error(&other, "a path", Some(at))),
        }
    }
    Ok(Node {
        span: at,
        kind: Kind::List(out),
    })
}

/// The declarations of an `options` set: every `mkOption` found under nested sets, keyed by
/// its option path as a scenario writes it.
fn declarations(
    m: &mut impl Evaluator,
    v: &Value,
    path: &mut Vec<Box<str>>,
    at: Span,
    out: &mut Vec<(Key, Node)>,
) -> Result<()> {
    let a = match v {
        Value::Attrs(a) => a.clone(),
        other => {
            return Err(EvalError::new(
                Some(at),
                format!(
                    "the option declaration `{}` is {}, not `lib.mkOption {{ ... }}`",
                    crate::scenario::path::show(path),
                    other.noun()
                ),
            ))
        }
    };
    if let Some(t) = a.get("_type") {
        if let Value::Str(s) = m.force(&t.value)? {
            if &*s == "option" {
                out.push((
                    Key {
                        name: Text::from(crate::scenario::path::show(path)),
                        span: at,
                    },
                    declaration(m, &a, at)?,
                ));
                return Ok(());
            }
        }
    }
    for (k, attr) in a.iter() {
        let v = m.force(&attr.value)?;
        path.push(k.to_string().into_boxed_str());
        let r = m.nested(|m| declarations(m, &v, path, attr.span.unwrap_or(at), out));
        path.pop();
        r?;
    }
    Ok(())
}

fn declaration(m: &mut impl Evaluator, a: &Attrs, at: Span) -> Result<Node> {
    let mut fields: Vec<(Key, Node)> = Vec::new();
    let key = |name: &str, span: Option<Span>| Key {
        name: name.into(),
        span: span.unwrap_or(at),
    };
    let mut has_type = false;
    for (k, attr) in a.iter() {
        let span = attr.span.unwrap_or(at);
        match &**k {
            "type" => {
                let v = m.force(&attr.value)?;
                fields.push((key("type", attr.span), type_node(&v, span)?));
                has_type = true;
            }
            "default" => {
                let v = m.force(&attr.value)?;
                fields.push((key("default", attr.span), to_node(m, &v, span)?));
            }
            "description" => {
                let v = m.force(&attr.value)?;
                let text = doc_text(m, &v, span)?;
                fields.push((
                    key("description", attr.span),
                    Node {
                        span,
                        kind: Kind::Str(text.into()),
                    },
                ));
            }
            "readOnly" => match m.force(&attr.value)? {
                Value::Bool(b) => fields.push((
                    key("readOnly", attr.span),
                    Node {
                        span,
                        kind: Kind::Bool(b),
                    },
                )),
                other => return Err(type_error(&other, "a Boolean", Some(span))),
            },
            "apply" => return Err(EvalError::new(
                Some(span),
                "`apply` functions in .nix option declarations are not evaluated by isoproof yet",
            )),
            // Documentation and visibility: no part of the value.
            "_type" | "example" | "defaultText" | "visible" | "internal" | "relatedPackages" => {}
            other => {
                return Err(EvalError::new(
                    Some(span),
                    format!("mkOption: isoproof does not take the attribute '{other}'"),
                ))
            }
        }
    }
    if !has_type {
        fields.push((
            key("type", None),
            Node {
                span: at,
                kind: Kind::Str("unspecified".into()),
            },
        ));
    }
    Ok(Node {
        span: at,
        kind: Kind::Map(fields),
    })
}

/// A description: a string, or `lib.literalMD`/`mdDoc` text.
fn doc_text(m: &mut impl Evaluator, v: &Value, at: Span) -> Result<String> {
    match v {
        Value::Str(s) => Ok(s.to_string()),
        Value::Attrs(a) if a.contains_key("text") => {
            let t = m.force(&a["text"].value)?;
            doc_text(m, &t, at)
        }
        other => Err(type_error(other, "a string", Some(at))),
    }
}

/// A type value as the scenario format writes it.
fn type_node(v: &Value, at: Span) -> Result<Node> {
    match v {
        Value::Type(t) => Ok((**t).clone()),
        other => Err(type_error(other, "a type (`lib.types.*`)", Some(at))),
    }
}

/// `lib.types.NAME arg`: the scenario format's mapping form `{NAME: arg}`.
pub(crate) fn type_of(
    m: &mut impl Evaluator,
    name: &str,
    arg: &Value,
    at: Option<Span>,
) -> Result<Value> {
    let span = at.unwrap_or_default();
    let inner = match name {
        "listOf" | "nonEmptyListOf" | "attrsOf" | "lazyAttrsOf" | "nullOr" | "uniq" | "unique" => {
            type_node(arg, span)?
        }
        "either" | "oneOf" => match arg {
            Value::List(xs) => {
                let mut items = Vec::new();
                for x in xs.iter() {
                    items.push(type_node(&m.force(x)?, span)?);
                }
                Node {
                    span,
                    kind: Kind::List(items),
                }
            }
            other => return Err(type_error(other, "a list of types", at)),
        },
        "enum" => match arg {
            Value::List(xs) => {
                let mut items = Vec::new();
                for x in xs.iter() {
                    let v = m.force(x)?;
                    items.push(to_node(m, &v, span)?);
                }
                Node {
                    span,
                    kind: Kind::List(items),
                }
            }
            other => return Err(type_error(other, "a list", at)),
        },
        "strMatching" | "separatedString" => match arg {
            Value::Str(s) => Node {
                span,
                kind: Kind::Str(Text::from(&**s)),
            },
            other => return Err(type_error(other, "a string", at)),
        },
        "submodule" => {
            let node = module_node(m, arg.clone(), span)?;
            // A submodule has options (and a freeform type); its config would be a default.
            let Kind::Map(es) = node.kind else {
                unreachable!("module_node gives a mapping")
            };
            let kept: Vec<(Key, Node)> = es
                .into_iter()
                .filter(|(k, _)| matches!(&*k.name, "options" | "freeformType"))
                .collect();
            Node {
                span,
                kind: Kind::Map(kept),
            }
        }
        other => {
            return Err(EvalError::new(
                at,
                format!("lib.types.{other} is not provided by isoproof"),
            ))
        }
    };
    Ok(Value::Type(Rc::new(Node {
        span,
        kind: Kind::Map(vec![(
            Key {
                name: name.into(),
                span,
            },
            inner,
        )]),
    })))
}

/// A value, forced whole, as a definition node: properties (`_type` sets of `lib.mkIf` and
/// the others) become the scenario's property nodes, `config.a.b` a reference.
pub(crate) fn to_node(m: &mut impl Evaluator, v: &Value, span: Span) -> Result<Node> {
    let kind = match v {
        Value::Null => Kind::Null,
        Value::Bool(b) => Kind::Bool(*b),
        Value::Int(i) => Kind::Int(*i),
        Value::Float(f) => Kind::Float(*f),
        Value::Str(s) => Kind::Str(Text::from(&**s)),
        Value::Path(p) => Kind::Str(Text::from(p.display().to_string())),
        Value::Config(p) => Kind::Ref((**p).clone()),
        Value::Format(parts) => Kind::Format(parts.iter().cloned().collect::<Vec<FormatPart>>()),
        Value::List(xs) => {
            let mut items = Vec::with_capacity(xs.len());
            for x in xs.iter() {
                let v = m.force(x)?;
                items.push(m.nested(|m| to_node(m, &v, span))?);
            }
            Kind::List(items)
        }
        Value::Attrs(a) => return attrs_node(m, a, span),
        Value::Package(p) => Kind::Str(Text::from(p.out_path())),
        Value::Pkgs => return Err(EvalError::new(Some(span), "`pkgs` itself as a definition")),
        Value::Type(_) => {
            return Err(EvalError::new(
                Some(span),
                "a type where a value is expected",
            ))
        }
        Value::Lambda(_) | Value::Builtin(_) => {
            return Err(EvalError::new(
                Some(span),
                "a function as a definition: isoproof's option values are data",
            ))
        }
    };
    Ok(Node { span, kind })
}

fn attrs_node<M: Evaluator>(m: &mut M, a: &Rc<Attrs>, span: Span) -> Result<Node> {
    let field = |m: &mut M, name: &str| -> Result<Value> {
        match a.get(name) {
            Some(x) => m.force(&x.value),
            None => Err(EvalError::new(
                Some(span),
                format!("attribute '{name}' missing"),
            )),
        }
    };
    let ty = match a.get("_type") {
        Some(t) => match m.force(&t.value)? {
            Value::Str(s) => Some(s),
            _ => None,
        },
        None => None,
    };
    let boxed = |m: &mut M, v: &Value| -> Result<Box<Node>> {
        Ok(Box::new(m.nested(|m| to_node(m, v, span))?))
    };
    let kind = match ty.as_deref() {
        Some("if") => {
            let c = field(m, "condition")?;
            let cond = match &c {
                Value::Bool(_) | Value::Config(_) => to_node(m, &c, span)?,
                other => {
                    return Err(type_error(
                        other,
                        "a Boolean (mkIf's condition)",
                        Some(span),
                    ))
                }
            };
            let content = field(m, "content")?;
            Kind::If(Box::new(cond), boxed(m, &content)?)
        }
        Some("merge") => match field(m, "contents")? {
            Value::List(xs) => {
                let mut items = Vec::new();
                for x in xs.iter() {
                    let v = m.force(x)?;
                    items.push(m.nested(|m| to_node(m, &v, span))?);
                }
                Kind::Merge(items)
            }
            other => {
                return Err(type_error(
                    &other,
                    "a list (mkMerge's contents)",
                    Some(span),
                ))
            }
        },
        Some(t @ ("override" | "order")) => {
            let p = match field(m, "priority")? {
                Value::Int(i) => i as f64,
                Value::Float(f) => f,
                other => return Err(type_error(&other, "an integer (a priority)", Some(span))),
            };
            let content = field(m, "content")?;
            if t == "override" {
                Kind::Override(p, boxed(m, &content)?)
            } else {
                Kind::Order(p, boxed(m, &content)?)
            }
        }
        Some("option") => return Err(EvalError::new(
            Some(span),
            "an option declaration (`mkOption`) among definitions: declarations go under `options`",
        )),
        _ => {
            let mut entries = Vec::with_capacity(a.len());
            for (k, attr) in a.iter() {
                let at = attr.span.unwrap_or(span);
                let v = m.force(&attr.value)?;
                // A name with a dot or a quote is one component: quoted, as the scenario's
                // dotted keys are split.
                let name = if k.contains(['.', '"']) {
                    Text::from(crate::scenario::path::show(&[&**k]))
                } else {
                    Text::from(&**k)
                };
                entries.push((Key { name, span: at }, m.nested(|m| to_node(m, &v, at))?));
            }
            Kind::Map(entries)
        }
    };
    Ok(Node { span, kind })
}
