//! Option types: description, check and merge, one arm per type, as `lib/types.nix` defines them.
//!
//! "v2" types (listOf, attrsOf, submodule, either) check only the head of each definition and
//! report `... is not of type `T'. TypeError: ...`; elements are checked where they are merged,
//! at `x."[definition N-entry M]"` for lists and `x.name` for attribute sets.

use std::rc::Rc;

use regex::bytes::Regex;

use super::messages;
// The one import circle of `src/` (tests/layers.rs allows exactly this one): a submodule's
// value is a nested evaluation, as `types.submodule` calls `evalModules`, so merging a
// submodule goes back into the option tree's merge, which merges every option by its type.
use super::options::{merge_level, OptTree};
use super::properties::push_down_properties;
use super::value::{check_depth, equal, name_order, Res, TypeOf, Value};
use super::{merge_definitions, Ctx, Def};
use crate::scenario::{EnumValue, IntRange, Kind, TypeExpr};

/// A runtime option type.
#[derive(Clone)]
pub(crate) enum Ty<'s> {
    /// `str`
    Str,
    /// `int`
    Int,
    /// `bool`
    Bool,
    /// `float`
    Float,
    /// `path`
    Path,
    /// `separatedString sep` (`lines`, `commas`, `envVar`)
    Sep(Rc<str>),
    /// `anything`
    Anything,
    /// `attrs`
    Attrs,
    /// `raw`
    Raw,
    /// `unspecified`
    Unspecified,
    /// `boolByOr`
    BoolByOr,
    /// `strMatching`, and `nonEmptyStr`/`singleLineStr` (which carry their own description).
    StrMatching(Rc<str>, Rc<Regex>, Option<&'static str>),
    /// `ints.*`, `port`
    IntRange(IntRange),
    /// `enum`
    Enum(Rc<[EnumValue]>),
    /// `listOf`
    ListOf(Rc<Ty<'s>>),
    /// `nonEmptyListOf`
    NonEmptyListOf(Rc<Ty<'s>>),
    /// `attrsOf`
    AttrsOf(Rc<Ty<'s>>),
    /// `lazyAttrsOf`
    LazyAttrsOf(Rc<Ty<'s>>),
    /// `nullOr`
    NullOr(Rc<Ty<'s>>),
    /// `uniq` / `unique`
    Unique(Rc<Ty<'s>>),
    /// `either`
    Either(Rc<Ty<'s>>, Rc<Ty<'s>>),
    /// `submodule`: its own option tree.
    Submodule(Rc<OptTree<'s>>),
}

#[derive(Clone, Copy, PartialEq)]
enum Class {
    Noun,
    Composite,
    Conjunction,
    NonRestrictiveClause,
}

/// `nonEmptyStr`: `builtins.match "[ \t\n]*" x == null`, so not empty and not only spaces,
/// tabs and newlines (other whitespace, a carriage return or a no-break space, counts as text).
const NON_EMPTY_STR: &str = r"(?s-u)^(?:.*[^ \t\n].*)$";
/// `singleLineStr`: `strMatching "[^\n\r]*\n?"` (its merge then drops the final newline).
const SINGLE_LINE_STR: &str = r"(?s-u)^(?:[^\n\r]*\n?)$";
/// `singleLineStr`'s description, which also marks the type for its merge.
const SINGLE_LINE_DESCRIPTION: &str = "(optionally newline-terminated) single-line string";

/// A `strMatching` pattern as `builtins.match` reads it (POSIX extended, whole string, bytes).
fn full_match(re: &str) -> Regex {
    let translated = crate::ere::translate(re).expect("checked when the scenario was loaded");
    Regex::new(&translated).expect("a translated pattern compiles")
}

fn internal(re: &str) -> Regex {
    Regex::new(re).expect("a fixed pattern")
}

impl<'s> Ty<'s> {
    /// The runtime type of a declared type. `file` is the declaring module (for submodules).
    pub(crate) fn from_expr(e: &'s TypeExpr, file: u32) -> Ty<'s> {
        let sub = |t: &'s TypeExpr| Rc::new(Ty::from_expr(t, file));
        match e {
            TypeExpr::Str => Ty::Str,
            TypeExpr::Int => Ty::Int,
            TypeExpr::Bool => Ty::Bool,
            TypeExpr::Float => Ty::Float,
            TypeExpr::Path => Ty::Path,
            TypeExpr::Separated(s) => Ty::Sep(Rc::from(s.as_str())),
            TypeExpr::Anything => Ty::Anything,
            TypeExpr::Attrs => Ty::Attrs,
            TypeExpr::Raw => Ty::Raw,
            TypeExpr::Unspecified => Ty::Unspecified,
            TypeExpr::BoolByOr => Ty::BoolByOr,
            TypeExpr::NonEmptyStr => Ty::StrMatching(
                Rc::from(NON_EMPTY_STR),
                Rc::new(internal(NON_EMPTY_STR)),
                Some("non-empty string"),
            ),
            TypeExpr::SingleLineStr => Ty::StrMatching(
                Rc::from(SINGLE_LINE_STR),
                Rc::new(internal(SINGLE_LINE_STR)),
                Some(SINGLE_LINE_DESCRIPTION),
            ),
            TypeExpr::StrMatching(p) => {
                Ty::StrMatching(Rc::from(p.as_str()), Rc::new(full_match(p)), None)
            }
            TypeExpr::IntRange(r) => Ty::IntRange(*r),
            TypeExpr::Enum(vs) => Ty::Enum(vs.clone().into()),
            TypeExpr::ListOf(t) => Ty::ListOf(sub(t)),
            TypeExpr::NonEmptyListOf(t) => Ty::NonEmptyListOf(sub(t)),
            TypeExpr::AttrsOf(t) => Ty::AttrsOf(sub(t)),
            TypeExpr::LazyAttrsOf(t) => Ty::LazyAttrsOf(sub(t)),
            TypeExpr::NullOr(t) => Ty::NullOr(sub(t)),
            TypeExpr::Unique(t) => Ty::Unique(sub(t)),
            TypeExpr::Either(a, b) => Ty::Either(sub(a), sub(b)),
            TypeExpr::Submodule(decls, freeform) => {
                let mut tree = OptTree::build(decls.iter().map(|d| (file, d)).collect());
                tree.freeform = freeform.as_deref().map(|t| Rc::new(Ty::from_expr(t, file)));
                Ty::Submodule(Rc::new(tree))
            }
        }
    }

    fn class(&self) -> Class {
        match self {
            Ty::ListOf(_) | Ty::NonEmptyListOf(_) | Ty::AttrsOf(_) | Ty::LazyAttrsOf(_) => {
                Class::Composite
            }
            Ty::NullOr(_) | Ty::Either(..) => Class::Conjunction,
            Ty::Enum(_) => Class::NonRestrictiveClause,
            Ty::Unique(t) => t.class(),
            _ => Class::Noun,
        }
    }

    fn phrase(&self, ok: &[Class]) -> String {
        if ok.contains(&self.class()) {
            self.description()
        } else {
            format!("({})", self.description())
        }
    }

    /// The type's `description`, as Nix writes it in messages.
    pub(crate) fn description(&self) -> String {
        use Class::*;
        match self {
            Ty::Str => "string".into(),
            Ty::Int => "signed integer".into(),
            Ty::Bool => "boolean".into(),
            Ty::Float => "floating point number".into(),
            Ty::Path => "absolute path".into(),
            Ty::Sep(s) if s.is_empty() => "Concatenated string".into(),
            Ty::Sep(s) => format!(
                "strings concatenated with {}",
                serde_json::to_string(&**s).unwrap_or_default()
            ),
            Ty::Anything => "anything".into(),
            Ty::Attrs => "attribute set".into(),
            Ty::Raw => "raw value".into(),
            Ty::Unspecified => "unspecified value".into(),
            Ty::BoolByOr => "boolean (merged using or)".into(),
            Ty::StrMatching(_, _, Some(d)) => (*d).into(),
            Ty::StrMatching(p, _, None) => format!("string matching the pattern {p}"),
            Ty::IntRange(r) => match *r {
                IntRange::Unsigned => "unsigned integer, meaning >=0".into(),
                IntRange::Positive => "positive integer, meaning >0".into(),
                IntRange::U(n) => format!(
                    "{n} bit unsigned integer; between 0 and {} (both inclusive)",
                    (1u64 << n) - 1
                ),
                IntRange::S(n) => format!(
                    "{n} bit signed integer; between {} and {} (both inclusive)",
                    -(1i64 << (n - 1)),
                    (1i64 << (n - 1)) - 1
                ),
                IntRange::Between(lo, hi) => {
                    format!("integer between {lo} and {hi} (both inclusive)")
                }
            },
            Ty::Enum(vs) => {
                let show = |v: &EnumValue| match v {
                    EnumValue::Str(s) => format!("\"{s}\""),
                    EnumValue::Int(i) => i.to_string(),
                    EnumValue::Bool(b) => b.to_string(),
                };
                match vs.len() {
                    0 => "impossible (empty enum)".into(),
                    1 => format!("value {} (singular enum)", show(&vs[0])),
                    _ => format!(
                        "one of {}",
                        vs.iter().map(show).collect::<Vec<_>>().join(", ")
                    ),
                }
            }
            Ty::ListOf(t) => format!("list of {}", t.phrase(&[Noun, Composite])),
            Ty::NonEmptyListOf(t) => format!("non-empty list of {}", t.phrase(&[Noun, Composite])),
            Ty::AttrsOf(t) => format!("attribute set of {}", t.phrase(&[Noun, Composite])),
            Ty::LazyAttrsOf(t) => format!("lazy attribute set of {}", t.phrase(&[Noun, Composite])),
            Ty::NullOr(t) => format!("null or {}", t.phrase(&[Noun, Conjunction])),
            Ty::Unique(t) => t.description(),
            Ty::Either(a, b) => {
                if a.class() == NonRestrictiveClause {
                    format!("{}, or {}", a.description(), b.phrase(&[Noun, Conjunction]))
                } else {
                    format!(
                        "{} or {}",
                        a.phrase(&[Noun, Conjunction]),
                        b.phrase(&[Noun, Conjunction, Composite])
                    )
                }
            }
            Ty::Submodule(_) => "submodule".into(),
        }
    }

    /// Types whose merge checks definitions itself (`merge.v2` in Nix).
    fn is_v2(&self) -> bool {
        matches!(
            self,
            Ty::ListOf(_)
                | Ty::NonEmptyListOf(_)
                | Ty::AttrsOf(_)
                | Ty::LazyAttrsOf(_)
                | Ty::Submodule(_)
                | Ty::Either(..)
        )
    }

    /// `type.check` on a value in weak head normal form.
    pub(crate) fn check(&self, v: &Value<'s>) -> bool {
        let t = v.type_of();
        match self {
            Ty::Str | Ty::Sep(_) => t == TypeOf::String,
            Ty::Int => t == TypeOf::Int,
            Ty::Bool | Ty::BoolByOr => t == TypeOf::Bool,
            Ty::Float => t == TypeOf::Float,
            Ty::Path => v.as_str().is_some_and(|s| s.starts_with('/')),
            Ty::Anything | Ty::Raw | Ty::Unspecified => true,
            Ty::Attrs | Ty::AttrsOf(_) | Ty::LazyAttrsOf(_) | Ty::Submodule(_) => t == TypeOf::Set,
            Ty::StrMatching(_, re, _) => v.as_str().is_some_and(|s| re.is_match(s.as_bytes())),
            Ty::IntRange(r) => v.as_int().is_some_and(|i| in_range(*r, i)),
            Ty::Enum(vs) => vs.iter().any(|e| match e {
                EnumValue::Str(s) => v.as_str() == Some(s),
                EnumValue::Int(i) => v.as_int() == Some(*i) || v.as_float() == Some(*i as f64),
                EnumValue::Bool(b) => v.as_bool() == Some(*b),
            }),
            Ty::ListOf(_) => t == TypeOf::List,
            Ty::NonEmptyListOf(_) => v.list_items().is_some_and(|l| l.len() != 0),
            Ty::NullOr(e) => t == TypeOf::Null || e.check(v),
            Ty::Unique(e) => e.check(v),
            Ty::Either(a, b) => a.check(v) || b.check(v),
        }
    }

    /// `emptyValue`: the value when no definition remains, if the type has one.
    pub(crate) fn empty_value(&self, ctx: &Ctx<'s>, loc: &[&'s str]) -> Option<Res<Value<'s>>> {
        match self {
            Ty::ListOf(_) => Some(Ok(Value::List(Rc::from(Vec::new())))),
            Ty::AttrsOf(_) | Ty::LazyAttrsOf(_) | Ty::Attrs => Some(Ok(Value::attrs(Vec::new()))),
            Ty::NullOr(_) => Some(Ok(Value::Null)),
            Ty::Unique(t) => t.empty_value(ctx, loc),
            Ty::Submodule(tree) => Some(merge_submodule(ctx, loc, tree, Vec::new())),
            _ => None,
        }
    }
}

fn in_range(r: IntRange, i: i64) -> bool {
    match r {
        IntRange::Unsigned => i >= 0,
        IntRange::Positive => i > 0,
        IntRange::U(n) => i >= 0 && (i as u64) < (1u64 << n),
        IntRange::S(n) => i >= -(1i64 << (n - 1)) && i < (1i64 << (n - 1)),
        IntRange::Between(lo, hi) => i >= lo && i <= hi,
    }
}

/// Type-checks the final definitions and merges them (`mergeDefinitions.mergedValue`).
pub(crate) fn check_and_merge<'s>(
    ctx: &Ctx<'s>,
    loc: &[&'s str],
    ty: &Ty<'s>,
    defs: &[Def<'s>],
) -> Res<Value<'s>> {
    if ty.is_v2() {
        return merge_v2(ctx, loc, ty, defs);
    }
    let mut invalid = Vec::new();
    for d in defs {
        if !ty.check(&d.value) {
            invalid.push(d.clone());
        }
    }
    if !invalid.is_empty() {
        return Err(messages::not_of_type(
            loc,
            &ty.description(),
            &ctx.shown(&invalid),
            false,
        ));
    }
    merge_v1(ctx, loc, ty, defs)
}

fn merge_v1<'s>(ctx: &Ctx<'s>, loc: &[&'s str], ty: &Ty<'s>, defs: &[Def<'s>]) -> Res<Value<'s>> {
    match ty {
        Ty::Str | Ty::Int | Ty::Bool | Ty::Float | Ty::Path | Ty::IntRange(_) | Ty::Enum(_) => {
            merge_equal(ctx, loc, defs)
        }
        Ty::StrMatching(_, _, Some(SINGLE_LINE_DESCRIPTION)) => {
            // `lib.removeSuffix "\n" (merge loc defs)`
            let v = merge_equal(ctx, loc, defs)?;
            Ok(match v.as_str().and_then(|s| s.strip_suffix('\n')) {
                Some(s) => Value::Str(Rc::from(s)),
                None => v,
            })
        }
        Ty::StrMatching(..) => merge_equal(ctx, loc, defs),
        Ty::Sep(sep) => {
            let parts: Vec<&str> = defs
                .iter()
                .map(|d| d.value.as_str().unwrap_or_default())
                .collect();
            Ok(Value::Str(Rc::from(parts.join(sep))))
        }
        Ty::BoolByOr => Ok(Value::Bool(
            defs.iter().any(|d| d.value.as_bool() == Some(true)),
        )),
        Ty::Raw => merge_one(ctx, loc, defs),
        Ty::Unique(t) => {
            if defs.len() > 1 {
                return Err(messages::not_unique(loc, &ctx.shown(defs)));
            }
            check_and_merge(ctx, loc, t, defs)
        }
        Ty::Attrs => {
            // `foldl' (res: def: res // def.value) {}`: later definitions win, shallowly.
            let mut out: Vec<(&'s str, Value<'s>)> = Vec::new();
            for d in defs {
                for (k, v) in d.value.attr_items().unwrap_or_default() {
                    match out.binary_search_by(|(n, _)| (*n).cmp(k)) {
                        Ok(i) => out[i].1 = v,
                        Err(i) => out.insert(i, (k, v)),
                    }
                }
            }
            Ok(Value::attrs(out))
        }
        Ty::NullOr(t) => {
            let nulls = defs
                .iter()
                .filter(|d| d.value.type_of() == TypeOf::Null)
                .count();
            if nulls == defs.len() {
                Ok(Value::Null)
            } else if nulls > 0 {
                Err(messages::null_mix(loc, &ctx.shown(defs)))
            } else {
                check_and_merge(ctx, loc, t, defs)
            }
        }
        Ty::Anything => merge_anything(ctx, loc, defs),
        Ty::Unspecified => merge_default(ctx, loc, defs),
        Ty::ListOf(_)
        | Ty::NonEmptyListOf(_)
        | Ty::AttrsOf(_)
        | Ty::LazyAttrsOf(_)
        | Ty::Submodule(_)
        | Ty::Either(..) => {
            unreachable!("v2 types merge in merge_v2")
        }
    }
}

/// `mergeEqualOption`: one definition, or all equal to the first.
fn merge_equal<'s>(ctx: &Ctx<'s>, loc: &[&'s str], defs: &[Def<'s>]) -> Res<Value<'s>> {
    let first = &defs[0];
    for d in &defs[1..] {
        if !equal(ctx, &first.value, &d.value)? {
            return Err(messages::conflict(
                loc,
                &[ctx.shown_one(first), ctx.shown_one(d)],
            ));
        }
    }
    Ok(first.value.clone())
}

/// `mergeOneOption`: exactly one definition, even equal duplicates are refused.
fn merge_one<'s>(ctx: &Ctx<'s>, loc: &[&'s str], defs: &[Def<'s>]) -> Res<Value<'s>> {
    if defs.len() > 1 {
        return Err(messages::not_unique(loc, &ctx.shown(defs)));
    }
    Ok(defs[0].value.clone())
}

/// `types.anything`: one common `typeOf`; sets merge recursively, everything else must be equal.
fn merge_anything<'s>(ctx: &Ctx<'s>, loc: &[&'s str], defs: &[Def<'s>]) -> Res<Value<'s>> {
    let t = defs[0].value.type_of();
    if defs.iter().any(|d| d.value.type_of() != t) {
        return Err(messages::conflicting_types(loc, &ctx.shown(defs)));
    }
    if t == TypeOf::Set {
        merge_attrs(ctx, loc, &Rc::new(Ty::Anything), defs, false)
    } else {
        merge_equal(ctx, loc, defs)
    }
}

/// `mergeDefaultOption`, for options without a type.
fn merge_default<'s>(ctx: &Ctx<'s>, loc: &[&'s str], defs: &[Def<'s>]) -> Res<Value<'s>> {
    if defs.len() == 1 {
        return Ok(defs[0].value.clone());
    }
    let all = |t: TypeOf| defs.iter().all(|d| d.value.type_of() == t);
    if all(TypeOf::List) {
        let items: Vec<Value<'s>> = defs
            .iter()
            .flat_map(|d| d.value.list_items().unwrap_or_default())
            .collect();
        ctx.spend(items.len() * super::value::PER_ELEMENT, loc)?;
        Ok(Value::List(items.into()))
    } else if all(TypeOf::Set) {
        merge_v1(ctx, loc, &Ty::Attrs, defs)
    } else if all(TypeOf::Bool) {
        Ok(Value::Bool(
            defs.iter().any(|d| d.value.as_bool() == Some(true)),
        ))
    } else if all(TypeOf::String) {
        Ok(Value::Str(Rc::from(
            defs.iter()
                .map(|d| d.value.as_str().unwrap_or_default())
                .collect::<String>(),
        )))
    } else if all(TypeOf::Int)
        && defs
            .iter()
            .all(|d| d.value.as_int() == defs[0].value.as_int())
    {
        Ok(defs[0].value.clone())
    } else {
        Err(messages::cannot_merge(loc, &ctx.shown(defs)))
    }
}

