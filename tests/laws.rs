//! Property tests: one named law of the module system per test.

use proptest::prelude::*;
use serde_json::{json, Value};

/// Resolves `modules: [{options: {x: {type: T}}}, {config: {x: D1}}, ...]`.
fn resolve_x(ty: &str, defs: &[String]) -> Result<Value, Vec<String>> {
    let mut text = format!("modules:\n  - options: {{x: {{type: \"{ty}\"}}}}\n");
    for (i, d) in defs.iter().enumerate() {
        text.push_str(&format!("  - name: m{i}.yaml\n    config:\n      x: {d}\n"));
    }
    let s = isoproof::scenario::load_str(&text, "law.yaml", std::path::Path::new(".")).map_err(
        |e| {
            e.errors
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
        },
    )?;
    let r = isoproof::resolve::resolve(&s);
    match r.config {
        Some(c) => Ok(c.to_json()["x"].clone()),
        None => Err(r
            .errors
            .iter()
            .map(|e| e.kind.as_str().to_string())
            .collect()),
    }
}

const PRIOS: [(i64, &str); 6] = [
    (10, "!mkVMOverride"),
    (50, "!mkForce"),
    (60, "!mkImageMediaOverride"),
    (100, ""),
    (1000, "!mkDefault"),
    (1500, "!mkOptionDefault"),
];

