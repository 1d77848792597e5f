//! Files isoproof writes — images, manifests, reports — appear whole or not at all, and only
//! where they were asked for. Each is written to a temporary file beside its target
//! (`.NAME.PID-N.isoproof-tmp`), synced, renamed over the target, and the directory synced,
//! so a crash leaves the old file or the new one. A target that exists and is not a regular
//! file (a device, a FIFO, a symbolic link, a directory) is never replaced. The temporary
//! file is removed on every way out the process controls: an error, a cancel, a panic, and
//! (through [`remove_pending_now`], which a signal handler may call) a second Ctrl-C; one
//! left by a killed run is removed by the next write beside it once its process is gone.

use std::ffi::{c_char, CStr, CString};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// What temporary file names end with.
const SUFFIX: &str = ".isoproof-tmp";

/// Temporary files being written, for [`remove_pending_now`]. A slot holds a leaked C string
/// of the path; whoever swaps it out owns it, so a signal handler and the writer never both
/// touch one.
static PENDING: [AtomicPtr<c_char>; 32] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 32];

/// Numbers temporary files within this process.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Removes every temporary file being written. Async-signal-safe (atomic swaps and
/// `unlink` only), for a handler that ends the process at once.
pub fn remove_pending_now() {
    for slot in &PENDING {
        remove_now(slot);
    }
}

fn remove_now(slot: &AtomicPtr<c_char>) {
    let p = slot.swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: the slot held a string leaked by `register`; swapping it out made it
        // ours. It is not freed: the process is about to end.
        let path = unsafe { CStr::from_ptr(p) };
        let _ = rustix::fs::unlink(path);
    }
}

fn register(path: &Path) -> Option<usize> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?.into_raw();
    for (i, slot) in PENDING.iter().enumerate() {
        if slot
            .compare_exchange(std::ptr::null_mut(), c, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Some(i);
        }
    }
    // All slots busy: the file is still removed on drop, or by the next run.
    // SAFETY: `c` came from `into_raw` above and was not shared.
    drop(unsafe { CString::from_raw(c) });
    None
}

fn unregister(slot: Option<usize>) {
    let Some(i) = slot else { return };
    let p = PENDING[i].swap(std::ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: swapped out of the slot, so ours; it came from `CString::into_raw`.
        drop(unsafe { CString::from_raw(p) });
    }
}

/// Refuses a target that exists and is not a regular file: renaming over it would destroy
/// a device node or FIFO, or replace a symbolic link instead of writing where it points.
pub(crate) fn check_target(target: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(md) if !md.file_type().is_file() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} is {}, not a regular file; refusing to replace it",
                target.display(),
                crate::input::kind_name(md.file_type())
            ),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A file being written in place of `target`.
pub(crate) struct Pending {
    file: File,
    tmp: PathBuf,
    target: PathBuf,
    slot: Option<usize>,
    done: bool,
    durable: Durable,
}

/// Whether a published file must survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durable {
    /// An output the user keeps: the file and its directory are synced.
    Yes,
    /// A scratch file in a private temporary directory, read back and thrown away (the
    /// images `golden check` rebuilds): syncing would only cost time.
    Scratch,
}

impl Pending {
    /// Starts writing `target`: checks it, removes temporary files that killed runs left
    /// beside it, and creates this run's.
    pub(crate) fn create(target: &Path) -> io::Result<Pending> {
        Pending::create_as(target, Durable::Yes)
    }

    /// [`Pending::create`], synced or not.
    pub(crate) fn create_as(target: &Path, durable: Durable) -> io::Result<Pending> {
        check_target(target)?;
        let dir = dir_of(target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        remove_stale(dir, &name);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{n}{SUFFIX}", std::process::id()));
        let slot = register(&tmp);
        let file = match OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) => {
                unregister(slot);
                return Err(e);
            }
        };
        Ok(Pending {
            file,
            tmp,
            target: target.to_path_buf(),
            slot,
            done: false,
            durable,
        })
    }

    /// The file to write.
    pub(crate) fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Where the bytes go until [`Pending::commit`].
    #[cfg(test)]
    pub(crate) fn temporary(&self) -> &Path {
        &self.tmp
    }

    /// Publishes the file: mode 0644 (temporary files are 0600, which would hide images
    /// from other users), synced, renamed over the target (checked again: it may have
    /// become a device meanwhile), and the directory synced so the rename lasts.
    pub(crate) fn commit(mut self) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let durable = self.durable == Durable::Yes;
        self.file
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
        if durable {
            self.file.sync_all()?;
        }
        check_target(&self.target)?;
        std::fs::rename(&self.tmp, &self.target)?;
        self.done = true;
        unregister(self.slot.take());
        if durable {
            File::open(dir_of(&self.target))?.sync_all()?;
        }
        Ok(())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
            unregister(self.slot.take());
        }
    }
}

