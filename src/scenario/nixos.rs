//! Stage 1's built-in modules: the project's NixOS modules (the installer profile, the ISO and
//! netboot image modules, the option declarations), carried in the binary so `modulesPath`
//! and `<nixpkgs/nixos/modules/…>` find them wherever the scenario is, as NixOS finds its own.
//!
//! They live at a fixed store path, like nixpkgs' source: a path already in the store is
//! interpolated without being copied (`"${modulesPath}/installer/…"` is a string), and nothing
//! on the disk is ever read for it. The files are `scenarios/modules/*.yaml` (one text, read
//! by YAML scenarios by relative path too); the names nixpkgs gives them are aliases.

use std::path::{Path, PathBuf};

/// `<nixpkgs>`: `/nix/store/HASH-isoproof-nixpkgs`, HASH made as a package's is.
pub(crate) const NIXPKGS: &str = "/nix/store/67hyc5xy5z8fph6s54d4rjbnlvlx9fgl-isoproof-nixpkgs";

/// The folder the built-in modules are in, under `modulesPath`.
const OWN: &str = "isoproof";

/// The built-in modules, by their name in [`OWN`].
const FILES: &[(&str, &str)] = &[
    (
        "nixos-options.yaml",
        include_str!("../../scenarios/modules/nixos-options.yaml"),
    ),
    (
        "iso-image.yaml",
        include_str!("../../scenarios/modules/iso-image.yaml"),
    ),
    (
        "installation-cd-minimal.yaml",
        include_str!("../../scenarios/modules/installation-cd-minimal.yaml"),
    ),
    (
        "netboot.yaml",
        include_str!("../../scenarios/modules/netboot.yaml"),
    ),
];

/// nixpkgs' names (under `nixos/modules`) for the built-in modules.
const ALIASES: &[(&str, &str)] = &[
    (
        "installer/cd-dvd/installation-cd-minimal.nix",
        "installation-cd-minimal.yaml",
    ),
    ("installer/cd-dvd/iso-image.nix", "iso-image.yaml"),
    ("installer/netboot/netboot.nix", "netboot.yaml"),
];

/// `modulesPath`: `<nixpkgs>/nixos/modules`.
pub(crate) fn modules_path() -> PathBuf {
    Path::new(NIXPKGS).join("nixos/modules")
}

/// Whether `path` names something in the built-in `<nixpkgs>` (and so is never read from disk).
pub(crate) fn is_builtin(path: &Path) -> bool {
    path.starts_with(NIXPKGS)
}

/// A built-in module found by its path.
pub(crate) struct Builtin {
    /// Its one path (aliases lead to it), for loading it once.
    pub(crate) path: PathBuf,
    /// How files name it: `<nixpkgs/nixos/modules/isoproof/NAME>`.
    pub(crate) display: String,
    /// Its text.
    pub(crate) text: &'static str,
}

/// Why a path in `<nixpkgs>` names no built-in module.
#[derive(Debug, thiserror::Error)]
#[error("{shown} is not one of the NixOS modules isoproof carries; it has {known}")]
pub(crate) struct NotBuiltin {
    shown: String,
    known: String,
}

/// The built-in module at `path` (a path in `<nixpkgs>`, lexically normal).
pub(crate) fn find(path: &Path) -> Result<Builtin, NotBuiltin> {
    let under = modules_path();
    let path = &lexical(path);
    let rel = path
        .strip_prefix(&under)
        .ok()
        .and_then(Path::to_str)
        .unwrap_or("");
    let own = rel.strip_prefix(OWN).and_then(|r| r.strip_prefix('/'));
    let name = own.or_else(|| ALIASES.iter().find(|(a, _)| *a == rel).map(|(_, n)| *n));
    let found = name.and_then(|n| FILES.iter().find(|(f, _)| *f == n));
    match found {
        Some((name, text)) => Ok(Builtin {
            path: under.join(OWN).join(name),
            display: format!("<nixpkgs/nixos/modules/{OWN}/{name}>"),
            text,
        }),
        None => Err(NotBuiltin {
            shown: shown(path),
            known: ALIASES
                .iter()
                .map(|(a, _)| format!("`{a}`"))
                .chain(FILES.iter().map(|(f, _)| format!("`{OWN}/{f}`")))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// `path` with `.` and `a/..` taken away by its text (nothing here is on a disk).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// A path in `<nixpkgs>` as `<nixpkgs/…>`; any other path as it is.
pub(crate) fn shown(path: &Path) -> String {
    match path.strip_prefix(NIXPKGS) {
        Ok(r) if r.as_os_str().is_empty() => "<nixpkgs>".into(),
        Ok(r) => format!("<nixpkgs/{}>", r.display()),
        Err(_) => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_path_is_the_hash_its_comment_gives() {
        let p = super::super::nix::package_path("isoproof-nixpkgs");
        assert_eq!(p, NIXPKGS);
    }

    #[test]
    fn nixpkgs_names_and_own_names_lead_to_one_module() {
        let m = modules_path();
        let a = find(&m.join("installer/cd-dvd/installation-cd-minimal.nix")).unwrap();
        let b = find(&m.join("isoproof/installation-cd-minimal.yaml")).unwrap();
        assert_eq!(a.path, b.path);
        assert_eq!(
            a.display,
            "<nixpkgs/nixos/modules/isoproof/installation-cd-minimal.yaml>"
        );
        assert!(a.text.contains("mkDefault nixos-installer"));
    }

    #[test]
    fn an_unknown_module_is_named_with_those_that_exist() {
        let e = find(&modules_path().join("profiles/minimal.nix"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("<nixpkgs/nixos/modules/profiles/minimal.nix> is not one of"));
        assert!(e.contains("`installer/cd-dvd/iso-image.nix`"), "{e}");
    }
}
