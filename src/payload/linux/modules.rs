//! Kernel modules as `modprobe` finds them: names (with `-` and `_` the same), aliases
//! (`iso9660` → `isofs`), built-ins, `modules.dep` closures in load order, and `pre:`
//! soft dependencies (optional: a soft dependency that fails to load is not an error, as
//! `crct10dif_pclmul` fails under QEMU TCG while `crct10dif_generic` serves).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::LinuxError;

/// One module to load: its file (relative to `lib/modules/VERSION`) and whether a failure
/// to load it is tolerated (a soft dependency).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Load {
    /// `kernel/fs/isofs/isofs.ko`.
    pub file: String,
    /// A soft dependency: may fail.
    pub optional: bool,
}

/// The module index of one kernel tree.
#[derive(Debug, Default)]
pub struct Index {
    /// Module name → its file and the files it depends on (as `modules.dep` lists them).
    dep: BTreeMap<String, (String, Vec<String>)>,
    /// Alias → module names.
    alias: BTreeMap<String, Vec<String>>,
    /// Built-in module names.
    builtin: BTreeSet<String>,
    /// Module name → `pre:` soft dependencies.
    softpre: BTreeMap<String, Vec<String>>,
    /// `modules.alias` as written: (pattern, module name).
    alias_lines: Vec<(String, String)>,
    /// `modules.softdep` lines, with their module's name.
    softdep_lines: Vec<(String, String)>,
}

/// A module's name from its file: the base name without `.ko` (or `.ko.xz` …), `-` as `_`.
pub fn name_of(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let base = base.split(".ko").next().unwrap_or(base);
    normal(base)
}

fn normal(n: &str) -> String {
    n.replace('-', "_")
}

fn read(dir: &Path, name: &str, required: bool) -> Result<String, LinuxError> {
    let p = dir.join(name);
    match crate::input::read_regular(&p, crate::input::MAX_TEXT) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(_) if !required => Ok(String::new()),
        Err(e) => Err(LinuxError::Read {
            path: p,
            message: e.to_string(),
        }),
    }
}

/// The indexes [`Index::open`] reads (`modules.dep` must exist, the others may).
pub const INDEX_FILES: [&str; 4] = [
    "modules.dep",
    "modules.alias",
    "modules.builtin",
    "modules.softdep",
];

impl Index {
    /// Reads the [`INDEX_FILES`].
    pub fn open(dir: &Path) -> Result<Index, LinuxError> {
        let mut ix = Index::default();
        for line in read(dir, "modules.dep", true)?.lines() {
            let Some((file, deps)) = line.split_once(':') else {
                continue;
            };
            let deps = deps.split_whitespace().map(str::to_string).collect();
            ix.dep.insert(name_of(file), (file.to_string(), deps));
        }
        for line in read(dir, "modules.alias", false)?.lines() {
            let mut w = line.split_whitespace();
            if let (Some("alias"), Some(a), Some(m)) = (w.next(), w.next(), w.next()) {
                ix.alias.entry(normal(a)).or_default().push(normal(m));
                ix.alias_lines.push((a.to_string(), normal(m)));
            }
        }
        for line in read(dir, "modules.builtin", false)?.lines() {
            ix.builtin.insert(name_of(line.trim()));
        }
        for line in read(dir, "modules.softdep", false)?.lines() {
            let mut w = line.split_whitespace();
            if w.next() != Some("softdep") {
                continue;
            }
            let Some(m) = w.next() else { continue };
            ix.softdep_lines.push((line.to_string(), normal(m)));
            let mut pre = false;
            for t in w {
                match t {
                    "pre:" => pre = true,
                    "post:" => pre = false,
                    t if pre => ix.softpre.entry(normal(m)).or_default().push(normal(t)),
                    _ => {}
                }
            }
        }
        Ok(ix)
    }

    /// The modules a name stands for: itself, or what its alias names; empty for a
    /// built-in; `None` when the tree has no such module.
    pub fn resolve(&self, name: &str) -> Option<Vec<String>> {
        let n = normal(name);
        if self.dep.contains_key(&n) {
            return Some(vec![n]);
        }
        if self.builtin.contains(&n) {
            return Some(Vec::new());
        }
        let targets = self.alias.get(&n)?;
        let mut found: Vec<String> = targets
            .iter()
            .filter(|m| self.dep.contains_key(*m))
            .cloned()
            .collect();
        found.dedup();
        // An alias of built-ins only needs nothing loaded.
        (!found.is_empty() || targets.iter().any(|m| self.builtin.contains(m))).then_some(found)
    }

