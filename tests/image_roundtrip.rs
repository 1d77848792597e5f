//! Property: any tree round-trips through the image and the extraction of xorriso and
//! bsdtar — names (any UTF-8 but `/`), nesting (past the eight levels of ISO 9660, through
//! Rock Ridge relocation), bytes, modes and symlink targets.

mod support;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum T {
    File(Vec<u8>, u32),
    Link(String),
    Dir(Vec<(String, T)>),
}

fn name() -> impl Strategy<Value = String> {
    // ASCII, Latin-1, CJK, outside the BMP, spaces and `;`: everything a POSIX name may hold.
    "[a-zA-Z0-9 ;._\\-éü日本\u{1F600}]{1,40}".prop_filter("not . or ..", |n| n != "." && n != "..")
}

fn tree() -> impl Strategy<Value = T> {
    let leaf = prop_oneof![
        (
            proptest::collection::vec(any::<u8>(), 0..5000),
            prop_oneof![Just(0o644u32), Just(0o755), Just(0o600)]
        )
            .prop_map(|(b, m)| T::File(b, m)),
        // Repeated slashes are one separator to every reader (POSIX paths alike).
        "[a-z./]{1,30}"
            .prop_filter("no //", |t| !t.contains("//"))
            .prop_map(T::Link),
    ];
    leaf.prop_recursive(4, 40, 8, |inner| {
        proptest::collection::btree_map(name(), inner, 0..8)
            .prop_map(|m| T::Dir(m.into_iter().collect()))
    })
}

fn create(at: &Path, t: &T) {
    match t {
        T::File(b, m) => {
            fs::write(at, b).unwrap();
            fs::set_permissions(at, fs::Permissions::from_mode(*m)).unwrap();
        }
        T::Link(target) => symlink(target, at).unwrap(),
        T::Dir(items) => {
            fs::create_dir(at).unwrap();
            for (n, c) in items {
                create(&at.join(n), c);
            }
            fs::set_permissions(at, fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_round_trip(
        items in proptest::collection::btree_map(name(), tree(), 0..10),
        // The random tree sits this deep, so some of it lies past level 8.
        depth in 0usize..14,
    ) {
        need("xorriso");
        need("bsdtar");
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let mut tree = T::Dir(items.into_iter().collect());
        for level in (0..depth).rev() {
            tree = T::Dir(vec![(format!("level{level}"), tree)]);
        }
        create(&src, &tree);
        let want = describe(&src);
        let iso = t.path().join("r.iso");
        mkiso(&src, &iso, &[]);
        let dst = t.path().join("x");
        xorriso_extract(&iso, &dst);
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
        prop_assert_eq!(describe(&dst), want.clone());
        let b = t.path().join("b");
        bsdtar_extract(&iso, &b);
        prop_assert_eq!(describe(&b), want);
    }
}