fn dir_of(target: &Path) -> &Path {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes `.NAME.PID-N.isoproof-tmp` files in `dir` whose process no longer runs. A file
/// of a live process (another build of the same target) is left alone.
fn remove_stale(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|n| n.strip_suffix(SUFFIX))
        else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<i32>().ok()))
        else {
            continue;
        };
        if !alive(pid) {
            // A netboot directory being written is a directory.
            let _ = std::fs::remove_file(e.path()).or_else(|_| std::fs::remove_dir_all(e.path()));
        }
    }
}

/// Whether process `pid` exists (signal 0 finds it, or it exists but is not ours).
fn alive(pid: i32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid) else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Writes a whole file atomically (see the module).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut p = Pending::create(path)?;
    p.file().write_all(bytes)?;
    p.commit()
}

/// Copies a file atomically, streaming (images can be large).
pub(crate) fn copy_atomic(from: &Path, to: &Path) -> io::Result<()> {
    let (mut src, _) = crate::input::open_regular(from).map_err(io::Error::other)?;
    let mut p = Pending::create(to)?;
    io::copy(&mut src, p.file())?;
    p.commit()
}

/// Publishes a directory of `files` (name, bytes) at `target`, whole or not at all: written
/// beside it as `.NAME.PID-N.isoproof-tmp/`, synced, then renamed into place. A directory
/// already there is replaced only if it holds nothing but names of `files` (an earlier
/// output of the same kind): the old one is moved aside first and removed after.
/// `cancel` is asked between files.
pub(crate) fn publish_dir(
    target: &Path,
    files: &[(&str, &[u8])],
    durable: Durable,
    cancel: &dyn Fn() -> bool,
) -> io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    let ours = |dir: &Path| -> io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let name = e.file_name();
            if !files.iter().any(|(n, _)| name.as_bytes() == n.as_bytes())
                || !e.file_type()?.is_file()
            {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} holds {}, which is not a file of this output; refusing to replace it",
                        dir.display(),
                        name.to_string_lossy()
                    ),
                ));
            }
        }
        Ok(())
    };
    let exists = match std::fs::symlink_metadata(target) {
        Ok(md) if md.is_dir() => {
            ours(target)?;
            true
        }
        Ok(md) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} is {}, not a directory; refusing to replace it",
                    target.display(),
                    crate::input::kind_name(md.file_type())
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let dir = dir_of(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale(dir, &name);
    let temp = |n: usize| dir.join(format!(".{name}.{}-{n}{SUFFIX}", std::process::id()));
    let tmp = temp(COUNTER.fetch_add(1, Ordering::Relaxed));
    std::fs::create_dir(&tmp)?;
    let written = (|| -> io::Result<bool> {
        for (n, bytes) in files {
            if cancel() {
                return Ok(false);
            }
            let p = tmp.join(n);
            let mut f = OpenOptions::new().write(true).create_new(true).open(&p)?;
            f.write_all(bytes)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
            if durable == Durable::Yes {
                f.sync_all()?;
            }
        }
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        if durable == Durable::Yes {
            File::open(&tmp)?.sync_all()?;
        }
        Ok(true)
    })();
    if !matches!(written, Ok(true)) {
        let _ = std::fs::remove_dir_all(&tmp);
        return written;
    }
    let old = temp(COUNTER.fetch_add(1, Ordering::Relaxed));
    let moved = exists && {
        // Checked again: it may have changed meanwhile.
        ours(target)?;
        std::fs::rename(target, &old)?;
        true
    };
    if let Err(e) = std::fs::rename(&tmp, target) {
        if moved {
            let _ = std::fs::rename(&old, target);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if moved {
        std::fs::remove_dir_all(&old)?;
    }
    if durable == Durable::Yes {
        File::open(dir)?.sync_all()?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(SUFFIX))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_whole_files_with_mode_0644() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("a.json");
        write_atomic(&t, b"one").unwrap();
        write_atomic(&t, b"two").unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&t).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(leftovers(d.path()).is_empty());
    }

    #[test]
    fn non_regular_targets_are_never_replaced() {
        let d = tempfile::tempdir().unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink("elsewhere", &link).unwrap();
        for (t, kind) in [
            (Path::new("/dev/null"), "a character device"),
            (d.path(), "a directory"),
            (link.as_path(), "a symbolic link"),
        ] {
            let e = write_atomic(t, b"x").unwrap_err();
            assert!(e.to_string().contains(kind), "{e}");
        }
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(leftovers(d.path()).is_empty());
    }

    #[test]
    fn a_dropped_write_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("img.iso");
        let mut p = Pending::create(&t).unwrap();
        p.file().write_all(b"partial").unwrap();
        assert_eq!(leftovers(d.path()).len(), 1);
        drop(p);
        assert!(leftovers(d.path()).is_empty());
        assert!(!t.exists());
    }

    #[test]
    fn the_signal_path_removes_pending_files() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("img.iso");
        let p = Pending::create(&t).unwrap();
        let tmp = p.temporary().to_path_buf();
        assert!(tmp.exists());
        // What `remove_pending_now` does for every slot (all of them would also take the
        // files of tests running beside this one).
        remove_now(&PENDING[p.slot.unwrap()]);
        assert!(!tmp.exists());
        // The writer's own cleanup then finds nothing to do.
        drop(p);
    }

    #[test]
    fn stale_files_of_dead_processes_are_removed() {
        let d = tempfile::tempdir().unwrap();
        // A pid past the kernel's maximum cannot be running; our own pid is.
        let dead = d
            .path()
            .join(format!(".img.iso.{}-0{SUFFIX}", i32::MAX - 1));
        let live = d
            .path()
            .join(format!(".img.iso.{}-99{SUFFIX}", std::process::id()));
        let other = d
            .path()
            .join(format!(".other.iso.{}-0{SUFFIX}", i32::MAX - 1));
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"left over").unwrap();
        }
        write_atomic(&d.path().join("img.iso"), b"new").unwrap();
        assert!(!dead.exists(), "a dead run's file is removed");
        assert!(live.exists(), "a live run's file is left alone");
        assert!(other.exists(), "another target's file is left alone");
    }

    #[test]
    fn directories_are_published_whole_and_replace_only_their_own_kind() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("out.netboot");
        let files: [(&str, &[u8]); 2] = [("bzImage", b"k"), ("initrd", b"i")];
        assert!(publish_dir(&t, &files, Durable::Yes, &|| false).unwrap());
        assert_eq!(std::fs::read(t.join("initrd")).unwrap(), b"i");
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&t), mode(&t.join("bzImage"))), (0o755, 0o644));
        // Again over the first: replaced, nothing left beside it.
        let again: [(&str, &[u8]); 2] = [("bzImage", b"k2"), ("initrd", b"i")];
        assert!(publish_dir(&t, &again, Durable::Scratch, &|| false).unwrap());
        assert_eq!(std::fs::read(t.join("bzImage")).unwrap(), b"k2");
        assert!(leftovers(d.path()).is_empty());
        // A directory holding anything else is not ours to replace.
        std::fs::write(t.join("notes.txt"), "mine").unwrap();
        let e = publish_dir(&t, &files, Durable::Yes, &|| false).unwrap_err();
        assert!(e.to_string().contains("notes.txt"), "{e}");
        assert_eq!(std::fs::read(t.join("notes.txt")).unwrap(), b"mine");
        // A file where the directory should go is never replaced.
        let f = d.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(publish_dir(&f, &files, Durable::Yes, &|| false).is_err());
        // A cancel leaves nothing.
        let c = d.path().join("cancelled");
        assert!(!publish_dir(&c, &files, Durable::Yes, &|| true).unwrap());
        assert!(!c.exists());
        assert!(leftovers(d.path()).is_empty());
    }
}
