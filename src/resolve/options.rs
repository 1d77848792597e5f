//! The option tree and the routing of definitions to options: `mergeOptionDecls` and
//! `mergeModules'` of `lib/modules.nix`.
//!
//! Declarations build a tree of option paths. Definitions walk it: at an option they are kept
//! raw (not pushed down) for `evalOptionValue`; above an option they are pushed down
//! (`pushDownProperties`) and routed a level deeper; where no declaration exists they are
//! "unmatched" and reported as undeclared, with Nix's "did you mean".

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use super::messages;
use super::properties::push_down_properties;
// Options merge by their types, and a submodule type merges through options again: the
// circle Nix's own submodules make (see types.rs).
use super::types::{type_merge, Ty};
use super::value::{Error, Lazy, Res, TypeOf, Value};
use super::{merge_definitions, Ctx, Def};
use crate::scenario::{Declaration, Node, Span};

/// A node of the option tree: sub-paths and/or an option declared here.
pub(crate) struct OptTree<'s> {
    /// Children, sorted by name.
    pub(crate) children: Vec<(&'s str, OptTree<'s>)>,
    /// The option declared at this path.
    pub(crate) option: Option<Rc<OptDecl<'s>>>,
    /// The declarations this tree was built from (kept so submodule types can merge trees).
    raw: Vec<(u32, &'s Declaration)>,
    /// `freeformType`: the type undeclared definitions under this evaluation root are merged
    /// with, instead of being errors (only at an evaluation's root: the top or a submodule).
    pub(crate) freeform: Option<Rc<Ty<'s>>>,
    /// Child name → index in `children`: routing ~200k definitions by binary search or by
    /// sorting (name, definition) pairs spent most of the merge comparing strings.
    index: HashMap<&'s str, u32, BuildHasherDefault<FxHasher>>,
}

/// One option, its declarations merged (`mergeOptionDecls`).
pub(crate) struct OptDecl<'s> {
    /// Its type (the declarations' types merged).
    pub(crate) ty: Rc<Ty<'s>>,
    /// `default`, and the module it is shown as coming from (`head declarations`).
    pub(crate) default: Option<(&'s Node, u32)>,
    /// `readOnly`.
    pub(crate) read_only: bool,
    /// `description`.
    pub(crate) description: Option<&'s str>,
    /// `apply`, run on the merged value.
    pub(crate) apply: Option<&'s crate::scenario::Apply>,
    /// Made by `renamedOptions`, `aliasedOptions` or `removedOptions`.
    pub(crate) alias: Option<&'s crate::scenario::Alias>,
    /// How many components the declared path has below its evaluation root (the top, or its
    /// submodule): the submodule's name is the component before them.
    pub(crate) depth: usize,
    /// Declaring modules (module index, where), in reversed module order.
    pub(crate) declarations: Vec<(u32, Span)>,
    /// Set when two declarations cannot be merged: the later-folded module, and why.
    pub(crate) declared_twice: Option<(u32, Span, &'static str)>,
}

#[derive(Default)]
struct Build<'s> {
    children: BTreeMap<&'s str, Build<'s>>,
    decls: Vec<(u32, &'s Declaration)>,
}

impl<'s> OptTree<'s> {
    /// Builds the tree from declarations in (reversed) module order.
    pub(crate) fn build(decls: Vec<(u32, &'s Declaration)>) -> OptTree<'s> {
        let mut root = Build::default();
        for &(file, d) in &decls {
            let mut node = &mut root;
            for part in &d.path {
                node = node.children.entry(&**part).or_default();
            }
            node.decls.push((file, d));
        }
        let mut t = Self::finish(root);
        t.raw = decls;
        t
    }

    /// The tree of two submodule types declared for one option (`submodule` type merge).
    pub(crate) fn merged(a: &OptTree<'s>, b: &OptTree<'s>) -> OptTree<'s> {
        let mut t = OptTree::build(a.raw.iter().chain(&b.raw).copied().collect());
        t.freeform = match (&a.freeform, &b.freeform) {
            (Some(x), Some(y)) => type_merge(x, y).map(Rc::new).or_else(|| Some(x.clone())),
            (x, y) => x.clone().or_else(|| y.clone()),
        };
        t
    }

    fn finish(b: Build<'s>) -> OptTree<'s> {
        let option = if b.decls.is_empty() {
            None
        } else {
            Some(Rc::new(merge_option_decls(&b.decls, &b.children)))
        };
        // Declarations below an option of submodule type become options of the submodule
        // (`optionTreeToOption`); below any other option they are an error, reported on use.
        let children: Vec<(&'s str, OptTree<'s>)> = if option.is_some() {
            Vec::new()
        } else {
            b.children
                .into_iter()
                .map(|(k, v)| (k, Self::finish(v)))
                .collect()
        };
        let index = children
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (*k, i as u32))
            .collect();
        OptTree {
            children,
            option,
            raw: Vec::new(),
            freeform: None,
            index,
        }
    }

    /// Whether every option below is one `removedOptions` made (so the subtree shows nothing).
    fn only_removed(&self) -> bool {
        match &self.option {
            Some(d) => matches!(d.alias, Some(crate::scenario::Alias::Removed(_))),
            None => {
                !self.children.is_empty() && self.children.iter().all(|(_, c)| c.only_removed())
            }
        }
    }

    /// The index of a direct child in `children`.
    fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).map(|&i| i as usize)
    }
}

