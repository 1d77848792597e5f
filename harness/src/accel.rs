//! Choosing the accelerator. `/dev/kvm` existing proves nothing (in nested VMs KVM can exist
//! and still fail: OVMF hangs with "KVM internal error", SeaBIOS crawls), so `auto` boots a
//! tiny disk under KVM and uses KVM only when that boot reports within a budget a working
//! KVM meets easily; otherwise TCG.

use std::ffi::OsString;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::qemu::Accel;
use crate::run::{self, Ended, Limits};

/// `--accel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// KVM if the self-test passes, else TCG.
    Auto,
    /// KVM, no questions asked.
    Kvm,
    /// TCG.
    Tcg,
}

impl Choice {
    /// Parses `auto`, `kvm`, `tcg`.
    pub fn parse(s: &str) -> Option<Choice> {
        match s {
            "auto" => Some(Choice::Auto),
            "kvm" => Some(Choice::Kvm),
            "tcg" => Some(Choice::Tcg),
            _ => None,
        }
    }
}

/// The accelerator chosen, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What runs use.
    pub accel: Accel,
    /// Why (shown to the user).
    pub reason: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.accel.name(), self.reason)
    }
}

/// How long the KVM self-test may take. SeaBIOS reaches a boot sector in about 0.1 s under
/// TCG; a KVM slower than a few times that is not worth using.
pub const SELF_TEST_BUDGET: Duration = Duration::from_millis(1500);

/// The self-test disk's boot sector: `mov al, 0x10; out 0xF4, al; hlt; jmp $-1`, then the
/// 0x55AA signature. QEMU exits with 33 when it runs.
pub fn self_test_sector() -> [u8; 512] {
    let mut s = [0u8; 512];
    s[..7].copy_from_slice(&[0xB0, 0x10, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD]);
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

/// Decides; only `auto` runs the self-test (see [`decide_cached`] to keep its result).
pub fn decide(choice: Choice, qemu: &Path) -> Decision {
    match choice {
        Choice::Tcg => Decision {
            accel: Accel::Tcg,
            reason: "asked for".into(),
        },
        Choice::Kvm => Decision {
            accel: Accel::Kvm,
            reason: "asked for".into(),
        },
        Choice::Auto => match self_test(qemu) {
            Ok(t) => Decision {
                accel: Accel::Kvm,
                reason: format!("KVM self-test booted in {:.2} s", t.as_secs_f64()),
            },
            Err(why) => Decision {
                accel: Accel::Tcg,
                reason: format!("KVM not used: {why}"),
            },
        },
    }
}

/// What a self-test depends on: the QEMU binary (path, size, modification time) and the
/// running kernel (release and build); a cached result holds while they are the same.
fn cache_key(qemu: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(qemu).ok()?;
    let kernel = |f: &str| std::fs::read_to_string(format!("/proc/sys/kernel/{f}")).ok();
    Some(format!(
        "{}|{}|{}.{}|{}|{}",
        qemu.display(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        kernel("osrelease")?.trim(),
        kernel("version")?.trim()
    ))
}

/// The self-test's cached results: key → `kvm` or `tcg` and the reason, one line each.
fn read_cache(file: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some((
                f.next()?.to_string(),
                f.next()?.to_string(),
                f.next()?.to_string(),
            ))
        })
        .collect()
}

/// `auto` with the self-test's result kept in `cache` (a file) per QEMU binary and kernel, so
/// that only the first boot command pays for it; `recheck` runs it again. Without a cache,
/// or when it cannot be read or written, the test runs as [`decide`] runs it.
pub fn decide_cached(choice: Choice, qemu: &Path, cache: Option<&Path>, recheck: bool) -> Decision {
    let (Choice::Auto, Some(file), Some(key)) = (choice, cache, cache_key(qemu)) else {
        return decide(choice, qemu);
    };
    let mut entries = read_cache(file);
    if !recheck {
        if let Some((_, accel, reason)) = entries.iter().find(|(k, _, _)| *k == key) {
            let accel = if accel == "kvm" {
                Accel::Kvm
            } else {
                Accel::Tcg
            };
            return Decision {
                accel,
                reason: format!("{reason}; cached, --recheck-kvm tests again"),
            };
        }
    }
    // A missing /dev/kvm is found at once and may change; only a real run is kept.
    if std::fs::metadata("/dev/kvm").is_err() {
        return decide(choice, qemu);
    }
    let d = decide(choice, qemu);
    entries.retain(|(k, _, _)| *k != key);
    entries.push((
        key,
        d.accel.name().to_string(),
        d.reason.replace(['\n', '\t'], " "),
    ));
    let text: String = entries
        .iter()
        .map(|(k, a, r)| format!("{k}\t{a}\t{r}\n"))
        .collect();
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
        if let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) {
            use std::io::Write as _;
            if tmp.write_all(text.as_bytes()).is_ok() {
                let _ = tmp.persist(file);
            }
        }
    }
    d
}

/// Where the self-test's results are kept by default: `$XDG_CACHE_HOME/isoproof/` or
/// `~/.cache/isoproof/`.
pub fn default_cache() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("isoproof").join("kvm-self-test"))
}

