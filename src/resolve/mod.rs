//! Stage 2, **resolve**: the NixOS module system (`lib.evalModules`) over a loaded scenario.
//!
//! The steps and their names follow `lib/modules.nix`:
//! 1. `collectModules`: imports breadth-first, duplicates dropped, then the list **reversed**;
//! 2. `mergeOptionDecls` builds the option tree (`options::OptTree`);
//! 3. `mergeModules'` routes definitions, pushing properties down above options
//!    (`options::merge_level`, `properties::push_down_properties`);
//! 4. per option, `evalOptionValue` → `merge_definitions`: `dischargeProperties` →
//!    `filterOverrides` → `sortProperties` → type check and merge (`types`).
//!
//! Evaluation is lazy with memoisation (`value::Lazy`), so `!config` references and `mkIf`
//! conditions on config values work as the fixpoint does in Nix, and a cycle is reported with
//! the chain of options that form it.

pub mod config;
pub mod de;
mod explain;
pub mod functions;
pub(crate) mod limits;
mod messages;
pub(crate) mod options;
pub(crate) mod priority;
pub(crate) mod properties;
pub(crate) mod types;
pub(crate) mod value;

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};

pub use config::Config;
pub(crate) use explain::{definition_sites, element_sites};
pub use explain::{explain, Explained};

use crate::diag::{Diagnostic, ErrorKind};
use crate::scenario::{path, FormatPart, Kind, Scenario, Span};
use options::{merge_level, OptDecl, OptTree};
use properties::{discharge_properties, filter_overrides, override_priority, sort_properties};
use types::{check_and_merge, Ty};
use value::{Error, Lazy, Res, TypeOf, Value};

/// One definition of an option: where it comes from and its (raw, then stripped) value.
#[derive(Clone)]
pub(crate) struct Def<'s> {
    /// The module it was written in (index into [`Scenario::modules`]).
    pub file: u32,
    /// Where its value was written.
    pub span: Span,
    /// The value.
    pub value: Value<'s>,
    /// Whether this is the option's `default` (wrapped in `mkOptionDefault`, priority 1500).
    pub is_default: bool,
    /// The `mkOrder` priority it had, once sorted.
    pub order: Option<f64>,
}

/// What `mergeDefinitions` keeps before merging: the winning definitions, sorted.
pub(crate) struct Prepared<'s> {
    /// The definitions that won, in merge order.
    pub defs: Vec<Def<'s>>,
}

impl<'s> Prepared<'s> {
    /// `mergedValue`: type check and merge, or the type's empty value, or "no value defined".
    pub fn value(&self, ctx: &Ctx<'s>, loc: &[&'s str], ty: &Rc<Ty<'s>>) -> Res<Value<'s>> {
        if self.defs.is_empty() {
            return match ty.empty_value(ctx, loc) {
                Some(v) => v,
                None => Err(messages::undefined(loc)),
            };
        }
        check_and_merge(ctx, loc, ty, &self.defs)
    }

