//! The evaluator: Nix expressions (rnix's syntax tree) to values, lazily, as Nix evaluates
//! them: bindings are thunks forced when first needed, once; a thunk forced while it is
//! being forced is infinite recursion; `with` scopes are looked at only after every
//! lexical binding; attribute sets are sorted by name.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rnix::ast::{self, AstToken, HasEntry, InterpolPart};
use rowan::ast::AstNode;

use super::builtins;
use super::value::{
    bounded, config_used, missing, normalize, type_error, Attr, Attrs, Env, EvalError, Evaluator,
    Fetched, FileCtx, Files, Lambda, Provider, Result, Route, State, Thunk, Value,
};
use crate::scenario::{FileId, FormatPart, Span};

/// Calls nest at most this deep: Nix's own default `max-call-depth`. A level takes about
/// 1.5 KiB of stack (measured: 30,000 levels of `1 + f (n - 1)` in 120 MB), so the 256 MiB
/// stacks evaluation runs on hold it many times over, nested computations included.
pub(crate) const MAX_DEPTH: usize = 10_000;

/// At most this many syntax errors of a file are shown after the first.
const MAX_SYNTAX_ERRORS: usize = 20;

/// Brackets nest at most this deep in a file (rnix's parser stops at 512 levels).
pub(crate) const MAX_NESTING: usize = 256;

/// An evaluation takes at most this many steps (expressions evaluated and functions called):
/// a module that loops for ever is an error, not a hang.
pub(crate) const MAX_STEPS: u64 = 20_000_000;

/// The evaluator's state across files: the files read, the files imported, the depth.
pub(crate) struct Machine<'s> {
    pub(crate) sources: &'s mut dyn Files,
    /// Files `import` may read and `readFile` may read: inside this folder.
    pub(crate) root: PathBuf,
    pub(crate) globals: Rc<HashMap<Rc<str>, Thunk>>,
    imported: HashMap<PathBuf, Value>,
    depth: usize,
    steps: u64,
    /// `lib`, once evaluated.
    pub(crate) lib: Option<Value>,
    /// The file `lib` was read from: an error inside it is reported where it was called.
    lib_file: Option<FileId>,
    /// Where module reading is (see [`Route`]).
    pub(crate) route: Route,
    /// The resolver, answering `config` while it runs a computation.
    provider: Option<Provider<'s>>,
}

thread_local! {
    /// The built-ins, made once per thread: every machine (one per file, one per computation
    /// the resolver runs) starts from the same immutable scope.
    static GLOBALS: Rc<HashMap<Rc<str>, Thunk>> = Rc::new(builtins::globals());
    /// The depth and steps of the evaluations this one runs inside (a computation asks the
    /// resolver for `config.x`, whose definition is another computation): they share one
    /// budget, so nesting them is bounded as one evaluation is.
    static BUDGET: std::cell::Cell<(usize, u64)> = const { std::cell::Cell::new((0, 0)) };
}

impl<'s> Machine<'s> {
    pub(crate) fn new(sources: &'s mut dyn Files, root: PathBuf) -> Machine<'s> {
        let (depth, steps) = BUDGET.with(std::cell::Cell::get);
        Machine {
            sources,
            root,
            globals: GLOBALS.with(Rc::clone),
            imported: HashMap::new(),
            depth,
            steps,
            lib: None,
            lib_file: None,
            route: Route::default(),
            provider: None,
        }
    }

    /// A machine whose `config` is answered by `provider`.
    pub(crate) fn with_provider(
        sources: &'s mut dyn Files,
        root: PathBuf,
        provider: Provider<'s>,
    ) -> Machine<'s> {
        let mut m = Machine::new(sources, root);
        m.provider = Some(provider);
        m
    }

    /// A computation the resolver starts itself (not inside another) has the whole budget.
    pub(crate) fn fresh_budget() {
        BUDGET.with(|b| b.set((0, 0)));
    }

    /// `config.PATH` from the resolver.
    fn fetch(&mut self, path: &Rc<[Box<str>]>) -> Result<Value> {
        let Some(provider) = self.provider.as_mut() else {
            return Err(config_used(path, "here", None));
        };
        let outer = BUDGET.with(|b| b.replace((self.depth, self.steps)));
        let r = provider(path, None);
        let inner = BUDGET.with(|b| b.replace(outer));
        self.steps = self.steps.max(inner.1);
        Ok(fetched_value(path, r?))
    }

    /// Parses `text` (file `file`, in `dir`) and evaluates it to its head.
    pub(crate) fn eval_text(&mut self, file: FileId, dir: &Path, text: &str) -> Result<Value> {
        let ctx = Rc::new(FileCtx::new(file, dir.to_path_buf(), text));
        // Brackets nested past the parser's own limit would cost it time for nothing. Counting
        // bytes bounds the nesting from above; only a file that may nest that deep is
        // tokenized to know.
        let mut bytes_depth = 0usize;
        let mut bytes_max = 0usize;
        for b in text.bytes() {
            match b {
                b'(' | b'[' | b'{' => {
                    bytes_depth += 1;
                    bytes_max = bytes_max.max(bytes_depth);
                }
                b')' | b']' | b'}' => bytes_depth = bytes_depth.saturating_sub(1),
                _ => {}
            }
        }
        if bytes_max > MAX_NESTING {
            check_nesting(&ctx, text)?;
        }
        let parse = rnix::Root::parse(text);
        if let Some((first, rest)) = parse.errors().split_first() {
            // Every error rnix found (up to a bound: after a bad token its recovery can
            // cascade), each once per place.
            let mut e = syntax_error(&ctx, first);
            for more in rest.iter().take(MAX_SYNTAX_ERRORS) {
                let m = syntax_error(&ctx, more);
                let at = m.span.unwrap_or_default();
                if Some(at) != e.span && !e.also.iter().any(|(s, _)| *s == at) {
                    e.also.push((at, m.message));
                }
            }
            return Err(e);
        }
        let root = parse.tree();
        let expr = root
            .expr()
            .ok_or_else(|| EvalError::new(Some(ctx.span_at(0)), "the file holds no expression"))?;
        let env = Env::root(&self.globals, ctx);
        self.eval(&expr, &env)
    }

