//! The payload lock (`payload/lock.json`): the Debian packages a payload root is made of,
//! each pinned by name and version, with the sha256 of its `.deb` and of every file taken
//! from it, and the sha256 of every index `depmod` writes for those files. [`super::fetch`]
//! makes a root that is exactly this, or says why it cannot.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

/// A payload lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// What the lock is for, for the reader.
    pub about: String,
    /// The Debian architecture of every package (`amd64`).
    pub architecture: String,
    /// The modules (names as `modprobe` takes them) whose dependency closure, soft
    /// dependencies included, is taken from the kernel package when the lock is pinned.
    pub modules: Vec<String>,
    /// The packages, in the order they are unpacked.
    pub packages: Vec<Package>,
    /// The files `depmod` writes under `lib/modules/VERSION/` for the kernel's files:
    /// path → sha256.
    pub depmod: BTreeMap<String, String>,
}

/// One pinned package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// The package's name (`linux-image-6.1.0-57-amd64`).
    pub name: String,
    /// Its exact version (`6.1.192-3`, epoch included where it has one).
    pub version: String,
    /// The package asked for when it was pinned, when that is another one whose dependency
    /// this is (`linux-image-amd64`, whose current kernel package changes name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The sha256 of the `.deb` as it was downloaded when pinned.
    pub deb_sha256: String,
    /// The files taken from it (paths in the package, without `./`) → sha256.
    pub files: BTreeMap<String, String>,
}

/// Why a lock cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The lock.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: crate::input::InputError,
    },
    /// Not JSON of the lock's shape.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The lock.
        path: std::path::PathBuf,
        /// Where.
        line: usize,
        /// Where.
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// A field that has the right shape but a wrong value.
    #[error("{}:{line}: {what}", path.display())]
    Invalid {
        /// The lock.
        path: std::path::PathBuf,
        /// The line the value is on.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

/// Locks are small; anything larger is not one.
const MAX_LOCK: u64 = 4 << 20;

impl Lock {
    /// Reads and checks a lock file.
    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let bytes =
            crate::input::read_regular(path, MAX_LOCK).map_err(|source| LockError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Lock::parse(&bytes, path)
    }

    /// Parses and checks the text of a lock (`path` names it in errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Lock, LockError> {
        let lock: Lock = serde_json::from_slice(bytes).map_err(|e| LockError::Syntax {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: e.to_string().split(" at line ").next().unwrap_or("").into(),
        })?;
        let text = String::from_utf8_lossy(bytes);
        lock.check().map_err(|(needle, what)| LockError::Invalid {
            path: path.to_path_buf(),
            line: line_of(&text, &needle),
            what,
        })?;
        Ok(lock)
    }

    /// The lock as written: pretty JSON, keys in a fixed order, one file per line.
    pub fn to_text(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a lock serializes");
        s.push('\n');
        s
    }

    /// The package holding the kernel (`boot/vmlinuz-VERSION`) and that version.
    pub fn kernel(&self) -> Option<(&Package, &str)> {
        self.packages.iter().find_map(|p| {
            p.files
                .keys()
                .find_map(|f| f.strip_prefix("boot/vmlinuz-"))
                .map(|v| (p, v))
        })
    }

    /// Every file of the root the lock describes, with its sha256.
    pub fn files(&self) -> impl Iterator<Item = (&str, &str)> {
        self.packages
            .iter()
            .flat_map(|p| p.files.iter())
            .chain(self.depmod.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Each value that is wrong: the text to find it by (for its line) and what is wrong.
    fn check(&self) -> Result<(), (String, String)> {
        if !is_token(&self.architecture) {
            return Err((
                self.architecture.clone(),
                format!(
                    "architecture {:?}: not a Debian architecture name",
                    self.architecture
                ),
            ));
        }
        for m in &self.modules {
            if m.is_empty()
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err((m.clone(), format!("module {m:?}: not a module name")));
            }
        }
        let mut seen = BTreeMap::new();
        for p in &self.packages {
            for name in std::iter::once(&p.name).chain(p.from.iter()) {
                if !is_package_name(name) {
                    return Err((
                        name.clone(),
                        format!("package {name:?}: not a Debian package name"),
                    ));
                }
            }
            if !is_version(&p.version) {
                return Err((
                    p.version.clone(),
                    format!(
                        "package {}: version {:?} is not a Debian version",
                        p.name, p.version
                    ),
                ));
            }
            check_sha(&p.deb_sha256, &format!("package {}: deb_sha256", p.name))?;
            if p.files.is_empty() {
                return Err((p.name.clone(), format!("package {}: no files", p.name)));
            }
            for (f, h) in &p.files {
                check_path(f)?;
                check_sha(h, &format!("file {f}"))?;
                if let Some(other) = seen.insert(f.clone(), p.name.clone()) {
                    return Err((
                        f.clone(),
                        format!("file {f}: taken from both {other} and {}", p.name),
                    ));
                }
            }
        }
        let kernel = self.kernel().map(|(_, v)| format!("lib/modules/{v}/"));
        for (f, h) in &self.depmod {
            check_path(f)?;
            check_sha(h, &format!("depmod file {f}"))?;
            match &kernel {
                Some(dir) if f.starts_with(dir.as_str()) && !f[dir.len()..].contains('/') => {}
                Some(dir) => {
                    return Err((f.clone(), format!("depmod file {f}: not directly in {dir}")))
                }
                None => {
                    return Err((
                        f.clone(),
                        format!(
                            "depmod file {f}: no package holds a kernel (boot/vmlinuz-VERSION)"
                        ),
                    ))
                }
            }
            if seen.contains_key(f) {
                return Err((
                    f.clone(),
                    format!("file {f}: both in a package and written by depmod"),
                ));
            }
        }
        let kernels = self
            .packages
            .iter()
            .flat_map(|p| p.files.keys())
            .filter(|f| f.starts_with("boot/vmlinuz-"))
            .count();
        if kernels > 1 {
            return Err((
                "boot/vmlinuz-".into(),
                "more than one kernel (boot/vmlinuz-*)".into(),
            ));
        }
        Ok(())
    }
}

/// The 1-based line of the first place `needle` is written as a JSON string (1 when not
/// found).
fn line_of(text: &str, needle: &str) -> usize {
    let quoted = serde_json::to_string(needle).unwrap_or_default();
    text.find(&quoted)
        .or_else(|| text.find(needle))
        .map_or(1, |at| text[..at].matches('\n').count() + 1)
}

fn check_sha(h: &str, what: &str) -> Result<(), (String, String)> {
    if h.len() == 64
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err((
            h.into(),
            format!("{what}: {h:?} is not a sha256 (64 lowercase hex digits)"),
        ))
    }
}