    /// The merged value: computed now when no definition reads other options, else a thunk.
    pub fn into_value(self, ctx: &Ctx<'s>, loc: Vec<&'s str>, ty: Rc<Ty<'s>>) -> Res<Value<'s>> {
        let is_static = self
            .defs
            .iter()
            .all(|d| matches!(d.value, Value::Node(n) if !n.is_dynamic()));
        if is_static {
            return self.value(ctx, &loc, &ty);
        }
        Ok(Value::Lazy(Lazy::new(Some(loc.into()), move |ctx, loc| {
            self.value(ctx, loc, &ty)
        })))
    }
}

/// `mergeDefinitions` up to the merge: discharge, filter overrides, sort.
pub(crate) fn merge_definitions<'s>(
    ctx: &Ctx<'s>,
    loc: &[&'s str],
    ty: &Rc<Ty<'s>>,
    defs: Vec<Def<'s>>,
) -> Res<Prepared<'s>> {
    let tracing = ctx.tracing(loc);
    let raw = if tracing { defs.clone() } else { Vec::new() };
    let mut origin = Vec::new();
    // Most definitions are plain data with nothing to discharge; they are kept where they are.
    let discharged = if !tracing && !defs.iter().any(properties::needs_discharge) {
        defs
    } else {
        let mut discharged = Vec::with_capacity(defs.len());
        for (i, d) in defs.into_iter().enumerate() {
            let before = discharged.len();
            discharge_properties(ctx, d, &mut discharged)?;
            if tracing {
                origin.extend(std::iter::repeat_n(i, discharged.len() - before));
            }
        }
        discharged
    };
    let prios: Vec<f64> = if tracing {
        discharged.iter().map(override_priority).collect()
    } else {
        Vec::new()
    };
    let (kept, highest) = filter_overrides(discharged);
    let defs = sort_properties(ctx, kept)?;
    if tracing {
        ctx.record_trace(
            loc,
            ty,
            explain::Step {
                raw,
                origin,
                prios,
                highest,
                winners: defs.clone(),
            },
        );
    }
    Ok(Prepared { defs })
}

