//! `builtins` and the global names of the Nix language, natively, with Nix's semantics and
//! messages; and the primitives `lib.types` is built on. What is not provided is an error
//! naming it, never a wrong value.

use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use rnix::ast::BinOpKind;

pub(crate) use super::prim::Builtin;
use super::value::{
    bounded, bounded_list, missing, type_error, Attr, Attrs, Env, EvalError, Evaluator, Result,
    Thunk, Value,
};
use crate::scenario::{Kind, Node, Span};

/// The names every file sees: `builtins`, the ones Nix also puts at the top level, `true`,
/// `false`, `null`.
pub(crate) fn globals() -> HashMap<Rc<str>, Thunk> {
    let mut all: Vec<(Rc<str>, Value)> = Builtin::ALL
        .iter()
        .map(|b| (Rc::from(b.name()), prim(*b)))
        .collect();
    all.push(("true".into(), Value::Bool(true)));
    all.push(("false".into(), Value::Bool(false)));
    all.push(("null".into(), Value::Null));
    all.push(("currentSystem".into(), Value::str("x86_64-linux")));
    all.push(("nixVersion".into(), Value::str("2.8.0")));
    let builtins = Value::attrs(all.iter().cloned());
    let mut g: HashMap<Rc<str>, Thunk> = HashMap::new();
    for top in [
        "abort",
        "baseNameOf",
        "dirOf",
        "import",
        "isNull",
        "map",
        "removeAttrs",
        "throw",
        "toString",
        "true",
        "false",
        "null",
    ] {
        let v = all
            .iter()
            .find(|(k, _)| &**k == top)
            .map(|(_, v)| v.clone());
        if let Some(v) = v {
            g.insert(top.into(), Thunk::value(v));
        }
    }
    g.insert("builtins".into(), Thunk::value(builtins));
    g
}

/// `<name/rest>`: the search path has one entry, `nixpkgs`, isoproof's own (its NixOS
/// modules); NIX_PATH is not read, so an evaluation is the same on every machine.
pub(crate) fn search_path(_m: &mut impl Evaluator, name: &str, at: Option<Span>) -> Result<Value> {
    let name = name.trim_start_matches('<').trim_end_matches('>');
    match name.split_once('/').map_or((name, ""), |(a, b)| (a, b)) {
        ("nixpkgs", rest) => Ok(Value::Path(Rc::new(super::value::normalize(
            &std::path::Path::new(crate::scenario::nixos::NIXPKGS).join(rest),
        )))),
        _ => Err(EvalError::new(
            at,
            format!("file '{name}' was not found in the Nix search path: isoproof's has only <nixpkgs> (its own NixOS modules; NIX_PATH is not read)"),
        )),
    }
}

/// `e.name` where `e` is a `lib.types` type: the attributes modules read of types.
pub(crate) fn type_attr(
    _m: &mut impl Evaluator,
    t: &Node,
    name: &str,
    at: Option<Span>,
) -> Result<Value> {
    match name {
        "_type" => Ok(Value::str("option-type")),
        "name" | "description" => Ok(Value::str(match &t.kind {
            Kind::Str(s) => s.to_string(),
            Kind::Map(es) => es
                .first()
                .map(|(k, _)| k.name.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        })),
        _ => Err(EvalError::new(
            at,
            format!("attribute '{name}' of a type: isoproof's types have `name` and `description`"),
        )),
    }
}

/// `pkgs.name`, and `package.name`: a package's `outPath`, `name`, `pname`, `text`; any
/// other name is a package under it (`pkgs.python3Packages.requests`).
pub(crate) fn package_attr(of: Option<&super::value::Package>, name: &str) -> Value {
    use super::value::Package;
    match (of, name) {
        (None, "writeText" | "writeTextFile") => prim(Builtin::WriteText),
        (None, "writeShellScript" | "writeScript" | "writeShellScriptBin") => {
            prim(Builtin::WriteShellScript)
        }
        (None, "lib") => Value::Null,
        (Some(p), "outPath") => Value::str(p.out_path()),
        (Some(p), "name" | "pname") => Value::Str(p.name.clone()),
        (Some(p), "text") if p.text.is_some() => Value::Str(p.text.clone().unwrap_or_default()),
        (Some(p), "type") => {
            let _ = p;
            Value::str("derivation")
        }
        (parent, n) => Value::Package(Rc::new(Package {
            attr: match parent {
                Some(p) => format!("{}.{n}", p.attr).into(),
                None => n.into(),
            },
            name: n.into(),
            text: None,
        })),
    }
}

/// A built-in, not yet applied.
fn prim(b: Builtin) -> Value {
    Value::Builtin(Rc::new(super::value::Partial {
        builtin: b,
        args: Vec::new(),
    }))
}

/// A thunk of `src.name`, forced when needed (`inherit (src) name`).
pub(crate) fn lazy_select(src: Thunk, name: Rc<str>, at: Option<Span>) -> Thunk {
    Thunk(Rc::new(std::cell::RefCell::new(
        super::value::State::Select(src, name, at),
    )))
}

/// A thunk of the name looked up in `env`'s `with` scopes (`inherit name` that is no
/// lexical binding).
pub(crate) fn lazy_lookup(env: Env, name: Rc<str>, _at: Option<Span>) -> Thunk {
    let expr = rnix::Root::parse(&name)
        .tree()
        .expr()
        .expect("an identifier parses");
    Thunk::pending(expr, env)
}

fn num(v: &Value, at: Option<Span>) -> Result<f64> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        other => Err(type_error(other, "an integer", at)),
    }
}

