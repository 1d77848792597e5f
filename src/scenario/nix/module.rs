//! Module values to the module mappings the rest of the scenario stage reads, as a YAML
//! module is read: `imports` (paths), `options` (declarations by option path), `config`
//! (definitions, with `mkIf`, `mkMerge`, `mkOverride` and `mkOrder` as properties, and
//! `config.a.b` as the option references the module system resolves). A definition that
//! computes with `config` (`lib.optional config.x y`, `if config.a then … else …`) cannot be
//! known while modules are read: it becomes a [`Deferred`] the resolver evaluates when it needs
//! it, found again by the steps from the file's value to it.

use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use super::value::{type_error, Attrs, EvalError, Evaluator, Result, State, Thunk, Value};
use crate::scenario::{Deferred, FormatPart, Key, Kind, Node, Span, Step, Text};

/// Runs `f` one step further from the file's value.
fn along<M: Evaluator, T>(m: &mut M, s: Step, f: impl FnOnce(&mut M) -> Result<T>) -> Result<T> {
    m.route().steps.push(s);
    let r = f(m);
    m.route().steps.pop();
    r
}

/// Runs `f` with definitions deferrable (`on`) or not.
fn deferring<M: Evaluator, T>(
    m: &mut M,
    on: bool,
    f: impl FnOnce(&mut M) -> Result<T>,
) -> Result<T> {
    let was = std::mem::replace(&mut m.route().defer, on);
    let r = f(m);
    m.route().defer = was;
    r
}

/// The definition in thunk `t` (one step `s` further): read whole, or deferred to the
/// resolver when it needs `config` in a computation.
fn definition<M: Evaluator>(m: &mut M, t: &Thunk, span: Span, s: Step) -> Result<Node> {
    along(m, s, |m| {
        let r = m.force(t).and_then(|v| m.nested(|m| to_node(m, &v, span)));
        r.or_else(|e| deferred(m, e, t, span))
    })
}

/// `e`, or — when it is a `config` value needed by a definition — that definition deferred.
fn deferred(m: &mut impl Evaluator, e: EvalError, t: &Thunk, span: Span) -> Result<Node> {
    match (e.needs.clone(), m.route().defer) {
        (Some(needs), true) => found_again(m.route(), None, needs, t, span).ok_or(e),
        _ => Err(e),
    }
}

/// A node for thunk `t` (one `more` step further), to be evaluated by the resolver and found
/// again by the route's steps; `None` where no steps lead back (a type being made).
fn found_again(
    route: &super::value::Route,
    more: Option<Step>,
    needs: Vec<Box<str>>,
    t: &Thunk,
    span: Span,
) -> Option<Node> {
    let mut steps = route.steps.clone();
    steps.extend(more);
    Some(Node {
        span,
        kind: Kind::Nix(Arc::new(Deferred {
            file: route.file?,
            root: route.root.clone(),
            route: steps,
            needs,
            text: t.source_text().into(),
            value: OnceLock::new(),
            applied: Default::default(),
        })),
    })
}

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
    put("config", Thunk::value(m.config_root()?));
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
    if m.route().submodule {
        // Its attribute name under `attrsOf`, known where the resolver reads the submodule.
        put(
            "name",
            Thunk::value(Value::Format(Rc::new(vec![FormatPart::Name]))),
        );
    }
    Ok(Value::Attrs(Rc::new(a)))
}

