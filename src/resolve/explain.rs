//! `isoproof explain`: the whole story of one option's value. Nix keeps only the winning
//! definitions; we record, for the option and every option above it on its path, each raw
//! definition, what `mkIf` did to it, its override and order priority, whether it won, and why
//! it lost.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::rc::Rc;

use super::options::OptDecl;
use super::priority::{self, DEFAULT_ORDER};
use super::types::Ty;
use super::value::{to_config, Prop, Res, Value};
use super::{install_root, Ctx, Def};
use crate::diag::{Diagnostic, ErrorKind};
use crate::scenario::{notation, path, Scenario, Sources, Span};

/// One `mergeDefinitions` run, as recorded.
pub(crate) struct Step<'s> {
    /// The definitions before discharge.
    pub(crate) raw: Vec<Def<'s>>,
    /// For each discharged definition, the raw definition it came from.
    pub(crate) origin: Vec<usize>,
    /// For each discharged definition, its override priority.
    pub(crate) prios: Vec<f64>,
    /// The winning priority.
    pub(crate) highest: f64,
    /// The winners, stripped and sorted.
    pub(crate) winners: Vec<Def<'s>>,
}

struct Recorded<'s> {
    loc: Vec<String>,
    ty: String,
    step: Step<'s>,
}

/// Records the steps of every option on the path to the target.
pub(crate) struct Tracer<'s> {
    target: Vec<String>,
    steps: RefCell<Vec<Recorded<'s>>>,
    decls: RefCell<Vec<(Vec<String>, Rc<OptDecl<'s>>)>>,
}

impl<'s> Tracer<'s> {
    pub(super) fn wants(&self, loc: &[&str]) -> bool {
        loc.len() <= self.target.len() && loc.iter().zip(&self.target).all(|(a, b)| *a == b)
    }

