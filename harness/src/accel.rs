//! Choosing the accelerator. `/dev/kvm` existing proves nothing: in nested VMs KVM can exist,
//! run SeaBIOS and real-mode boot sectors, and still fail as soon as a guest takes an
//! interrupt in protected mode (QEMU prints "KVM internal error … emulation failure" at the
//! `iret` of ISOLINUX's interrupt handler, and pauses the guest for ever). So `auto` boots a
//! one-sector program under KVM that does what ISOLINUX and Linux need of it — the switch to
//! 32-bit protected mode, an interrupt through an IDT there and the `iret` back — and uses
//! KVM only when it reports within a budget a working KVM meets easily; otherwise TCG, with
//! QEMU's reason.

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

/// How long the self-test is watched: longer than its budget, so that a KVM that crawls
/// through SeaBIOS (nested ones take about 3 s) and then fails says how it fails.
pub const SELF_TEST_DEADLINE: Duration = Duration::from_secs(6);

/// Where the BIOS loads the self-test sector.
const LOAD: u32 = 0x7C00;
/// Where the 32-bit code starts in the sector (the real-mode part fits before it).
const PM_OFFSET: u32 = 0x60;
/// The GDT (null, 32-bit code 0x08, 32-bit data 0x10) and its descriptor, in the sector.
const GDT_OFFSET: u32 = 0x1C0;
const GDTR_OFFSET: u32 = GDT_OFFSET + 24;
/// The IDT and its descriptor, built in free memory below the sector.
const IDT: u32 = 0x1000;
const IDTR: u32 = 0x0F00;
/// The interrupt the program raises in protected mode.
const VECTOR: u32 = 0x20;
/// What the handler leaves in EBX, checked after the `iret`.
const HANDLED: u32 = 0xA5;