/// The module a file's value is: called with the module arguments when it is a function;
/// then the mapping a YAML module would be.
pub(crate) fn module_node(m: &mut impl Evaluator, v: Value, span: Span) -> Result<Node> {
    along(m, Step::Module, |m| {
        deferring(m, false, |m| module_of(m, v, span, false))
    })
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
            "imports" => entries.push((key, along(m, Step::Attr("imports".into()), |m| imports(m, &attr.value, at))?)),
            "disabledModules" => entries.push((key, imports(m, &attr.value, at)?)),
            "options" => along(m, Step::Attr("options".into()), |m| {
                let v = m.force(&attr.value)?;
                let mut decls = Vec::new();
                declarations(m, &v, &mut Vec::new(), at, &mut decls)?;
                entries.push((key, Node { span: at, kind: Kind::Map(decls) }));
                Ok(())
            })?,
            "config" => along(m, Step::Attr("config".into()), |m| {
                // Which options `config` defines must be known without `config` (Nix recurses
                // for ever otherwise); the definitions themselves may wait for it.
                let v = m.force(&attr.value)?;
                entries.push((key, deferring(m, true, |m| to_node(m, &v, at))?));
                Ok(())
            })?,
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
            "__isoproofAlias" => entries.push(alias(m, &attr.value, at)?),
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
        // The shorthand's attributes are the module's: the same steps lead to them.
        let v = Value::Attrs(Rc::new(shorthand));
        entries.push((
            Key {
                name: "config".into(),
                span,
            },
            deferring(m, true, |m| to_node(m, &v, span))?,
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
    for (i, x) in list.iter().enumerate() {
        match m.force(x)? {
            Value::Path(p) => out.push(Node {
                span: at,
                kind: Kind::Str(Text::from(p.display().to_string())),
            }),
            Value::Str(s) => out.push(Node {
                span: at,
                kind: Kind::Str(Text::from(&*s)),
            }),
            v @ (Value::Attrs(_) | Value::Lambda(_)) => out.push(along(m, Step::Index(i), |m| {
                along(m, Step::Module, |m| m.nested(|m| module_of(m, v, at, true)))
            })?),
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
        let r = along(m, Step::Attr(k.to_string().into()), |m| {
            let v = m.force(&attr.value)?;
            path.push(k.to_string().into_boxed_str());
            let r = m.nested(|m| declarations(m, &v, path, attr.span.unwrap_or(at), out));
            path.pop();
            r
        });
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
                let d = deferring(m, true, |m| {
                    definition(m, &attr.value, span, Step::Attr("default".into()))
                })?;
                fields.push((key("default", attr.span), d));
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
            // A Nix function: the resolver calls it on the merged value (found again by the
            // steps to it, as a computation with `config` is).
            "apply" => {
                let more = Some(Step::Attr("apply".into()));
                let f = found_again(m.route(), more, Vec::new(), &attr.value, span).ok_or_else(|| {
                    EvalError::new(
                        Some(span),
                        "`apply` in an option declared inside a submodule type written in .nix is not evaluated by isoproof",
                    )
                })?;
                fields.push((key("apply", attr.span), f));
            }
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
            // Read where a type is made, not along a file's modules: nothing here can be
            // found again by steps, so nothing is deferred.
            let file = m.route().file.take();
            let was = std::mem::replace(&mut m.route().submodule, true);
            let node = module_node(m, arg.clone(), span);
            m.route().submodule = was;
            m.route().file = file;
            let node = node?;
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
        Value::Format(parts) if **parts == [FormatPart::Name] => Kind::Name,
        Value::Format(parts) => Kind::Format(parts.iter().cloned().collect::<Vec<FormatPart>>()),
        Value::List(xs) => {
            let mut items = Vec::with_capacity(xs.len());
            for (i, x) in xs.iter().enumerate() {
                items.push(definition(m, x, span, Step::Index(i))?);
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
    let thunk = |name: &str| -> Result<Thunk> {
        match a.get(name) {
            Some(x) => Ok(x.value.clone()),
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
    let content = |m: &mut M| -> Result<Box<Node>> {
        Ok(Box::new(definition(
            m,
            &thunk("content")?,
            span,
            Step::Attr("content".into()),
        )?))
    };
    let kind = match ty.as_deref() {
        Some("if") => {
            let t = thunk("condition")?;
            let cond = along(m, Step::Attr("condition".into()), |m| match m.force(&t) {
                Ok(c @ (Value::Bool(_) | Value::Config(_))) => to_node(m, &c, span),
                Ok(other) => Err(type_error(
                    &other,
                    "a Boolean (mkIf's condition)",
                    Some(span),
                )),
                Err(e) => deferred(m, e, &t, span),
            })?;
            Kind::If(Box::new(cond), content(m)?)
        }
        Some("merge") => along(m, Step::Attr("contents".into()), |m| {
            match m.force(&thunk("contents")?)? {
                Value::List(xs) => {
                    let mut items = Vec::new();
                    for (i, x) in xs.iter().enumerate() {
                        items.push(definition(m, x, span, Step::Index(i))?);
                    }
                    Ok(Kind::Merge(items))
                }
                other => Err(type_error(
                    &other,
                    "a list (mkMerge's contents)",
                    Some(span),
                )),
            }
        })?,
        Some(t @ ("override" | "order")) => {
            let p = match m.force(&thunk("priority")?)? {
                Value::Int(i) => i as f64,
                Value::Float(f) => f,
                other => return Err(type_error(&other, "an integer (a priority)", Some(span))),
            };
            if t == "override" {
                Kind::Override(p, content(m)?)
            } else {
                Kind::Order(p, content(m)?)
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
                // A name with a dot or a quote is one component: quoted, as the scenario's
                // dotted keys are split.
                let name = if k.contains(['.', '"']) {
                    Text::from(crate::scenario::path::show(&[&**k]))
                } else {
                    Text::from(&**k)
                };
                let v = definition(m, &attr.value, at, Step::Attr(k.to_string().into()))?;
                entries.push((Key { name, span: at }, v));
            }
            Kind::Map(entries)
        }
    };
    Ok(Node { span, kind })
}

/// One step further from thunk `t` (the resolver's side of [`Deferred`]: `config` now has
/// values).
pub(crate) fn step(m: &mut impl Evaluator, t: &Thunk, s: &Step, span: Span) -> Result<Thunk> {
    let moved = || {
        EvalError::new(
            Some(span),
            "this definition is not where it was once `config` is known: which options a module defines may not depend on `config`",
        )
    };
    let v = m.force(t)?;
    Ok(match (s, v) {
        (Step::Module, f @ (Value::Lambda(_) | Value::Builtin(_))) => {
            let args = module_args(m)?;
            Thunk::value(m.call(&f, Thunk::value(args), Some(span))?)
        }
        (Step::Module, v) => Thunk::value(v),
        (Step::Attr(k), Value::Attrs(a)) => a.get(&**k).ok_or_else(moved)?.value.clone(),
        (Step::Index(i), Value::List(xs)) => xs.get(*i).ok_or_else(moved)?.clone(),
        _ => return Err(moved()),
    })
}

/// The definition in thunk `t`, read whole.
pub(crate) fn read_whole(m: &mut impl Evaluator, t: &Thunk, span: Span) -> Result<Node> {
    let v = m.force(t)?;
    m.route().file = None;
    to_node(m, &v, span)
}

/// The module `lib.mkRenamedOptionModule` and its kin make: the scenario's
/// `renamedOptions`/`aliasedOptions`/`removedOptions` entry for it.
fn alias(m: &mut impl Evaluator, t: &Thunk, at: Span) -> Result<(Key, Node)> {
    let Value::Attrs(a) = m.force(t)? else {
        return Err(EvalError::new(Some(at), "a malformed option alias module"));
    };
    let get = |m: &mut _, name: &str| -> Result<Value> {
        match a.get(name) {
            Some(x) => Evaluator::force(m, &x.value),
            None => Err(EvalError::new(
                Some(at),
                format!("attribute '{name}' missing"),
            )),
        }
    };
    let kind = match get(m, "kind")? {
        Value::Str(s) => s,
        other => return Err(type_error(&other, "a string", Some(at))),
    };
    let from = get(m, "from")?;
    let from = option_path(m, &from, at)?;
    let to = match (&*kind, get(m, "to")?) {
        ("removedOptions", Value::Str(s)) => s.to_string(),
        ("removedOptions", other) => {
            return Err(type_error(
                &other,
                "a string (replacement instructions)",
                Some(at),
            ))
        }
        (_, v) => option_path(m, &v, at)?,
    };
    let node = |kind| Node { span: at, kind };
    Ok((
        Key {
            name: Text::from(&*kind),
            span: at,
        },
        node(Kind::Map(vec![(
            Key {
                name: Text::from(from),
                span: at,
            },
            node(Kind::Str(Text::from(to))),
        )])),
    ))
}

/// An option path given as a list of names (`[ "services" "x" "enable" ]`), as the scenario
/// writes it (`services.x.enable`).
fn option_path(m: &mut impl Evaluator, v: &Value, at: Span) -> Result<String> {
    let Value::List(xs) = v else {
        return Err(type_error(
            v,
            "a list of attribute names (an option path)",
            Some(at),
        ));
    };
    let mut parts: Vec<String> = Vec::new();
    for x in xs.iter() {
        match m.force(x)? {
            Value::Str(s) => parts.push(s.to_string()),
            other => return Err(type_error(&other, "a string (an attribute name)", Some(at))),
        }
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(crate::scenario::path::show(&parts))
}
