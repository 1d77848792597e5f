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
use super::value::{pretty, to_config, Prop, Res, Value};
use super::{install_root, Ctx, Def};
use crate::diag::{Diagnostic, ErrorKind};
use crate::scenario::{path, Scenario, Sources, Span};

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

/// Explains how `option` (a dotted path) gets its value. Returns the text, or the errors that
/// stop the scenario from loading or the option from existing.
///
/// # Example
///
/// ```
/// let text = "modules:\n  - options: {x: {type: str}}\n  - name: a.yaml\n    config: {x: !mkDefault a}\n  - name: b.yaml\n    config: {x: b}\n";
/// let s = isoproof::scenario::load_str(text, "s.yaml", std::path::Path::new(".")).unwrap();
/// let why = isoproof::resolve::explain(&s, "x").unwrap();
/// assert!(why.contains("mkDefault"));
/// assert!(why.contains("value: \"b\""));
/// ```
pub fn explain(s: &Scenario, option: &str) -> Result<String, Vec<Diagnostic>> {
    super::limits::on_big_stack(|frames| explain_here(s, option, frames))
}

fn explain_here(s: &Scenario, option: &str, frames: usize) -> Result<String, Vec<Diagnostic>> {
    let target: Vec<Box<str>> =
        path::split(option).map_err(|e| vec![Diagnostic::new(ErrorKind::Parse, None, e)])?;
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
                    d.help = Some(format!("did you mean `{near}`?"));
                }
                return Err(vec![d]);
            }
        }
        let mut out = String::new();
        let _ = writeln!(out, "option `{}'", path::show(&target));
        for r in steps.iter() {
            render_step(ctx, &mut out, r, &tracer.decls.borrow());
        }
        Ok(render_value(s, out, value))
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
                    Value::Node(n) => expression(n),
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
/// `!format "..."`, `!call [f, ...]`; `None` for written data.
fn expression(n: &crate::scenario::Node) -> Option<String> {
    use crate::scenario::{FormatPart, Kind};
    let arg = |n: &crate::scenario::Node| -> String {
        expression(n).unwrap_or_else(|| match &n.kind {
            Kind::Str(s) => format!("{:?}", &**s),
            Kind::Int(i) => i.to_string(),
            Kind::Bool(b) => b.to_string(),
            Kind::Null => "null".into(),
            _ => n.shape().into(),
        })
    };
    Some(match &n.kind {
        Kind::Ref(p) => format!("!config {}", path::show(p)),
        Kind::Format(parts) => {
            let text: String = parts
                .iter()
                .map(|p| match p {
                    FormatPart::Text(t) => t.to_string(),
                    FormatPart::Ref(r) => format!("${{{}}}", path::show(r)),
                })
                .collect();
            format!("!format {text:?}")
        }
        Kind::Call(f, args) => {
            let mut v = vec![f.name().to_string()];
            v.extend(args.iter().map(arg));
            format!("!call [{}]", v.join(", "))
        }
        Kind::Name => "!name".into(),
        _ => return None,
    })
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
                a.func.name()
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
        for k in pieces {
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
            if let Some(e) = expression(n) {
                let _ = writeln!(out, "       computed by: {e}");
            }
        }
        if let Ok(text) = pretty(ctx, &shown, "", 0) {
            let _ = writeln!(out, "       value: {}", one_line(&text));
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