fn int(v: &Value, at: Option<Span>) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(type_error(other, "an integer", at)),
    }
}

fn string(v: &Value, at: Option<Span>) -> Result<Rc<str>> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        other => Err(type_error(other, "a string", at)),
    }
}

fn list(v: &Value, at: Option<Span>) -> Result<Rc<Vec<Thunk>>> {
    match v {
        Value::List(l) => Ok(l.clone()),
        other => Err(type_error(other, "a list", at)),
    }
}

fn attrs(v: &Value, at: Option<Span>) -> Result<Rc<Attrs>> {
    match v {
        Value::Attrs(a) => Ok(a.clone()),
        other => Err(type_error(other, "a set", at)),
    }
}

fn boolean(v: &Value, at: Option<Span>) -> Result<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(type_error(other, "a Boolean", at)),
    }
}

/// The binary operators other than the short-circuiting ones.
pub(crate) fn binary(
    m: &mut impl Evaluator,
    op: BinOpKind,
    l: &Value,
    r: &Value,
    at: Option<Span>,
) -> Result<Value> {
    use BinOpKind as K;
    let overflow = || EvalError::new(at, "integer overflow");
    // Only strings are built from `config` values while modules are read; every other
    // operation on one waits for the value.
    let stringy = |v: &Value| matches!(v, Value::Str(_) | Value::Format(_) | Value::Config(_));
    if !(matches!(op, K::Add) && stringy(l) && stringy(r)) {
        super::value::known(&[l, r], "in an operator", at)?;
    }
    Ok(match op {
        K::Add => match (l, r) {
            (Value::Int(a), Value::Int(b)) => Value::Int(a.checked_add(*b).ok_or_else(overflow)?),
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                Value::Float(num(l, at)? + num(r, at)?)
            }
            (Value::Path(p), Value::Str(s)) => Value::Path(Rc::new(super::value::normalize(
                &PathBuf::from(format!("{}{s}", p.display())),
            ))),
            (Value::Path(p), Value::Path(q)) => Value::Path(Rc::new(super::value::normalize(
                &PathBuf::from(format!("{}{}", p.display(), q.display())),
            ))),
            (Value::Str(a), Value::Str(b)) => bounded(format!("{a}{b}"), at)?,
            (
                Value::Str(_) | Value::Format(_) | Value::Config(_),
                Value::Str(_) | Value::Format(_) | Value::Config(_),
            ) => {
                let mut parts = Vec::new();
                for v in [l, r] {
                    match v {
                        Value::Str(s) => {
                            parts.push(crate::scenario::FormatPart::Text(s.to_string().into()))
                        }
                        Value::Format(f) => parts.extend(f.iter().cloned()),
                        Value::Config(p) => {
                            parts.push(crate::scenario::FormatPart::Ref((**p).clone()))
                        }
                        _ => unreachable!("matched above"),
                    }
                }
                Value::Format(Rc::new(parts))
            }
            (Value::Str(a), other) => bounded(format!("{a}{}", m.coerce(other, false, at)?), at)?,
            _ => {
                return Err(EvalError::new(
                    at,
                    format!("cannot add {} to {}", r.noun(), l.noun()),
                ))
            }
        },
        K::Sub | K::Mul | K::Div => match (l, r) {
            (Value::Int(a), Value::Int(b)) => Value::Int(match op {
                K::Sub => a.checked_sub(*b).ok_or_else(overflow)?,
                K::Mul => a.checked_mul(*b).ok_or_else(overflow)?,
                _ => {
                    if *b == 0 {
                        return Err(EvalError::new(at, "division by zero"));
                    }
                    a.checked_div(*b).ok_or_else(overflow)?
                }
            }),
            _ => {
                let (a, b) = (num(l, at)?, num(r, at)?);
                Value::Float(match op {
                    K::Sub => a - b,
                    K::Mul => a * b,
                    _ => {
                        if b == 0.0 {
                            return Err(EvalError::new(at, "division by zero"));
                        }
                        a / b
                    }
                })
            }
        },
        K::Concat => {
            let (a, b) = (list(l, at)?, list(r, at)?);
            bounded_list(a.iter().chain(b.iter()).cloned().collect(), at)?
        }
        K::Update => {
            let (a, b) = (attrs(l, at)?, attrs(r, at)?);
            let mut out = (*a).clone();
            out.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Attrs(Rc::new(out))
        }
        K::Equal => Value::Bool(equal(m, l, r, at)?),
        K::NotEqual => Value::Bool(!equal(m, l, r, at)?),
        K::Less => Value::Bool(less(m, l, r, at)?),
        K::MoreOrEq => Value::Bool(!less(m, l, r, at)?),
        K::More => Value::Bool(less(m, r, l, at)?),
        K::LessOrEq => Value::Bool(!less(m, r, l, at)?),
        _ => return Err(EvalError::new(at, "operator handled by the evaluator")),
    })
}