    pub(super) fn record(&self, loc: &[&'s str], ty: &Ty<'s>, step: Step<'s>) {
        self.steps.borrow_mut().push(Recorded {
            loc: loc.iter().map(|s| s.to_string()).collect(),
            ty: ty.description(),
            step,
        });
    }

    pub(super) fn declaration(&self, loc: &[&'s str], decl: &Rc<OptDecl<'s>>) {
        self.decls
            .borrow_mut()
            .push((loc.iter().map(|s| s.to_string()).collect(), decl.clone()));
    }
}

fn at(sources: &Sources, s: Span) -> String {
    format!("{}:{}:{}", sources.display(s.file), s.line, s.col)
}

fn one_line(s: &str) -> String {
    let flat: Vec<&str> = s.lines().map(str::trim).collect();
    let joined = flat.join(" ");
    if joined.chars().count() > 72 {
        joined.chars().take(69).collect::<String>() + "..."
    } else {
        joined
    }
}

/// An explanation: the text, and whether the option's value is an error (a type error, an
/// undefined option, a conflict...), which the text shows under `value: error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explained {
    /// The whole story, ending with the value or its error.
    pub text: String,
    /// The value is an error.
    pub value_failed: bool,
}

/// Explains how `option` (a dotted path) gets its value. Returns the explanation, or the
/// errors that stop the scenario from loading or the option from existing.
///
/// # Example
///
/// ```
/// let text = "modules:\n  - options: {x: {type: str}}\n  - name: a.yaml\n    config: {x: !mkDefault a}\n  - name: b.yaml\n    config: {x: b}\n";
/// let s = isoproof::scenario::load_str(text, "s.yaml", std::path::Path::new(".")).unwrap();
/// let why = isoproof::resolve::explain(&s, "x").unwrap();
/// assert!(why.text.contains("mkDefault"));
/// assert!(why.text.contains("value: \"b\""));
/// assert!(!why.value_failed);
/// ```
pub fn explain(s: &Scenario, option: &str) -> Result<Explained, Vec<Diagnostic>> {
    super::limits::on_big_stack(|frames| explain_here(s, option, frames))
}

fn explain_here(s: &Scenario, option: &str, frames: usize) -> Result<Explained, Vec<Diagnostic>> {
    let target: Vec<Box<str>> = path::split(option)
        .map_err(|e| vec![Diagnostic::new(ErrorKind::Parse, None, e.to_string())])?;
    traced(s, &target, frames, |ctx, tracer, value| {
        let value = value.and_then(|v| to_config(ctx, &v).map(|c| c.to_json()));
        // `boot.kernelParams.0`: an element of a list option is shown with the option's story.
        let value = match value {
            Err(e) => element(ctx, &target).unwrap_or(Err(e)),
            ok => ok,
        };
        let steps = tracer.steps.borrow();
        if steps.is_empty() {
            if let Err(e) = value {
                let mut d = (*e).clone();
                if let Some(near) = nearest(ctx, &target) {
                    d.message = format!(
                        "`{}` is not an option of this scenario; did you mean `{near}`?",
                        path::show(&target)
                    );
                }
                return Err(vec![d]);
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "option `{}'", path::show(&target));
        for (i, r) in steps.iter().enumerate() {
            render_step(ctx, &mut out, r, &tracer.decls.borrow(), &tracer.target);
            dropped_above(ctx, &mut out, &steps[..i], r);
        }
        let value_failed = value.is_err();
        Ok(Explained {
            text: render_value(s, out, value),
            value_failed,
        })
    })
}

/// The value of `a.b.N` when `a.b` is a list and `N` an index into it: the element, or why
/// there is none. `None` when the path does not go through a list.
fn element<'s>(ctx: &Ctx<'s>, target: &[Box<str>]) -> Option<Res<serde_json::Value>> {
    let (last, list_path) = target.split_last()?;
    let v = ctx.select(list_path, Span::default()).ok()?;
    let items: Vec<Value<'s>> = v.list_items()?.collect();
    let index: usize = match last.parse() {
        Ok(i) => i,
        Err(_) => {
            return Some(Err(super::value::error(
                ErrorKind::Undefined,
                Some(path::show(target)),
                format!(
                    "`{}` is a list: its elements are chosen by index, from 0 (`{}.0`)",
                    path::show(list_path),
                    path::show(list_path)
                ),
            )))
        }
    };
    Some(match items.get(index) {
        Some(x) => to_config(ctx, x).map(|c| c.to_json()),
        None => Err(super::value::error(
            ErrorKind::Undefined,
            Some(path::show(target)),
            format!(
                "`{}` has {} element{}: there is no element {index}",
                path::show(list_path),
                items.len(),
                if items.len() == 1 { "" } else { "s" }
            ),
        )),
    })
}

/// The option or value path nearest to `target`: the deepest prefix that exists, then the
/// name under it closest to the next component (edit distance at most 3, or a prefix match).
fn nearest(ctx: &Ctx<'_>, target: &[Box<str>]) -> Option<String> {
    for i in (0..target.len()).rev() {
        let Ok(v) = ctx.select(&target[..i], Span::default()) else {
            continue;
        };
        let names: Vec<&str> = v.attr_items()?.map(|(k, _)| k).collect();
        let want = &*target[i];
        let best = names
            .iter()
            .map(|n| (crate::diag::levenshtein(want, n), *n))
            .filter(|(d, n)| *d <= 3 || n.starts_with(want) || want.starts_with(n))
            .min()?;
        let mut p: Vec<Box<str>> = target[..i].to_vec();
        p.push(best.1.into());
        return Some(path::show(&p));
    }
    None
}

/// Evaluates `target` with a tracer recording every merge on its path, and hands the context,
/// the records and the value to `f`.
fn traced<R>(
    s: &Scenario,
    target: &[Box<str>],
    frames: usize,
    f: impl for<'a> FnOnce(&Ctx<'a>, &Tracer<'a>, Res<Value<'a>>) -> R,
) -> R {
    let tracer = Tracer {
        target: target.iter().map(|s| s.to_string()).collect(),
        steps: RefCell::new(Vec::new()),
        decls: RefCell::new(Vec::new()),
    };
    let ctx = Ctx::new(s, Some(tracer), frames);
    install_root(&ctx);
    let value = ctx.select(target, Span::default());
    f(&ctx, ctx.trace.as_ref().expect("set above"), value)
}