fn collect_below<'s>(
    b: &BTreeMap<&'s str, Build<'s>>,
    prefix: &mut Vec<Box<str>>,
    out: &mut Vec<(u32, Declaration)>,
) {
    for (k, v) in b {
        prefix.push((*k).into());
        for &(f, d) in &v.decls {
            let mut d2 = d.clone();
            d2.path = prefix.clone();
            out.push((f, d2));
        }
        collect_below(&v.children, prefix, out);
        prefix.pop();
    }
}

/// `mergeOptionDecls`: folds the declarations of one path. Two declarations that both set
/// `default` or `description`, or whose types do not merge, are "declared twice".
fn merge_option_decls<'s>(
    decls: &[(u32, &'s Declaration)],
    below: &BTreeMap<&'s str, Build<'s>>,
) -> OptDecl<'s> {
    let (f0, d0) = decls[0];
    let mut out = OptDecl {
        ty: Rc::new(Ty::from_expr(&d0.ty, f0)),
        default: d0.default.as_ref().map(|n| (n, f0)),
        read_only: d0.read_only.unwrap_or(false),
        description: d0.description.as_deref(),
        apply: d0.apply.as_ref(),
        depth: d0.path.len(),
        alias: d0.alias.as_ref(),
        declarations: vec![(f0, d0.span)],
        declared_twice: None,
    };
    let mut read_only_set = d0.read_only.is_some();
    for &(f, d) in &decls[1..] {
        let merged = type_merge(&out.ty, &Ty::from_expr(&d.ty, f));
        let why = if d.default.is_some() && out.default.is_some() {
            Some("both declarations set `default`")
        } else if d.description.is_some() && out.description.is_some() {
            Some("both declarations set `description`")
        } else if d.apply.is_some() && out.apply.is_some() {
            Some("both declarations set `apply`")
        } else if merged.is_none() {
            Some("their types cannot be merged")
        } else {
            None
        };
        if let Some(why) = why {
            out.declared_twice.get_or_insert((f, d.span, why));
            out.declarations.push((f, d.span));
            continue;
        }
        out.ty = Rc::new(merged.expect("checked above"));
        if out.default.is_none() {
            out.default = d.default.as_ref().map(|n| (n, f));
        }
        if out.description.is_none() {
            out.description = d.description.as_deref();
        }
        if out.apply.is_none() {
            out.apply = d.apply.as_ref();
        }
        if !read_only_set && d.read_only.is_some() {
            out.read_only = d.read_only.unwrap_or(false);
            read_only_set = true;
        }
        out.declarations.push((f, d.span));
    }
    // The default is shown as coming from the first declaration in this order.
    if let Some((n, _)) = out.default {
        out.default = Some((n, out.declarations[0].0));
    }
    if !below.is_empty() {
        match &*out.ty {
            Ty::Submodule(sub) => {
                let mut extra = Vec::new();
                collect_below(below, &mut Vec::new(), &mut extra);
                // Leaked once per such declaration: the tree borrows declarations for the
                // scenario's lifetime, and these are synthesised from it.
                let extra: &'s [(u32, Declaration)] = Box::leak(extra.into_boxed_slice());
                let mut all = sub.raw.clone();
                all.extend(extra.iter().map(|(f, d)| (*f, d)));
                out.ty = Rc::new(Ty::Submodule(Rc::new(OptTree::build(all))));
            }
            _ => {
                out.declared_twice.get_or_insert((
                    decls[0].0,
                    decls[0].1.span,
                    "its type does not support nested options, but options are declared below it",
                ));
            }
        }
    }
    out
}