/// `==`: deep, forcing what it compares.
pub(crate) fn equal(
    m: &mut impl Evaluator,
    l: &Value,
    r: &Value,
    at: Option<Span>,
) -> Result<bool> {
    super::value::known(&[l, r], "in a comparison", at)?;
    Ok(match (l, r) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => match (l, r) {
            (Value::Int(a), Value::Int(b)) => a == b,
            _ => num(l, at)? == num(r, at)?,
        },
        (Value::Str(a), Value::Str(b)) => a == b,
        (Value::Path(a), Value::Path(b)) => a == b,
        (Value::List(a), Value::List(b)) => {
            if a.len() != b.len() {
                return Ok(false);
            }
            for (x, y) in a.iter().zip(b.iter()) {
                let (x, y) = (m.force(x)?, m.force(y)?);
                if !m.nested(|m| equal(m, &x, &y, at))? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Attrs(a), Value::Attrs(b)) => {
            if let (Some(x), Some(y)) = (a.get("outPath"), b.get("outPath")) {
                let (x, y) = (m.force(&x.value)?, m.force(&y.value)?);
                return equal(m, &x, &y, at);
            }
            if a.len() != b.len() || !a.keys().eq(b.keys()) {
                return Ok(false);
            }
            for (x, y) in a.values().zip(b.values()) {
                let (x, y) = (m.force(&x.value)?, m.force(&y.value)?);
                if !m.nested(|m| equal(m, &x, &y, at))? {
                    return Ok(false);
                }
            }
            true
        }
        (Value::Type(a), Value::Type(b)) => a == b,
        (Value::Package(a), Value::Package(b)) => a.out_path() == b.out_path(),
        (Value::Pkgs, Value::Pkgs) => true,
        _ => false,
    })
}

/// `<`: numbers, strings, paths, and lists element by element.
pub(crate) fn less(m: &mut impl Evaluator, l: &Value, r: &Value, at: Option<Span>) -> Result<bool> {
    super::value::known(&[l, r], "in a comparison", at)?;
    Ok(match (l, r) {
        (Value::Int(a), Value::Int(b)) => a < b,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            num(l, at)? < num(r, at)?
        }
        (Value::Str(a), Value::Str(b)) => a < b,
        (Value::Path(a), Value::Path(b)) => a < b,
        (Value::List(a), Value::List(b)) => {
            for (x, y) in a.iter().zip(b.iter()) {
                let (x, y) = (m.force(x)?, m.force(y)?);
                if m.nested(|m| less(m, &x, &y, at))? {
                    return Ok(true);
                }
                if m.nested(|m| less(m, &y, &x, at))? {
                    return Ok(false);
                }
            }
            a.len() < b.len()
        }
        _ => {
            return Err(EvalError::new(
                at,
                format!("cannot compare {} with {}", l.noun(), r.noun()),
            ))
        }
    })
}