    /// `modules.dep`, `modules.alias` and `modules.softdep` for the modules of `loads` only
    /// (what busybox `modprobe` reads in the initramfs).
    pub fn index_files(&self, loads: &[Load]) -> [(&'static str, String); 3] {
        let packed: BTreeSet<String> = loads.iter().map(|l| name_of(&l.file)).collect();
        let mut dep = String::new();
        for l in loads {
            if let Some((file, deps)) = self.dep.get(&name_of(&l.file)) {
                dep.push_str(&format!("{file}:"));
                for d in deps {
                    dep.push(' ');
                    dep.push_str(d);
                }
                dep.push('\n');
            }
        }
        let mut alias = String::new();
        for (a, m) in &self.alias_lines {
            if packed.contains(m) {
                alias.push_str(&format!("alias {a} {m}\n"));
            }
        }
        let mut soft = String::new();
        for (line, m) in &self.softdep_lines {
            if packed.contains(m) {
                soft.push_str(line);
                soft.push('\n');
            }
        }
        [
            ("modules.dep", dep),
            ("modules.alias", alias),
            ("modules.softdep", soft),
        ]
    }

    /// The load order of `names` (already resolved): each module after its dependencies
    /// (and its `pre:` soft dependencies, which are optional), each once.
    pub fn load_order(&self, names: &[String]) -> Vec<Load> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for n in names {
            self.visit(n, false, &mut seen, &mut out);
        }
        out
    }

    fn visit(&self, name: &str, optional: bool, seen: &mut BTreeSet<String>, out: &mut Vec<Load>) {
        let Some((file, deps)) = self.dep.get(name) else {
            return;
        };
        if !seen.insert(name.to_string()) {
            return;
        }
        for s in self.softpre.get(name).into_iter().flatten() {
            for m in self.resolve(s).unwrap_or_default() {
                self.visit(&m, true, seen, out);
            }
        }
        // modules.dep lists the whole closure, the deepest dependency last: modprobe loads
        // from the end.
        for d in deps.iter().rev() {
            self.visit(&name_of(d), optional, seen, out);
        }
        out.push(Load {
            file: file.clone(),
            optional,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("modules.dep"),
            "kernel/fs/isofs/isofs.ko: kernel/drivers/cdrom/cdrom.ko\n\
             kernel/drivers/cdrom/cdrom.ko:\n\
             kernel/drivers/scsi/sd_mod.ko: kernel/block/t10-pi.ko kernel/lib/crc-t10dif.ko kernel/drivers/scsi/scsi_mod.ko\n\
             kernel/block/t10-pi.ko: kernel/lib/crc-t10dif.ko\n\
             kernel/lib/crc-t10dif.ko:\n\
             kernel/drivers/scsi/scsi_mod.ko:\n\
             kernel/crypto/crct10dif_generic.ko:\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("modules.alias"),
            "alias iso9660 isofs\nalias crct10dif crct10dif_generic\nalias crct10dif crct10dif_pclmul\n",
        )
        .unwrap();
        std::fs::write(d.path().join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n").unwrap();
        std::fs::write(
            d.path().join("modules.softdep"),
            "# comment\nsoftdep crc_t10dif pre: crct10dif\n",
        )
        .unwrap();
        Index::open(d.path()).unwrap()
    }

    #[test]
    fn names_aliases_and_builtins_resolve_as_modprobe_does() {
        let ix = index();
        assert_eq!(ix.resolve("iso9660"), Some(vec!["isofs".to_string()]));
        assert_eq!(ix.resolve("sd-mod"), Some(vec!["sd_mod".to_string()]));
        assert_eq!(ix.resolve("ext4"), Some(vec![]));
        assert_eq!(ix.resolve("nosuch"), None);
    }

    #[test]
    fn dependencies_load_first_soft_ones_optional() {
        let ix = index();
        let order = ix.load_order(&["sd_mod".into(), "isofs".into()]);
        let files: Vec<(&str, bool)> = order
            .iter()
            .map(|l| (l.file.rsplit('/').next().unwrap(), l.optional))
            .collect();
        assert_eq!(
            files,
            [
                ("scsi_mod.ko", false),
                ("crct10dif_generic.ko", true),
                ("crc-t10dif.ko", false),
                ("t10-pi.ko", false),
                ("sd_mod.ko", false),
                ("cdrom.ko", false),
                ("isofs.ko", false),
            ]
        );
    }
}