/// The `mkIf` condition under a definition's properties: its value and, when it reads other
/// options, the expression (`!config services.openssh.enable`).
fn condition<'s>(ctx: &Ctx<'s>, v: &Value<'s>) -> Option<(bool, Option<String>)> {
    let mut v = v.clone();
    while let Some(p) = v.prop() {
        v = match p {
            Prop::Override(_, c) | Prop::Order(_, c) => c,
            Prop::If(c, _) => {
                let expr = match &c {
                    Value::Node(n) => expression(ctx, n),
                    _ => None,
                };
                let b = ctx.whnf(&c).ok().and_then(|c| c.as_bool())?;
                return Some((b, expr));
            }
            Prop::Merge(_) => return None,
        };
    }
    None
}

/// The expression behind a computed value, as the scenario writes it: `!config a.b`,
/// `!format "..."`, `!call [f, ...]`, `!name`; `None` for written data.
fn expression(ctx: &Ctx<'_>, n: &crate::scenario::Node) -> Option<String> {
    use crate::scenario::Kind;
    if let Kind::Nix(d) = &n.kind {
        return Some(notation::computation(d, SHOWN));
    }
    matches!(
        n.kind,
        Kind::Ref(_) | Kind::Format(_) | Kind::Call(..) | Kind::Name | Kind::Nix(_)
    )
    .then(|| notation::node_as(n, SHOWN, syntax(ctx, n.span.file)))
}

/// The notation of the file `file`: a `.nix` module's values are shown as Nix.
fn syntax(ctx: &Ctx<'_>, file: crate::scenario::FileId) -> notation::Syntax {
    notation::Syntax::of(ctx.scenario.sources.path(file))
}

/// What a definition wrote on the way from its option down to `below` (the rest of the
/// explained path): for each level it reaches, the override priority written there, if any.
/// Its own top-level properties are not counted (the step shows them).
fn inner_levels<'s>(ctx: &Ctx<'s>, v: &Value<'s>, below: &[String]) -> Vec<Option<f64>> {
    let strip = |mut v: Value<'s>| -> (Value<'s>, Option<f64>) {
        let mut prio = None;
        while let Some(p) = v.prop() {
            v = match p {
                Prop::Override(pr, c) => {
                    prio = prio.or(Some(pr));
                    c
                }
                Prop::Order(_, c) | Prop::If(_, c) => c,
                Prop::Merge(_) => break,
            };
        }
        (v, prio)
    };
    let mut levels = Vec::new();
    let (mut cur, _) = strip(v.clone());
    for name in below {
        let Ok(w) = ctx.whnf(&cur) else { break };
        let Some(next) = w
            .attr_items()
            .and_then(|mut items| items.find(|(k, _)| *k == name.as_str()).map(|(_, x)| x))
        else {
            break;
        };
        let (next, prio) = strip(next);
        levels.push(prio);
        cur = next;
    }
    levels
}

/// Under a step, the definitions of this path that an option above it dropped whole: each
/// one lost there as a whole, so what it wrote here (an `mkForce` too) never competed. Names
/// the option to override instead.
fn dropped_above<'s>(ctx: &Ctx<'s>, out: &mut String, above: &[Recorded<'s>], here: &Recorded<'s>) {
    let sources = &ctx.scenario.sources;
    for a in above.iter().filter(|a| here.loc.starts_with(&a.loc)) {
        let st = &a.step;
        let Some(winner) = st.winners.first() else {
            continue;
        };
        for (i, raw) in st.raw.iter().enumerate() {
            let lost = st
                .origin
                .iter()
                .zip(&st.prios)
                .any(|(o, p)| *o == i && *p != st.highest);
            if !lost || raw.is_default {
                continue;
            }
            let below = &here.loc[a.loc.len()..];
            let levels = inner_levels(ctx, &raw.value, below);
            if levels.len() < below.len() {
                continue;
            }
            let what = match levels.last().copied().flatten() {
                Some(p) => format!("wrote {} here", priority::override_name(p)),
                None => "defined this".into(),
            };
            let _ = writeln!(
                out,
                "  dropped above: `{}` at {} {what}, inside its definition of `{}`, which lost there as a whole to {} of `{}`; to keep it, override `{}` itself (`{}: !mkForce …`, or any priority below {})",
                ctx.file_name(raw.file),
                at(sources, raw.span),
                path::show(&a.loc),
                priority::override_name(st.highest),
                ctx.file_name(winner.file),
                path::show(&a.loc),
                path::show(&a.loc),
                priority::show(st.highest),
            );
        }
    }
}