/// Applies a built-in to all its arguments.
pub(crate) fn apply<M: Evaluator>(
    m: &mut M,
    b: Builtin,
    args: &[Thunk],
    at: Option<Span>,
) -> Result<Value> {
    use Builtin as B;
    let arg = |m: &mut M, i: usize| m.force(&args[i]);
    let call = |m: &mut M, f: &Value, x: Thunk| m.call(f, x, at);
    Ok(match b {
        B::Abort => {
            let msg = arg(m, 0)?;
            let msg = m.coerce(&msg, false, at)?;
            return Err(EvalError::new(
                at,
                format!("evaluation aborted with the following error message: '{msg}'"),
            ));
        }
        B::Throw => {
            let msg = arg(m, 0)?;
            let msg = m.coerce(&msg, false, at)?;
            return Err(EvalError::new(at, msg));
        }
        B::Add | B::Sub | B::Mul | B::Div => {
            let (l, r) = (arg(m, 0)?, arg(m, 1)?);
            let op = match b {
                B::Add => BinOpKind::Add,
                B::Sub => BinOpKind::Sub,
                B::Mul => BinOpKind::Mul,
                _ => BinOpKind::Div,
            };
            if !matches!(l, Value::Int(_) | Value::Float(_)) {
                return Err(type_error(&l, "an integer", at));
            }
            binary(m, op, &l, &r, at)?
        }
        B::LessThan => {
            let (l, r) = (arg(m, 0)?, arg(m, 1)?);
            Value::Bool(less(m, &l, &r, at)?)
        }
        B::All | B::Any => {
            let f = arg(m, 0)?;
            let xs = list(&arg(m, 1)?, at)?;
            let want = b == B::Any;
            for x in xs.iter() {
                if boolean(&call(m, &f, x.clone())?, at)? == want {
                    return Ok(Value::Bool(want));
                }
            }
            Value::Bool(!want)
        }
        B::AttrNames => Value::List(Rc::new(
            attrs(&arg(m, 0)?, at)?
                .keys()
                .map(|k| Thunk::value(Value::Str(k.clone())))
                .collect(),
        )),
        B::AttrValues => Value::List(Rc::new(
            attrs(&arg(m, 0)?, at)?
                .values()
                .map(|a| a.value.clone())
                .collect(),
        )),
        B::BaseNameOf => {
            let v = arg(m, 0)?;
            let s = m.coerce(&v, true, at)?;
            let t = s.trim_end_matches('/');
            Value::str(t.rsplit('/').next().unwrap_or(""))
        }
        B::DirOf => match arg(m, 0)? {
            Value::Path(p) => Value::Path(Rc::new(
                p.parent().map_or_else(|| PathBuf::from("/"), PathBuf::from),
            )),
            v => {
                let s = m.coerce(&v, false, at)?;
                Value::str(match s.rfind('/') {
                    Some(0) => "/".to_string(),
                    Some(i) => s[..i].to_string(),
                    None => ".".to_string(),
                })
            }
        },
        B::CatAttrs => {
            let name = string(&arg(m, 0)?, at)?;
            let xs = list(&arg(m, 1)?, at)?;
            let mut out = Vec::new();
            for x in xs.iter() {
                if let Some(a) = attrs(&m.force(x)?, at)?.get(&*name) {
                    out.push(a.value.clone());
                }
            }
            Value::List(Rc::new(out))
        }
        B::CompareVersions => {
            let (a, b) = (string(&arg(m, 0)?, at)?, string(&arg(m, 1)?, at)?);
            Value::Int(match compare_versions(&a, &b) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            })
        }
        B::ConcatLists => {
            let xs = list(&arg(m, 0)?, at)?;
            let mut out = Vec::new();
            for x in xs.iter() {
                out.extend(list(&m.force(x)?, at)?.iter().cloned());
            }
            bounded_list(out, at)?
        }
        B::ConcatMap => {
            let f = arg(m, 0)?;
            let xs = list(&arg(m, 1)?, at)?;
            let mut out = Vec::new();
            for x in xs.iter() {
                out.extend(list(&call(m, &f, x.clone())?, at)?.iter().cloned());
            }
            bounded_list(out, at)?
        }
        B::ConcatStringsSep => {
            let sep = string(&arg(m, 0)?, at)?;
            let xs = list(&arg(m, 1)?, at)?;
            let mut parts = Vec::new();
            for x in xs.iter() {
                let v = m.force(x)?;
                parts.push(m.coerce(&v, false, at)?);
            }
            bounded(parts.join(&sep), at)?
        }
        B::DeepSeq => {
            let v = arg(m, 0)?;
            m.deep_force(&v)?;
            arg(m, 1)?
        }
        B::Seq => {
            arg(m, 0)?;
            arg(m, 1)?
        }
        B::Elem => {
            let x = arg(m, 0)?;
            let xs = list(&arg(m, 1)?, at)?;
            for y in xs.iter() {
                let y = m.force(y)?;
                if equal(m, &x, &y, at)? {
                    return Ok(Value::Bool(true));
                }
            }
            Value::Bool(false)
        }
        B::ElemAt => {
            let xs = list(&arg(m, 0)?, at)?;
            let i = int(&arg(m, 1)?, at)?;
            let t = usize::try_from(i)
                .ok()
                .and_then(|i| xs.get(i))
                .ok_or_else(|| EvalError::new(at, format!("list index {i} is out of bounds")))?;
            m.force(t)?
        }
        B::Head => {
            let xs = list(&arg(m, 0)?, at)?;
            let t = xs
                .first()
                .ok_or_else(|| EvalError::new(at, "list index 0 is out of bounds"))?;
            m.force(t)?
        }
        B::Tail => {
            let xs = list(&arg(m, 0)?, at)?;
            if xs.is_empty() {
                return Err(EvalError::new(at, "'tail' called on an empty list"));
            }
            Value::List(Rc::new(xs[1..].to_vec()))
        }
        B::Length => Value::Int(list(&arg(m, 0)?, at)?.len() as i64),
        B::Filter => {
            let f = arg(m, 0)?;
            let xs = list(&arg(m, 1)?, at)?;
            let mut out = Vec::new();
            for x in xs.iter() {
                if boolean(&call(m, &f, x.clone())?, at)? {
                    out.push(x.clone());
                }
            }
            Value::List(Rc::new(out))
        }
        B::FoldlStrict => {
            let f = arg(m, 0)?;
            let mut acc = arg(m, 1)?;
            let xs = list(&arg(m, 2)?, at)?;
            for x in xs.iter() {
                let g = call(m, &f, Thunk::value(acc))?;
                acc = call(m, &g, x.clone())?;
            }
            acc
        }
        B::Map => {
            let f = arg(m, 0)?;
            let xs = list(&arg(m, 1)?, at)?;
            let mut out = Vec::with_capacity(xs.len());
            for x in xs.iter() {
                out.push(Thunk::value(call(m, &f, x.clone())?));
            }
            Value::List(Rc::new(out))
        }
        B::MapAttrs => {
            let f = arg(m, 0)?;
            let a = attrs(&arg(m, 1)?, at)?;
            let mut out = Attrs::new();
            for (k, v) in a.iter() {
                let g = call(m, &f, Thunk::value(Value::Str(k.clone())))?;
                out.insert(
                    k.clone(),
                    Attr {
                        value: Thunk::value(call(m, &g, v.value.clone())?),
                        span: v.span,
                    },
                );
            }
            Value::Attrs(Rc::new(out))
        }
        B::GenList => {
            let f = arg(m, 0)?;
            let n = int(&arg(m, 1)?, at)?;
            if !(0..=1_000_000).contains(&n) {
                return Err(EvalError::new(
                    at,
                    format!("cannot create a list of size {n}"),
                ));
            }
            let mut out = Vec::new();
            for i in 0..n {
                out.push(Thunk::value(call(m, &f, Thunk::value(Value::Int(i)))?));
            }
            Value::List(Rc::new(out))
        }
        B::GetAttr => {
            let name = string(&arg(m, 0)?, at)?;
            let a = attrs(&arg(m, 1)?, at)?;
            match a.get(&*name) {
                Some(x) => m.force(&x.value)?,
                None => return Err(missing(&name, &a, at)),
            }
        }
        B::HasAttr => {
            let name = string(&arg(m, 0)?, at)?;
            Value::Bool(attrs(&arg(m, 1)?, at)?.contains_key(&*name))
        }
        B::HashString => {
            let algo = string(&arg(m, 0)?, at)?;
            let s = string(&arg(m, 1)?, at)?;
            match &*algo {
                "sha256" => {
                    use sha2::Digest;
                    Value::str(crate::hex::hex(&sha2::Sha256::digest(s.as_bytes())))
                }
                other => {
                    return Err(EvalError::new(
                        at,
                        format!("hashString {other:?}: isoproof provides sha256"),
                    ))
                }
            }
        }
        B::Import => {
            let p = match arg(m, 0)? {
                Value::Path(p) => (*p).clone(),
                Value::Str(s) if s.starts_with('/') => PathBuf::from(&*s),
                other => return Err(type_error(&other, "a path", at)),
            };
            m.import(&p, at)?
        }
        B::IntersectAttrs => {
            let (a, b) = (attrs(&arg(m, 0)?, at)?, attrs(&arg(m, 1)?, at)?);
            Value::Attrs(Rc::new(
                b.iter()
                    .filter(|(k, _)| a.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        }
        B::IsAttrs => Value::Bool(matches!(arg(m, 0)?, Value::Attrs(_) | Value::Type(_))),
        B::IsBool => Value::Bool(matches!(arg(m, 0)?, Value::Bool(_))),
        B::IsFloat => Value::Bool(matches!(arg(m, 0)?, Value::Float(_))),
        B::IsFunction => Value::Bool(matches!(arg(m, 0)?, Value::Lambda(_) | Value::Builtin(_))),
        B::IsInt => Value::Bool(matches!(arg(m, 0)?, Value::Int(_))),
        B::IsList => Value::Bool(matches!(arg(m, 0)?, Value::List(_))),
        B::IsNull => Value::Bool(matches!(arg(m, 0)?, Value::Null)),
        B::IsPath => Value::Bool(matches!(arg(m, 0)?, Value::Path(_))),
        B::IsString => Value::Bool(matches!(arg(m, 0)?, Value::Str(_) | Value::Format(_))),
        B::ListToAttrs => {
            let xs = list(&arg(m, 0)?, at)?;
            let mut out = Attrs::new();
            for x in xs.iter() {
                let a = attrs(&m.force(x)?, at)?;
                let name = match a.get("name") {
                    Some(n) => string(&m.force(&n.value)?, at)?,
                    None => return Err(EvalError::new(at, "attribute 'name' missing")),
                };
                let value = a
                    .get("value")
                    .ok_or_else(|| EvalError::new(at, "attribute 'value' missing"))?;
                // The first definition of a name wins.
                out.entry(name).or_insert_with(|| Attr {
                    value: value.value.clone(),
                    span: None,
                });
            }
            Value::Attrs(Rc::new(out))
        }
        B::Match | B::Split => {
            let re = string(&arg(m, 0)?, at)?;
            let s = string(&arg(m, 1)?, at)?;
            let translated = crate::ere::translate(&re).map_err(|e| {
                EvalError::new(at, format!("invalid regular expression '{re}': {e}"))
            })?;
            let pattern = if b == B::Match {
                translated
            } else {
                // The same expression, found anywhere rather than matched whole.
                let body = translated
                    .strip_prefix("(?s-u)^")
                    .and_then(|x| x.strip_suffix('$'))
                    .unwrap_or(&translated);
                format!("(?s-u){body}")
            };
            let rx = regex::bytes::RegexBuilder::new(&pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    EvalError::new(at, format!("invalid regular expression '{re}': {e}"))
                })?;
            let group = |c: &regex::bytes::Captures, i: usize| {
                Thunk::value(c.get(i).map_or(Value::Null, |g| {
                    Value::str(String::from_utf8_lossy(g.as_bytes()).into_owned())
                }))
            };
            if b == B::Match {
                match rx.captures(s.as_bytes()) {
                    None => Value::Null,
                    Some(c) => Value::List(Rc::new((1..c.len()).map(|i| group(&c, i)).collect())),
                }
            } else {
                let mut out = Vec::new();
                let mut rest = 0;
                for c in rx.captures_iter(s.as_bytes()) {
                    let whole = c.get(0).expect("group 0");
                    out.push(Thunk::value(Value::str(
                        String::from_utf8_lossy(&s.as_bytes()[rest..whole.start()]).into_owned(),
                    )));
                    out.push(Thunk::value(Value::List(Rc::new(
                        (1..c.len()).map(|i| group(&c, i)).collect(),
                    ))));
                    rest = whole.end();
                }
                out.push(Thunk::value(Value::str(
                    String::from_utf8_lossy(&s.as_bytes()[rest..]).into_owned(),
                )));
                Value::List(Rc::new(out))
            }
        }
        B::Partition => {
            let f = arg(m, 0)?;
            let xs = list(&arg(m, 1)?, at)?;
            let (mut right, mut wrong) = (Vec::new(), Vec::new());
            for x in xs.iter() {
                if boolean(&call(m, &f, x.clone())?, at)? {
                    right.push(x.clone());
                } else {
                    wrong.push(x.clone());
                }
            }
            Value::attrs([
                ("right".into(), Value::List(Rc::new(right))),
                ("wrong".into(), Value::List(Rc::new(wrong))),
            ])
        }
        B::PathExists => match arg(m, 0)? {
            Value::Path(p) => Value::Bool(p.exists()),
            Value::Str(s) => Value::Bool(std::path::Path::new(&*s).exists()),
            other => return Err(type_error(&other, "a path", at)),
        },
        B::ReadFile => match arg(m, 0)? {
            Value::Path(p) => Value::str(m.read_text(&p, at)?),
            other => return Err(type_error(&other, "a path", at)),
        },
        B::RemoveAttrs => {
            let a = attrs(&arg(m, 0)?, at)?;
            let names = list(&arg(m, 1)?, at)?;
            let mut out = (*a).clone();
            for n in names.iter() {
                out.remove(&*string(&m.force(n)?, at)?);
            }
            Value::Attrs(Rc::new(out))
        }
        B::ReplaceStrings => {
            let from = list(&arg(m, 0)?, at)?;
            let to = list(&arg(m, 1)?, at)?;
            let s = string(&arg(m, 2)?, at)?;
            if from.len() != to.len() {
                return Err(EvalError::new(at, "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths"));
            }
            let mut pats = Vec::new();
            for (f, t) in from.iter().zip(to.iter()) {
                pats.push((string(&m.force(f)?, at)?, string(&m.force(t)?, at)?));
            }
            let mut out = String::new();
            let mut i = 0;
            let bytes = s.as_bytes();
            while i <= bytes.len() {
                let found = pats.iter().find(|(f, _)| s[i..].starts_with(&**f));
                match found {
                    Some((f, t)) => {
                        out.push_str(t);
                        if f.is_empty() {
                            if let Some(c) = s[i..].chars().next() {
                                out.push(c);
                                i += c.len_utf8();
                            } else {
                                break;
                            }
                        } else {
                            i += f.len();
                        }
                    }
                    None => match s[i..].chars().next() {
                        Some(c) => {
                            out.push(c);
                            i += c.len_utf8();
                        }
                        None => break,
                    },
                }
            }
            bounded(out, at)?
        }
        B::Sort => {
            let f = arg(m, 0)?;
            let xs = list(&arg(m, 1)?, at)?;
            let mut v: Vec<Thunk> = xs.to_vec();
            // A stable merge sort that can fail: the comparator is a Nix function.
            let mut err = None;
            merge_sort(&mut v, &mut |a, b| {
                if err.is_some() {
                    return false;
                }
                let r = call(m, &f, a.clone())
                    .and_then(|g| call(m, &g, b.clone()))
                    .and_then(|r| boolean(&r, at));
                match r {
                    Ok(x) => x,
                    Err(e) => {
                        err = Some(e);
                        false
                    }
                }
            });
            if let Some(e) = err {
                return Err(e);
            }
            Value::List(Rc::new(v))
        }
        B::StringLength => Value::Int(string(&arg(m, 0)?, at)?.len() as i64),
        B::Substring => {
            let start = int(&arg(m, 0)?, at)?;
            let len = int(&arg(m, 1)?, at)?;
            let s = string(&arg(m, 2)?, at)?;
            if start < 0 {
                return Err(EvalError::new(at, "negative start position in 'substring'"));
            }
            let bytes = s.as_bytes();
            let from = (start as usize).min(bytes.len());
            let to = if len < 0 {
                bytes.len()
            } else {
                from.saturating_add(len as usize).min(bytes.len())
            };
            Value::str(String::from_utf8_lossy(&bytes[from..to]).into_owned())
        }
        B::ToJson => {
            let v = arg(m, 0)?;
            Value::str(to_json(m, &v, at)?.to_string())
        }
        B::FromJson => {
            let s = string(&arg(m, 0)?, at)?;
            let j: serde_json::Value = serde_json::from_str(&s)
                .map_err(|e| EvalError::new(at, format!("fromJSON: {e}")))?;
            from_json(&j)
        }
        B::FunctionArgs => match arg(m, 0)? {
            Value::Lambda(l) => match &l.param {
                rnix::ast::Param::Pattern(p) => Value::attrs(p.pat_entries().map(|e| {
                    use rowan::ast::AstNode;
                    let name: Rc<str> = e
                        .ident()
                        .map(|i| i.syntax().text().to_string())
                        .unwrap_or_default()
                        .into();
                    (name, Value::Bool(e.default().is_some()))
                })),
                _ => Value::attrs([]),
            },
            Value::Builtin(_) => Value::attrs([]),
            other => return Err(type_error(&other, "a function", at)),
        },
        B::ToString => {
            let v = arg(m, 0)?;
            match v {
                Value::Format(_) | Value::Config(_) => v,
                v => Value::str(m.coerce(&v, true, at)?),
            }
        }
        B::Trace => {
            arg(m, 0)?;
            arg(m, 1)?
        }
        B::TryEval => match arg(m, 0) {
            Ok(v) => Value::attrs([("success".into(), Value::Bool(true)), ("value".into(), v)]),
            Err(e) if e.message.starts_with("evaluation aborted") => return Err(e),
            Err(_) => Value::attrs([
                ("success".into(), Value::Bool(false)),
                ("value".into(), Value::Bool(false)),
            ]),
        },
        B::TypeOf => Value::str(arg(m, 0)?.type_name()),
        B::ZipAttrsWith => {
            let f = arg(m, 0)?;
            let xs = list(&arg(m, 1)?, at)?;
            let mut by: std::collections::BTreeMap<Rc<str>, Vec<Thunk>> = Default::default();
            for x in xs.iter() {
                for (k, v) in attrs(&m.force(x)?, at)?.iter() {
                    by.entry(k.clone()).or_default().push(v.value.clone());
                }
            }
            let mut out = Attrs::new();
            for (k, vs) in by {
                let g = call(m, &f, Thunk::value(Value::Str(k.clone())))?;
                out.insert(
                    k,
                    Attr {
                        value: Thunk::value(call(m, &g, Thunk::value(Value::List(Rc::new(vs))))?),
                        span: None,
                    },
                );
            }
            Value::Attrs(Rc::new(out))
        }
        B::WriteText | B::WriteShellScript => {
            let name = string(&arg(m, 0)?, at)?;
            let text = string(&arg(m, 1)?, at)?;
            let text = if b == B::WriteShellScript {
                format!("#!/bin/sh\n{text}").into()
            } else {
                text
            };
            Value::Package(Rc::new(super::value::Package {
                attr: b.name().into(),
                name,
                text: Some(text),
            }))
        }
        B::TypeLeaf => {
            let name = string(&arg(m, 0)?, at)?;
            Value::Type(Rc::new(Node {
                span: at.unwrap_or_default(),
                kind: Kind::Str(name.as_ref().into()),
            }))
        }
        B::TypeApply => {
            let name = string(&arg(m, 0)?, at)?;
            let a = arg(m, 1)?;
            super::module::type_of(m, &name, &a, at)?
        }
    })
}

fn merge_sort(v: &mut Vec<Thunk>, less: &mut dyn FnMut(&Thunk, &Thunk) -> bool) {
    if v.len() <= 1 {
        return;
    }
    let right = v.split_off(v.len() / 2);
    let mut left = std::mem::take(v);
    let mut right = right;
    merge_sort(&mut left, less);
    merge_sort(&mut right, less);
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if less(&right[j], &left[i]) {
            v.push(right[j].clone());
            j += 1;
        } else {
            v.push(left[i].clone());
            i += 1;
        }
    }
    v.extend_from_slice(&left[i..]);
    v.extend_from_slice(&right[j..]);
}