fn merge_v2<'s>(ctx: &Ctx<'s>, loc: &[&'s str], ty: &Ty<'s>, defs: &[Def<'s>]) -> Res<Value<'s>> {
    // The head check: every definition has the right shape.
    let head_ok = |d: &Def<'s>| match ty {
        Ty::ListOf(_) | Ty::NonEmptyListOf(_) => d.value.type_of() == TypeOf::List,
        Ty::Either(..) => true,
        _ => d.value.type_of() == TypeOf::Set,
    };
    let mut invalid = Vec::new();
    for d in defs {
        if !head_ok(d) {
            invalid.push(d.clone());
        }
    }
    if invalid.is_empty() {
        if let Ty::NonEmptyListOf(_) = ty {
            invalid.extend(
                defs.iter()
                    .filter(|d| d.value.list_items().is_some_and(|l| l.len() == 0))
                    .cloned(),
            );
        }
    }
    if !invalid.is_empty() {
        return Err(messages::not_of_type(
            loc,
            &ty.description(),
            &ctx.shown(&invalid),
            true,
        ));
    }
    match ty {
        Ty::ListOf(t) | Ty::NonEmptyListOf(t) => {
            let mut out = Vec::new();
            let mut errors = Elements::new(ctx);
            for (n, d) in defs.iter().enumerate() {
                for (m, elem) in d.value.list_items().unwrap_or_default().enumerate() {
                    if let Some(v) = plain_element(ctx, t, &elem) {
                        out.push(v);
                        continue;
                    }
                    let mut eloc = loc.to_vec();
                    eloc.push(super::element_name(n + 1, m + 1));
                    let span = elem.span().unwrap_or(d.span);
                    let edef = Def {
                        file: d.file,
                        span,
                        value: elem,
                        is_default: false,
                        order: None,
                    };
                    if let Some(Some(v)) = errors.take(merge_element(ctx, eloc, t, vec![edef]))? {
                        errors.ok(&v);
                        out.push(v);
                    }
                }
            }
            errors.finish()?;
            ctx.spend(out.len() * super::value::PER_ELEMENT, loc)?;
            Ok(Value::List(out.into()))
        }
        Ty::AttrsOf(t) => merge_attrs(ctx, loc, t, defs, false),
        Ty::LazyAttrsOf(t) => merge_attrs(ctx, loc, t, defs, true),
        Ty::Submodule(tree) => merge_submodule(ctx, loc, tree, defs.to_vec()),
        Ty::Either(a, b) => {
            for t in [a, b] {
                let mut all = true;
                for d in defs {
                    if !t.check(&d.value) {
                        all = false;
                        break;
                    }
                }
                if all {
                    return check_and_merge(ctx, loc, t, defs);
                }
            }
            Err(messages::neither(
                loc,
                &ty.description(),
                &a.description(),
                &b.description(),
                &ctx.shown(defs),
            ))
        }
        _ => unreachable!("v1 types merge in merge_v1"),
    }
}

/// The merge of a lone element that is plain written data of the right type: the element
/// itself, for every type (`mergeDefinitions` of one checked scalar definition is its value).
/// This skips building the element's location (`[definition N-entry M]`), which only an
/// error or `explain` shows. `None` means "take the general path".
fn plain_element<'s>(ctx: &Ctx<'s>, t: &Ty<'s>, v: &Value<'s>) -> Option<Value<'s>> {
    let Value::Node(n) = v else { return None };
    let plain = matches!(
        n.kind,
        Kind::Null | Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) | Kind::Str(_)
    );
    (plain && ctx.trace.is_none() && !t.is_v2() && t.check(v)).then(|| v.clone())
}