/// `mergeModules'`: routes the definitions of one level (each an attribute set from one module,
/// already pushed down) into the tree, and returns the level's config: an attribute set whose
/// options are thunks. Definitions of names the tree does not have go to `unmatched`.
pub(crate) fn merge_level<'s>(
    ctx: &Ctx<'s>,
    prefix: &[&'s str],
    tree: &OptTree<'s>,
    modules: Vec<Def<'s>>,
    unmatched: &mut Stray<'s>,
) -> Res<Value<'s>> {
    // Route definitions to the tree's children, keeping module order within each name; names
    // the tree does not have are grouped (sorted) for the "undeclared" report.
    // Two passes (count, then fill) so every bucket is allocated once at its final size.
    let mut slots: Vec<u32> = Vec::new();
    let mut counts = vec![0u32; tree.children.len()];
    for m in &modules {
        for (name, _) in m.value.attr_items().unwrap_or_default() {
            let slot = tree.position(name).map_or(u32::MAX, |i| i as u32);
            if let Some(c) = counts.get_mut(slot as usize) {
                *c += 1;
            }
            slots.push(slot);
        }
    }
    // One spare slot: an option puts its default in front without reallocating.
    let mut buckets: Vec<Vec<Def<'s>>> = counts
        .iter()
        .map(|&c| Vec::with_capacity(c as usize + 1))
        .collect();
    let mut stray: Vec<(&'s str, Def<'s>)> = Vec::new();
    let mut slots = slots.into_iter();
    for m in &modules {
        for (name, v) in m.value.attr_items().unwrap_or_default() {
            let def = Def {
                file: m.file,
                span: v.span().unwrap_or(m.span),
                value: v,
                is_default: false,
                order: None,
            };
            match buckets.get_mut(slots.next().expect("one slot per name") as usize) {
                Some(b) => b.push(def),
                None => stray.push((name, def)),
            }
        }
    }
    stray.sort_by(|a, b| a.0.cmp(b.0));
    let mut grouped: Vec<(&'s str, Vec<Def<'s>>)> = Vec::new();
    for (n, d) in stray {
        match grouped.last_mut() {
            Some((last, ds)) if *last == n => ds.push(d),
            _ => grouped.push((n, vec![d])),
        }
    }

    let mut out: Vec<(&'s str, Value<'s>)> = Vec::with_capacity(tree.children.len());
    // Children and undeclared names, merged in name order (the order errors are reported in).
    let mut gi = grouped.into_iter().peekable();
    let mut ti = tree.children.iter().zip(buckets).peekable();
    loop {
        let take_tree = match (ti.peek(), gi.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(((tn, _), _)), Some((gn, _))) => tn < gn,
        };
        if !take_tree {
            let (name, defs) = gi.next().expect("peeked");
            if unmatched.freeform {
                let mut loc = prefix.to_vec();
                loc.push(name);
                unmatched.defs.push((loc, defs));
            } else if ctx.room_for_error(unmatched.errors.len()) {
                // Nix ranks every sibling when there are fewer than 100, and only those
                // within two edits otherwise, which is charged to the work bound.
                let siblings: Vec<&str> = tree.children.iter().map(|(n, _)| *n).collect();
                let hints = siblings.len() < 100
                    || ctx
                        .spend(siblings.len() * super::limits::PER_HINT, prefix)
                        .is_ok();
                unmatched.errors.push(messages::undeclared(
                    prefix,
                    name,
                    &siblings,
                    hints,
                    &ctx.shown(&defs),
                ));
            }
            continue;
        }
        let ((name, child), defs) = ti.next().expect("peeked");
        let mut loc = prefix.to_vec();
        loc.push(name);
        let v = match &child.option {
            Some(decl) if decl.alias.is_some() => match alias(ctx, loc, decl, defs) {
                Some(v) => v,
                // A removed option has no value to show.
                None => continue,
            },
            Some(decl) => option_value(loc, decl.clone(), defs),
            // Nothing but removed options below: nothing to show (their definitions are
            // reported as they are routed).
            None if child.only_removed() => {
                let _ = alias_defs_below(ctx, &loc, child, defs);
                continue;
            }
            None => {
                let mut pushed = Vec::new();
                for d in defs {
                    let mut level = Vec::new();
                    push_down_properties(ctx, &d.value, &mut level)?;
                    for l in level {
                        if l.type_of() != TypeOf::Set {
                            return Err(messages::not_attrset_module(
                                &loc,
                                &ctx.shown_one(&d),
                                l.type_of().nix_name(),
                            ));
                        }
                        pushed.push(Def {
                            value: l,
                            ..d.clone()
                        });
                    }
                }
                merge_level(ctx, &loc, child, pushed, unmatched)?
            }
        };
        out.push((name, v));
    }
    Ok(Value::attrs(out))
}