/// How much of a definition's value `explain` shows (it is cut to one line of 72 after).
const SHOWN: usize = 120;

/// A definition's value in the scenario's notation (YAML flow with tags): written data as it
/// was written; computed data and pushed-down properties as a scenario would write them.
fn written<'s>(ctx: &Ctx<'s>, v: &Value<'s>, syntax: notation::Syntax) -> String {
    let mut f = notation::Flow::new(SHOWN);
    write_value(ctx, &mut f, v, 0, syntax);
    f.finish()
}

fn write_value<'s>(
    ctx: &Ctx<'s>,
    f: &mut notation::Flow,
    v: &Value<'s>,
    depth: usize,
    syntax: notation::Syntax,
) {
    use notation::Syntax;
    if depth > 16 || f.full() {
        f.push("...");
        return;
    }
    match v {
        Value::Node(n) => f.push(&notation::node_as(n, SHOWN, syntax)),
        Value::Null => f.push("null"),
        Value::Bool(b) => f.push(&b.to_string()),
        Value::Int(i) => f.push(&i.to_string()),
        Value::Float(x) => f.push(&notation::number(*x)),
        Value::Str(s) if syntax == Syntax::Nix => f.push(&crate::scenario::path::nix_string(s)),
        Value::Str(s) => f.push(&notation::string(s)),
        Value::List(xs) if syntax == Syntax::Nix => {
            f.push("[ ");
            for x in xs.iter() {
                write_value(ctx, f, x, depth + 1, syntax);
                f.push(" ");
            }
            f.push("]");
        }
        Value::Attrs(xs) if syntax == Syntax::Nix => {
            f.push("{ ");
            for (k, x) in xs.iter() {
                f.push(&crate::scenario::path::show(&[&**k]));
                f.push(" = ");
                write_value(ctx, f, x, depth + 1, syntax);
                f.push("; ");
            }
            f.push("}");
        }
        Value::List(xs) => f.seq("[", xs.iter(), "]", |f, x| {
            write_value(ctx, f, x, depth + 1, syntax)
        }),
        Value::Attrs(xs) => f.seq("{", xs.iter(), "}", |f, (k, x)| {
            f.push(&notation::key(k));
            f.push(": ");
            write_value(ctx, f, x, depth + 1, syntax);
        }),
        Value::Prop(p) => {
            let inner = |x: &Value<'s>| {
                let mut g = notation::Flow::new(SHOWN);
                write_value(ctx, &mut g, x, depth + 1, syntax);
                g.finish()
            };
            f.push(&match &**p {
                Prop::Override(pr, c) => syntax.override_tag(*pr, &inner(c)),
                Prop::Order(pr, c) => syntax.order_tag(*pr, &inner(c)),
                Prop::If(c, x) => syntax.if_tag(&inner(c), &inner(x)),
                Prop::Merge(xs) => {
                    let items: Vec<String> = xs.iter().map(inner).collect();
                    syntax.merge_tag(&items)
                }
            });
        }
        Value::Lazy(_) => match ctx.whnf(v) {
            Ok(w) => write_value(ctx, f, &w, depth + 1, syntax),
            Err(_) => f.push("(an error)"),
        },
    }
}

