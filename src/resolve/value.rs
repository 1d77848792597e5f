//! Values of the module system, evaluated lazily as Nix does.
//!
//! A value is either data written in the scenario (borrowed: [`Value::Node`]), data computed by a
//! merge, a property made by push-down, or a [`Lazy`] thunk. Thunks are memoised and detect
//! re-entry, which is how a config reference cycle is found — and since every option's thunk
//! carries its path, the error can name the whole chain (`a → b → a`), which Nix cannot.

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use crate::diag::{Diagnostic, ErrorKind};
use crate::scenario::{path, Key, Kind, Node, Span};

use super::config::Config;
use super::Ctx;

/// An error shared by every thunk that depends on it (reported once).
pub(crate) type Error = Rc<Diagnostic>;
/// The result of evaluating something.
pub(crate) type Res<T> = Result<T, Error>;

/// A value. Cloning is cheap (a reference or an `Rc`).
#[derive(Clone)]
pub(crate) enum Value<'s> {
    /// Data as written in the scenario (may be a property, `!config` or `!format`).
    Node(&'s Node),
    /// `null`
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A computed string.
    Str(Rc<str>),
    /// A computed list.
    List(Rc<[Value<'s>]>),
    /// A computed attribute set, sorted by name.
    Attrs(Rc<[(&'s str, Value<'s>)]>),
    /// A property made by `pushDownProperties` (`mkIf c` / `mkOverride p` copied onto attributes).
    Prop(Rc<Prop<'s>>),
    /// A thunk.
    Lazy(Rc<Lazy<'s>>),
}

/// A property, as `lib.modules` represents it: `{ _type = "if"; condition; content; }` etc.
#[derive(Clone)]
pub(crate) enum Prop<'s> {
    /// `mkIf condition content`
    If(Value<'s>, Value<'s>),
    /// `mkMerge contents`
    Merge(Vec<Value<'s>>),
    /// `mkOverride priority content`
    Override(f64, Value<'s>),
    /// `mkOrder priority content`
    Order(f64, Value<'s>),
}

impl<'s> Prop<'s> {
    /// The `_type` this property has in Nix.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Prop::If(..) => "if",
            Prop::Merge(_) => "merge",
            Prop::Override(..) => "override",
            Prop::Order(..) => "order",
        }
    }

    /// The property seen as the attribute set it is in Nix, for types that take it as data.
    pub(crate) fn as_attrs(&self) -> Vec<(&'s str, Value<'s>)> {
        let t: Value<'s> = Value::Str(Rc::from(self.type_name()));
        match self {
            Prop::If(c, v) => vec![
                ("_type", t),
                ("condition", c.clone()),
                ("content", v.clone()),
            ],
            Prop::Merge(xs) => vec![("_type", t), ("contents", Value::List(xs.clone().into()))],
            Prop::Override(p, v) | Prop::Order(p, v) => {
                vec![("_type", t), ("content", v.clone()), ("priority", num(*p))]
            }
        }
    }
}

/// A priority as a Nix number: integral priorities are ints.
pub(crate) fn num<'s>(p: f64) -> Value<'s> {
    if p.fract() == 0.0 && p.abs() < 9.0e15 {
        Value::Int(p as i64)
    } else {
        Value::Float(p)
    }
}

/// A memoised thunk.
pub(crate) struct Lazy<'s> {
    /// The option path this thunk computes, when it is an option's value (for cycle chains).
    /// Kept as components and shown only when an error needs it.
    pub(crate) loc: Option<Rc<[&'s str]>>,
    state: RefCell<State<'s>>,
}

type Thunk<'s> = Box<dyn FnOnce(&Ctx<'s>, &[&'s str]) -> Res<Value<'s>> + 's>;

enum State<'s> {
    Pending(Thunk<'s>),
    Running,
    Done(Res<Value<'s>>),
}

impl<'s> Lazy<'s> {
    /// A thunk computing `f` on first use; `f` is given the thunk's location (or `[]`).
    pub(crate) fn new(
        loc: Option<Rc<[&'s str]>>,
        f: impl FnOnce(&Ctx<'s>, &[&'s str]) -> Res<Value<'s>> + 's,
    ) -> Rc<Self> {
        Rc::new(Lazy {
            loc,
            state: RefCell::new(State::Pending(Box::new(f))),
        })
    }

    /// The option path, shown as Nix shows it.
    pub(crate) fn label(&self) -> Option<String> {
        self.loc.as_deref().map(path::show)
    }

    /// Evaluates (once) and returns the value, which is in weak head normal form.
    pub(crate) fn force(self: &Rc<Self>, ctx: &Ctx<'s>) -> Res<Value<'s>> {
        let pending = {
            let mut st = self.state.borrow_mut();
            match &*st {
                State::Done(r) => return r.clone(),
                State::Running => return Err(ctx.recursion_error(self)),
                State::Pending(_) => match std::mem::replace(&mut *st, State::Running) {
                    State::Pending(f) => f,
                    _ => unreachable!(),
                },
            }
        };
        if let Err(e) = ctx.enter(self) {
            // Not started: the thunk can run when evaluation is shallower.
            *self.state.borrow_mut() = State::Pending(pending);
            return Err(e);
        }
        let r = pending(ctx, self.loc.as_deref().unwrap_or(&[])).and_then(|v| ctx.whnf(&v));
        ctx.leave();
        *self.state.borrow_mut() = State::Done(r.clone());
        r
    }
}

/// The shape of a value in weak head normal form, for dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TypeOf {
    /// `null`
    Null,
    /// `bool`
    Bool,
    /// `int`
    Int,
    /// `float`
    Float,
    /// `string`
    String,
    /// `list`
    List,
    /// `set` (properties are sets too)
    Set,
}

impl TypeOf {
    /// The name `builtins.typeOf` gives.
    pub(crate) fn nix_name(self) -> &'static str {
        match self {
            TypeOf::Null => "null",
            TypeOf::Bool => "bool",
            TypeOf::Int => "int",
            TypeOf::Float => "float",
            TypeOf::String => "string",
            TypeOf::List => "list",
            TypeOf::Set => "set",
        }
    }

    /// The kind as a noun, for messages: `an integer`, `a Boolean`, `null`.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            TypeOf::Int => "an integer",
            TypeOf::Float => "a float",
            TypeOf::Bool => "a Boolean",
            TypeOf::Null => "null",
            TypeOf::List => "a list",
            TypeOf::Set => "a set",
            TypeOf::String => "a string",
        }
    }
}

/// What [`limits::MAX_WORK`](super::limits::MAX_WORK) charges a list element.
pub(crate) const PER_ELEMENT: usize = std::mem::size_of::<Value<'static>>();

/// What [`limits::MAX_WORK`](super::limits::MAX_WORK) charges an attribute.
pub(crate) const PER_ATTRIBUTE: usize = std::mem::size_of::<(&'static str, Value<'static>)>();

impl<'s> Value<'s> {
    /// `builtins.typeOf` of a value in WHNF.
    pub(crate) fn type_of(&self) -> TypeOf {
        match self {
            Value::Null => TypeOf::Null,
            Value::Bool(_) => TypeOf::Bool,
            Value::Int(_) => TypeOf::Int,
            Value::Float(_) => TypeOf::Float,
            Value::Str(_) => TypeOf::String,
            Value::List(_) => TypeOf::List,
            Value::Attrs(_) | Value::Prop(_) => TypeOf::Set,
            Value::Lazy(_) => unreachable!("type_of on an unforced thunk"),
            Value::Node(n) => match &n.kind {
                Kind::Null => TypeOf::Null,
                Kind::Bool(_) => TypeOf::Bool,
                Kind::Int(_) => TypeOf::Int,
                Kind::Float(_) => TypeOf::Float,
                Kind::Str(_) => TypeOf::String,
                Kind::List(_) => TypeOf::List,
                Kind::Map(_)
                | Kind::If(..)
                | Kind::Merge(_)
                | Kind::Override(..)
                | Kind::Order(..) => TypeOf::Set,
                Kind::Ref(_) | Kind::Format(_) | Kind::Call(..) | Kind::Name | Kind::Nix(_) => {
                    unreachable!("type_of on an unforced reference")
                }
            },
        }
    }

    /// The source position, when the value was written in the scenario.
    pub(crate) fn span(&self) -> Option<Span> {
        match self {
            Value::Node(n) => Some(n.span),
            _ => None,
        }
    }

    /// The property this value is, if any (`_type` is if/merge/override/order).
    pub(crate) fn prop(&self) -> Option<Prop<'s>> {
        match self {
            Value::Prop(p) => Some((**p).clone()),
            Value::Node(n) => match &n.kind {
                Kind::If(c, v) => Some(Prop::If(Value::Node(c), Value::Node(v))),
                Kind::Merge(xs) => Some(Prop::Merge(xs.iter().map(Value::Node).collect())),
                Kind::Override(p, v) => Some(Prop::Override(*p, Value::Node(v))),
                Kind::Order(p, v) => Some(Prop::Order(*p, Value::Node(v))),
                _ => None,
            },
            _ => None,
        }
    }

    /// The `_type` of a set, if it is a property (cheaper than [`Value::prop`]).
    pub(crate) fn prop_type(&self) -> Option<&'static str> {
        match self {
            Value::Prop(p) => Some(p.type_name()),
            Value::Node(n) => match &n.kind {
                Kind::If(..) => Some("if"),
                Kind::Merge(_) => Some("merge"),
                Kind::Override(..) => Some("override"),
                Kind::Order(..) => Some("order"),
                _ => None,
            },
            _ => None,
        }
    }

    /// The string, for a string in WHNF.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Node(n) => match &n.kind {
                Kind::Str(s) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }

    /// The boolean, for a boolean in WHNF.
    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Node(n) => match n.kind {
                Kind::Bool(b) => Some(b),
                _ => None,
            },
            _ => None,
        }
    }

    /// The integer, for an integer in WHNF.
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Node(n) => match n.kind {
                Kind::Int(i) => Some(i),
                _ => None,
            },
            _ => None,
        }
    }

    /// The float, for a float in WHNF.
    pub(crate) fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Node(n) => match n.kind {
                Kind::Float(f) => Some(f),
                _ => None,
            },
            _ => None,
        }
    }

    /// The elements, for a list in WHNF (iterated in place, not copied).
    pub(crate) fn list_items(&self) -> Option<ListIter<'_, 's>> {
        match self {
            Value::List(xs) => Some(ListIter::Computed(xs.iter())),
            Value::Node(n) => {
                let n: &'s Node = n;
                match &n.kind {
                    Kind::List(xs) => Some(ListIter::Written(xs.iter())),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The attributes, sorted by name, for a set in WHNF (properties included, as data),
    /// iterated in place, not copied.
    pub(crate) fn attr_items(&self) -> Option<AttrIter<'_, 's>> {
        match self {
            Value::Attrs(a) => Some(AttrIter::Computed(a.iter())),
            Value::Prop(p) => Some(AttrIter::Owned(p.as_attrs().into_iter())),
            Value::Node(n) => {
                let n: &'s Node = n;
                match &n.kind {
                    Kind::Map(es) => Some(AttrIter::Written(es.iter())),
                    Kind::If(..) | Kind::Merge(_) | Kind::Override(..) | Kind::Order(..) => {
                        Some(AttrIter::Owned(self.prop()?.as_attrs().into_iter()))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The attribute `name` of a set in WHNF, found by binary search where the entries are
    /// sorted in place: a chain of thousands of `!config` reads into one large set stays linear.
    pub(crate) fn attr_get(&self, name: &str) -> Option<Value<'s>> {
        match self {
            Value::Attrs(a) => a
                .binary_search_by(|(k, _)| k.cmp(&name))
                .ok()
                .map(|i| a[i].1.clone()),
            Value::Node(n) => match &n.kind {
                Kind::Map(es) => es
                    .binary_search_by(|(k, _)| (*k.name).cmp(name))
                    .ok()
                    .map(|i| Value::Node(&es[i].1)),
                _ => self.attr_items()?.find(|(k, _)| *k == name).map(|(_, v)| v),
            },
            _ => self.attr_items()?.find(|(k, _)| *k == name).map(|(_, v)| v),
        }
    }

    /// Builds an attribute set from entries sorted by name.
    pub(crate) fn attrs(entries: Vec<(&'s str, Value<'s>)>) -> Value<'s> {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        Value::Attrs(entries.into())
    }
}

/// The elements of a list value, borrowed where they live.
pub(crate) enum ListIter<'a, 's> {
    /// A computed list.
    Computed(std::slice::Iter<'a, Value<'s>>),
    /// A list written in the scenario.
    Written(std::slice::Iter<'s, Node>),
}

impl<'s> Iterator for ListIter<'_, 's> {
    type Item = Value<'s>;

    fn next(&mut self) -> Option<Value<'s>> {
        match self {
            ListIter::Computed(i) => i.next().cloned(),
            ListIter::Written(i) => i.next().map(Value::Node),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            ListIter::Computed(i) => i.size_hint(),
            ListIter::Written(i) => i.size_hint(),
        }
    }
}

impl ExactSizeIterator for ListIter<'_, '_> {}

impl Default for ListIter<'_, '_> {
    fn default() -> Self {
        ListIter::Written([].iter())
    }
}

/// The attributes of a set value, sorted by name, borrowed where they live.
pub(crate) enum AttrIter<'a, 's> {
    /// A computed set.
    Computed(std::slice::Iter<'a, (&'s str, Value<'s>)>),
    /// A mapping written in the scenario.
    Written(std::slice::Iter<'s, (Key, Node)>),
    /// A property seen as data (built on demand; rare).
    Owned(std::vec::IntoIter<(&'s str, Value<'s>)>),
}

impl<'s> Iterator for AttrIter<'_, 's> {
    type Item = (&'s str, Value<'s>);

    fn next(&mut self) -> Option<(&'s str, Value<'s>)> {
        match self {
            AttrIter::Computed(i) => i.next().map(|(k, v)| (*k, v.clone())),
            AttrIter::Written(i) => i.next().map(|(k, v)| (&*k.name, Value::Node(v))),
            AttrIter::Owned(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            AttrIter::Computed(i) => i.size_hint(),
            AttrIter::Written(i) => i.size_hint(),
            AttrIter::Owned(i) => i.size_hint(),
        }
    }
}

impl ExactSizeIterator for AttrIter<'_, '_> {}

impl Default for AttrIter<'_, '_> {
    fn default() -> Self {
        AttrIter::Owned(Vec::new().into_iter())
    }
}

/// The order of attribute names (bytewise, as Nix sorts them). Names are short, so a byte loop
/// the compiler inlines beats a call to `memcmp`, which showed in the profile of large merges.
pub(crate) fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Nix's `==` on two values: numbers by value, lists and sets deeply. Forces what it compares.
pub(crate) fn equal<'s>(ctx: &Ctx<'s>, a: &Value<'s>, b: &Value<'s>) -> Res<bool> {
    equal_at(ctx, a, b, 0)
}

fn equal_at<'s>(ctx: &Ctx<'s>, a: &Value<'s>, b: &Value<'s>, depth: usize) -> Res<bool> {
    check_depth(depth)?;
    let a = ctx.whnf(a)?;
    let b = ctx.whnf(b)?;
    if let (Value::Node(x), Value::Node(y)) = (&a, &b) {
        if std::ptr::eq(*x, *y) {
            return Ok(true);
        }
    }
    let (ta, tb) = (a.type_of(), b.type_of());
    Ok(match (ta, tb) {
        (TypeOf::Int | TypeOf::Float, TypeOf::Int | TypeOf::Float) => {
            match (a.as_int(), b.as_int()) {
                (Some(x), Some(y)) => x == y,
                _ => to_f64(&a) == to_f64(&b),
            }
        }
        _ if ta != tb => false,
        (TypeOf::Null, _) => true,
        (TypeOf::Bool, _) => a.as_bool() == b.as_bool(),
        (TypeOf::String, _) => a.as_str() == b.as_str(),
        (TypeOf::List, _) => {
            let (xs, ys): (Vec<_>, Vec<_>) = (
                a.list_items().unwrap_or_default().collect(),
                b.list_items().unwrap_or_default().collect(),
            );
            if xs.len() != ys.len() {
                return Ok(false);
            }
            for (x, y) in xs.iter().zip(&ys) {
                if !equal_at(ctx, x, y, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        (TypeOf::Set, _) => {
            let (xs, ys): (Vec<_>, Vec<_>) = (
                a.attr_items().unwrap_or_default().collect(),
                b.attr_items().unwrap_or_default().collect(),
            );
            if xs.len() != ys.len() || xs.iter().zip(&ys).any(|(x, y)| x.0 != y.0) {
                return Ok(false);
            }
            for ((_, x), (_, y)) in xs.iter().zip(&ys) {
                if !equal_at(ctx, x, y, depth + 1)? {
                    return Ok(false);
                }
            }
            true
        }
        _ => false,
    })
}

fn to_f64(v: &Value<'_>) -> f64 {
    v.as_int()
        .map(|i| i as f64)
        .or_else(|| v.as_float())
        .unwrap_or(f64::NAN)
}

/// `lib.generators.toPretty { }`: how Nix shows a value in an error message. Anything that fails
/// to evaluate makes the whole rendering fail (Nix then shows no value).
pub(crate) fn pretty<'s>(ctx: &Ctx<'s>, v: &Value<'s>, indent: &str, depth: usize) -> Res<String> {
    let v = ctx.whnf(v)?;
    if depth > 10 {
        return Ok("<elided>".into());
    }
    Ok(match v.type_of() {
        TypeOf::Null => "null".into(),
        TypeOf::Bool => v.as_bool().unwrap().to_string(),
        TypeOf::Int => v.as_int().unwrap().to_string(),
        TypeOf::Float => format_float(v.as_float().unwrap()),
        TypeOf::String => {
            let s = v.as_str().unwrap();
            if s.contains('\n') {
                let body: Vec<String> = s
                    .split('\n')
                    .map(|l| format!("{indent}  {}", l.replace("''", "'''").replace("${", "''${")))
                    .collect();
                format!("''\n{}''", body.join("\n").trim_end_matches(' '))
            } else {
                path::nix_string(s)
            }
        }
        TypeOf::List => {
            let xs: Vec<_> = v.list_items().unwrap().collect();
            // Every error shows its definitions' values in full (as Nix's `showDefs` renders
            // them before cutting to 5 lines): counted, so that many errors showing one large
            // value stay bounded.
            ctx.spend(xs.len() * PER_ELEMENT, &[])?;
            if xs.is_empty() {
                "[ ]".into()
            } else {
                let inner = format!("{indent}  ");
                let mut out = String::from("[");
                for x in &xs {
                    out.push('\n');
                    out.push_str(&inner);
                    out.push_str(&pretty(ctx, x, &inner, depth + 1)?);
                }
                out.push('\n');
                out.push_str(indent);
                out.push(']');
                out
            }
        }
        TypeOf::Set => {
            let xs: Vec<_> = v.attr_items().unwrap().collect();
            ctx.spend(xs.len() * PER_ATTRIBUTE, &[])?;
            if xs.is_empty() {
                "{ }".into()
            } else {
                let inner = format!("{indent}  ");
                let mut out = String::from("{");
                for (k, x) in &xs {
                    out.push('\n');
                    out.push_str(&inner);
                    path::push_component(&mut out, k);
                    out.push_str(" = ");
                    out.push_str(&pretty(ctx, x, &inner, depth + 1)?);
                    out.push(';');
                }
                out.push('\n');
                out.push_str(indent);
                out.push('}');
                out
            }
        }
    })
}

/// Floats as Nix prints them in messages (`toString`: six decimals).
pub(crate) fn format_float(f: f64) -> String {
    format!("{f:.6}")
}

/// The final value, fully forced (`nix-instantiate --eval --strict`).
pub(crate) fn to_config<'s>(ctx: &Ctx<'s>, v: &Value<'s>) -> Res<Config<'s>> {
    to_config_at(ctx, v, 0)
}

/// Walks of a value (comparing, forcing) go as deep as the value nests, and references can
/// nest it without bound: past [`super::limits::MAX_VALUE_DEPTH`] the walk stops with an error.
pub(crate) fn check_depth(depth: usize) -> Res<()> {
    if depth > super::limits::MAX_VALUE_DEPTH {
        return Err(error(
            ErrorKind::Limit,
            None,
            format!(
                "a value nests deeper than {} levels (lists or sets built by references inside each other)",
                super::limits::MAX_VALUE_DEPTH
            ),
        ));
    }
    Ok(())
}

fn to_config_at<'s>(ctx: &Ctx<'s>, v: &Value<'s>, depth: usize) -> Res<Config<'s>> {
    check_depth(depth)?;
    let v = ctx.whnf(v)?;
    if let Value::Node(n) = v {
        if let Kind::Str(s) = &n.kind {
            return Ok(Config::Str(Cow::Borrowed(s)));
        }
    }
    Ok(match &v {
        Value::Str(s) => Config::Str(Cow::Owned(s.to_string())),
        _ => match v.type_of() {
            TypeOf::Null => Config::Null,
            TypeOf::Bool => Config::Bool(v.as_bool().unwrap_or_default()),
            TypeOf::Int => Config::Int(v.as_int().unwrap_or_default()),
            TypeOf::Float => Config::Float(v.as_float().unwrap_or_default()),
            TypeOf::String => unreachable!("both kinds of string are matched above"),
            TypeOf::List => Config::List(
                v.list_items()
                    .unwrap_or_default()
                    .map(|x| to_config_at(ctx, &x, depth + 1))
                    .collect::<Res<_>>()?,
            ),
            TypeOf::Set => Config::Attrs(
                v.attr_items()
                    .unwrap_or_default()
                    .map(|(k, x)| Ok((k, to_config_at(ctx, &x, depth + 1)?)))
                    .collect::<Res<_>>()?,
            ),
        },
    })
}

/// An error of the given kind, at an option.
pub(crate) fn error(kind: ErrorKind, option: Option<String>, message: String) -> Error {
    Rc::new(Diagnostic::new(kind, option, message))
}