/// Nix's version order (`builtins.compareVersions`).
fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut digit = None;
        for c in s.chars() {
            if c == '.' || c == '-' {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                digit = None;
                continue;
            }
            let d = c.is_ascii_digit();
            if digit.is_some_and(|x| x != d) && !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            digit = Some(d);
            cur.push(c);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
    fn less(a: &str, b: &str) -> bool {
        let (na, nb) = (a.parse::<u64>(), b.parse::<u64>());
        match (&na, &nb) {
            (Ok(x), Ok(y)) => x < y,
            _ if a.is_empty() => nb.is_ok(),
            _ if a == "pre" => b != "pre",
            _ if b == "pre" => false,
            (Ok(_), Err(_)) => false,
            (Err(_), Ok(_)) => true,
            _ => a < b,
        }
    }
    let (pa, pb) = (parts(a), parts(b));
    for i in 0..pa.len().max(pb.len()) {
        let x = pa.get(i).map_or("", String::as_str);
        let y = pb.get(i).map_or("", String::as_str);
        if less(x, y) {
            return std::cmp::Ordering::Less;
        }
        if less(y, x) {
            return std::cmp::Ordering::Greater;
        }
    }
    std::cmp::Ordering::Equal
}

/// `builtins.toJSON` (and `--strict --json`): forces everything.
pub(crate) fn to_json(
    m: &mut impl Evaluator,
    v: &Value,
    at: Option<Span>,
) -> Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        // Nix prints an integral float without its fraction (`1000.0` is `1000`).
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => J::from(*f as i64),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Str(s) => J::String(s.to_string()),
        Value::Path(p) => J::String(p.display().to_string()),
        Value::List(xs) => {
            let mut out = Vec::new();
            for x in xs.iter() {
                let v = m.force(x)?;
                out.push(m.nested(|m| to_json(m, &v, at))?);
            }
            J::Array(out)
        }
        Value::Attrs(a) => {
            if let Some(s) = a.get("__toString").or_else(|| a.get("outPath")) {
                let _ = s;
                return Ok(J::String(m.coerce(v, false, at)?));
            }
            let mut out = serde_json::Map::new();
            for (k, x) in a.iter() {
                let v = m.force(&x.value)?;
                out.insert(k.to_string(), m.nested(|m| to_json(m, &v, at))?);
            }
            J::Object(out)
        }
        Value::Lambda(_) | Value::Builtin(_) => {
            return Err(EvalError::new(at, "cannot convert a function to JSON"))
        }
        Value::Type(_) => return Err(EvalError::new(at, "cannot convert a type to JSON")),
        Value::Package(p) => J::String(p.out_path()),
        Value::Pkgs => return Err(EvalError::new(at, "cannot convert `pkgs` to JSON")),
        Value::Config(p) => return Err(super::value::config_used(p, "in toJSON", at)),
        Value::Format(parts) => return Err(super::value::format_used(parts, at)),
    })
}

fn from_json(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n
            .as_i64()
            .map_or_else(|| Value::Float(n.as_f64().unwrap_or(0.0)), Value::Int),
        J::String(s) => Value::str(s.as_str()),
        J::Array(xs) => Value::List(Rc::new(
            xs.iter().map(|x| Thunk::value(from_json(x))).collect(),
        )),
        J::Object(o) => Value::attrs(o.iter().map(|(k, v)| (Rc::from(k.as_str()), from_json(v)))),
    }
}