/// One attribute or list element, merged as an option of its own. Static values are merged now;
/// values that read other options become thunks, so cycles are found where Nix finds them.
fn merge_element<'s>(
    ctx: &Ctx<'s>,
    loc: Vec<&'s str>,
    ty: &Rc<Ty<'s>>,
    defs: Vec<Def<'s>>,
) -> Res<Option<Value<'s>>> {
    let prepared = merge_definitions(ctx, &loc, ty, defs)?;
    if prepared.defs.is_empty() {
        return Ok(None);
    }
    Ok(Some(prepared.into_value(ctx, loc, ty.clone())?))
}

/// `attrsOf`/`lazyAttrsOf` (and `anything` for sets): zip definitions by name, merge each name on
/// its own. `attrsOf` drops names whose definitions all vanished (`mkIf false`); `lazyAttrsOf`
/// keeps them, and reading one is then an error unless the element type has an empty value.
fn merge_attrs<'s>(
    ctx: &Ctx<'s>,
    loc: &[&'s str],
    t: &Rc<Ty<'s>>,
    defs: &[Def<'s>],
    lazy: bool,
) -> Res<Value<'s>> {
    // (name, definition) pairs, stably sorted by name, then grouped: definition order is kept
    // within each name. One definition's names are sorted already.
    let total = defs
        .iter()
        .map(|d| d.value.attr_items().map_or(0, |a| a.len()))
        .sum();
    // Merging walks as deep as the sets nest, which references make unbounded, and each
    // level copies its path: both are bounded.
    check_depth(loc.len())?;
    ctx.spend((total + loc.len()) * super::value::PER_ATTRIBUTE, loc)?;
    let mut pairs: Vec<(&'s str, Def<'s>)> = Vec::with_capacity(total);
    for d in defs {
        for (k, v) in d.value.attr_items().unwrap_or_default() {
            let span = v.span().unwrap_or(d.span);
            let def = Def {
                file: d.file,
                span,
                value: v,
                is_default: false,
                order: None,
            };
            pairs.push((k, def));
        }
    }
    if defs.len() > 1 {
        pairs.sort_by(|a, b| name_order(a.0, b.0));
    }
    let mut out = Vec::with_capacity(pairs.len());
    let mut errors = Elements::new(ctx);
    let mut pairs = pairs.into_iter().peekable();
    while let Some((k, d)) = pairs.next() {
        let mut ds = Vec::new();
        match pairs.peek() {
            Some((next, _)) if *next == k => {
                ds.push(d);
                while let Some((_, d)) = pairs.next_if(|(n, _)| *n == k) {
                    ds.push(d);
                }
            }
            // A name defined once, as plain data, needs no group of its own.
            _ => match plain_element(ctx, t, &d.value) {
                Some(v) => {
                    out.push((k, v));
                    continue;
                }
                None => ds.push(d),
            },
        }
        let mut kloc = loc.to_vec();
        kloc.push(k);
        if lazy {
            let t = t.clone();
            let cell = super::value::Lazy::new(Some(kloc.into()), move |ctx, kloc| {
                let prepared = merge_definitions(ctx, kloc, &t, ds)?;
                prepared.value(ctx, kloc, &t)
            });
            out.push((k, Value::Lazy(cell)));
        } else if let Some(Some(v)) = errors.take(merge_element(ctx, kloc, t, ds))? {
            errors.ok(&v);
            out.push((k, v));
        }
    }
    errors.finish()?;
    Ok(Value::attrs(out))
}