/// Definitions of names no option declares, below one evaluation root: "does not exist"
/// errors, or, under a `freeformType`, definitions of the freeform value by their path.
pub(crate) struct Stray<'s> {
    freeform: bool,
    /// The undeclared-option errors (without a freeform type).
    pub(crate) errors: Vec<Error>,
    /// (full path, definitions) of each undeclared name (with a freeform type).
    defs: Vec<(Vec<&'s str>, Vec<Def<'s>>)>,
}

impl<'s> Stray<'s> {
    /// Collects for an evaluation root with this tree.
    pub(crate) fn for_tree(tree: &OptTree<'s>) -> Stray<'s> {
        Stray {
            freeform: tree.freeform.is_some(),
            errors: Vec::new(),
            defs: Vec::new(),
        }
    }

    /// The root's value: without a freeform type, `declared` (the errors are the caller's to
    /// report); with one, `recursiveUpdate freeformConfig declared`, where the freeform config
    /// is the freeform type's merge, at the root, of every undeclared definition set at its path.
    pub(crate) fn finish(
        self,
        ctx: &Ctx<'s>,
        root: &[&'s str],
        tree: &OptTree<'s>,
        declared: Value<'s>,
    ) -> Res<Value<'s>> {
        let Some(ft) = &tree.freeform else {
            return Ok(declared);
        };
        let mut defs = Vec::new();
        for (loc, ds) in self.defs {
            for d in ds {
                let mut value = d.value.clone();
                for name in loc[root.len()..].iter().rev() {
                    value = Value::attrs(vec![(*name, value)]);
                }
                defs.push(Def { value, ..d });
            }
        }
        let free = if defs.is_empty() {
            Value::attrs(Vec::new())
        } else {
            let prepared = merge_definitions(ctx, root, ft, defs)?;
            prepared.value(ctx, root, ft)?
        };
        recursive_update(ctx, &free, &declared)
    }
}

/// `lib.recursiveUpdate lhs rhs`: attribute sets merge name by name, deeper while both sides
/// are sets; anywhere else the right side wins.
fn recursive_update<'s>(ctx: &Ctx<'s>, lhs: &Value<'s>, rhs: &Value<'s>) -> Res<Value<'s>> {
    let (l, r) = (ctx.whnf(lhs)?, ctx.whnf(rhs)?);
    let (Some(la), Some(ra)) = (l.attr_items(), r.attr_items()) else {
        return Ok(r);
    };
    if l.type_of() != TypeOf::Set || r.type_of() != TypeOf::Set {
        return Ok(r);
    }
    let mut out: Vec<(&'s str, Value<'s>)> = la.collect();
    for (k, v) in ra {
        match out.binary_search_by(|(n, _)| (*n).cmp(k)) {
            Ok(i) => out[i].1 = recursive_update(ctx, &out[i].1.clone(), &v)?,
            Err(i) => out.insert(i, (k, v)),
        }
    }
    Ok(Value::attrs(out))
}