fn wrap(prio_idx: usize, v: &str) -> String {
    let tag = PRIOS[prio_idx].1;
    if tag.is_empty() {
        v.to_string()
    } else {
        format!("{tag} {v}")
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// vm 10 < force 50 < image 60 < plain 100 < mkDefault 1000 < mkOptionDefault 1500:
    /// a unique best definition wins, whatever the others are.
    #[test]
    fn lower_priority_number_wins(prios in prop::collection::vec(0usize..6, 1..7)) {
        let defs: Vec<String> = prios.iter().enumerate().map(|(i, p)| wrap(*p, &format!("v{i}"))).collect();
        let best = *prios.iter().min().unwrap();
        let winners: Vec<usize> = (0..prios.len()).filter(|i| prios[*i] == best).collect();
        let got = resolve_x("str", &defs);
        if winners.len() == 1 {
            prop_assert_eq!(got, Ok(json!(format!("v{}", winners[0]))));
        } else {
            prop_assert_eq!(got, Err(vec!["conflict".to_string()]));
        }
    }

    /// Definitions tied at the best priority all go to the type's merge: for lists, every
    /// tied definition is concatenated and the losers are absent.
    #[test]
    fn ties_go_to_the_types_merge(prios in prop::collection::vec(0usize..6, 1..7)) {
        let defs: Vec<String> = prios.iter().enumerate().map(|(i, p)| wrap(*p, &format!("[{i}]"))).collect();
        let best = *prios.iter().min().unwrap();
        // Later modules come first (the module list is reversed).
        let want: Vec<i64> = (0..prios.len()).rev().filter(|i| prios[*i] == best).map(|i| i as i64).collect();
        prop_assert_eq!(resolve_x("listOf int", &defs), Ok(json!(want)));
    }

    /// For non-list types with a unique winner, module order does not matter.
    #[test]
    fn result_does_not_depend_on_module_order(prios in prop::collection::vec(0usize..6, 1..6), seed in any::<u64>()) {
        let defs: Vec<String> = prios.iter().enumerate().map(|(i, p)| wrap(*p, &format!("v{i}"))).collect();
        let mut shuffled = defs.clone();
        let n = shuffled.len();
        for i in 0..n { shuffled.swap(i, (seed as usize).wrapping_add(i * 7) % n); }
        let best = *prios.iter().min().unwrap();
        prop_assume!(prios.iter().filter(|p| **p == best).count() == 1);
        prop_assert_eq!(resolve_x("str", &defs), resolve_x("str", &shuffled));
    }

    /// `mkIf false v` is the same as no definition at all: the same value, or the same errors
    /// (with no definition left, both are `undefined`).
    #[test]
    fn mkif_false_is_no_definition(vals in prop::collection::vec(0i64..5, 0..4), hidden in 0i64..100, at in 0usize..4) {
        let defs: Vec<String> = vals.iter().map(|v| format!("[{v}]")).collect();
        let mut with = defs.clone();
        with.insert(at.min(with.len()), format!("!mkIf [false, [{hidden}]]"));
        prop_assert_eq!(resolve_x("listOf int", &defs), resolve_x("listOf int", &with));
    }

    /// `mkMerge [v]` is `v`, and nested mkMerge flattens in order.
    #[test]
    fn mkmerge_singleton_and_flattening(a in 0i64..9, b in 0i64..9, c in 0i64..9) {
        prop_assert_eq!(resolve_x("listOf int", &[format!("!mkMerge [[{a}]]")]), resolve_x("listOf int", &[format!("[{a}]")]));
        prop_assert_eq!(
            resolve_x("listOf int", &[format!("!mkMerge [!mkMerge [[{a}], [{b}]], [{c}]]")]),
            Ok(json!([a, b, c]))
        );
    }

    /// Lists concatenate in Nix's order: the reverse of the module list.
    #[test]
    fn lists_concatenate_in_nix_order(lists in prop::collection::vec(prop::collection::vec(0i64..99, 0..4), 1..6)) {
        let defs: Vec<String> = lists.iter().map(|l| serde_json::to_string(l).unwrap()).collect();
        let want: Vec<i64> = lists.iter().rev().flatten().copied().collect();
        prop_assert_eq!(resolve_x("listOf int", &defs), Ok(json!(want)));
    }

    /// mkOrder sorts by priority and keeps definition order for ties (a stable sort).
    #[test]
    fn mkorder_sorting_is_stable(orders in prop::collection::vec(prop::sample::select(vec![500i64, 1000, 1500, 999]), 1..7)) {
        let defs: Vec<String> = orders.iter().enumerate().map(|(i, o)| format!("!mkOrder [{o}, [{i}]]")).collect();
        let mut idx: Vec<usize> = (0..orders.len()).rev().collect();
        idx.sort_by_key(|i| orders[*i]);
        let want: Vec<i64> = idx.into_iter().map(|i| i as i64).collect();
        prop_assert_eq!(resolve_x("listOf int", &defs), Ok(json!(want)));
    }

    /// Equal scalar definitions at one priority merge to that value.
    #[test]
    fn equal_scalars_merge(n in 1usize..6, v in "[a-z]{1,8}") {
        let defs = vec![format!("\"{v}\""); n];
        prop_assert_eq!(resolve_x("str", &defs), Ok(json!(v)));
    }

    /// attrsOf keys resolve independently: the whole fails exactly when a key fails on its
    /// own, and each of its errors is one such a key gives; otherwise each key's value is what
    /// resolving it alone gives.
    #[test]
    fn attrsof_keys_resolve_independently(defs in prop::collection::vec((0usize..3, 0usize..6, 0i64..50), 1..8)) {
        let text: Vec<String> = defs.iter().map(|(k, p, v)| format!("{{k{k}: {}}}", wrap(*p, &v.to_string()))).collect();
        let whole = resolve_x("attrsOf int", &text);
        let mut values = serde_json::Map::new();
        let mut errors = Vec::new();
        for key in 0..3 {
            let alone: Vec<String> = defs.iter().filter(|(k, _, _)| *k == key).map(|(_, p, v)| wrap(*p, &v.to_string())).collect();
            if alone.is_empty() { continue; }
            match resolve_x("int", &alone) {
                Ok(v) => { values.insert(format!("k{key}"), v); }
                Err(e) => errors.extend(e),
            }
        }
        match whole {
            Ok(w) => {
                prop_assert!(errors.is_empty(), "the whole resolved, but keys alone gave {:?}", errors);
                prop_assert_eq!(w, Value::Object(values));
            }
            Err(got) => {
                prop_assert!(!errors.is_empty(), "the whole failed with {:?}, every key alone resolved", got);
                prop_assert!(got.iter().all(|e| errors.contains(e)), "{:?} not among {:?}", got, errors);
            }
        }
    }

    /// Resolving is deterministic.
    #[test]
    fn resolving_is_deterministic(prios in prop::collection::vec(0usize..6, 1..6)) {
        let defs: Vec<String> = prios.iter().enumerate().map(|(i, p)| wrap(*p, &format!("[{i}]"))).collect();
        prop_assert_eq!(resolve_x("listOf int", &defs), resolve_x("listOf int", &defs));
    }
}