enum Frame<'s> {
    Lazy(Rc<Lazy<'s>>),
    Ref(Span, &'s [Box<str>]),
    Format(Span),
    /// A `.nix` definition being computed (it read `config.NEEDS` first).
    Nix(Span, &'s [Box<str>]),
}

/// The evaluation context: the scenario, the config fixpoint and the evaluation stack.
pub(crate) struct Ctx<'s> {
    /// The scenario being resolved.
    pub scenario: &'s Scenario,
    root: RefCell<Option<Rc<Lazy<'s>>>>,
    stack: RefCell<Vec<Frame<'s>>>,
    reported: RefCell<Vec<Error>>,
    trace: Option<explain::Tracer<'s>>,
    /// Nested evaluations allowed at once (see [`limits::MAX_FRAMES`]).
    max_frames: usize,
    /// List elements and string bytes produced so far (see [`limits::MAX_WORK`]).
    work: std::cell::Cell<u64>,
    /// The first bound passed, kept because an error showing a value drops the value's
    /// error (as Nix's `showDefs` does): the run must still say it stopped short.
    limit: RefCell<Option<Error>>,
    /// Errors found past [`limits::MAX_ERRORS`] and not made.
    omitted: std::cell::Cell<usize>,
    /// Definitions of renamed and aliased options, by the option they lead to.
    redirects: RefCell<HashMap<Vec<String>, Vec<Def<'s>>>>,
    /// The `.nix` computations' shared evaluation (see [`crate::scenario::NixSession`]).
    nix: crate::scenario::NixSession,
}

impl<'s> Ctx<'s> {
    /// Definitions as messages show them: the module's name, the value as `toPretty`
    /// writes it (an option's default as the `mkOptionDefault` it is), and what it is.
    pub(crate) fn shown(&self, defs: &[Def<'s>]) -> Vec<messages::Shown> {
        defs.iter().map(|d| self.shown_one(d)).collect()
    }

    /// One definition as messages show it.
    pub(crate) fn shown_one(&self, d: &Def<'s>) -> messages::Shown {
        let pretty = value::pretty(self, &d.value, "", 0);
        let (value, role) = if d.is_default {
            (
                Some(format!(
                    "{{ _type = \"override\"; content = {}; priority = 1500; }}",
                    pretty.unwrap_or_default()
                )),
                "option default".to_string(),
            )
        } else {
            let role = match d.value.prop() {
                Some(value::Prop::Override(p, _)) => {
                    format!("definition, {}", priority::override_name(p))
                }
                _ => "definition".to_string(),
            };
            (pretty.ok(), role)
        };
        messages::Shown {
            file: self.file_name(d.file).to_string(),
            span: d.span,
            value,
            role,
        }
    }

    fn new(scenario: &'s Scenario, trace: Option<explain::Tracer<'s>>, max_frames: usize) -> Self {
        Ctx {
            scenario,
            root: RefCell::new(None),
            stack: RefCell::new(Vec::new()),
            reported: RefCell::new(Vec::new()),
            trace,
            max_frames,
            work: std::cell::Cell::new(0),
            limit: RefCell::new(None),
            omitted: std::cell::Cell::new(0),
            redirects: RefCell::new(HashMap::new()),
            nix: Default::default(),
        }
    }

    /// Charges `bytes` of values just built (see [`limits::MAX_WORK`]); past the bound in
    /// all, evaluation stops with a `limit` error naming the option being evaluated.
    pub(crate) fn spend(&self, bytes: usize, loc: &[&str]) -> Res<()> {
        let w = self.work.get().saturating_add(bytes as u64);
        self.work.set(w);
        if w > limits::MAX_WORK {
            let option = (!loc.is_empty()).then(|| path::show(loc));
            let at = option
                .as_ref()
                .map_or(String::new(), |o| format!("in `{o}`: "));
            return Err(self.limit_passed(value::error(
                ErrorKind::Limit,
                option,
                format!(
                    "{at}evaluation would build more than {} MiB of values in all (values that double with every reference?); isoproof stops here",
                    limits::MAX_WORK >> 20
                ),
            )));
        }
        Ok(())
    }

    /// Notes the first bound passed (see [`Ctx::limit`]) and gives back its error.
    fn limit_passed(&self, e: Error) -> Error {
        self.limit.borrow_mut().get_or_insert_with(|| e.clone());
        e
    }

    /// Whether another error may be made in full; if not, it is counted instead.
    pub(crate) fn room_for_error(&self, made: usize) -> bool {
        if made < limits::MAX_ERRORS {
            return true;
        }
        self.omitted.set(self.omitted.get() + 1);
        false
    }

    /// Whether one more nested evaluation is allowed; if not, the error names the chain.
    fn deeper(&self) -> Res<()> {
        let stack = self.stack.borrow();
        if stack.len() < self.max_frames {
            return Ok(());
        }
        let labels: Vec<String> = stack
            .iter()
            .filter_map(|f| match f {
                Frame::Lazy(l) => l.label(),
                _ => None,
            })
            .collect();
        let shown = if labels.len() > 6 {
            format!(
                "{} → … {} more … → {}",
                labels[..3].join(" → "),
                labels.len() - 6,
                labels[labels.len() - 3..].join(" → ")
            )
        } else {
            labels.join(" → ")
        };
        let d = Diagnostic::new(
            ErrorKind::Limit,
            labels.first().cloned(),
            format!(
                "references nest more than {} evaluations deep: {shown}",
                self.max_frames
            ),
        );
        Err(self.limit_passed(Rc::new(d)))
    }

    /// The shown name of module `i` (the "file" in Nix's messages).
    pub fn file_name(&self, i: u32) -> &'s str {
        &self.scenario.modules[i as usize].name
    }

    /// Sends a definition of a renamed or aliased option to the option it leads to.
    pub(crate) fn redirect(&self, to: Vec<String>, d: Def<'s>) {
        self.redirects.borrow_mut().entry(to).or_default().push(d);
    }

    /// The definitions sent to the option at `loc`.
    pub(crate) fn redirected(&self, loc: &[&str]) -> Vec<Def<'s>> {
        let map = self.redirects.borrow();
        if map.is_empty() {
            return Vec::new();
        }
        let key: Vec<String> = loc.iter().map(|s| s.to_string()).collect();
        map.get(&key).cloned().unwrap_or_default()
    }

    /// Records an error found on the side (reported with the others).
    pub fn report(&self, e: Error) {
        self.reported.borrow_mut().push(e);
    }

    fn enter(&self, l: &Rc<Lazy<'s>>) -> Res<()> {
        self.deeper()?;
        self.stack.borrow_mut().push(Frame::Lazy(l.clone()));
        Ok(())
    }

    fn leave(&self) {
        self.stack.borrow_mut().pop();
    }

    /// The error for re-entering a thunk: the chain of options from its first entry.
    fn recursion_error(&self, l: &Rc<Lazy<'s>>) -> Error {
        let stack = self.stack.borrow();
        let start = stack
            .iter()
            .position(|f| matches!(f, Frame::Lazy(p) if Rc::ptr_eq(p, l)))
            .unwrap_or(0);
        let mut chain: Vec<String> = Vec::new();
        let mut d = Diagnostic::new(ErrorKind::Recursion, None, String::new());
        for f in &stack[start..] {
            match f {
                Frame::Lazy(x) => chain.extend(x.label()),
                Frame::Ref(span, p) => d.labels.push(crate::diag::Label {
                    span: *span,
                    note: format!("reads `{}`", path::show(p)),
                }),
                Frame::Format(span) => d.labels.push(crate::diag::Label {
                    span: *span,
                    note: "reads `!format`".into(),
                }),
                Frame::Nix(span, p) => d.labels.push(crate::diag::Label {
                    span: *span,
                    note: format!("computes with `config.{}`", path::show(p)),
                }),
            }
        }
        chain.extend(l.label());
        d.option = chain.first().cloned();
        d.message = if chain.is_empty() {
            "infinite recursion encountered".into()
        } else {
            format!("infinite recursion encountered: {}", chain.join(" → "))
        };
        d.chain = chain;
        Rc::new(d)
    }

    /// Weak head normal form: forces thunks, `!config` and `!format`.
    pub fn whnf(&self, v: &Value<'s>) -> Res<Value<'s>> {
        match v {
            Value::Lazy(l) => l.force(self),
            Value::Node(n) => match &n.kind {
                Kind::Ref(p) => {
                    self.deeper()?;
                    self.stack.borrow_mut().push(Frame::Ref(n.span, p));
                    let r = self.select(p, n.span);
                    self.stack.borrow_mut().pop();
                    r
                }
                Kind::Format(parts) => {
                    self.deeper()?;
                    self.stack.borrow_mut().push(Frame::Format(n.span));
                    let r = self.format(parts, n.span);
                    self.stack.borrow_mut().pop();
                    r
                }
                Kind::Name => Err(value::error(
                    ErrorKind::Type,
                    None,
                    "`!name` is a submodule's name: it can only be the `default` of an option declared in a submodule".into(),
                )),
                Kind::Nix(d) => {
                    if let Some(done) = d.value.get() {
                        return self.whnf(&Value::Node(done));
                    }
                    self.deeper()?;
                    self.stack.borrow_mut().push(Frame::Nix(n.span, &d.needs));
                    let r = self.compute(d, n.span);
                    self.stack.borrow_mut().pop();
                    // Evaluation is pure: a second computation (a nested one finished first)
                    // gave the same node.
                    let _ = d.value.set(r?);
                    match d.value.get() {
                        Some(done) => self.whnf(&Value::Node(done)),
                        None => unreachable!("set just above"),
                    }
                }
                Kind::Call(f, args) => {
                    self.deeper()?;
                    self.stack.borrow_mut().push(Frame::Format(n.span));
                    let args: Vec<Value<'s>> = args.iter().map(Value::Node).collect();
                    let r = functions::call(self, *f, &args, n.span);
                    self.stack.borrow_mut().pop();
                    r
                }
                _ => Ok(v.clone()),
            },
            _ => Ok(v.clone()),
        }
    }

    /// A `.nix` definition that computes with `config`: its module evaluated again with
    /// `config` answered here (the fixpoint), the definition read whole.
    fn compute(&self, d: &crate::scenario::Deferred, span: Span) -> Res<crate::scenario::Node> {
        self.compute_with(d, span, None)
    }

    /// A `.nix` declaration's `apply` function called on the merged value `v`.
    pub(crate) fn apply_nix(
        &self,
        d: &'s crate::scenario::Deferred,
        v: &Value<'s>,
        span: Span,
    ) -> Res<Value<'s>> {
        let arg = self.fetched(v, false, 0)?;
        let node = self.compute_with(d, span, Some(arg))?;
        // Kept with the declaration for as long as the scenario is: the value lends from it.
        let node: &'s crate::scenario::Node = d.applied.push_get(Box::new(node));
        self.whnf(&Value::Node(node))
    }

    fn compute_with(
        &self,
        d: &crate::scenario::Deferred,
        span: Span,
        apply_to: Option<crate::scenario::Fetched>,
    ) -> Res<crate::scenario::Node> {
        use crate::scenario::{Fetched, NixEvalError};
        let failed: RefCell<Option<Error>> = RefCell::new(None);
        let mut provider = |p: &[Box<str>], _: Option<Span>| -> Result<Fetched, NixEvalError> {
            self.select(p, span)
                .and_then(|v| self.fetched(&v, true, 0))
                .map_err(|e| {
                    let message = e.message.clone();
                    failed.borrow_mut().get_or_insert(e);
                    NixEvalError::new(Some(span), message)
                })
        };
        crate::scenario::force_deferred(
            &self.nix,
            &self.scenario.sources,
            d,
            span,
            apply_to,
            &mut provider,
        )
        .map_err(|e| {
            failed.take().unwrap_or_else(|| {
                // The option whose value was being computed: the innermost one on the
                // evaluation stack.
                let option = self.stack.borrow().iter().rev().find_map(|f| match f {
                    Frame::Lazy(l) => l.label(),
                    _ => None,
                });
                let note = match &option {
                    Some(o) => format!("while computing this definition of `{o}`"),
                    None => "while computing this definition".into(),
                };
                let mut d = Diagnostic::new(ErrorKind::Eval, option, e.message);
                d.labels.push(crate::diag::Label {
                    span: e.span.unwrap_or(span),
                    note: String::new(),
                });
                if e.span.is_some_and(|s| s != span) {
                    d.labels.push(crate::diag::Label { span, note });
                }
                Rc::new(d)
            })
        })
    }

    /// An option's value for a `.nix` computation: a set by its names (`lazy`, each read when
    /// needed, as Nix's `config` is lazy), anything else whole.
    fn fetched(&self, v: &Value<'s>, lazy: bool, depth: usize) -> Res<crate::scenario::Fetched> {
        use crate::scenario::Fetched;
        if depth > limits::MAX_VALUE_DEPTH {
            return Err(value::error(
                ErrorKind::Limit,
                None,
                format!(
                    "a value given to a .nix computation nests deeper than {}",
                    limits::MAX_VALUE_DEPTH
                ),
            ));
        }
        let v = self.whnf(v)?;
        Ok(match v.type_of() {
            TypeOf::Null => Fetched::Null,
            TypeOf::Bool => Fetched::Bool(v.as_bool().unwrap_or_default()),
            TypeOf::Int => Fetched::Int(v.as_int().unwrap_or_default()),
            TypeOf::Float => Fetched::Float(v.as_float().unwrap_or_default()),
            TypeOf::String => Fetched::Str(v.as_str().unwrap_or_default().to_string()),
            TypeOf::List => {
                let mut items = Vec::new();
                for x in v.list_items().into_iter().flatten() {
                    items.push(self.fetched(&x, false, depth + 1)?);
                }
                Fetched::List(items)
            }
            TypeOf::Set if lazy => Fetched::Names(
                v.attr_items()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k.to_string())
                    .collect(),
            ),
            TypeOf::Set => {
                let mut items = Vec::new();
                for (k, x) in v.attr_items().into_iter().flatten() {
                    items.push((k.to_string(), self.fetched(&x, false, depth + 1)?));
                }
                Fetched::Attrs(items)
            }
        })
    }

    fn root(&self) -> Res<Value<'s>> {
        let root = self
            .root
            .borrow()
            .clone()
            .expect("the root is set before evaluation");
        root.force(self)
    }

    /// `config.a.b.c`.
    fn select(&self, p: &[Box<str>], span: Span) -> Res<Value<'s>> {
        let mut v = self.root()?;
        for (i, part) in p.iter().enumerate() {
            if v.attr_items().is_none() || v.type_of() != TypeOf::Set {
                return Err(messages::select_non_set(&p[..i], span));
            }
            match v.attr_get(part) {
                Some(x) => v = self.whnf(&x)?,
                None => return Err(messages::select_missing(p, i, span)),
            }
        }
        Ok(v)
    }

    /// `"text ${config.a.b} more"`: only strings interpolate (Nix refuses to coerce numbers).
    fn format(&self, parts: &[FormatPart], span: Span) -> Res<Value<'s>> {
        self.format_named(parts, span, None)
    }

    /// [`Ctx::format`] in a submodule option's default, where `${name}` is the submodule's.
    pub(crate) fn format_named(
        &self,
        parts: &[FormatPart],
        span: Span,
        name: Option<&str>,
    ) -> Res<Value<'s>> {
        let mut out = String::new();
        for part in parts {
            match part {
                FormatPart::Text(t) => out.push_str(t),
                FormatPart::Name => match name {
                    Some(n) => out.push_str(n),
                    None => {
                        return Err(value::error(
                            ErrorKind::Type,
                            None,
                            "a submodule's `name` is known in the defaults of its options only"
                                .into(),
                        ))
                    }
                },
                FormatPart::Ref(p) => {
                    let v = self.select(p, span)?;
                    match v.as_str() {
                        Some(s) if out.len() + s.len() <= limits::MAX_STRING => out.push_str(s),
                        Some(_) => return Err(messages::string_too_long(span, limits::MAX_STRING)),
                        None => return Err(messages::cannot_coerce(p, v.type_of().noun(), span)),
                    }
                }
            }
        }
        self.spend(out.len(), &[])?;
        Ok(Value::Str(Rc::from(out)))
    }

    fn tracing(&self, loc: &[&str]) -> bool {
        self.trace.as_ref().is_some_and(|t| t.wants(loc))
    }

    fn record_trace(&self, loc: &[&'s str], ty: &Rc<Ty<'s>>, step: explain::Step<'s>) {
        if let Some(t) = &self.trace {
            t.record(loc, ty, step);
        }
    }

    fn trace_declaration(&self, loc: &[&'s str], decl: &Rc<OptDecl<'s>>) {
        if let Some(t) = &self.trace {
            if t.wants(loc) {
                t.declaration(loc, decl);
            }
        }
    }
}

/// The modules in Nix's merge order: breadth-first over imports (the first occurrence of a
/// file wins), then reversed, so that later modules' definitions come first.
pub(crate) fn collect_modules(s: &Scenario) -> Vec<usize> {
    // `disabledModules` is global: every module's list counts, a disabled module's too, and a
    // disabled module is neither loaded nor followed into its imports.
    let disabled: std::collections::HashSet<&std::path::Path> = s
        .modules
        .iter()
        .flat_map(|m| m.disabled.iter().map(|p| p.as_path()))
        .collect();
    let mut seen = vec![false; s.modules.len()];
    let mut order = Vec::with_capacity(s.modules.len());
    let mut queue: VecDeque<usize> = s.top.iter().copied().collect();
    while let Some(m) = queue.pop_front() {
        if std::mem::replace(&mut seen[m], true) {
            continue;
        }
        if s.modules[m]
            .path
            .as_deref()
            .is_some_and(|p| disabled.contains(p))
        {
            continue;
        }
        order.push(m);
        queue.extend(s.modules[m].imports.iter().map(|&(i, _)| i));
    }
    order.reverse();
    order
}

fn install_root<'s>(ctx: &Ctx<'s>) {
    let s = ctx.scenario;
    let root = Lazy::new(None, move |ctx: &Ctx<'s>, _| {
        let order = collect_modules(s);
        let decls = order
            .iter()
            .flat_map(|&m| s.modules[m].options.iter().map(move |d| (m as u32, d)))
            .collect();
        let mut tree = OptTree::build(decls);
        // `_module.freeformType`: the modules' freeform types, merged as option types merge.
        for &m in &order {
            if let Some(t) = &s.modules[m].freeform {
                let t = types::Ty::from_expr(t, m as u32);
                tree.freeform = Some(Rc::new(match &tree.freeform {
                    Some(f) => types::type_merge(f, &t).unwrap_or(t),
                    None => t,
                }));
            }
        }
        let mut defs = Vec::new();
        for &m in &order {
            if let Some(cfg) = &s.modules[m].config {
                let mut pushed = Vec::new();
                push_root(ctx, cfg, &mut pushed)?;
                for p in pushed {
                    defs.push(Def {
                        file: m as u32,
                        span: cfg.span,
                        value: p,
                        is_default: false,
                        order: None,
                    });
                }
            }
        }
        let mut unmatched = options::Stray::for_tree(&tree);
        let v = merge_level(ctx, &[], &tree, defs, &mut unmatched)?;
        for e in std::mem::take(&mut unmatched.errors) {
            ctx.report(e);
        }
        unmatched.finish(ctx, &[], &tree, v)
    });
    *ctx.root.borrow_mut() = Some(root);
}

