//! Making the payload root a [`Lock`] describes, from Debian's archive: `apt-get download`
//! of each `NAME=VERSION`, the locked files unpacked from each `.deb` without root
//! (`dpkg-deb --fsys-tarfile | tar -x`), the module indexes written by `depmod`, every file
//! checked against its sha256, and the finished root swapped in whole. [`pin`] does the same
//! for the versions the archive has now and writes the lock anew.
//!
//! Nothing here needs root: a root already equal to the lock is left alone, and a failed
//! fetch leaves the previous root as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::lock::{Lock, LockError, Package};
use super::modules::Index;

/// What [`fetch`] and [`pin`] report as they go.
#[derive(Debug)]
pub enum Event<'a> {
    /// The root already holds exactly the locked files.
    UpToDate {
        /// Files checked.
        files: usize,
    },
    /// A package is being downloaded.
    Downloading {
        /// Its name.
        name: &'a str,
        /// Its version.
        version: &'a str,
    },
    /// `depmod` is writing the module indexes.
    Depmod {
        /// The kernel version.
        version: &'a str,
    },
    /// The new root holds exactly the locked files, checked, and is in place.
    Installed {
        /// Files checked.
        files: usize,
    },
}

/// Why a root could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The lock cannot be used.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A program it runs is not installed.
    #[error("{tool} not found on PATH (Debian package {package})")]
    ToolMissing {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// A pinned version is not in the archive apt knows.
    #[error(
        "{name} {version} is not in the archive apt knows ({apt}).\n\
         Either apt's package lists are out of date (run `apt-get update`), or the version has \
         left the archive: `isoproof payload pin --lock {}` re-pins the lock to the versions the \
         archive has now; the live scenarios' golden records then report their inputs as \
         changed (`golden check` exits 5): review them and bless",
        lock.display()
    )]
    NotInArchive {
        /// The package.
        name: String,
        /// The pinned version.
        version: String,
        /// The lock.
        lock: PathBuf,
        /// What apt said.
        apt: String,
    },
    /// A program failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of what it wrote on standard error.
        stderr: String,
    },
    /// A package does not hold a file the lock takes from it.
    #[error("{name} {version} has no file {file}")]
    NotInPackage {
        /// The package.
        name: String,
        /// Its version.
        version: String,
        /// The file.
        file: String,
    },
    /// Bytes that are not what the lock says.
    #[error("{what}: sha256 {got}, but the lock says {want}")]
    Changed {
        /// What (a `.deb`, a file of the root with where it came from).
        what: String,
        /// The lock's sha256.
        want: String,
        /// The sha256 found.
        got: String,
    },
    /// `pin` could not work out a package's current version.
    #[error("{0}")]
    Pin(String),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The programs fetching runs, found once.
struct Tools {
    apt_get: PathBuf,
    apt_cache: PathBuf,
    dpkg_deb: PathBuf,
    tar: PathBuf,
    depmod: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, FetchError> {
        // depmod lives in /usr/sbin, which is not on every user's PATH.
        let dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
            .collect();
        let find = |tool: &'static str, package: &'static str| {
            dirs.iter()
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
                .ok_or(FetchError::ToolMissing { tool, package })
        };
        Ok(Tools {
            apt_get: find("apt-get", "apt")?,
            apt_cache: find("apt-cache", "apt")?,
            dpkg_deb: find("dpkg-deb", "dpkg")?,
            tar: find("tar", "tar")?,
            depmod: find("depmod", "kmod")?,
        })
    }
}