/// The errors of a collection's elements (`attrsOf` names, `listOf` entries): Nix stops at
/// the first, in name order or list order; isoproof reports every element's error in that
/// order, so an error in one file system entry does not hide another's. Bounds and cycles
/// still stop at once.
struct Elements<'c, 's> {
    ctx: &'c Ctx<'s>,
    /// Elements so far, each with its error or its value (values that read other options
    /// are thunks: their errors only show when forced).
    seen: Vec<Result<Value<'s>, super::value::Error>>,
    failed: bool,
}

impl<'c, 's> Elements<'c, 's> {
    fn new(ctx: &'c Ctx<'s>) -> Self {
        Elements {
            ctx,
            seen: Vec::new(),
            failed: false,
        }
    }

    /// An element's result: its value, or `None` after recording its error. Bounds and
    /// cycles end the collection at once.
    fn take<T>(&mut self, r: Res<T>) -> Res<Option<T>> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e)
                if matches!(
                    e.kind,
                    crate::diag::ErrorKind::Limit | crate::diag::ErrorKind::Recursion
                ) =>
            {
                Err(e)
            }
            Err(e) => {
                self.seen.push(Err(e));
                self.failed = true;
                Ok(None)
            }
        }
    }

    /// Notes an element that merged.
    fn ok(&mut self, v: &Value<'s>) {
        self.seen.push(Ok(v.clone()));
    }

    /// Once every element was tried: with an error among them, the other elements are
    /// forced too, so that their own errors are found; every error is reported in element
    /// order and the first returned.
    fn finish(self) -> Res<()> {
        if !self.failed {
            return Ok(());
        }
        let mut first = None;
        for r in self.seen {
            let e = match r {
                Err(e) => e,
                Ok(v) => match super::value::to_config(self.ctx, &v) {
                    Ok(_) => continue,
                    Err(e) => e,
                },
            };
            self.ctx.report(e.clone());
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }
}