/// Routes definitions into a subtree of removed options only, so that defining one is still
/// reported.
fn alias_defs_below<'s>(
    ctx: &Ctx<'s>,
    loc: &[&'s str],
    tree: &OptTree<'s>,
    defs: Vec<Def<'s>>,
) -> Res<()> {
    let mut pushed = Vec::new();
    for d in defs {
        let mut level = Vec::new();
        push_down_properties(ctx, &d.value, &mut level)?;
        for l in level {
            if l.type_of() == TypeOf::Set {
                pushed.push(Def {
                    value: l,
                    ..d.clone()
                });
            }
        }
    }
    let mut stray = Stray::for_tree(tree);
    merge_level(ctx, loc, tree, pushed, &mut stray)?;
    for e in stray.errors {
        ctx.report(e);
    }
    Ok(())
}

/// `shows Files`: `` `a.yaml' and `b.yaml' `` (lib/options.nix `showFiles`).
fn show_files(ctx: &Ctx<'_>, defs: &[Def<'_>]) -> String {
    let mut files: Vec<String> = Vec::new();
    for d in defs {
        let f = format!("`{}'", ctx.file_name(d.file));
        if !files.contains(&f) {
            files.push(f);
        }
    }
    files.join(" and ")
}

/// An option of `renamedOptions`/`aliasedOptions`/`removedOptions` (`doRename`,
/// `mkRemovedOptionModule`): its definitions go to the new option, priorities and all (with
/// the renaming's warning in `warnings`), and its value is the new option's; a removed
/// option's definitions are an error. `None` for a removed option (it has no value).
fn alias<'s>(
    ctx: &Ctx<'s>,
    loc: Vec<&'s str>,
    decl: &Rc<OptDecl<'s>>,
    defs: Vec<Def<'s>>,
) -> Option<Value<'s>> {
    use crate::scenario::{path, Alias};
    let shown = path::show(&loc);
    let (file, span) = decl.declarations[0];
    match decl.alias.expect("an alias") {
        Alias::Removed(how) => {
            if !defs.is_empty() {
                let mut d = crate::diag::Diagnostic::new(
                    crate::diag::ErrorKind::Removed,
                    Some(shown.clone()),
                    format!(
                        "The option definition `{shown}' in {} no longer has any effect; please remove it.\n{how}",
                        show_files(ctx, &defs)
                    ),
                );
                for x in &defs {
                    d.labels.push(crate::diag::Label {
                        span: x.span,
                        note: format!("defined in `{}`", ctx.file_name(x.file)),
                    });
                }
                ctx.report(Rc::new(d));
            }
            None
        }
        Alias::Renamed(to) | Alias::Aliased(to) => {
            // The new path is relative to the same evaluation root as the old one.
            let root = &loc[..loc.len().saturating_sub(decl.depth)];
            let target: Vec<Box<str>> = root
                .iter()
                .map(|s| Box::<str>::from(*s))
                .chain(to.iter().cloned())
                .collect();
            if !defs.is_empty() {
                if matches!(decl.alias, Some(Alias::Renamed(_))) {
                    let msg = format!(
                        "The option `{shown}' defined in {} has been renamed to `{}'.",
                        show_files(ctx, &defs),
                        path::show(&target)
                    );
                    ctx.redirect(
                        vec!["warnings".into()],
                        Def {
                            file,
                            span,
                            value: Value::List(vec![Value::Str(Rc::from(msg))].into()),
                            is_default: false,
                            order: None,
                        },
                    );
                }
                let key: Vec<String> = target.iter().map(|s| s.to_string()).collect();
                for d in defs {
                    ctx.redirect(key.clone(), d);
                }
            }
            Some(Value::Lazy(Lazy::new(Some(loc.into()), move |ctx, _| {
                ctx.select(&target, span)
            })))
        }
    }
}