/// Runs a command to its end; standard output on success.
fn run(cmd: &mut Command) -> Result<Vec<u8>, FetchError> {
    let shown = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| FetchError::Command {
            command: shown.clone(),
            status: "not started".into(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    Err(FetchError::Command {
        command: shown,
        status: out.status.to_string(),
        stderr: tail(&out.stderr),
    })
}

/// The last lines of a program's complaint, without apt's sandbox warning.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("unsandboxed as root"))
        .collect();
    lines[lines.len().saturating_sub(4)..].join("; ")
}

fn sha256_file(p: &Path) -> Result<String, FetchError> {
    crate::input::sha256_hex(p).map_err(|e| FetchError::Io {
        path: p.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// Checks that apt knows `name=version` before anything is downloaded (a missing version is
/// found at once, not after the kernel's 70 MB).
fn available(t: &Tools, name: &str, version: &str, lock: &Path) -> Result<(), FetchError> {
    let asked = format!("{name}={version}");
    let not_found = |apt: String| FetchError::NotInArchive {
        name: name.into(),
        version: version.into(),
        lock: lock.to_path_buf(),
        apt,
    };
    let out = match run(Command::new(&t.apt_cache)
        .arg("show")
        .arg("--no-all-versions")
        .arg(&asked)
        .env("LC_ALL", "C"))
    {
        Err(FetchError::Command { stderr, .. }) => return Err(not_found(stderr)),
        other => other?,
    };
    let text = String::from_utf8_lossy(&out);
    if text
        .lines()
        .any(|l| l.strip_prefix("Version: ") == Some(version))
    {
        Ok(())
    } else {
        Err(not_found(format!(
            "`apt-cache show {asked}` lists no such version"
        )))
    }
}

/// Downloads `name=version` into `dir`; returns the `.deb`.
fn download(
    t: &Tools,
    name: &str,
    version: &str,
    dir: &Path,
    lock: &Path,
) -> Result<PathBuf, FetchError> {
    let before: BTreeSet<PathBuf> = debs_in(dir)?;
    let got = run(Command::new(&t.apt_get)
        .current_dir(dir)
        .arg("download")
        .arg(format!("{name}={version}"))
        .env("LC_ALL", "C"));
    if let Err(FetchError::Command { stderr, .. }) = &got {
        if stderr.contains("was not found") || stderr.contains("Unable to locate package") {
            return Err(FetchError::NotInArchive {
                name: name.into(),
                version: version.into(),
                lock: lock.to_path_buf(),
                apt: stderr.clone(),
            });
        }
    }
    got?;
    let new: Vec<PathBuf> = debs_in(dir)?.difference(&before).cloned().collect();
    match new.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(FetchError::Pin(format!(
            "apt-get download {name}={version} left {} new .deb files in {}",
            new.len(),
            dir.display()
        ))),
    }
}

fn debs_in(dir: &Path) -> Result<BTreeSet<PathBuf>, FetchError> {
    Ok(std::fs::read_dir(dir)
        .map_err(io(dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect())
}

/// Unpacks `files` of a `.deb` into `root`, as regular files owned by whoever runs this.
fn unpack<'a>(
    t: &Tools,
    deb: &Path,
    package: (&str, &str),
    files: impl Iterator<Item = &'a str>,
    root: &Path,
) -> Result<(), FetchError> {
    let list = root.with_extension("unpack-list");
    let names: String = files.map(|f| format!("./{f}\n")).collect();
    std::fs::write(&list, &names).map_err(io(&list))?;
    std::fs::create_dir_all(root).map_err(io(root))?;
    let shown = format!(
        "dpkg-deb --fsys-tarfile {} | tar -x",
        deb.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut dpkg = Command::new(&t.dpkg_deb)
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(&t.dpkg_deb))?;
    let tar = Command::new(&t.tar)
        .arg("-x")
        .arg("--no-same-owner")
        .arg("-C")
        .arg(root)
        .arg("-T")
        .arg(&list)
        .env("LC_ALL", "C")
        .stdin(dpkg.stdout.take().expect("piped"))
        .output()
        .map_err(io(&t.tar))?;
    // tar stops reading once it has every member: dpkg-deb may then die of SIGPIPE.
    let dpkg_out = dpkg.wait_with_output().map_err(io(&t.dpkg_deb))?;
    let _ = std::fs::remove_file(&list);
    if tar.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&tar.stderr);
    if let Some(missing) = stderr
        .lines()
        .find_map(|l| l.strip_suffix(": Not found in archive"))
        .and_then(|l| l.rsplit("./").next())
    {
        return Err(FetchError::NotInPackage {
            name: package.0.into(),
            version: package.1.into(),
            file: missing.into(),
        });
    }
    Err(FetchError::Command {
        command: shown,
        status: tar.status.to_string(),
        stderr: format!("{} {}", tail(&tar.stderr), tail(&dpkg_out.stderr)),
    })
}

/// Runs `depmod` for `version` in `root`; returns the files it wrote (relative to `root`).
fn depmod(t: &Tools, root: &Path, version: &str) -> Result<Vec<String>, FetchError> {
    let dir = root.join("lib/modules").join(version);
    let before: BTreeSet<String> = names_in(&dir)?;
    run(Command::new(&t.depmod)
        .arg("-b")
        .arg(root)
        .arg(version)
        .env("LC_ALL", "C"))?;
    Ok(names_in(&dir)?
        .difference(&before)
        .map(|n| format!("lib/modules/{version}/{n}"))
        .collect())
}

fn names_in(dir: &Path) -> Result<BTreeSet<String>, FetchError> {
    Ok(std::fs::read_dir(dir)
        .map_err(io(dir))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect())
}

/// Every regular file under `root`, relative; anything that is neither a file nor a
/// directory is returned as well, to be reported.
fn walk(root: &Path) -> Result<BTreeSet<String>, FetchError> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).map_err(io(&d))? {
            let e = e.map_err(io(&d))?;
            let t = e.file_type().map_err(io(&e.path()))?;
            if t.is_dir() {
                dirs.push(e.path());
            } else {
                let rel = e.path();
                let rel = rel.strip_prefix(root).unwrap_or(&rel);
                out.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    Ok(out)
}

/// Where each locked file comes from, for messages.
fn origins(lock: &Lock) -> BTreeMap<&str, String> {
    let mut m = BTreeMap::new();
    for p in &lock.packages {
        for f in p.files.keys() {
            m.insert(f.as_str(), format!("from {} {}", p.name, p.version));
        }
    }
    for f in lock.depmod.keys() {
        m.insert(f.as_str(), "written by depmod".to_string());
    }
    m
}

/// Checks that `root` holds exactly the locked files with their sha256.
fn verify(root: &Path, lock: &Lock) -> Result<usize, FetchError> {
    let origin = origins(lock);
    let mut n = 0;
    for (f, want) in lock.files() {
        let p = root.join(f);
        if !p.is_file() {
            return Err(FetchError::Io {
                path: p,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "not in the root"),
            });
        }
        let got = sha256_file(&p)?;
        if got != want {
            return Err(FetchError::Changed {
                what: format!("{} ({})", p.display(), origin[f]),
                want: want.into(),
                got,
            });
        }
        n += 1;
    }
    if let Some(extra) = walk(root)?
        .into_iter()
        .find(|f| !origin.contains_key(f.as_str()))
    {
        return Err(FetchError::Pin(format!(
            "{}: not in the lock",
            root.join(extra).display()
        )));
    }
    Ok(n)
}

/// A scratch directory beside `root` (same file system, so the new root can be renamed
/// into place).
fn scratch_beside(root: &Path) -> Result<tempfile::TempDir, FetchError> {
    let parent = match root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    tempfile::Builder::new()
        .prefix(".payload-fetch.")
        .tempdir_in(&parent)
        .map_err(io(&parent))
}

/// Puts the finished `new` root at `root`, swapping it with the old one in one step when
/// there is one.
fn install(new: &Path, root: &Path) -> Result<(), FetchError> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::rename(new, root).map_err(io(root))
        }
        Ok(md) if md.is_dir() => {
            renameat_with(CWD, new, CWD, root, RenameFlags::EXCHANGE).map_err(|e| FetchError::Io {
                path: root.to_path_buf(),
                source: e.into(),
            })
        }
        Ok(_) => Err(FetchError::Io {
            path: root.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a directory; refusing to replace it",
            ),
        }),
        Err(e) => Err(io(root)(e)),
    }
}