/// The final `value:` section of an explanation.
fn render_value(s: &Scenario, mut out: String, value: Res<serde_json::Value>) -> String {
    let _ = writeln!(out);
    match value {
        Ok(v) => {
            let _ = writeln!(
                out,
                "value: {}",
                serde_json::to_string_pretty(&v)
                    .unwrap_or_default()
                    .replace('\n', "\n       ")
            );
        }
        Err(e) => {
            let _ = writeln!(out, "value: error");
            for l in e.render(&s.sources).lines() {
                let _ = writeln!(out, "  {l}");
            }
        }
    }
    out
}

/// Where the winning definitions of `option` were written (`file:line:col`), default
/// included only when nothing else defines it: for errors found after resolving, such as a
/// content source that leaves the scenario directory.
pub(crate) fn definition_sites(s: &Scenario, option: &str) -> Vec<String> {
    let Ok(target) = path::split(option) else {
        return Vec::new();
    };
    super::limits::on_big_stack(|frames| sites(s, &target, frames))
}

fn sites(s: &Scenario, target: &[Box<str>], frames: usize) -> Vec<String> {
    traced(s, target, frames, |_, tracer, _| {
        let steps = tracer.steps.borrow();
        let Some(step) = steps.iter().find(|r| r.loc == tracer.target) else {
            return Vec::new();
        };
        let winners = &step.step.winners;
        let only_default = winners.iter().all(|d| d.is_default);
        let mut sites: Vec<String> = winners
            .iter()
            .filter(|d| only_default || !d.is_default)
            .map(|d| at(&s.sources, d.span))
            .collect();
        sites.dedup();
        sites
    })
}

/// Where each element of a list option's value was written (`file:line:col`), in the
/// value's order; `None` when a winning definition is not a sequence written out (a
/// reference, an `!mkIf`), whose elements cannot be told apart.
pub(crate) fn element_sites(s: &Scenario, option: &str) -> Option<Vec<String>> {
    let target = path::split(option).ok()?;
    super::limits::on_big_stack(|frames| {
        traced(s, &target, frames, |_, tracer, _| {
            let steps = tracer.steps.borrow();
            let step = steps.iter().find(|r| r.loc == tracer.target)?;
            let mut sites = Vec::new();
            for d in &step.step.winners {
                let Value::Node(n) = &d.value else {
                    return None;
                };
                let crate::scenario::Kind::List(items) = &n.kind else {
                    return None;
                };
                sites.extend(items.iter().map(|i| at(&s.sources, i.span)));
            }
            Some(sites)
        })
    })
}