/// An option's value: a thunk running `evalOptionValue` on first read.
fn option_value<'s>(loc: Vec<&'s str>, decl: Rc<OptDecl<'s>>, defs: Vec<Def<'s>>) -> Value<'s> {
    Value::Lazy(Lazy::new(Some(loc.into()), move |ctx, loc| {
        eval_option_value(ctx, loc, &decl, defs)
    }))
}

/// `evalOptionValue`: puts the default in front as `mkOptionDefault default` (priority 1500),
/// checks `readOnly` (which counts every raw definition, the default and `mkIf false` ones
/// included), then merges.
pub(crate) fn eval_option_value<'s>(
    ctx: &Ctx<'s>,
    loc: &[&'s str],
    decl: &Rc<OptDecl<'s>>,
    defs: Vec<Def<'s>>,
) -> Res<Value<'s>> {
    if let Some((file, span, why)) = decl.declared_twice {
        return Err(messages::declared_twice(
            loc,
            &decl
                .declarations
                .iter()
                .map(|(f, s)| (ctx.file_name(*f).to_string(), *s))
                .collect::<Vec<_>>(),
            ctx.file_name(file),
            span,
            why,
        ));
    }
    ctx.trace_declaration(loc, decl);
    let mut all = defs;
    // Definitions of renamed and aliased options that lead here.
    all.extend(ctx.redirected(loc));
    if let Some((node, file)) = decl.default {
        let value = match node.kind {
            // `{ name, ... }: { options.x.default = name; }`: the submodule's name is the
            // last component of its location (the attribute name under `attrsOf`).
            crate::scenario::Kind::Name => match loc.len().checked_sub(decl.depth + 1) {
                Some(i) => Value::Str(Rc::from(loc[i])),
                None => Value::Node(node),
            },
            // `"/home/${name}"` in a `.nix` submodule.
            crate::scenario::Kind::Format(ref parts)
                if parts
                    .iter()
                    .any(|p| matches!(p, crate::scenario::FormatPart::Name)) =>
            {
                let name = loc.len().checked_sub(decl.depth + 1).map(|i| loc[i]);
                ctx.format_named(parts, node.span, name)?
            }
            _ => Value::Node(node),
        };
        all.insert(
            0,
            Def {
                file,
                span: node.span,
                value,
                is_default: true,
                order: None,
            },
        );
    }
    if decl.read_only && all.len() > 1 {
        return Err(messages::read_only(loc, &ctx.shown(&all)));
    }
    let prepared = merge_definitions(ctx, loc, &decl.ty, all)?;
    let v = prepared.value(ctx, loc, &decl.ty)?;
    match decl.apply {
        // `apply` runs on the merged value: `config.x` is the applied one.
        Some(a) => match &a.func {
            crate::scenario::ApplyFn::Func(f) => {
                let mut args: Vec<Value<'s>> = a.args.iter().map(Value::Node).collect();
                args.push(v);
                super::functions::call(ctx, *f, &args, a.span)
            }
            crate::scenario::ApplyFn::Nix(d) => ctx.apply_nix(d, &v, a.span),
        },
        None => Ok(v),
    }
}

/// FxHash (rustc's hasher): option names are short and not attacker-controlled, so a
/// multiply-rotate hash beats SipHash several times over here.
#[derive(Default)]
struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut b = bytes;
        while let Some((w, rest)) = b.split_first_chunk::<8>() {
            self.add(u64::from_le_bytes(*w));
            b = rest;
        }
        if let Some((w, rest)) = b.split_first_chunk::<4>() {
            self.add(u64::from(u32::from_le_bytes(*w)));
            b = rest;
        }
        for &x in b {
            self.add(u64::from(x));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
