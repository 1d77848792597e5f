//! What the pure functions scenarios can call do (their names and arities are the scenario
//! language's, [`crate::scenario::functions`]): in a definition with
//! `!call [NAME, ARG...]` (an assertion's condition, a computed message) and in an option
//! declaration's `apply: NAME` or `apply: [NAME, ARG...]` (the merged value is the last
//! argument), as NixOS modules use `builtins` and `lib`. Each does what its Nix namesake
//! does on the values scenarios have; a value of the wrong type is an error naming the
//! function and what it got.

use std::rc::Rc;

pub use crate::scenario::functions::Func;

use super::value::{equal, error, Res, TypeOf, Value};
use super::Ctx;
use crate::diag::{ErrorKind, Label};
use crate::scenario::Span;

/// Calls `f` on `args` (as many as its arity), at `span` (for errors).
pub(crate) fn call<'s>(ctx: &Ctx<'s>, f: Func, args: &[Value<'s>], span: Span) -> Res<Value<'s>> {
    let bad = |expected: &str, got: &Value<'s>| {
        let mut d = crate::diag::Diagnostic::new(
            ErrorKind::Type,
            None,
            format!(
                "`{}` expects {expected}, got {}",
                f.name(),
                got.type_of().noun()
            ),
        );
        d.labels.push(Label {
            span,
            note: "called here".into(),
        });
        Rc::new(d)
    };
    let arg = |i: usize| ctx.whnf(&args[i]);
    let string = |v: &Value<'s>| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| bad("a string", v))
    };
    let int = |v: &Value<'s>| v.as_int().ok_or_else(|| bad("an integer", v));
    let boolean = |v: &Value<'s>| v.as_bool().ok_or_else(|| bad("a Boolean", v));
    let list = |v: &Value<'s>| -> Res<Vec<Value<'s>>> {
        let items: Vec<Value<'s>> = v.list_items().ok_or_else(|| bad("a list", v))?.collect();
        items.iter().map(|x| ctx.whnf(x)).collect()
    };
    let s = |x: String| Value::Str(Rc::from(x));
    Ok(match f {
        Func::ToString => s(to_string(ctx, &arg(0)?, &bad)?),
        Func::StringLength => Value::Int(string(&arg(0)?)?.len() as i64),
        Func::Length => Value::Int(list(&arg(0)?)?.len() as i64),
        Func::LessThan => Value::Bool(less(&arg(0)?, &arg(1)?, &bad)?),
        Func::Not => Value::Bool(!boolean(&arg(0)?)?),
        Func::And => Value::Bool(boolean(&arg(0)?)? && boolean(&arg(1)?)?),
        Func::Or => Value::Bool(boolean(&arg(0)?)? || boolean(&arg(1)?)?),
        Func::Equal => Value::Bool(equal(ctx, &arg(0)?, &arg(1)?)?),
        Func::Add | Func::Sub => {
            let (a, b) = (int(&arg(0)?)?, int(&arg(1)?)?);
            let r = if f == Func::Add {
                a.checked_add(b)
            } else {
                a.checked_sub(b)
            };
            Value::Int(r.ok_or_else(|| {
                error(
                    ErrorKind::Type,
                    None,
                    format!("`{}` of {a} and {b} overflows a 64-bit integer", f.name()),
                )
            })?)
        }
        Func::Elem => {
            let x = arg(0)?;
            let mut found = false;
            for y in list(&arg(1)?)? {
                if equal(ctx, &x, &y)? {
                    found = true;
                    break;
                }
            }
            Value::Bool(found)
        }
        Func::Unique => {
            let mut out: Vec<Value<'s>> = Vec::new();
            for x in list(&arg(0)?)? {
                // `lib.unique` compares each element with those kept: quadratic, so the
                // comparisons count against the evaluation's work bound.
                ctx.spend(out.len(), &[])?;
                let mut seen = false;
                for y in &out {
                    if equal(ctx, &x, y)? {
                        seen = true;
                        break;
                    }
                }
                if !seen {
                    out.push(x);
                }
            }
            Value::List(out.into())
        }
        Func::Sort => {
            let items = list(&arg(0)?)?;
            // Check every pair's comparability first: a sort must not fail half-way.
            for w in items.windows(2) {
                less(&w[0], &w[1], &bad)?;
            }
            let mut items = items;
            items.sort_by(|a, b| {
                if less(a, b, &bad).unwrap_or(false) {
                    std::cmp::Ordering::Less
                } else if less(b, a, &bad).unwrap_or(false) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            });
            Value::List(items.into())
        }
        Func::ConcatStringsSep | Func::ConcatStrings => {
            let (sep, l) = if f == Func::ConcatStrings {
                (String::new(), arg(0)?)
            } else {
                (string(&arg(0)?)?, arg(1)?)
            };
            let parts: Vec<String> = list(&l)?.iter().map(string).collect::<Res<_>>()?;
            let out = parts.join(&sep);
            ctx.spend(out.len(), &[])?;
            s(out)
        }
        Func::AttrNames => {
            let v = arg(0)?;
            let names: Vec<Value<'s>> = v
                .attr_items()
                .ok_or_else(|| bad("a set", &v))?
                .map(|(k, _)| Value::Str(Rc::from(k)))
                .collect();
            Value::List(names.into())
        }
    })
}

fn less<'s>(
    a: &Value<'s>,
    b: &Value<'s>,
    bad: &dyn Fn(&str, &Value<'s>) -> super::value::Error,
) -> Res<bool> {
    match (a.type_of(), b.type_of()) {
        (TypeOf::Int | TypeOf::Float, TypeOf::Int | TypeOf::Float) => {
            let n = |v: &Value<'s>| v.as_float().or(v.as_int().map(|i| i as f64));
            match (a.as_int(), b.as_int()) {
                (Some(x), Some(y)) => Ok(x < y),
                _ => Ok(n(a) < n(b)),
            }
        }
        (TypeOf::String, TypeOf::String) => {
            Ok(a.as_str().unwrap_or("").as_bytes() < b.as_str().unwrap_or("").as_bytes())
        }
        (TypeOf::Int | TypeOf::Float | TypeOf::String, _) => {
            Err(bad("two numbers or two strings", b))
        }
        _ => Err(bad("two numbers or two strings", a)),
    }
}

fn to_string<'s>(
    ctx: &Ctx<'s>,
    v: &Value<'s>,
    bad: &dyn Fn(&str, &Value<'s>) -> super::value::Error,
) -> Res<String> {
    Ok(match v.type_of() {
        TypeOf::String => v.as_str().unwrap_or("").to_string(),
        TypeOf::Int => v.as_int().unwrap_or(0).to_string(),
        TypeOf::Float => format!("{:.6}", v.as_float().unwrap_or(0.0)),
        TypeOf::Bool => if v.as_bool() == Some(true) { "1" } else { "" }.to_string(),
        TypeOf::Null => String::new(),
        TypeOf::List => {
            let mut parts = Vec::new();
            for x in v.list_items().into_iter().flatten() {
                parts.push(to_string(ctx, &ctx.whnf(&x)?, bad)?);
            }
            parts.join(" ")
        }
        TypeOf::Set => return Err(bad("a value that converts to a string (not a set)", v)),
    })
}