fn render_step<'s>(
    ctx: &Ctx<'s>,
    out: &mut String,
    r: &Recorded<'s>,
    decls: &[(Vec<String>, Rc<OptDecl<'s>>)],
    tracer_target: &[String],
) {
    let sources = &ctx.scenario.sources;
    let st = &r.step;
    let _ = writeln!(out);
    let _ = writeln!(out, "at `{}' (type: {})", path::show(&r.loc), r.ty);
    if let Some((_, d)) = decls.iter().find(|(l, _)| *l == r.loc) {
        for (f, span) in &d.declarations {
            let _ = writeln!(
                out,
                "  declared in `{}` at {}",
                ctx.file_name(*f),
                at(sources, *span)
            );
        }
        if d.read_only {
            let _ = writeln!(out, "  read-only");
        }
        if let Some(a) = d.apply {
            let _ = writeln!(
                out,
                "  apply: {} (the value shown is the merged value with it applied)",
                match &a.func {
                    crate::scenario::ApplyFn::Func(f) => f.name().to_string(),
                    crate::scenario::ApplyFn::Nix(n) => notation::computation(n, SHOWN),
                }
            );
        }
    }
    let _ = writeln!(
        out,
        "  definitions, in Nix's merge order (later modules first):"
    );
    let winners_total = st.prios.iter().filter(|p| **p == st.highest).count();
    for (i, raw) in st.raw.iter().enumerate() {
        let who = if raw.is_default {
            format!("default of `{}`", ctx.file_name(raw.file))
        } else {
            format!("`{}`", ctx.file_name(raw.file))
        };
        let _ = writeln!(out, "  {}. {who} at {}", i + 1, at(sources, raw.span));
        let pieces: Vec<usize> = st
            .origin
            .iter()
            .enumerate()
            .filter(|(_, o)| **o == i)
            .map(|(k, _)| k)
            .collect();
        if pieces.is_empty() {
            let why = condition(ctx, &raw.value)
                .and_then(|(_, e)| e)
                .map(|e| format!(" ({e} is false)"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "       mkIf condition false{why}: dropped before priorities are compared"
            );
            continue;
        }
        for &k in &pieces {
            let p = st.prios[k];
            let verdict = if p == st.highest {
                if winners_total > 1 {
                    format!("WON (tied at {}; merged by the type)", priority::show(p))
                } else {
                    "WON".to_string()
                }
            } else if st.highest == priority::FOLD_START && p > priority::FOLD_START {
                format!("dropped: priority {} is above 9999, and with several definitions nothing above 9999 can win", priority::show(p))
            } else {
                format!(
                    "lost: {} loses to {}",
                    priority::show(p),
                    priority::override_name(st.highest)
                )
            };
            let _ = writeln!(out, "       {}  {verdict}", priority::override_name(p));
        }
        // Show what was written under its properties; the properties are described above.
        let mut shown = raw.value.clone();
        while let Some(p) = shown.prop() {
            shown = match p {
                Prop::Override(_, c) | Prop::Order(_, c) | Prop::If(_, c) => c,
                Prop::Merge(_) => break,
            };
        }
        if let Some((c, e)) = condition(ctx, &raw.value) {
            let read = e.map(|e| format!(" ({e})")).unwrap_or_default();
            let _ = writeln!(out, "       mkIf condition: {c}{read}");
        }
        if let Value::Node(n) = &shown {
            if let Some(e) = expression(ctx, n) {
                let _ = writeln!(out, "       computed by: {e}");
            }
        }
        let shown_as = syntax(ctx, raw.span.file);
        let _ = writeln!(
            out,
            "       value: {}",
            one_line(&written(ctx, &shown, shown_as))
        );
        let lost = pieces.iter().all(|k| st.prios[*k] != st.highest);
        if lost && !raw.is_default {
            let below = &tracer_target[r.loc.len().min(tracer_target.len())..];
            let levels = inner_levels(ctx, &raw.value, below);
            if let Some((depth, p)) = levels
                .iter()
                .enumerate()
                .find_map(|(d, p)| p.filter(|p| *p < st.highest).map(|p| (d, p)))
            {
                let inner: Vec<&String> = r.loc.iter().chain(&below[..=depth]).collect();
                let _ = writeln!(
                    out,
                    "       inside it, `{}` is {}, which never competes: this whole definition of `{}` lost here; override `{}` itself to keep it",
                    path::show(&inner),
                    priority::override_name(p),
                    path::show(&r.loc),
                    path::show(&r.loc),
                );
            }
        }
    }
    if st.raw.is_empty() {
        let _ = writeln!(out, "     (none)");
    }
    if st.winners.is_empty() {
        let _ = writeln!(out, "  no definition remains");
    } else {
        let _ = writeln!(
            out,
            "  winning priority {}; merge order after mkOrder sorting:",
            priority::override_name(st.highest)
        );
        for w in &st.winners {
            let order = w.order.unwrap_or(DEFAULT_ORDER);
            let name = match order {
                priority::MK_BEFORE => " (mkBefore)".to_string(),
                priority::MK_AFTER => " (mkAfter)".to_string(),
                o if o == DEFAULT_ORDER => String::new(),
                _ => " (mkOrder)".to_string(),
            };
            let _ = writeln!(
                out,
                "    - order {}{name}: `{}` at {}",
                priority::show(order),
                ctx.file_name(w.file),
                at(sources, w.span)
            );
        }
    }
}