/// A path inside the root: relative, plain components, no `.`/`..`, printable.
fn check_path(f: &str) -> Result<(), (String, String)> {
    let plain = !f.is_empty()
        && !f.ends_with('/')
        && !f.contains("//")
        && f.chars().all(|c| !c.is_control())
        && Path::new(f)
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err((
            f.into(),
            format!("file {f:?}: not a relative path of plain names inside the root"),
        ))
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Debian policy 5.6.1: lowercase letters, digits, `+ - .`, at least two, starting with an
/// alphanumeric.
fn is_package_name(s: &str) -> bool {
    s.len() >= 2
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Debian policy 5.6.12: `[epoch:]upstream[-revision]`, alphanumerics and `. + ~ - :`.
fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.as_bytes()[0].is_ascii_digit()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~-:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "3d9f2889d6782537624a4e1a10e68a2ddd53e0ee8bac02676f27308f42ec6bf6";

    fn text(version: &str, file: &str) -> String {
        format!(
            r#"{{
  "about": "test",
  "architecture": "amd64",
  "modules": [
    "isofs"
  ],
  "packages": [
    {{
      "name": "busybox-static",
      "version": "{version}",
      "deb_sha256": "{SHA}",
      "files": {{
        "{file}": "{SHA}"
      }}
    }}
  ],
  "depmod": {{}}
}}
"#
        )
    }

    #[test]
    fn a_lock_reads_and_writes_back_the_same_text() {
        let t = text("1:1.35.0-4+deb12u1+b1", "bin/busybox");
        let lock = Lock::parse(t.as_bytes(), Path::new("lock.json")).unwrap();
        assert_eq!(lock.packages[0].version, "1:1.35.0-4+deb12u1+b1");
        assert_eq!(lock.files().collect::<Vec<_>>(), [("bin/busybox", SHA)]);
        assert_eq!(lock.to_text(), t);
        assert!(lock.kernel().is_none());
    }

    #[test]
    fn wrong_values_are_named_with_their_line() {
        let e = Lock::parse(
            text("1.0;rm", "bin/busybox").as_bytes(),
            Path::new("l.json"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "l.json:10: package busybox-static: version \"1.0;rm\" is not a Debian version"
        );
        let e = Lock::parse(text("1.0", "../etc/passwd").as_bytes(), Path::new("l.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("l.json:13: file \"../etc/passwd\": not a relative path"),
            "{e}"
        );
        let e = Lock::parse(text("1.0", "/bin/busybox").as_bytes(), Path::new("l.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a relative path"), "{e}");
        let e = Lock::parse(
            text("1.0", "bin/busybox")
                .replacen(SHA, "abc", 1)
                .as_bytes(),
            Path::new("l.json"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "l.json:11: package busybox-static: deb_sha256: \"abc\" is not a sha256 (64 lowercase hex digits)"
        );
        let e = Lock::parse(
            text("1.0", "bin/busybox")
                .replace("\"modules\"", "\"module\"")
                .as_bytes(),
            Path::new("l.json"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("l.json:4:"), "{e}");
        assert!(e.contains("unknown field `module`"), "{e}");
    }

    #[test]
    fn depmod_files_belong_to_the_kernel() {
        let mut lock = Lock::parse(text("1.0", "bin/busybox").as_bytes(), Path::new("l")).unwrap();
        lock.depmod
            .insert("lib/modules/6.1.0-57-amd64/modules.dep".into(), SHA.into());
        assert!(lock
            .check()
            .unwrap_err()
            .1
            .contains("no package holds a kernel"));
        lock.packages[0]
            .files
            .insert("boot/vmlinuz-6.1.0-57-amd64".into(), SHA.into());
        assert_eq!(lock.check(), Ok(()));
        assert_eq!(lock.kernel().unwrap().1, "6.1.0-57-amd64");
        lock.depmod
            .insert("lib/modules/other/modules.dep".into(), SHA.into());
        assert!(lock.check().unwrap_err().1.contains("not directly in"));
    }
}