/// The self-test disk's boot sector, assembled: in real mode, A20 on, `lgdt`, CR0.PE set and
/// a far jump into 32-bit code; there, flat segments, an IDT with one interrupt gate, `int
/// 0x20` into a handler (`pushad; popad; mov ebx, 0xA5; iretd`), and after the `iret`
/// `out 0xF4` with 0x10 (QEMU exits 33) when the handler ran, 0x11 (35) when not.
pub fn self_test_sector() -> [u8; 512] {
    let mut s = [0u8; 512];
    let real = real_mode().expect("the real-mode part assembles");
    let pm = protected_mode().expect("the protected-mode part assembles");
    assert!(
        real.len() <= PM_OFFSET as usize && PM_OFFSET as usize + pm.len() <= GDT_OFFSET as usize
    );
    s[..real.len()].copy_from_slice(&real);
    s[PM_OFFSET as usize..PM_OFFSET as usize + pm.len()].copy_from_slice(&pm);
    let gdt: [u64; 3] = [0, 0x00CF_9A00_0000_FFFF, 0x00CF_9200_0000_FFFF];
    for (i, d) in gdt.iter().enumerate() {
        let at = GDT_OFFSET as usize + 8 * i;
        s[at..at + 8].copy_from_slice(&d.to_le_bytes());
    }
    let at = GDTR_OFFSET as usize;
    s[at..at + 2].copy_from_slice(&23u16.to_le_bytes());
    s[at + 2..at + 6].copy_from_slice(&(LOAD + GDT_OFFSET).to_le_bytes());
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

fn real_mode() -> Result<Vec<u8>, iced_x86::IcedError> {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(16)?;
    a.cli()?;
    a.xor(ax, ax)?;
    a.mov(ds, ax)?;
    a.mov(ss, ax)?;
    a.mov(sp, LOAD)?;
    // Fast A20 (port 0x92), as boot loaders do before using memory above 1 MiB.
    a.in_(al, 0x92)?;
    a.or(al, 2)?;
    a.and(al, 0xFE)?;
    a.out(0x92, al)?;
    a.lgdt(ptr(LOAD + GDTR_OFFSET))?;
    a.mov(eax, cr0)?;
    a.or(eax, 1)?;
    a.mov(cr0, eax)?;
    // jmp 0x08:LOAD+PM_OFFSET (ptr16:16; the code segment is 32-bit).
    let target = (LOAD + PM_OFFSET) as u16;
    a.db(&[0xEA, target as u8, (target >> 8) as u8, 0x08, 0x00])?;
    a.assemble(u64::from(LOAD))
}

fn protected_mode() -> Result<Vec<u8>, iced_x86::IcedError> {
    use iced_x86::code_asm::*;
    let mut a = CodeAssembler::new(32)?;
    let mut main = a.create_label();
    let mut fail = a.create_label();
    // The handler comes first, at a known address: PM_OFFSET + 2, after a short jump.
    a.jmp(main)?;
    a.pushad()?;
    a.popad()?;
    a.mov(ebx, HANDLED)?;
    a.iretd()?;
    a.set_label(&mut main)?;
    a.mov(ax, 0x10u32)?;
    for seg in [ds, es, fs, gs, ss] {
        a.mov(seg, ax)?;
    }
    a.mov(esp, LOAD)?;
    // The IDT: zeroed up to the vector, then one 32-bit interrupt gate (type 0x8E).
    a.cld()?;
    a.mov(edi, IDT)?;
    a.xor(eax, eax)?;
    a.mov(ecx, (VECTOR + 1) * 2)?;
    a.rep().stosd()?;
    let handler = LOAD + PM_OFFSET + 2;
    a.mov(
        dword_ptr(IDT + 8 * VECTOR),
        (handler & 0xFFFF) | (0x08 << 16),
    )?;
    a.mov(
        dword_ptr(IDT + 8 * VECTOR + 4),
        (handler & 0xFFFF_0000) | 0x8E00,
    )?;
    a.mov(word_ptr(IDTR), 8 * (VECTOR + 1) - 1)?;
    a.mov(dword_ptr(IDTR + 2), IDT)?;
    a.lidt(ptr(IDTR))?;
    a.xor(ebx, ebx)?;
    a.int(VECTOR)?;
    a.cmp(ebx, HANDLED)?;
    a.jne(fail)?;
    a.mov(al, 0x10u32)?;
    a.out(0xF4, al)?;
    a.hlt()?;
    a.set_label(&mut fail)?;
    a.mov(al, 0x11u32)?;
    a.out(0xF4, al)?;
    a.hlt()?;
    a.assemble(u64::from(LOAD + PM_OFFSET))
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
        Choice::Auto => match self_test(qemu, Accel::Kvm) {
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
    /// The self-test booted, but slower than its budget.
    #[error("the self-test booted in {:.1} s, over its {:.1} s budget (TCG is faster)", .0.as_secs_f64(), SELF_TEST_BUDGET.as_secs_f64())]
    TooSlow(Duration),
    /// The self-test did not finish at all.
    #[error("the self-test did not finish within {:.1} s", SELF_TEST_DEADLINE.as_secs_f64())]
    Hung,
    /// KVM could not run the self-test (QEMU's lines about it).
    #[error("the self-test's switch to protected mode and interrupt there failed under KVM: {0}")]
    Kvm(String),
    /// The self-test ended another way (QEMU's last complaint with it).
    #[error("the self-test ended with {ended:?}: {last}")]
    Failed {
        /// How QEMU ended.
        ended: Ended,
        /// QEMU's last line on standard error.
        last: String,
    },
}

/// Boots the self-test disk with `accel` (SeaBIOS, an IDE disk, nothing else); `Ok` with
/// the time it took when the program reported that its interrupt returned. Under TCG it
/// proves the program and the command line.
pub fn self_test(qemu: &Path, accel: Accel) -> Result<Duration, KvmUnusable> {
    if accel == Accel::Kvm {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map_err(KvmUnusable::NoDevice)?;
    }
    let scratch =
        tempfile::tempdir().map_err(|e| crate::Error::scratch(std::env::temp_dir(), e))?;
    let disk = scratch.path().join("kvm-self-test.img");
    // One whole cylinder: SeaBIOS cannot read the boot sector of a smaller disk.
    let mut bytes = vec![0u8; 1 << 20];
    bytes[..512].copy_from_slice(&self_test_sector());
    std::fs::write(&disk, bytes).map_err(|e| crate::Error::scratch(&disk, e))?;
    let serial = scratch.path().join("kvm-self-test.log");
    let args: Vec<OsString> = [
        "-nodefaults",
        "-no-user-config",
        "-machine",
        "q35",
        "-accel",
        accel.name(),
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
            // Writable: QEMU refuses a read-only IDE disk ("Block node is read-only"),
            // and this scratch copy is the test's own.
            o.push(",node-name=d-file");
            o
        },
        "-blockdev".into(),
        "driver=raw,file=d-file,node-name=d".into(),
        "-device".into(),
        "ide-hd,drive=d,bus=ide.0,bootindex=0".into(),
    ])
    .collect();
    let out = run::run(
        qemu,
        &args,
        &serial,
        &Limits {
            timeout: SELF_TEST_DEADLINE,
            grace: Duration::from_millis(500),
            expect: &[],
            cancel: &|| false,
            screenshot: None,
            qmp: None,
            refusal: None,
        },
    )
    .map_err(|source| crate::Error::Run {
        program: qemu.to_path_buf(),
        source,
    })?;
    match out.ended {
        Ended::Exited(33) if accel == Accel::Tcg || out.elapsed <= SELF_TEST_BUDGET => {
            Ok(out.elapsed)
        }
        Ended::Exited(33) => Err(KvmUnusable::TooSlow(out.elapsed)),
        Ended::TimedOut => Err(KvmUnusable::Hung),
        Ended::KvmFailed(why) => Err(KvmUnusable::Kvm(why)),
        ended => Err(KvmUnusable::Failed {
            ended,
            last: out.stderr.lines().last().unwrap_or("").trim().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instructions at `offset` of the sector, as NASM writes them, up to `count`.
    fn disassemble(s: &[u8; 512], offset: u32, bits: u32, count: usize) -> Vec<String> {
        use iced_x86::{Decoder, DecoderOptions, Formatter, NasmFormatter};
        let mut d = Decoder::with_ip(
            bits,
            &s[offset as usize..],
            u64::from(LOAD + offset),
            DecoderOptions::NONE,
        );
        let mut f = NasmFormatter::new();
        d.iter()
            .take(count)
            .map(|i| {
                let mut t = String::new();
                f.format(&i, &mut t);
                t
            })
            .collect()
    }

    #[test]
    fn self_test_sector_layout() {
        let s = self_test_sector();
        assert_eq!(
            disassemble(&s, 0, 16, 15),
            [
                "cli",
                "xor ax,ax",
                "mov ds,ax",
                "mov ss,ax",
                "mov sp,7C00h",
                "in al,92h",
                "or al,2",
                "and al,0FEh",
                "out 92h,al",
                "lgdt [7DD8h]",
                "mov eax,cr0",
                "or eax,1",
                "mov cr0,eax",
                "jmp 8:7C60h",
                "add [bx+si],al",
            ]
        );
        // The handler sits right after the short jump that opens the 32-bit code.
        let pm = disassemble(&s, PM_OFFSET, 32, 40);
        assert_eq!(
            pm[..5],
            [
                "jmp short 00007C6Ah",
                "pusha",
                "popa",
                "mov ebx,0A5h",
                "iret"
            ]
        );
        assert!(pm.contains(&"lidt [0F00h]".to_string()), "{pm:?}");
        assert!(
            pm.contains(&"mov dword [1100h],87C62h".to_string()),
            "the gate points at the handler, selector 8: {pm:?}"
        );
        assert!(
            pm.contains(&"mov dword [1104h],8E00h".to_string()),
            "{pm:?}"
        );
        let int = pm.iter().position(|i| i == "int 20h").unwrap();
        assert_eq!(
            pm[int..int + 9],
            [
                "int 20h",
                "cmp ebx,0A5h",
                "jne short 00007CD0h",
                "mov al,10h",
                "out 0F4h,al",
                "hlt",
                "mov al,11h",
                "out 0F4h,al",
                "hlt"
            ]
        );
        // The failure path is where the jne goes.
        assert_eq!(disassemble(&s, 0xD0, 32, 1), ["mov al,11h"]);
        // GDT (Intel SDM vol. 3, 3.4.5): null, flat 32-bit code, flat data.
        assert_eq!(&s[0x1C0..0x1C8], [0; 8]);
        assert_eq!(&s[0x1C8..0x1D0], [0xFF, 0xFF, 0, 0, 0, 0x9A, 0xCF, 0]);
        assert_eq!(&s[0x1D0..0x1D8], [0xFF, 0xFF, 0, 0, 0, 0x92, 0xCF, 0]);
        // GDTR: limit 23, base 0x7DC0.
        assert_eq!(&s[0x1D8..0x1DE], [23, 0, 0xC0, 0x7D, 0, 0]);
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
