//! Running one QEMU process to its end: in its own process group, killed with the whole group
//! at the deadline (SIGTERM, then SIGKILL after a grace period) or when the caller cancels
//! (Ctrl-C), always reaped. Linux also sends it SIGKILL if the thread that started it dies,
//! so no QEMU outlives the harness even when the harness itself is killed.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

use crate::expect::{self, Expectation, SerialLog, Source};
use crate::qmp;

/// How a run may end early, and what to keep.
pub struct Limits<'a> {
    /// The deadline, counted from the start.
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Stop (as a pass) once these have matched, in order; each has `timeout` from the
    /// match before it (the first from the start).
    pub expect: &'a [Expectation],
    /// Asked between polls; `true` stops the guest (Ctrl-C).
    pub cancel: &'a (dyn Fn() -> bool + Sync),
    /// On a timeout, save a screenshot here (needs the launch's QMP socket).
    pub screenshot: Option<(&'a Path, PathBuf)>,
    /// The launch's QMP socket, for screen expectations.
    pub qmp: Option<&'a Path>,
    /// Tells a serial line by which the firmware refuses to go on (Secure Boot's "Access
    /// Denied"): the run stops there as `Ended::Refused` instead of waiting for the deadline.
    pub refusal: Option<fn(&str) -> bool>,
}

/// How the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// QEMU exited by itself with this status (33 after a guest wrote 0x10 to isa-debug-exit).
    Exited(i32),
    /// QEMU was ended by a signal it did not get from us.
    Signalled(i32),
    /// The serial log showed the awaited text; QEMU was stopped.
    Matched,
    /// The deadline passed; QEMU was stopped.
    TimedOut,
    /// The caller cancelled; QEMU was stopped.
    Cancelled,
    /// KVM could not run the guest (QEMU printed `KVM internal error` and paused the guest,
    /// where it would wait for the deadline); QEMU was stopped. QEMU's lines about it.
    KvmFailed(String),
    /// The firmware refused to load or start what it was given; QEMU was stopped. Its line.
    Refused(String),
}

/// What QEMU prints on standard error when KVM cannot run an instruction of the guest; QEMU
/// then pauses the guest for ever instead of exiting.
const KVM_FAILURE: &str = "KVM internal error";