fn push_root<'s>(
    ctx: &Ctx<'s>,
    cfg: &'s crate::scenario::Node,
    out: &mut Vec<Value<'s>>,
) -> Res<()> {
    let mut level = Vec::new();
    properties::push_down_properties(ctx, &Value::Node(cfg), &mut level)?;
    for l in level {
        if l.type_of() != TypeOf::Set {
            return Err(value::error(
                ErrorKind::Type,
                None,
                format!(
                    "`config` must be an attribute set, but a value of type `{}` was given",
                    l.type_of().nix_name()
                ),
            ));
        }
        out.push(l);
    }
    Ok(())
}

/// The name Nix gives the `m`-th element of the `n`-th definition of a list option in
/// locations (`[definition 1-entry 2]`), 1-based. The names are kept for the life of the
/// process, like a compiler's symbols: there are only as many as the longest lists and the most
/// definitions ever seen, and a location can then borrow them as it borrows the scenario's.
pub(crate) fn element_name(n: usize, m: usize) -> &'static str {
    static NAMES: OnceLock<Mutex<HashMap<(usize, usize), &'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    names
        .entry((n, m))
        .or_insert_with(|| Box::leak(format!("[definition {n}-entry {m}]").into_boxed_str()))
}

/// The outcome of resolving a scenario.
pub struct Resolution<'s> {
    /// The fully evaluated config, when there was no error.
    pub config: Option<Config<'s>>,
    /// Every error found (each once).
    pub errors: Vec<Diagnostic>,
}