/// Unpacks every package's locked files from its `.deb` into `root` and runs `depmod` for
/// the kernel; returns the files `depmod` wrote.
fn assemble(
    t: &Tools,
    packages: &[(&Package, PathBuf)],
    kernel: Option<&str>,
    root: &Path,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<Vec<String>, FetchError> {
    for (p, deb) in packages {
        unpack(
            t,
            deb,
            (&p.name, &p.version),
            p.files.keys().map(String::as_str),
            root,
        )?;
    }
    match kernel {
        Some(v) => {
            on(Event::Depmod { version: v });
            depmod(t, root, v)
        }
        None => Ok(Vec::new()),
    }
}

/// Makes `root` hold exactly what `lock_path` pins. A root that already does is left alone.
///
/// # Example
///
/// ```no_run
/// use std::path::Path;
/// use isoproof::payload::linux::fetch::{fetch, Event};
///
/// fetch(Path::new("payload/lock.json"), Path::new("payload/root"), &mut |e| {
///     if let Event::Downloading { name, version } = e {
///         eprintln!("downloading {name} {version}");
///     }
/// })?;
/// # Ok::<(), isoproof::payload::linux::fetch::FetchError>(())
/// ```
pub fn fetch(
    lock_path: &Path,
    root: &Path,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<usize, FetchError> {
    let lock = Lock::read(lock_path)?;
    if root.is_dir() {
        if let Ok(files) = verify(root, &lock) {
            on(Event::UpToDate { files });
            return Ok(files);
        }
    }
    let t = Tools::find()?;
    let scratch = scratch_beside(root)?;
    let debs = scratch.path().join("debs");
    std::fs::create_dir(&debs).map_err(io(&debs))?;
    for p in &lock.packages {
        available(&t, &p.name, &p.version, lock_path)?;
    }
    let mut got = Vec::new();
    for p in &lock.packages {
        on(Event::Downloading {
            name: &p.name,
            version: &p.version,
        });
        let deb = download(&t, &p.name, &p.version, &debs, lock_path)?;
        let sha = sha256_file(&deb)?;
        if sha != p.deb_sha256 {
            return Err(FetchError::Changed {
                what: format!("{} {} (.deb)", p.name, p.version),
                want: p.deb_sha256.clone(),
                got: sha,
            });
        }
        got.push((p, deb));
    }
    let new = scratch.path().join("root");
    let kernel = lock.kernel().map(|(_, v)| v);
    let written = assemble(&t, &got, kernel, &new, on)?;
    // Indexes a newer depmod writes and the lock does not know are not used by the build.
    for f in written.iter().filter(|f| !lock.depmod.contains_key(*f)) {
        std::fs::remove_file(new.join(f)).map_err(io(&new.join(f)))?;
    }
    let files = verify(&new, &lock)?;
    install(&new, root)?;
    on(Event::Installed { files });
    Ok(files)
}

/// The version apt would install of `name` now (`apt-cache policy`'s candidate).
fn candidate(t: &Tools, name: &str) -> Result<String, FetchError> {
    let out = run(Command::new(&t.apt_cache)
        .arg("policy")
        .arg(name)
        .env("LC_ALL", "C"))?;
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate: "))
        .filter(|v| *v != "(none)")
        .map(str::to_string)
        .ok_or_else(|| {
            FetchError::Pin(format!(
                "apt knows no version of {name} (run `apt-get update`?)"
            ))
        })
}

/// The package `meta` (at `version`) depends on in place of `current`: the dependency whose
/// name starts as `current`'s does up to its first digit (`linux-image-amd64` depends on
/// `linux-image-6.1.0-57-amd64 (= 6.1.192-3)`), and the version it asks for.
fn dependency_like(
    t: &Tools,
    meta: &str,
    version: &str,
    current: &str,
) -> Result<(String, Option<String>), FetchError> {
    let out = run(Command::new(&t.apt_cache)
        .arg("show")
        .arg(format!("{meta}={version}"))
        .env("LC_ALL", "C"))?;
    let text = String::from_utf8_lossy(&out);
    let stem = current
        .find(|c: char| c.is_ascii_digit())
        .map_or(current, |i| &current[..i]);
    let depends = text
        .lines()
        .find_map(|l| l.strip_prefix("Depends: "))
        .unwrap_or("");
    depends
        .split([',', '|'])
        .map(str::trim)
        .find_map(|d| {
            let name = d.split_whitespace().next()?;
            let rest = name.strip_prefix(stem)?;
            rest.starts_with(|c: char| c.is_ascii_digit()).then(|| {
                let exact = d
                    .split_once("(=")
                    .map(|(_, v)| v.trim().trim_end_matches(')').trim().to_string());
                (name.to_string(), exact)
            })
        })
        .ok_or_else(|| {
            FetchError::Pin(format!(
                "{meta} {version} depends on no package named like {current} ({stem}…): Depends: {depends}"
            ))
        })
}

/// Re-pins `lock_path` to the versions the archive has now, keeping its packages, module
/// names and (for packages other than the kernel) file names; the kernel's files are its
/// image, its module lists and the dependency closure of the lock's modules. The root is
/// made from them as [`fetch`] makes it, then the lock is rewritten.
pub fn pin(
    lock_path: &Path,
    root: &Path,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<Lock, FetchError> {
    let old = Lock::read(lock_path)?;
    let t = Tools::find()?;
    let scratch = scratch_beside(root)?;
    let debs = scratch.path().join("debs");
    std::fs::create_dir(&debs).map_err(io(&debs))?;
    let old_kernel = old.kernel().map(|(p, _)| p.name.clone());
    let mut packages = Vec::new();
    let mut paths = Vec::new();
    let mut kernel_version = None;
    for p in &old.packages {
        let (name, version) = match &p.from {
            Some(meta) => {
                let v = candidate(&t, meta)?;
                match dependency_like(&t, meta, &v, &p.name)? {
                    (name, Some(exact)) => (name, exact),
                    (name, None) => {
                        let v = candidate(&t, &name)?;
                        (name, v)
                    }
                }
            }
            None => (p.name.clone(), candidate(&t, &p.name)?),
        };
        on(Event::Downloading {
            name: &name,
            version: &version,
        });
        let deb = download(&t, &name, &version, &debs, lock_path)?;
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        if Some(&p.name) == old_kernel.as_ref() {
            let (v, list) = kernel_files(
                &t,
                &deb,
                &name,
                &old.modules,
                &scratch.path().join("full"),
                on,
            )?;
            kernel_version = Some(v);
            files.extend(list.into_iter().map(|f| (f, String::new())));
        } else {
            // Other packages keep their paths; a copyright file named after the package
            // follows a rename.
            files.extend(p.files.keys().map(|f| {
                let f = f.replace(
                    &format!("usr/share/doc/{}/", p.name),
                    &format!("usr/share/doc/{name}/"),
                );
                (f, String::new())
            }));
        }
        packages.push(Package {
            name,
            version,
            from: p.from.clone(),
            deb_sha256: sha256_file(&deb)?,
            files,
        });
        paths.push(deb);
    }
    let new = scratch.path().join("root");
    let pairs: Vec<(&Package, PathBuf)> = packages.iter().zip(paths.iter().cloned()).collect();
    let written = assemble(&t, &pairs, kernel_version.as_deref(), &new, on)?;
    for p in &mut packages {
        for (f, h) in p.files.iter_mut() {
            *h = sha256_file(&new.join(f))?;
        }
    }
    let mut depmod = BTreeMap::new();
    for f in written {
        let h = sha256_file(&new.join(&f))?;
        depmod.insert(f, h);
    }
    let lock = Lock {
        about: old.about.clone(),
        architecture: old.architecture.clone(),
        modules: old.modules.clone(),
        packages,
        depmod,
    };
    // The new lock must read back as a lock, and the root must be exactly it.
    let text = lock.to_text();
    Lock::parse(text.as_bytes(), lock_path)?;
    let files = verify(&new, &lock)?;
    install(&new, root)?;
    crate::publish::write_atomic(lock_path, text.as_bytes()).map_err(io(lock_path))?;
    on(Event::Installed { files });
    Ok(lock)
}

/// The kernel package's files a root takes: the image, the lists `depmod` reads, the
/// copyright, and the modules of the closure of `modules`, worked out from the whole
/// package unpacked in `full` (removed afterwards). Returns the kernel version too.
fn kernel_files(
    t: &Tools,
    deb: &Path,
    name: &str,
    modules: &[String],
    full: &Path,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<(String, Vec<String>), FetchError> {
    run(Command::new(&t.dpkg_deb).arg("-x").arg(deb).arg(full))?;
    let boot = full.join("boot");
    let version = super::root::kernel_versions(&boot)
        .map_err(io(&boot))?
        .into_iter()
        .next()
        .ok_or_else(|| FetchError::NotInPackage {
            name: name.into(),
            version: String::new(),
            file: "boot/vmlinuz-*".into(),
        })?;
    on(Event::Depmod { version: &version });
    depmod(t, full, &version)?;
    let dir = full.join("lib/modules").join(&version);
    let index = Index::open(&dir).map_err(|e| FetchError::Pin(e.to_string()))?;
    let mut names = Vec::new();
    for m in modules {
        match index.resolve(m) {
            Some(found) => names.extend(found),
            None => {
                return Err(FetchError::Pin(format!(
                    "kernel {version} has no module {m} (the lock's modules)"
                )))
            }
        }
    }
    let mut files = vec![format!("boot/vmlinuz-{version}")];
    for list in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        if dir.join(list).is_file() {
            files.push(format!("lib/modules/{version}/{list}"));
        }
    }
    let copyright = format!("usr/share/doc/{name}/copyright");
    if full.join(&copyright).is_file() {
        files.push(copyright);
    }
    files.extend(
        index
            .load_order(&names)
            .into_iter()
            .map(|l| format!("lib/modules/{version}/{}", l.file)),
    );
    std::fs::remove_dir_all(full).map_err(io(full))?;
    Ok((version, files))
}

impl FetchError {
    /// Its exit class: a lock or bytes that are not what it pins are bad input; a missing
    /// tool, a failing one, or a version the archive no longer has is the machine's.
    pub fn class(&self) -> crate::exit::Class {
        use crate::exit::Class;
        match self {
            FetchError::Lock(_) | FetchError::NotInPackage { .. } | FetchError::Changed { .. } => {
                Class::BadInput
            }
            FetchError::ToolMissing { .. }
            | FetchError::NotInArchive { .. }
            | FetchError::Command { .. }
            | FetchError::Pin(_) => Class::Environment,
            FetchError::Io { .. } => Class::Output,
        }
    }
}
