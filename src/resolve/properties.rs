//! The property pipeline of `lib/modules.nix`, one function per step and in Nix's order:
//! `push_down_properties` (option-tree levels), then per option `discharge_properties`
//! (mkMerge/mkIf) → `filter_overrides` (mkOverride) → `sort_properties` (mkOrder).
//!
//! Only the nesting *if/merge → override → order → value* is taken apart. A property wrapped
//! in one of a later stage (`mkForce (mkDefault x)`, `mkForce (mkIf c x)`) is never removed
//! and reaches the type check as an attribute set with `_type`, exactly as in Nix.

use std::rc::Rc;

use super::messages;
use super::priority::{DEFAULT_ORDER, DEFAULT_OVERRIDE, FOLD_START, MK_OPTION_DEFAULT};
use super::value::{Prop, Res, Value};
use super::{Ctx, Def};
use crate::scenario::Kind;

/// `pushDownProperties`: turns one config value at an option-tree level into a list of
/// attribute sets, copying `mkIf`/`mkOverride` onto every attribute (without evaluating the
/// condition — that is what lets a condition read `config`).
///
/// `!mkIf [c, {a: 1, b: 2}]` yields `[{a: !mkIf [c, 1], b: !mkIf [c, 2]}]`;
/// `!mkMerge [{a: 1}, {b: 2}]` yields `[{a: 1}, {b: 2}]`. `mkOrder` is not handled (Nix's
/// `FIXME: handle mkOrder?`), and a property around a non-set is dropped.
pub(crate) fn push_down_properties<'s>(
    ctx: &Ctx<'s>,
    v: &Value<'s>,
    out: &mut Vec<Value<'s>>,
) -> Res<()> {
    let v = ctx.whnf(v)?;
    match v.prop() {
        Some(Prop::Merge(items)) => {
            for i in &items {
                push_down_properties(ctx, i, out)?;
            }
        }
        Some(p @ (Prop::If(..) | Prop::Override(..))) => {
            let content = match &p {
                Prop::If(_, c) | Prop::Override(_, c) => c.clone(),
                _ => unreachable!(),
            };
            let mut inner = Vec::new();
            push_down_properties(ctx, &content, &mut inner)?;
            for cfg in inner {
                let cfg = ctx.whnf(&cfg)?;
                match cfg.attr_items() {
                    Some(items) => {
                        let wrapped = items
                            .into_iter()
                            .map(|(n, x)| {
                                let w = match &p {
                                    Prop::If(c, _) => Prop::If(c.clone(), x),
                                    Prop::Override(pr, _) => Prop::Override(*pr, x),
                                    _ => unreachable!(),
                                };
                                (n, Value::Prop(Rc::new(w)))
                            })
                            .collect();
                        out.push(Value::attrs(wrapped));
                    }
                    None => out.push(cfg),
                }
            }
        }
        _ => out.push(v),
    }
    Ok(())
}

/// Whether [`discharge_properties`] could change a definition: it is (or may evaluate to) an
/// `mkIf` or `mkMerge`. Plain data and overrides pass through unchanged.
pub(crate) fn needs_discharge(def: &Def<'_>) -> bool {
    if def.is_default {
        return false;
    }
    match &def.value {
        Value::Node(n) => matches!(
            n.kind,
            Kind::If(..)
                | Kind::Merge(_)
                | Kind::Ref(_)
                | Kind::Format(_)
                | Kind::Call(..)
                | Kind::Name
                | Kind::Nix(_)
        ),
        Value::Prop(p) => matches!(**p, Prop::If(..) | Prop::Merge(_)),
        Value::Lazy(_) => true,
        _ => false,
    }
}