/// Makes `s` take options no module declares as freeform values of type `anything`, as a
/// module with `freeformType = types.anything` at the top would; returns those options (by
/// the `undeclared` errors a resolution without it gives), for a warning. Options under a
/// declared submodule stay errors, as under a freeform type in Nix. Nothing changes when a
/// top module has a freeform type already.
pub fn accept_undeclared(s: &mut Scenario) -> Vec<String> {
    let names: Vec<String> = resolve(s)
        .errors
        .into_iter()
        .filter(|e| e.kind == crate::diag::ErrorKind::Undeclared)
        .filter_map(|e| e.option)
        .collect();
    if !names.is_empty() {
        s.add_freeform_anything();
    }
    names
}

/// Resolves a scenario: the whole config, strictly, as `nix-instantiate --eval --strict` would,
/// but reporting every error instead of the first.
///
/// # Example
///
/// ```
/// let text = "modules:\n  - options: {x: {type: int}}\n  - config: {x: 1}\n  - config: {x: 2}\n";
/// let s = isoproof::scenario::load_str(text, "s.yaml", std::path::Path::new(".")).unwrap();
/// let r = isoproof::resolve::resolve(&s);
/// assert!(r.config.is_none());
/// assert_eq!(r.errors[0].kind.as_str(), "conflict");
/// ```
pub fn resolve(s: &Scenario) -> Resolution<'_> {
    limits::on_big_stack(|frames| resolve_here(s, frames))
}