/// A submodule: every definition becomes a module of a nested evaluation over the type's option
/// tree. The nested evaluation reverses its module list again, so definition order alternates
/// with submodule depth, as in Nix.
pub(crate) fn merge_submodule<'s>(
    ctx: &Ctx<'s>,
    loc: &[&'s str],
    tree: &Rc<OptTree<'s>>,
    defs: Vec<Def<'s>>,
) -> Res<Value<'s>> {
    let mut modules = Vec::new();
    for d in defs.into_iter().rev() {
        let mut pushed = Vec::new();
        push_down_properties(ctx, &d.value, &mut pushed)?;
        for p in pushed {
            if p.type_of() != TypeOf::Set {
                return Err(messages::not_attrset_module(
                    loc,
                    &ctx.shown_one(&d),
                    p.type_of().nix_name(),
                ));
            }
            modules.push(Def {
                value: p,
                ..d.clone()
            });
        }
    }
    let mut unmatched = super::options::Stray::for_tree(tree);
    let v = merge_level(ctx, loc, tree, modules, &mut unmatched)?;
    if let Some(first) = unmatched.errors.first().cloned() {
        for e in unmatched.errors {
            ctx.report(e);
        }
        return Err(first);
    }
    unmatched.finish(ctx, loc, tree, v)
}