/// The gist of QEMU's KVM failure dump: the error, its kind and where the guest was.
fn kvm_failure(stderr: &str) -> String {
    let mut lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.starts_with(KVM_FAILURE)
                || l.starts_with("emulation failure")
                || l.starts_with("EIP=")
                || l.starts_with("Code=")
        })
        .collect();
    lines.dedup();
    lines
        .iter()
        .map(|l| match l.strip_prefix("Code=") {
            // The bytes around the failing instruction (QEMU marks it `<cf>`), not all 64.
            Some(code) => {
                let bytes: Vec<&str> = code.split_whitespace().collect();
                let at = bytes.iter().position(|b| b.starts_with('<')).unwrap_or(0);
                let near = &bytes[at.saturating_sub(4)..(at + 5).min(bytes.len())];
                format!("Code=… {} …", near.join(" "))
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a run left behind.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// How it ended.
    pub ended: Ended,
    /// Wall time from spawn to reaping.
    pub elapsed: Duration,
    /// QEMU's standard error (its own complaints).
    pub stderr: String,
    /// The screenshot, when one was asked for and taken.
    pub screenshot: Option<PathBuf>,
    /// Why a screenshot was asked for but not taken.
    pub screenshot_error: Option<String>,
    /// When each expectation matched (from the start), in order; as many as matched.
    pub matched: Vec<Duration>,
    /// The text screen last read for a screen expectation.
    pub screen: Option<String>,
}

/// Kills the whole group and reaps the child when dropped (a panic or early return included).
struct Group {
    child: Child,
    reaped: bool,
}

impl Group {
    fn signal(&self, s: Signal) {
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            // ESRCH (already gone) is fine.
            let _ = kill_process_group(pid, s);
        }
    }

    /// SIGTERM, up to `grace` for it to exit, then SIGKILL; reaps.
    fn stop(&mut self, grace: Duration) {
        self.signal(Signal::TERM);
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.signal(Signal::KILL);
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Anything left in the group goes too (QEMU starts no helpers here, but a wrapper
        // script given as the QEMU binary might).
        self.signal(Signal::KILL);
        if !self.reaped {
            let _ = self.child.wait();
        }
    }
}

/// Runs `program args` under `limits`, with COM1 written to `serial` (read for `stop_on`).
pub fn run(
    program: &Path,
    args: &[OsString],
    serial: &Path,
    limits: &Limits<'_>,
) -> std::io::Result<Outcome> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only makes one
    // async-signal-safe system call (prctl).
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    let start = Instant::now();
    let child = cmd.spawn()?;
    let mut group = Group {
        child,
        reaped: false,
    };
    let mut stderr_pipe = group.child.stderr.take().expect("stderr is piped");
    // Read as it comes, so that a KVM failure is seen while QEMU waits with a paused guest.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let stderr = {
        let seen = seen.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stderr_pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]),
                }
            }
        })
    };
    let stderr_text =
        || String::from_utf8_lossy(&seen.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let mut kvm_failed_at: Option<Instant> = None;
    // Each expectation's deadline counts from the match before it.
    let mut deadline = start + limits.timeout;
    let mut screenshot = None;
    let mut screenshot_error = None;
    let mut log = SerialLog::default();
    let mut matched = Vec::new();
    let mut screen: Option<String> = None;
    let mut monitor: Option<qmp::Monitor> = None;
    let mut next_screen = start;
    let ended = loop {
        if let Some(st) = group.child.try_wait()? {
            group.reaped = true;
            use std::os::unix::process::ExitStatusExt;
            break match (st.code(), st.signal()) {
                (Some(c), _) => Ended::Exited(c),
                (None, Some(s)) => Ended::Signalled(s),
                (None, None) => Ended::Signalled(0),
            };
        }
        if (limits.cancel)() {
            group.stop(limits.grace);
            break Ended::Cancelled;
        }
        // The dump that follows the first line comes at once; it is given a moment to arrive.
        match kvm_failed_at {
            Some(at) if at.elapsed() >= Duration::from_millis(200) => {
                group.stop(limits.grace);
                break Ended::KvmFailed(kvm_failure(&stderr_text()));
            }
            Some(_) => {}
            None if stderr_text().contains(KVM_FAILURE) => kvm_failed_at = Some(Instant::now()),
            None => {}
        }
        if limits.refusal.is_some() || !limits.expect.is_empty() {
            log.poll(serial);
        }
        if let Some(line) = limits.refusal.and_then(|is| log.line(is)) {
            group.stop(limits.grace);
            break Ended::Refused(line);
        }
        if !limits.expect.is_empty() {
            while let Some(e) = limits.expect.get(matched.len()) {
                let hit = match e.source {
                    Source::Serial => log.find(&e.pattern),
                    // The screen is read four times a second: each read stops the guest's
                    // CPU for the monitor.
                    Source::Screen if Instant::now() >= next_screen => {
                        next_screen = Instant::now() + Duration::from_millis(250);
                        if monitor.is_none() {
                            monitor = limits.qmp.and_then(|q| qmp::Monitor::connect(q).ok());
                        }
                        match monitor.as_mut().map(qmp::Monitor::text_cells) {
                            Some(Ok(cells)) => {
                                let text = expect::screen_text(&cells);
                                let hit = e.pattern.is_match(&text);
                                screen = Some(text);
                                hit
                            }
                            Some(Err(_)) => {
                                monitor = None;
                                false
                            }
                            None => false,
                        }
                    }
                    Source::Screen => false,
                };
                if !hit {
                    break;
                }
                matched.push(start.elapsed());
                deadline = Instant::now() + limits.timeout;
            }
            if matched.len() == limits.expect.len() {
                group.stop(limits.grace);
                break Ended::Matched;
            }
        }
        if Instant::now() >= deadline {
            if let Some((socket, png)) = &limits.screenshot {
                match qmp::screendump(socket, png) {
                    Ok(()) => screenshot = Some(png.clone()),
                    Err(e) => screenshot_error = Some(e.to_string()),
                }
            }
            group.stop(limits.grace);
            break Ended::TimedOut;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    drop(group);
    let _ = stderr.join();
    let stderr = stderr_text();
    Ok(Outcome {
        ended,
        elapsed,
        stderr,
        screenshot,
        screenshot_error,
        matched,
        screen,
    })
}

/// The serial log as text (firmware writes escape sequences and the odd invalid byte).
pub fn read_serial(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits<'a>(timeout_ms: u64) -> Limits<'a> {
        Limits {
            timeout: Duration::from_millis(timeout_ms),
            grace: Duration::from_millis(200),
            expect: &[],
            cancel: &|| false,
            screenshot: None,
            qmp: None,
            refusal: None,
        }
    }

    /// Running (a zombie waiting for an init that does not reap counts as dead).
    fn alive(pid: i32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
        })
    }

    #[test]
    fn the_deadline_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // A "QEMU" that starts a grandchild and ignores SIGTERM: both must die.
        let script = format!(
            "trap '' TERM; sleep 60 & echo $! > {p}; echo $$ >> {p}; wait",
            p = pids.display()
        );
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        let t = Instant::now();
        let out = run(
            Path::new("/bin/sh"),
            &args,
            &dir.path().join("serial"),
            &limits(300),
        )
        .unwrap();
        assert_eq!(out.ended, Ended::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        let pids: Vec<i32> = fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2);
        // The grandchild is reparented and reaped by init; give it a moment.
        thread::sleep(Duration::from_millis(200));
        for p in pids {
            assert!(!alive(p), "process {p} survived");
        }
    }

    #[test]
    fn exit_status_and_stderr_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<OsString> = vec!["-c".into(), "echo oops >&2; exit 33".into()];
        let out = run(
            Path::new("/bin/sh"),
            &args,
            &dir.path().join("serial"),
            &limits(5000),
        )
        .unwrap();
        assert_eq!(out.ended, Ended::Exited(33));
        assert_eq!(out.stderr, "oops\n");
    }

    #[test]
    fn awaited_serial_text_stops_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let serial = dir.path().join("serial");
        let script = format!("echo 'login: ' > {}; sleep 60", serial.display());
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        let expect = [
            Expectation::new(Source::Serial, "log.n:").unwrap(),
            Expectation::new(Source::Serial, r"^\s*$").unwrap(),
        ];
        let mut l = limits(10_000);
        l.expect = &expect;
        let out = run(Path::new("/bin/sh"), &args, &serial, &l).unwrap();
        assert_eq!(out.ended, Ended::Matched);
        assert_eq!(out.matched.len(), 2);
        assert!(out.elapsed < Duration::from_secs(5));
    }

    #[test]
    fn a_firmware_refusal_stops_the_guest_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let serial = dir.path().join("serial");
        // An unfinished line is not judged yet; the refusal is, once its line ends.
        let script = format!(
            "printf 'BdsDxe: loading Boot0001\\nBdsDxe: fail' > {s}; sleep 0.3; printf 'ed to load Boot0001: Access Denied\\nmore\\n' >> {s}; sleep 60",
            s = serial.display()
        );
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        let mut l = limits(20_000);
        l.refusal = Some(|line| line.ends_with(": Access Denied"));
        let out = run(Path::new("/bin/sh"), &args, &serial, &l).unwrap();
        assert_eq!(
            out.ended,
            Ended::Refused("BdsDxe: failed to load Boot0001: Access Denied".into())
        );
        assert!(out.elapsed < Duration::from_secs(10));
    }

    #[test]
    fn each_expectation_has_its_own_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let expect = [
            Expectation::new(Source::Serial, "one").unwrap(),
            Expectation::new(Source::Serial, "two").unwrap(),
            Expectation::new(Source::Serial, "three").unwrap(),
        ];
        // "one" at 0.6 s; "two" `gap` seconds later; the deadline is 1 s from the start,
        // then 1 s from each match.
        let boot = |gap: &str| {
            // A fresh log for each boot, as every boot has its own directory.
            let serial = dir.path().join(format!("serial-{gap}"));
            let script = format!(
                "sleep 0.6; echo one > {s}; sleep {gap}; echo two >> {s}; sleep 60",
                s = serial.display()
            );
            let args: Vec<OsString> = vec!["-c".into(), script.into()];
            let mut l = limits(1000);
            l.expect = &expect;
            run(Path::new("/bin/sh"), &args, &serial, &l).unwrap()
        };
        // "two" at 1.4 s: past 1 s from the start, within 1 s of "one".
        let out = boot("0.8");
        assert_eq!(out.ended, Ended::TimedOut);
        assert_eq!(out.matched.len(), 2, "{:?}", out.matched);
        assert!(out.matched[1] >= Duration::from_millis(1400));
        // "two" 1.6 s after "one": past its own deadline.
        let out = boot("1.6");
        assert_eq!(out.ended, Ended::TimedOut);
        assert_eq!(out.matched.len(), 1, "{:?}", out.matched);
    }

    #[test]
    fn a_kvm_failure_ends_the_run_at_once() {
        let dir = tempfile::tempdir().unwrap();
        // What QEMU 7.2 prints when nested KVM cannot emulate an instruction, and then it
        // waits with the guest paused.
        let script = "printf 'KVM internal error. Suberror: 1\\nextra data[0]: 0x1\\nemulation failure\\nEIP=000089fc EFL=00000006\\nCode=61 83 c4 04 <cf> c3\\n' >&2; sleep 60";
        let args: Vec<OsString> = vec!["-c".into(), script.into()];
        let out = run(
            Path::new("/bin/sh"),
            &args,
            &dir.path().join("s"),
            &limits(30_000),
        )
        .unwrap();
        assert_eq!(
            out.ended,
            Ended::KvmFailed(
                "KVM internal error. Suberror: 1; emulation failure; EIP=000089fc EFL=00000006; Code=… 61 83 c4 04 <cf> c3 …".into()
            )
        );
        assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
        assert!(out.stderr.contains("extra data[0]"));
    }

    #[test]
    fn cancelling_stops_the_guest() {
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<OsString> = vec!["-c".into(), "sleep 60".into()];
        let start = Instant::now();
        let cancel = move || start.elapsed() > Duration::from_millis(100);
        let mut l = limits(60_000);
        l.cancel = &cancel;
        let out = run(Path::new("/bin/sh"), &args, &dir.path().join("s"), &l).unwrap();
        assert_eq!(out.ended, Ended::Cancelled);
        assert!(out.elapsed < Duration::from_secs(5));
    }
}