fn resolve_here(s: &Scenario, max_frames: usize) -> Resolution<'_> {
    let ctx = Ctx::new(s, None, max_frames);
    install_root(&ctx);
    let mut errors: Vec<Error> = Vec::new();
    // One error reached from several options is reported once; a set keeps that linear when
    // a scenario has tens of thousands of errors.
    let mut seen: std::collections::HashSet<Error> = std::collections::HashSet::new();
    let mut push = |errors: &mut Vec<Error>, e: Error| {
        if seen.insert(e.clone()) && ctx.room_for_error(errors.len()) {
            errors.push(e);
        }
    };
    let root = ctx.root();
    let mut config = None;
    match root {
        Err(e) => push(&mut errors, e),
        Ok(root) => {
            for e in ctx.reported.borrow_mut().drain(..) {
                push(&mut errors, e);
            }
            let mut ok = Vec::with_capacity(root.attr_items().map_or(0, |a| a.len()));
            let mut failed = false;
            let _ = collect(&ctx, &root, &mut Vec::new(), &mut ok, &mut |e| {
                failed = true;
                push(&mut errors, e)
            });
            for e in ctx.reported.borrow_mut().drain(..) {
                push(&mut errors, e);
            }
            if !failed && errors.is_empty() {
                config = Some(Config::Attrs(ok));
            }
        }
    }
    if let Some(e) = ctx.limit.take() {
        if !errors.iter().any(|x| x.kind == ErrorKind::Limit) {
            config = None;
            errors.push(e);
        }
    }
    let omitted = ctx.omitted.get();
    if omitted > 0 {
        errors.push(Rc::new(Diagnostic::new(
            ErrorKind::Limit,
            None,
            format!(
                "{omitted} more error{} found and not shown: isoproof reports the first {}",
                if omitted == 1 { " was" } else { "s were" },
                limits::MAX_ERRORS
            ),
        )));
    }
    Resolution {
        config,
        errors: errors.iter().map(|e| (**e).clone()).collect(),
    }
}