/// `dischargeProperties`: removes `mkMerge` and `mkIf` (at any depth), evaluating conditions.
///
/// `!mkIf [false, x]` yields nothing; `!mkMerge [1, !mkIf [true, 2], !mkIf [true, !mkIf [false, 3]]]`
/// yields `[1, 2]`. Override, order and plain values are not looked into.
pub(crate) fn discharge_properties<'s>(
    ctx: &Ctx<'s>,
    def: Def<'s>,
    out: &mut Vec<Def<'s>>,
) -> Res<()> {
    if def.is_default {
        // `mkOptionDefault default`: an override, which discharge does not look into.
        out.push(def);
        return Ok(());
    }
    let v = ctx.whnf(&def.value)?;
    match v.prop() {
        Some(Prop::Merge(items)) => {
            for item in items {
                let span = item.span().unwrap_or(def.span);
                discharge_properties(
                    ctx,
                    Def {
                        value: item,
                        span,
                        ..def.clone()
                    },
                    out,
                )?;
            }
        }
        Some(Prop::If(cond, content)) => {
            let c = ctx.whnf(&cond)?;
            match c.as_bool() {
                Some(true) => {
                    let span = content.span().unwrap_or(def.span);
                    discharge_properties(
                        ctx,
                        Def {
                            value: content,
                            span,
                            ..def
                        },
                        out,
                    )?;
                }
                Some(false) => {}
                None => {
                    let cond = super::value::pretty(ctx, &c, "", 0).unwrap_or_else(|_| "?".into());
                    return Err(messages::non_bool_condition(&ctx.shown_one(&def), &cond));
                }
            }
        }
        _ => out.push(Def { value: v, ..def }),
    }
    Ok(())
}

/// The override priority of a discharged definition: its `mkOverride`'s, else 100.
pub(crate) fn override_priority(def: &Def<'_>) -> f64 {
    if def.is_default {
        return MK_OPTION_DEFAULT;
    }
    match def.value.prop() {
        Some(Prop::Override(p, _)) => p,
        _ => DEFAULT_OVERRIDE,
    }
}

/// `filterOverrides'`: keeps every definition at the best (lowest) priority and strips one
/// override layer from each. The fold starts at 9999, so with two or more definitions a
/// priority above 9999 matches nothing and all are dropped; a single definition always wins.
///
/// `[!mkOverride [10, a], !mkOverride [20, b], z, !mkOverride [10, d]]` yields `[a, d]`
/// (`z` has the default priority 100).
pub(crate) fn filter_overrides<'s>(mut defs: Vec<Def<'s>>) -> (Vec<Def<'s>>, f64) {
    let highest = if defs.len() == 1 {
        override_priority(&defs[0])
    } else {
        defs.iter()
            .fold(FOLD_START, |p, d| p.min(override_priority(d)))
    };
    // In place: this runs once per option and per attribute, on ~200k definitions in a large
    // scenario, and a fresh vector each time showed in the profile.
    defs.retain(|d| override_priority(d) == highest);
    for d in &mut defs {
        if d.is_default {
            d.is_default = false;
        } else if let Some(Prop::Override(_, content)) = d.value.prop() {
            d.span = content.span().unwrap_or(d.span);
            d.value = content;
        }
    }
    (defs, highest)
}

/// `sortProperties`: strips one `mkOrder` layer and sorts by order priority (default 1000).
/// The sort is stable, so ties keep definition order. Only run when some value is an order
/// (Nix skips the sort otherwise, which matters for nothing but speed).
pub(crate) fn sort_properties<'s>(ctx: &Ctx<'s>, mut defs: Vec<Def<'s>>) -> Res<Vec<Def<'s>>> {
    let mut any = false;
    for d in &mut defs {
        d.value = ctx.whnf(&d.value)?;
        any |= d.value.prop_type() == Some("order");
    }
    if !any {
        return Ok(defs);
    }
    for d in &mut defs {
        if let Some(Prop::Order(p, content)) = d.value.prop() {
            d.span = content.span().unwrap_or(d.span);
            // The content may be a reference (`!mkOrder [500, !config b]`): later steps take
            // values in weak head normal form, as the first loop leaves every other value.
            d.value = ctx.whnf(&content)?;
            d.order = Some(p);
        }
    }
    defs.sort_by(|a, b| {
        a.order
            .unwrap_or(DEFAULT_ORDER)
            .total_cmp(&b.order.unwrap_or(DEFAULT_ORDER))
    });
    Ok(defs)
}