/// `typeMerge` of two declarations' types (`mergeOptionDecls`): `None` when they cannot merge.
/// As in Nix, types built with `addCheck` (`ints.*`, `port`) merge to plain `int` and lose their
/// check; `enum`s concatenate their values; submodules merge their option trees.
pub(crate) fn type_merge<'s>(a: &Ty<'s>, b: &Ty<'s>) -> Option<Ty<'s>> {
    let wrap = |x: &Rc<Ty<'s>>, y: &Rc<Ty<'s>>| type_merge(x, y).map(Rc::new);
    Some(match (a, b) {
        (Ty::Int | Ty::IntRange(_), Ty::Int | Ty::IntRange(_)) => Ty::Int,
        (Ty::Str, Ty::Str) => Ty::Str,
        (Ty::Bool, Ty::Bool) => Ty::Bool,
        (Ty::Float, Ty::Float) => Ty::Float,
        (Ty::Path, Ty::Path) => Ty::Path,
        (Ty::Anything, Ty::Anything) => Ty::Anything,
        (Ty::Attrs, Ty::Attrs) => Ty::Attrs,
        (Ty::Raw, Ty::Raw) => Ty::Raw,
        (Ty::Unspecified, Ty::Unspecified) => Ty::Unspecified,
        (Ty::BoolByOr, Ty::BoolByOr) => Ty::BoolByOr,
        (Ty::Sep(x), Ty::Sep(y)) if x == y => Ty::Sep(x.clone()),
        (Ty::StrMatching(p, re, d), Ty::StrMatching(q, _, e)) if p == q && d == e => {
            Ty::StrMatching(p.clone(), re.clone(), *d)
        }
        (Ty::Enum(x), Ty::Enum(y)) => {
            Ty::Enum(x.iter().chain(y.iter()).cloned().collect::<Vec<_>>().into())
        }
        (Ty::ListOf(x) | Ty::NonEmptyListOf(x), Ty::ListOf(y) | Ty::NonEmptyListOf(y)) => {
            Ty::ListOf(wrap(x, y)?)
        }
        (Ty::AttrsOf(x), Ty::AttrsOf(y)) => Ty::AttrsOf(wrap(x, y)?),
        (Ty::LazyAttrsOf(x), Ty::LazyAttrsOf(y)) => Ty::LazyAttrsOf(wrap(x, y)?),
        (Ty::NullOr(x), Ty::NullOr(y)) => Ty::NullOr(wrap(x, y)?),
        (Ty::Unique(x), Ty::Unique(y)) => Ty::Unique(wrap(x, y)?),
        (Ty::Either(x1, x2), Ty::Either(y1, y2)) => Ty::Either(wrap(x1, y1)?, wrap(x2, y2)?),
        (Ty::Submodule(x), Ty::Submodule(y)) => Ty::Submodule(Rc::new(OptTree::merged(x, y))),
        _ => return None,
    })
}