/// Evaluates every option of an option-tree level; an error in one option does not stop the
/// others, so all errors are found in one run — except an error of kind `limit`, which ends
/// the run: the next option would likely pass the same bound after as much work again.
/// Returns whether evaluation stopped so.
fn collect<'s>(
    ctx: &Ctx<'s>,
    level: &Value<'s>,
    prefix: &mut Vec<&'s str>,
    out: &mut Vec<(&'s str, Config<'s>)>,
    on_err: &mut dyn FnMut(Error),
) -> ControlFlow<()> {
    for (name, v) in level.attr_items().unwrap_or_default() {
        prefix.push(name);
        let flow = match &v {
            Value::Attrs(a) => {
                let mut sub = Vec::with_capacity(a.len());
                let flow = collect(ctx, &v, prefix, &mut sub, on_err);
                out.push((name, Config::Attrs(sub)));
                flow
            }
            _ => match value::to_config(ctx, &v) {
                Ok(c) => {
                    out.push((name, c));
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    let stop = e.kind == ErrorKind::Limit;
                    // A bound passed deep inside a value names the option it belongs to.
                    let e = match e.option {
                        None if stop => {
                            let mut d = (*e).clone();
                            let option = path::show(prefix);
                            d.message = format!("in `{option}`: {}", d.message);
                            d.option = Some(option);
                            Rc::new(d)
                        }
                        _ => e,
                    };
                    on_err(e);
                    if stop {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                }
            },
        };
        prefix.pop();
        flow?;
    }
    ControlFlow::Continue(())
}