    /// Evaluates an expression to its head.
    pub(crate) fn eval(&mut self, e: &ast::Expr, env: &Env) -> Result<Value> {
        self.step()?;
        self.nested(|m| m.eval_inner(e, env)).map_err(|mut err| {
            if err.span.is_none() {
                err.span = Some(env.0.file.span(e.syntax()));
            }
            err
        })
    }

    fn eval_inner(&mut self, e: &ast::Expr, env: &Env) -> Result<Value> {
        let here = || Some(env.0.file.span(e.syntax()));
        match e {
            ast::Expr::Literal(l) => match l.kind() {
                ast::LiteralKind::Integer(i) => i.value().map(Value::Int).map_err(|_| {
                    EvalError::new(here(), format!("invalid integer '{}'", i.syntax().text()))
                }),
                ast::LiteralKind::Float(f) => f
                    .value()
                    .map(Value::Float)
                    .map_err(|_| EvalError::new(here(), "invalid float")),
                ast::LiteralKind::Uri(u) => Ok(Value::str(u.syntax().text())),
            },
            ast::Expr::Str(s) => self.string(s.normalized_parts(), env),
            ast::Expr::PathAbs(_) | ast::Expr::PathRel(_) | ast::Expr::PathHome(_) => {
                let p = ast::Path::cast(e.syntax().clone()).expect("a path node");
                self.path(&p, env)
            }
            ast::Expr::PathSearch(p) => {
                let name = p
                    .content()
                    .map(|c| c.syntax().text().to_string())
                    .unwrap_or_default();
                builtins::search_path(self, &name, here())
            }
            ast::Expr::Ident(i) => {
                let name = ident(i);
                self.lookup(&name, env, here())
            }
            ast::Expr::Paren(p) => self.eval(&expr(p.expr(), here())?, env),
            ast::Expr::Root(r) => self.eval(&expr(r.expr(), here())?, env),
            ast::Expr::List(l) => Ok(Value::List(Rc::new(
                l.items().map(|i| Thunk::pending(i, env.clone())).collect(),
            ))),
            ast::Expr::AttrSet(s) => self.attr_set(s, env),
            ast::Expr::LetIn(l) => {
                let scope = env.child();
                let attrs = self.bindings(l, &scope, env)?;
                for (k, a) in attrs.iter() {
                    scope.bind(k.clone(), a.value.clone());
                }
                self.eval(&expr(l.body(), here())?, &scope)
            }
            ast::Expr::LegacyLet(_) => Err(EvalError::new(
                here(),
                "`let { ... }` is a deprecated form isoproof does not evaluate; write `let ... in`",
            )),
            ast::Expr::With(w) => {
                let ns = Thunk::pending(expr(w.namespace(), here())?, env.clone());
                self.eval(&expr(w.body(), here())?, &env.with(ns))
            }
            ast::Expr::Lambda(l) => Ok(Value::Lambda(Rc::new(Lambda {
                param: l
                    .param()
                    .ok_or_else(|| EvalError::new(here(), "a function without a parameter"))?,
                body: expr(l.body(), here())?,
                env: env.clone(),
            }))),
            ast::Expr::Apply(a) => {
                let f = self.eval(&expr(a.lambda(), here())?, env)?;
                let arg = Thunk::pending(expr(a.argument(), here())?, env.clone());
                self.call(&f, arg, here())
            }
            ast::Expr::IfElse(i) => {
                let c = self.eval(&expr(i.condition(), here())?, env)?;
                match c {
                    Value::Bool(true) => self.eval(&expr(i.body(), here())?, env),
                    Value::Bool(false) => self.eval(&expr(i.else_body(), here())?, env),
                    Value::Config(p) => Err(config_used(&p, "as an `if` condition", here())),
                    other => Err(type_error(&other, "a Boolean", here())),
                }
            }
            ast::Expr::Assert(a) => {
                let cond = expr(a.condition(), here())?;
                match self.eval(&cond, env)? {
                    Value::Bool(true) => self.eval(&expr(a.body(), here())?, env),
                    Value::Bool(false) => Err(EvalError::new(
                        Some(env.0.file.span(cond.syntax())),
                        format!("assertion '{}' failed", cond.syntax().text()),
                    )),
                    other => Err(type_error(&other, "a Boolean", here())),
                }
            }
            ast::Expr::Select(s) => self.select(s, env),
            ast::Expr::HasAttr(h) => {
                let mut v = self.eval(&expr(h.expr(), here())?, env)?;
                let path = h
                    .attrpath()
                    .ok_or_else(|| EvalError::new(here(), "`?` without an attribute path"))?;
                for attr in path.attrs() {
                    let name = self.attr_name(&attr, env)?;
                    let Some(name) = name else {
                        return Ok(Value::Bool(false));
                    };
                    match v {
                        Value::Attrs(a) => match a.get(&*name) {
                            Some(x) => v = self.force(&x.value)?,
                            None => return Ok(Value::Bool(false)),
                        },
                        Value::Config(p) => return Err(config_used(&p, "with `?`", here())),
                        Value::Pkgs => v = builtins::package_attr(None, &name),
                        _ => return Ok(Value::Bool(false)),
                    }
                }
                Ok(Value::Bool(true))
            }
            ast::Expr::UnaryOp(u) => {
                let v = self.eval(&expr(u.expr(), here())?, env)?;
                match (u.operator(), v) {
                    (Some(ast::UnaryOpKind::Invert), Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (Some(ast::UnaryOpKind::Negate), Value::Int(i)) => i
                        .checked_neg()
                        .map(Value::Int)
                        .ok_or_else(|| EvalError::new(here(), "integer overflow in negation")),
                    (Some(ast::UnaryOpKind::Negate), Value::Float(f)) => Ok(Value::Float(-f)),
                    (_, Value::Config(p)) => Err(config_used(&p, "in an operator", here())),
                    (Some(ast::UnaryOpKind::Invert), other) => {
                        Err(type_error(&other, "a Boolean", here()))
                    }
                    (_, other) => Err(type_error(&other, "an integer", here())),
                }
            }
            ast::Expr::BinOp(b) => self.bin_op(b, env),
            ast::Expr::CurPos(_) => {
                let s = env.0.file.span(e.syntax());
                Ok(Value::attrs([
                    ("column".into(), Value::Int(i64::from(s.col))),
                    ("file".into(), Value::str(self.file_name(s.file))),
                    ("line".into(), Value::Int(i64::from(s.line))),
                ]))
            }
            ast::Expr::Error(_) => Err(EvalError::new(here(), "syntax error")),
        }
    }

    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(EvalError::new(
                None,
                format!("evaluation takes more than {MAX_STEPS} steps (an endless loop?)"),
            ));
        }
        Ok(())
    }

    /// Looks a name up: lexical bindings first, then `with` scopes from the innermost.
    fn lookup(&mut self, name: &str, env: &Env, at: Option<Span>) -> Result<Value> {
        if let Some(t) = env.lexical(name) {
            return self.force(&t);
        }
        let mut e = Some(env.clone());
        while let Some(scope) = e {
            if let Some(ns) = &scope.0.with {
                match self.force(ns)? {
                    Value::Attrs(a) => {
                        if let Some(x) = a.get(name) {
                            return self.force(&x.value);
                        }
                    }
                    Value::Pkgs => return Ok(builtins::package_attr(None, name)),
                    other => return Err(type_error(&other, "a set", at)),
                }
            }
            e = scope.0.parent.clone();
        }
        Err(EvalError::new(at, format!("undefined variable '{name}'")))
    }

    fn call_inner(&mut self, f: &Value, arg: Thunk, at: Option<Span>) -> Result<Value> {
        match f {
            Value::Lambda(l) => self.nested(|m| m.call_lambda(l, arg, at)),
            Value::Builtin(p) => {
                let mut args = p.args.clone();
                args.push(arg);
                if args.len() < p.builtin.arity() {
                    Ok(Value::Builtin(Rc::new(super::value::Partial {
                        builtin: p.builtin,
                        args,
                    })))
                } else {
                    self.nested(|m| builtins::apply(m, p.builtin, &args, at))
                }
            }
            Value::Attrs(a) if a.contains_key("__functor") => {
                let functor = self.force(&a["__functor"].value)?;
                let this = self.call(&functor, Thunk::value(f.clone()), at)?;
                self.call(&this, arg, at)
            }
            other => Err(EvalError::new(
                at,
                format!(
                    "attempt to call something which is not a function but {}",
                    other.noun()
                ),
            )),
        }
    }

    fn call_lambda(&mut self, l: &Lambda, arg: Thunk, at: Option<Span>) -> Result<Value> {
        let scope = l.env.child();
        match &l.param {
            ast::Param::IdentParam(p) => {
                let name = p.ident().map(|i| ident(&i)).unwrap_or_default();
                scope.bind(name, arg);
            }
            ast::Param::Pattern(pat) => {
                let given = match self.force(&arg)? {
                    Value::Attrs(a) => a,
                    Value::Type(_) => Rc::new(Attrs::new()),
                    other => return Err(type_error(&other, "a set", at)),
                };
                let mut names = Vec::new();
                for entry in pat.pat_entries() {
                    let name = entry.ident().map(|i| ident(&i)).unwrap_or_default();
                    names.push(name.clone());
                    match (given.get(&*name), entry.default()) {
                        (Some(a), _) => scope.bind(name, a.value.clone()),
                        (None, Some(d)) => scope.bind(name, Thunk::pending(d, scope.clone())),
                        (None, None) => {
                            return Err(EvalError::new(
                                at,
                                format!("function called without required argument '{name}'"),
                            ))
                        }
                    }
                }
                if pat.ellipsis_token().is_none() {
                    if let Some(extra) = given.keys().find(|k| !names.iter().any(|n| n == *k)) {
                        return Err(EvalError::new(
                            at,
                            format!("function called with unexpected argument '{extra}'"),
                        ));
                    }
                }
                if let Some(b) = pat.pat_bind().and_then(|b| b.ident()) {
                    scope.bind(ident(&b), arg);
                }
            }
        }
        self.eval(&l.body, &scope)
    }

    fn select(&mut self, s: &ast::Select, env: &Env) -> Result<Value> {
        let here = Some(env.0.file.span(s.syntax()));
        let mut v = self.eval(&expr(s.expr(), here)?, env)?;
        let path = s
            .attrpath()
            .ok_or_else(|| EvalError::new(here, "`.` without an attribute path"))?;
        for attr in path.attrs() {
            let at = Some(env.0.file.span(attr.syntax()));
            let Some(name) = self.attr_name(&attr, env)? else {
                return Err(EvalError::new(at, "attribute name is null"));
            };
            v = match v {
                Value::Config(p) => {
                    if s.default_expr().is_some() {
                        return Err(config_used(&p, "with `or`", at));
                    }
                    let mut p = (*p).clone();
                    p.push(name.to_string().into_boxed_str());
                    Value::Config(Rc::new(p))
                }
                Value::Attrs(a) => match a.get(&*name) {
                    Some(x) => self.force(&x.value)?,
                    None => match s.default_expr() {
                        Some(d) => return self.eval(&d, env),
                        None => return Err(missing(&name, &a, at)),
                    },
                },
                Value::Type(t) => builtins::type_attr(self, &t, &name, at)?,
                Value::Pkgs => builtins::package_attr(None, &name),
                Value::Package(p) => builtins::package_attr(Some(&p), &name),
                other => match s.default_expr() {
                    Some(d) => return self.eval(&d, env),
                    None => return Err(type_error(&other, "a set", at)),
                },
            };
        }
        Ok(v)
    }

    /// An attribute's name: an identifier, a string, or `${e}` (`None` for a null dynamic
    /// name, which defines nothing).
    fn attr_name(&mut self, a: &ast::Attr, env: &Env) -> Result<Option<Rc<str>>> {
        let at = Some(env.0.file.span(a.syntax()));
        match a {
            ast::Attr::Ident(i) => Ok(Some(ident(i))),
            ast::Attr::Str(s) => match self.string(s.normalized_parts(), env)? {
                Value::Str(s) => Ok(Some(s)),
                _ => Err(EvalError::new(
                    at,
                    "an attribute name cannot depend on `config`",
                )),
            },
            ast::Attr::Dynamic(d) => match self.eval(&expr(d.expr(), at)?, env)? {
                Value::Str(s) => Ok(Some(s)),
                Value::Null => Ok(None),
                other => Err(type_error(&other, "a string", at)),
            },
        }
    }

    /// A string with interpolations: each `${e}` coerced as Nix coerces it; `config`
    /// references make a residual string the module system fills in.
    fn string(&mut self, parts: Vec<InterpolPart<String>>, env: &Env) -> Result<Value> {
        let mut out: Vec<FormatPart> = Vec::new();
        let mut text = String::new();
        for part in parts {
            match part {
                InterpolPart::Literal(s) => text.push_str(&s),
                InterpolPart::Interpolation(i) => {
                    let at = Some(env.0.file.span(i.syntax()));
                    let v = self.eval(&expr(i.expr(), at)?, env)?;
                    match v {
                        Value::Config(p) => {
                            if !text.is_empty() {
                                out.push(FormatPart::Text(std::mem::take(&mut text).into()));
                            }
                            out.push(FormatPart::Ref((*p).clone()));
                        }
                        Value::Format(parts) => {
                            for p in parts.iter() {
                                match p {
                                    FormatPart::Text(t) => text.push_str(t),
                                    part @ (FormatPart::Ref(_) | FormatPart::Name) => {
                                        if !text.is_empty() {
                                            out.push(FormatPart::Text(
                                                std::mem::take(&mut text).into(),
                                            ));
                                        }
                                        out.push(part.clone());
                                    }
                                }
                            }
                        }
                        v => text.push_str(&self.coerce(&v, false, at)?),
                    }
                }
            }
        }
        if out.is_empty() {
            return bounded(text, None);
        }
        if !text.is_empty() {
            out.push(FormatPart::Text(text.into()));
        }
        Ok(Value::Format(Rc::new(out)))
    }

    fn path(&mut self, p: &ast::Path, env: &Env) -> Result<Value> {
        let at = Some(env.0.file.span(p.syntax()));
        let mut s = String::new();
        for part in p.parts() {
            match part {
                InterpolPart::Literal(c) => s.push_str(c.syntax().text()),
                InterpolPart::Interpolation(i) => {
                    let v = self.eval(&expr(i.expr(), at)?, env)?;
                    s.push_str(&self.coerce(&v, false, at)?);
                }
            }
        }
        let full =
            match p {
                ast::Path::PathHome(_) => return Err(EvalError::new(
                    at,
                    "home-relative paths (`~/...`) depend on the user running isoproof; refused",
                )),
                ast::Path::PathAbs(_) => PathBuf::from(&s),
                _ => env.0.file.dir.join(&s),
            };
        Ok(Value::Path(Rc::new(normalize(&full))))
    }

    fn attr_set(&mut self, s: &ast::AttrSet, env: &Env) -> Result<Value> {
        if s.rec_token().is_some() {
            let scope = env.child();
            let attrs = self.bindings(s, &scope, env)?;
            for (k, a) in attrs.iter() {
                scope.bind(k.clone(), a.value.clone());
            }
            Ok(Value::Attrs(Rc::new(attrs)))
        } else {
            Ok(Value::Attrs(Rc::new(self.bindings(s, env, env)?)))
        }
    }

    /// The bindings of a set or `let`: values in `values` (the set's own scope when
    /// recursive), `inherit x` from `outer`. Nested paths (`a.b = 1; a.c = 2;`) and literal
    /// sets at the same name merge, as in Nix.
    fn bindings(&mut self, node: &impl HasEntry, values: &Env, outer: &Env) -> Result<Attrs> {
        let mut tree = Tree::default();
        self.collect(node, values, outer, &mut tree)?;
        Ok(tree.into_attrs(values))
    }

    fn collect(
        &mut self,
        node: &impl HasEntry,
        values: &Env,
        outer: &Env,
        tree: &mut Tree,
    ) -> Result<()> {
        for entry in node.entries() {
            match entry {
                ast::Entry::Inherit(i) => {
                    let from = i.from().and_then(|f| f.expr());
                    for attr in i.attrs() {
                        let at = Some(values.0.file.span(attr.syntax()));
                        let Some(name) = self.attr_name(&attr, outer)? else {
                            continue;
                        };
                        let t = match &from {
                            Some(f) => {
                                let src = Thunk::pending(f.clone(), outer.clone());
                                builtins::lazy_select(src, name.clone(), at)
                            }
                            None => match outer.lexical(&name) {
                                Some(t) => t,
                                None => builtins::lazy_lookup(outer.clone(), name.clone(), at),
                            },
                        };
                        tree.insert(&[name], Leaf::Thunk(t), at)?;
                    }
                }
                ast::Entry::AttrpathValue(av) => {
                    let at = Some(values.0.file.span(av.syntax()));
                    let path = av
                        .attrpath()
                        .ok_or_else(|| EvalError::new(at, "a binding without a name"))?;
                    let mut names = Vec::new();
                    let mut skip = false;
                    for attr in path.attrs() {
                        match self.attr_name(&attr, values)? {
                            Some(n) => names.push(n),
                            None => skip = true,
                        }
                    }
                    if skip {
                        continue;
                    }
                    let value = expr(av.value(), at)?;
                    match &value {
                        ast::Expr::AttrSet(inner) if inner.rec_token().is_none() => {
                            tree.open(&names, at)?;
                            let mut sub = Tree::default();
                            self.collect(inner, values, values, &mut sub)?;
                            tree.merge_into(&names, sub, at)?;
                        }
                        _ => tree.insert(&names, Leaf::Expr(value), at)?,
                    }
                }
            }
        }
        Ok(())
    }

    fn bin_op(&mut self, b: &ast::BinOp, env: &Env) -> Result<Value> {
        use ast::BinOpKind as K;
        let at = Some(env.0.file.span(b.syntax()));
        let op = b
            .operator()
            .ok_or_else(|| EvalError::new(at, "unknown operator"))?;
        let lhs = expr(b.lhs(), at)?;
        let rhs = expr(b.rhs(), at)?;
        let bool_of = |v: Value, at| match v {
            Value::Bool(x) => Ok(x),
            Value::Config(p) => Err(config_used(&p, "in a Boolean operator", at)),
            other => Err(type_error(&other, "a Boolean", at)),
        };
        match op {
            K::And => {
                if !bool_of(self.eval(&lhs, env)?, at)? {
                    return Ok(Value::Bool(false));
                }
                Ok(Value::Bool(bool_of(self.eval(&rhs, env)?, at)?))
            }
            K::Or => {
                if bool_of(self.eval(&lhs, env)?, at)? {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(bool_of(self.eval(&rhs, env)?, at)?))
            }
            K::Implication => {
                if !bool_of(self.eval(&lhs, env)?, at)? {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(bool_of(self.eval(&rhs, env)?, at)?))
            }
            K::PipeLeft | K::PipeRight => Err(EvalError::new(
                at,
                "the pipe operators are an experimental Nix feature isoproof does not evaluate",
            )),
            _ => {
                let l = self.eval(&lhs, env)?;
                let r = self.eval(&rhs, env)?;
                builtins::binary(self, op, &l, &r, at)
            }
        }
    }
}