/// Why KVM is not used.
#[derive(Debug, thiserror::Error)]
pub enum KvmUnusable {
    /// `/dev/kvm` cannot be opened.
    #[error("/dev/kvm: {0}")]
    NoDevice(std::io::Error),
    /// The self-test's files or QEMU could not be set up.
    #[error(transparent)]
    Setup(#[from] crate::Error),
    /// The self-test did not finish within its budget.
    #[error("the self-test did not boot within {:.1} s", .0.as_secs_f64())]
    TooSlow(Duration),
    /// The self-test ended another way (QEMU's last complaint with it).
    #[error("the self-test ended with {ended:?}: {last}")]
    Failed {
        /// How QEMU ended.
        ended: Ended,
        /// QEMU's last line on standard error.
        last: String,
    },
}

/// Boots the self-test disk under KVM (SeaBIOS, IDE disk, nothing else).
pub fn self_test(qemu: &Path) -> Result<Duration, KvmUnusable> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(KvmUnusable::NoDevice)?;
    let scratch = tempfile::tempdir().map_err(|e| crate::Error::io(std::env::temp_dir(), e))?;
    let disk = scratch.path().join("kvm-self-test.img");
    // One whole cylinder: SeaBIOS cannot read the boot sector of a smaller disk.
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..512].copy_from_slice(&self_test_sector());
    std::fs::write(&disk, bytes).map_err(|e| crate::Error::io(&disk, e))?;
    let serial = scratch.path().join("kvm-self-test.log");
    let args: Vec<OsString> = [
        "-nodefaults",
        "-no-user-config",
        "-machine",
        "q35",
        "-accel",
        "kvm",
        "-m",
        "64",
        "-display",
        "none",
        "-device",
        "isa-debug-exit,iobase=0xf4,iosize=0x04",
        "-no-reboot",
        "-blockdev",
    ]
    .iter()
    .map(OsString::from)
    .chain([
        {
            let mut o = OsString::from("driver=file,filename=");
            o.push(crate::qemu::escape(&disk));
            o.push(",node-name=d-file,read-only=on");
            o
        },
        "-blockdev".into(),
        "driver=raw,file=d-file,node-name=d,read-only=on".into(),
        "-device".into(),
        "ide-hd,drive=d,bus=ide.0,bootindex=0".into(),
    ])
    .collect();
    let out = run::run(
        qemu,
        &args,
        &serial,
        &Limits {
            timeout: SELF_TEST_BUDGET,
            grace: Duration::from_millis(500),
            expect: &[],
            cancel: &|| false,
            screenshot: None,
            qmp: None,
        },
    )
    .map_err(|e| crate::Error::io(qemu, e))?;
    match out.ended {
        Ended::Exited(33) => Ok(out.elapsed),
        Ended::TimedOut => Err(KvmUnusable::TooSlow(SELF_TEST_BUDGET)),
        ended => Err(KvmUnusable::Failed {
            ended,
            last: out.stderr.lines().last().unwrap_or("").trim().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_test_sector_layout() {
        let s = self_test_sector();
        // mov al,10h / out 0F4h,al / hlt / jmp short -1 (onto the hlt)
        assert_eq!(&s[..7], [0xB0, 0x10, 0xE6, 0xF4, 0xF4, 0xEB, 0xFD]);
        assert!(s[7..510].iter().all(|b| *b == 0));
        assert_eq!(&s[510..], [0x55, 0xAA]);
    }

    #[test]
    fn explicit_choices_need_no_test() {
        let d = decide(Choice::Tcg, Path::new("/nonexistent/qemu"));
        assert_eq!(d.accel, Accel::Tcg);
        assert_eq!(Choice::parse("auto"), Some(Choice::Auto));
        assert_eq!(Choice::parse("hvf"), None);
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    #[test]
    fn a_cached_result_is_used_until_a_recheck() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("isoproof/kvm-self-test");
        // Any file stands in for QEMU: the key is its path, size and time, and the kernel.
        let fake = dir.path().join("qemu");
        std::fs::write(&fake, "#!/bin/sh\nexit 1\n").unwrap();
        let key = cache_key(&fake).unwrap();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(
            &file,
            format!("other\ttcg\tx\n{key}\tkvm\tKVM self-test booted in 0.10 s\n"),
        )
        .unwrap();
        let d = decide_cached(Choice::Auto, &fake, Some(&file), false);
        assert_eq!(d.accel, Accel::Kvm);
        assert!(d.reason.contains("cached"), "{}", d.reason);
        // Other choices never look at the cache.
        assert_eq!(
            decide_cached(Choice::Tcg, &fake, Some(&file), false).accel,
            Accel::Tcg
        );
        // A recheck runs the test (this "QEMU" fails it) and keeps the new result.
        let d = decide_cached(Choice::Auto, &fake, Some(&file), true);
        assert_eq!(d.accel, Accel::Tcg);
        if std::fs::metadata("/dev/kvm").is_ok() {
            let again = decide_cached(Choice::Auto, &fake, Some(&file), false);
            assert_eq!(again.accel, Accel::Tcg);
            assert!(std::fs::read_to_string(&file)
                .unwrap()
                .contains("other\ttcg"));
        }
    }
}