impl Evaluator for Machine<'_> {
    /// `import path`: the file's value, evaluated once per path.
    fn import(&mut self, path: &Path, at: Option<Span>) -> Result<Value> {
        let path = if path.is_dir() {
            path.join("default.nix")
        } else {
            path.to_path_buf()
        };
        if let Some(v) = self.imported.get(&path) {
            return Ok(v.clone());
        }
        let text = self.read_text(&path, at)?;
        // Shown as the scenario's other files are: from the scenario's folder.
        let display = path
            .strip_prefix(&self.root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let file = self.sources.add(display, path.clone(), text.clone());
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let v = self.eval_text(file, &dir, &text)?;
        self.imported.insert(path, v.clone());
        Ok(v)
    }
    /// A file's text, inside the scenario's folder, bounded as every scenario file is.
    fn read_text(&self, path: &Path, at: Option<Span>) -> Result<String> {
        if crate::scenario::nixos::is_builtin(path) {
            return Err(EvalError::new(
                at,
                format!(
                    "{} is in isoproof's own <nixpkgs>, whose modules are imported by listing them in a module's `imports`, not read as Nix expressions",
                    crate::scenario::nixos::shown(path)
                ),
            ));
        }
        let canon = std::fs::canonicalize(path)
            .map_err(|e| EvalError::new(at, format!("cannot read {}: {e}", path.display())))?;
        let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
        if !canon.starts_with(&root) {
            return Err(EvalError::new(
                at,
                format!(
                    "{} is outside the scenario's folder {}; isoproof reads only files inside it",
                    path.display(),
                    root.display()
                ),
            ));
        }
        let bytes = crate::input::read_regular(&canon, crate::input::MAX_TEXT)
            .map_err(|e| EvalError::new(at, e.to_string()))?;
        String::from_utf8(bytes)
            .map_err(|_| EvalError::new(at, format!("{} is not valid UTF-8", path.display())))
    }
    /// Forces a thunk to its head.
    fn force(&mut self, t: &Thunk) -> Result<Value> {
        let state = std::mem::replace(&mut *t.0.borrow_mut(), State::Forcing);
        match state {
            State::Done(v) => {
                *t.0.borrow_mut() = State::Done(v.clone());
                Ok(v)
            }
            State::Forcing => Err(EvalError::new(None, "infinite recursion encountered")),
            State::Fetch(p) => {
                let r = self.fetch(&p);
                *t.0.borrow_mut() = match &r {
                    Ok(v) => State::Done(v.clone()),
                    Err(_) => State::Fetch(p),
                };
                r
            }
            State::Error(msg) => {
                *t.0.borrow_mut() = State::Error(msg.clone());
                Err(EvalError::new(None, msg.to_string()))
            }
            State::Select(src, name, at) => {
                let r = self.force(&src).and_then(|v| match v {
                    Value::Attrs(a) => match a.get(&*name) {
                        Some(x) => self.force(&x.value),
                        None => Err(missing(&name, &a, at)),
                    },
                    other => Err(type_error(&other, "a set", at)),
                });
                *t.0.borrow_mut() = match &r {
                    Ok(v) => State::Done(v.clone()),
                    Err(_) => State::Select(src, name, at),
                };
                r
            }
            State::Pending(e, env) => match self.eval(&e, &env) {
                Ok(v) => {
                    *t.0.borrow_mut() = State::Done(v.clone());
                    Ok(v)
                }
                Err(mut err) => {
                    if err.span.is_none() {
                        err.span = Some(env.0.file.span(e.syntax()));
                    }
                    *t.0.borrow_mut() = State::Pending(e, env);
                    Err(err)
                }
            },
        }
    }
    /// Forces a value and everything in it (`builtins.deepSeq`, `--strict`).
    fn deep_force(&mut self, v: &Value) -> Result<()> {
        match v {
            Value::List(xs) => {
                for x in xs.iter() {
                    let v = self.force(x)?;
                    self.nested(|m| m.deep_force(&v))?;
                }
            }
            Value::Attrs(a) => {
                for attr in a.values() {
                    let v = self.force(&attr.value)?;
                    self.nested(|m| m.deep_force(&v))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    /// Runs `f` one level deeper, refusing past [`MAX_DEPTH`].
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(EvalError::new(
                None,
                format!("evaluation nests deeper than {MAX_DEPTH} calls (stack overflow; possible infinite recursion)"),
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }
    /// Calls a function with one argument.
    fn call(&mut self, f: &Value, arg: Thunk, at: Option<Span>) -> Result<Value> {
        self.step()?;
        let lib_file = self.lib_file;
        self.call_inner(f, arg, at).map_err(|mut e| {
            // An error inside `lib` is the caller's: point at the call.
            if at.is_some() && lib_file.is_some() && e.span.map(|s| s.file) == lib_file {
                e.span = at;
            }
            e
        })
    }

    /// Coerces a value to a string as `"${v}"` does (or `toString v`, which also takes
    /// numbers, Booleans, null and lists).
    fn coerce(&mut self, v: &Value, to_string: bool, at: Option<Span>) -> Result<String> {
        Ok(match v {
            Value::Str(s) => s.to_string(),
            Value::Path(p) if to_string => p.display().to_string(),
            // A path already in the store is not copied again: `"${modulesPath}/…"`.
            Value::Path(p) if p.starts_with("/nix/store") => p.display().to_string(),
            Value::Path(p) => {
                return Err(EvalError::new(
                    at,
                    format!(
                        "interpolating the path {} would copy it into the Nix store, which isoproof does not model; use `toString` for the path's name",
                        p.display()
                    ),
                ))
            }
            Value::Attrs(a) if a.contains_key("__toString") => {
                let f = self.force(&a["__toString"].value)?;
                let r = self.call(&f, Thunk::value(v.clone()), at)?;
                self.coerce(&r, to_string, at)?
            }
            Value::Attrs(a) if a.contains_key("outPath") => {
                let o = self.force(&a["outPath"].value)?;
                self.coerce(&o, to_string, at)?
            }
            Value::Package(p) => p.out_path(),
            Value::Int(i) if to_string => i.to_string(),
            Value::Float(f) if to_string => format!("{f:.6}"),
            Value::Bool(b) if to_string => if *b { "1".into() } else { String::new() },
            Value::Null if to_string => String::new(),
            Value::List(xs) if to_string => {
                let mut parts = Vec::new();
                for x in xs.iter() {
                    let v = self.force(x)?;
                    parts.push(self.coerce(&v, true, at)?);
                }
                parts.join(" ")
            }
            Value::Config(p) => return Err(config_used(p, "as a string here", at)),
            Value::Format(parts) => return Err(super::value::format_used(parts, at)),
            other => {
                return Err(EvalError::new(
                    at,
                    format!("cannot coerce {} to a string", other.noun()),
                ))
            }
        })
    }

    fn lib(&mut self) -> Result<Value> {
        if let Some(v) = &self.lib {
            return Ok(v.clone());
        }
        // No path: the text is isoproof's own, not a file of the scenario.
        let file = self.sources.add(
            super::LIB_NAME.into(),
            std::path::PathBuf::new(),
            super::LIB.into(),
        );
        self.lib_file = Some(file);
        let v = self.eval_text(file, Path::new("/"), super::LIB)?;
        self.lib = Some(v.clone());
        Ok(v)
    }

    fn file_name(&self, file: FileId) -> String {
        self.sources.display(file).to_string()
    }

    fn route(&mut self) -> &mut Route {
        &mut self.route
    }

    fn config_root(&mut self) -> Result<Value> {
        if self.provider.is_none() {
            return Ok(Value::Config(Rc::new(Vec::new())));
        }
        self.force(&Thunk(Rc::new(std::cell::RefCell::new(State::Fetch(
            Rc::from(Vec::new()),
        )))))
    }
}

impl Drop for Machine<'_> {
    /// The steps taken count for the evaluation this one ran inside.
    fn drop(&mut self) {
        let steps = self.steps;
        BUDGET.with(|b| b.set((b.get().0, steps)));
    }
}

/// The resolver's answer as a Nix value; a set's attributes are asked for when read.
pub(crate) fn fetched_value(path: &[Box<str>], f: Fetched) -> Value {
    match f {
        Fetched::Null => Value::Null,
        Fetched::Bool(b) => Value::Bool(b),
        Fetched::Int(i) => Value::Int(i),
        Fetched::Float(x) => Value::Float(x),
        Fetched::Str(s) => Value::Str(Rc::from(s)),
        Fetched::List(xs) => Value::List(Rc::new(
            xs.into_iter()
                .map(|x| Thunk::value(fetched_value(&[], x)))
                .collect(),
        )),
        Fetched::Attrs(kv) => Value::Attrs(Rc::new(
            kv.into_iter()
                .map(|(k, v)| {
                    let a = Attr {
                        value: Thunk::value(fetched_value(&[], v)),
                        span: None,
                    };
                    (Rc::from(k), a)
                })
                .collect(),
        )),
        Fetched::Names(ns) => Value::Attrs(Rc::new(
            ns.into_iter()
                .map(|n| {
                    let mut p = path.to_vec();
                    p.push(n.clone().into_boxed_str());
                    let a = Attr {
                        value: Thunk(Rc::new(std::cell::RefCell::new(State::Fetch(Rc::from(p))))),
                        span: None,
                    };
                    (Rc::from(n), a)
                })
                .collect(),
        )),
    }
}

/// One level of a set's bindings while they are collected.
#[derive(Default)]
struct Tree {
    items: BTreeMap<Rc<str>, (Node, Option<Span>)>,
}

enum Node {
    Leaf(Leaf),
    Set(Tree),
}

enum Leaf {
    Expr(ast::Expr),
    Thunk(Thunk),
}

impl Tree {
    fn insert(&mut self, names: &[Rc<str>], leaf: Leaf, at: Option<Span>) -> Result<()> {
        let (last, parents) = names.split_last().expect("a binding has a name");
        let t = self.walk(parents, at)?;
        if t.items.contains_key(last) {
            return Err(already(names, at));
        }
        t.items.insert(last.clone(), (Node::Leaf(leaf), at));
        Ok(())
    }

    fn open(&mut self, names: &[Rc<str>], at: Option<Span>) -> Result<()> {
        self.walk(names, at).map(|_| ())
    }

    fn merge_into(&mut self, names: &[Rc<str>], sub: Tree, at: Option<Span>) -> Result<()> {
        let t = self.walk(names, at)?;
        for (k, v) in sub.items {
            if t.items.contains_key(&k) {
                let mut full = names.to_vec();
                full.push(k);
                return Err(already(&full, at));
            }
            t.items.insert(k, v);
        }
        Ok(())
    }

    fn walk(&mut self, names: &[Rc<str>], at: Option<Span>) -> Result<&mut Tree> {
        let mut t = self;
        for (i, n) in names.iter().enumerate() {
            let entry = t
                .items
                .entry(n.clone())
                .or_insert_with(|| (Node::Set(Tree::default()), at));
            t = match &mut entry.0 {
                Node::Set(s) => s,
                Node::Leaf(_) => return Err(already(&names[..=i], at)),
            };
        }
        Ok(t)
    }

    fn into_attrs(self, env: &Env) -> Attrs {
        self.items
            .into_iter()
            .map(|(k, (node, span))| {
                let value = match node {
                    Node::Leaf(Leaf::Expr(e)) => Thunk::pending(e, env.clone()),
                    Node::Leaf(Leaf::Thunk(t)) => t,
                    Node::Set(s) => Thunk::value(Value::Attrs(Rc::new(s.into_attrs(env)))),
                };
                (k, Attr { value, span })
            })
            .collect()
    }
}

fn already(names: &[Rc<str>], at: Option<Span>) -> EvalError {
    let shown: Vec<&str> = names.iter().map(|n| &**n).collect();
    EvalError::new(
        at,
        format!("attribute '{}' already defined", shown.join(".")),
    )
}

fn ident(i: &ast::Ident) -> Rc<str> {
    i.syntax().text().to_string().into()
}

fn expr(e: Option<ast::Expr>, at: Option<Span>) -> Result<ast::Expr> {
    e.ok_or_else(|| EvalError::new(at, "syntax error: an expression is missing"))
}

/// Fails when brackets nest deeper than [`MAX_NESTING`] in `text`'s tokens.
fn check_nesting(ctx: &FileCtx, text: &str) -> Result<()> {
    let mut depth = 0usize;
    let mut offset = 0usize;
    for (kind, t) in rnix::tokenize(text) {
        use rnix::SyntaxKind as K;
        match kind {
            K::TOKEN_L_PAREN | K::TOKEN_L_BRACK | K::TOKEN_L_BRACE | K::TOKEN_INTERPOL_START => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(EvalError::new(
                        Some(ctx.span_at(offset)),
                        format!("syntax error: brackets nest deeper than {MAX_NESTING}"),
                    ));
                }
            }
            K::TOKEN_R_PAREN | K::TOKEN_R_BRACK | K::TOKEN_R_BRACE | K::TOKEN_INTERPOL_END => {
                depth = depth.saturating_sub(1)
            }
            _ => {}
        }
        offset += t.len();
    }
    Ok(())
}

/// A token as Nix's parser names it in its messages (`'}'`, `';'`, `ID`).
fn token_name(k: rnix::SyntaxKind) -> String {
    use rnix::SyntaxKind as K;
    let text = match k {
        K::TOKEN_ADD => "'+'",
        K::TOKEN_AND_AND => "'&&'",
        K::TOKEN_ASSIGN => "'='",
        K::TOKEN_ASSERT => "'assert'",
        K::TOKEN_AT => "'@'",
        K::TOKEN_COLON => "':'",
        K::TOKEN_COMMA => "','",
        K::TOKEN_CONCAT => "'++'",
        K::TOKEN_DIV => "'/'",
        K::TOKEN_DOT => "'.'",
        K::TOKEN_ELLIPSIS => "'...'",
        K::TOKEN_ELSE => "'else'",
        K::TOKEN_EQUAL => "'=='",
        K::TOKEN_IDENT => "ID",
        K::TOKEN_IF => "'if'",
        K::TOKEN_IMPLICATION => "'->'",
        K::TOKEN_IN => "'in'",
        K::TOKEN_INHERIT => "'inherit'",
        K::TOKEN_INTEGER => "INT",
        K::TOKEN_FLOAT => "FLOAT",
        K::TOKEN_INTERPOL_END => "'}'",
        K::TOKEN_INTERPOL_START => "'${'",
        K::TOKEN_INVERT => "'!'",
        K::TOKEN_L_BRACE => "'{'",
        K::TOKEN_L_BRACK => "'['",
        K::TOKEN_L_PAREN => "'('",
        K::TOKEN_LESS => "'<'",
        K::TOKEN_LESS_OR_EQ => "'<='",
        K::TOKEN_LET => "'let'",
        K::TOKEN_MORE => "'>'",
        K::TOKEN_MORE_OR_EQ => "'>='",
        K::TOKEN_MUL => "'*'",
        K::TOKEN_NOT_EQUAL => "'!='",
        K::TOKEN_OR => "'or'",
        K::TOKEN_OR_OR => "'||'",
        K::TOKEN_QUESTION => "'?'",
        K::TOKEN_R_BRACE => "'}'",
        K::TOKEN_R_BRACK => "']'",
        K::TOKEN_R_PAREN => "')'",
        K::TOKEN_REC => "'rec'",
        K::TOKEN_SEMICOLON => "';'",
        K::TOKEN_STRING_START | K::TOKEN_STRING_END => "'\"'",
        K::TOKEN_SUB => "'-'",
        K::TOKEN_THEN => "'then'",
        K::TOKEN_UPDATE => "'//'",
        K::TOKEN_WITH => "'with'",
        K::TOKEN_PATH_ABS | K::TOKEN_PATH_REL | K::TOKEN_PATH_HOME => "PATH",
        K::TOKEN_PATH_SEARCH => "SPATH",
        K::TOKEN_URI => "URI",
        other => {
            return format!("{other:?}")
                .to_lowercase()
                .replace("token_", "")
                .replace("node_", "")
        }
    };
    text.to_string()
}

fn syntax_error(ctx: &FileCtx, e: &rnix::ParseError) -> EvalError {
    use rnix::ParseError as P;
    let (at, what) = match e {
        P::Unexpected(r) => (Some(r.start()), "unexpected input".to_string()),
        P::UnexpectedExtra(r) => (
            Some(r.start()),
            "unexpected input after the expression".to_string(),
        ),
        P::UnexpectedWanted(got, r, want) => (
            Some(r.start()),
            format!(
                "unexpected {}, expecting {}",
                token_name(*got),
                want.iter()
                    .map(|k| token_name(*k))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ),
        P::UnexpectedDoubleBind(r) => (Some(r.start()), "a pattern bound twice".to_string()),
        P::DuplicatedArgs(r, name) => (
            Some(r.start()),
            format!("duplicate formal function argument '{name}'"),
        ),
        P::UnexpectedEOF => (None, "unexpected end of file".to_string()),
        P::UnexpectedEOFWanted(want) => (
            None,
            format!(
                "unexpected end of file, expecting {}",
                want.iter()
                    .map(|k| token_name(*k))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        ),
        P::RecursionLimitExceeded => (None, "the expression nests too deeply".to_string()),
        other => (None, other.to_string()),
    };
    let offset = at.map_or(ctx.text.len(), usize::from);
    EvalError::new(Some(ctx.span_at(offset)), format!("syntax error, {what}"))
}
