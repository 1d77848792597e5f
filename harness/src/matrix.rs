//! The boot matrix: many (suite, mode) cases, run in parallel up to a number of jobs, each
//! checked by its own verdict function, a failing case retried to tell a flaky boot from a
//! broken one; the logs and screenshot of every failed attempt kept; a table and JUnit XML.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::boot::{self, Attempt, Machine, Request};
use crate::expect::Expectation;
use crate::qemu::Mode;
use crate::run::Ended;
use crate::Error;

/// Judges an attempt.
pub type Check = Arc<dyn Fn(&Attempt) -> Verdict + Send + Sync>;

/// What a check says of an attempt, with the text a user reads either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It passed: what the guest showed.
    Pass(String),
    /// It failed: why.
    Fail(String),
}

impl Verdict {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass(_))
    }

    /// What it says.
    pub fn text(&self) -> &str {
        match self {
            Verdict::Pass(s) | Verdict::Fail(s) => s,
        }
    }

    /// The failure's reason, if it failed.
    pub fn failure(&self) -> Option<&str> {
        match self {
            Verdict::Pass(_) => None,
            Verdict::Fail(s) => Some(s),
        }
    }
}

/// One cell: a suite (a scenario) booted in one mode.
#[derive(Clone)]
pub struct Case {
    /// The suite's name.
    pub suite: String,
    /// Firmware and medium.
    pub mode: Mode,
    /// The image.
    pub image: PathBuf,
    /// Stop the guest once these have matched, in order (images that never exit QEMU).
    pub expect: Vec<Expectation>,
    /// The verdict.
    pub check: Check,
    /// The certificate (DER) a Secure Boot mode enrolls when the firmware does not trust it.
    pub enroll: Option<Vec<u8>>,
}

/// One of N shares of a boot matrix (`--partition K/N`): N jobs, each given the same
/// scenarios, together boot every (scenario, mode) pair exactly once. Pairs are numbered in the
/// matrix's order (scenarios sorted by path, modes BIOS first) and dealt out in turn, so the
/// shares differ in size by one pair at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Which share, from 1.
    pub k: usize,
    /// How many shares.
    pub n: usize,
}

/// A `--partition` that is not `K/N` with 1 ≤ K ≤ N.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: expected K/N with 1 <= K <= N, e.g. 2/4")]
pub struct BadPartition(pub String);

impl std::str::FromStr for Partition {
    type Err = BadPartition;

    fn from_str(s: &str) -> Result<Partition, BadPartition> {
        let bad = || BadPartition(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if k == 0 || k > n {
            return Err(bad());
        }
        Ok(Partition { k, n })
    }
}

impl Partition {
    /// The whole matrix.
    pub const ALL: Partition = Partition { k: 1, n: 1 };

    /// Whether pair number `i` (from 0, in the matrix's order) is this share's.
    pub fn owns(self, i: usize) -> bool {
        i % self.n == self.k - 1
    }
}

/// How the matrix runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Boots at once.
    pub jobs: usize,
    /// Each boot's deadline.
    pub timeout: Duration,
    /// Extra attempts for a failing case (1: retry once).
    pub retries: u32,
    /// Where failed attempts' files are kept.
    pub keep: PathBuf,
}

/// One attempt, judged.
#[derive(Clone, Debug)]
pub struct Judged {
    /// What the check said.
    pub verdict: Verdict,
    /// Wall time.
    pub elapsed: Duration,
    /// The kept serial log (failed attempts only).
    pub serial_log: Option<PathBuf>,
    /// The kept screenshot (failed attempts that hung).
    pub screenshot: Option<PathBuf>,
}

/// A case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The suite.
    pub suite: String,
    /// The mode.
    pub mode: Mode,
    /// Every attempt, in order.
    pub attempts: Vec<Judged>,
}

/// A suite whose image could not be made: a failed row of the matrix, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unbuilt {
    /// The suite's name.
    pub suite: String,
    /// Why it could not be built.
    pub why: String,
}

impl CaseResult {
    /// Whether the last attempt passed.
    pub fn passed(&self) -> bool {
        self.attempts.last().is_some_and(|a| a.verdict.passed())
    }

    /// Passed, but only after failing.
    pub fn flaky(&self) -> bool {
        self.passed() && self.attempts.len() > 1
    }

    /// The final verdict's text.
    pub fn message(&self) -> &str {
        self.attempts.last().map_or("not run", |a| a.verdict.text())
    }
}

/// The default verdict on how QEMU ended, before any look at the serial log.
pub fn ended_text(e: &Ended, timeout: Duration) -> String {
    match e {
        Ended::Exited(c) => format!("QEMU exited with status {c}"),
        Ended::Signalled(s) => format!("QEMU was killed by signal {s}"),
        Ended::Matched => "every awaited pattern appeared".into(),
        Ended::TimedOut => format!(
            "no report within {:.0} s (deadline); QEMU was stopped",
            timeout.as_secs_f64()
        ),
        Ended::Cancelled => "interrupted".into(),
        Ended::Refused(line) => format!("the firmware refused to boot it: {line}"),
        Ended::KvmFailed(why) => format!(
            "KVM cannot run this guest, QEMU was stopped ({why}); boot with --accel tcg (--accel auto finds this out by its self-test)"
        ),
    }
}

impl Judged {
    /// An attempt that could not boot at all.
    fn broken(why: String) -> Judged {
        Judged {
            verdict: Verdict::Fail(why),
            elapsed: Duration::ZERO,
            serial_log: None,
            screenshot: None,
        }
    }
}

/// Boots a case once with its files in `work` (created here, removed by the caller).
fn attempt_once(
    machine: &Machine,
    case: &Case,
    settings: &Settings,
    work: &Path,
    cancel: &(dyn Fn() -> bool + Sync),
) -> Judged {
    if let Err(e) = std::fs::create_dir_all(work) {
        return Judged::broken(format!("{}: {e}", work.display()));
    }
    let req = Request {
        image: &case.image,
        mode: case.mode,
        timeout: settings.timeout,
        expect: &case.expect,
        work,
        cancel,
        enroll: case.enroll.as_deref(),
    };
    match boot::boot(machine, &req) {
        Err(e) => Judged::broken(e.to_string()),
        Ok(a) => Judged {
            verdict: if a.ended == Ended::Cancelled {
                Verdict::Fail("interrupted".into())
            } else {
                (case.check)(&a)
            },
            elapsed: a.elapsed,
            serial_log: Some(a.serial_log),
            screenshot: a.screenshot,
        },
    }
}

/// Copies a failed attempt's files to the keep directory and points the attempt at the copies.
fn keep_files(j: &mut Judged, keep: &Path, case: &Case, n: usize) {
    let dir = keep
        .join(&case.suite)
        .join(format!("{}-attempt{n}", case.mode));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let copy = |p: &Option<PathBuf>| -> Option<PathBuf> {
        let src = p.as_ref()?;
        let dst = dir.join(src.file_name()?);
        std::fs::copy(src, &dst).ok().map(|_| dst)
    };
    j.serial_log = copy(&j.serial_log);
    j.screenshot = copy(&j.screenshot);
}

/// Boots a case until it passes or runs out of attempts; only failed attempts keep files.
fn run_case(
    machine: &Machine,
    case: &Case,
    settings: &Settings,
    scratch: &Path,
    cancel: &(dyn Fn() -> bool + Sync),
) -> CaseResult {
    let mut attempts = Vec::new();
    for n in 1..=1 + settings.retries as usize {
        let work = scratch.join(format!("{n}"));
        let mut j = attempt_once(machine, case, settings, &work, cancel);
        let failed = !j.verdict.passed();
        if failed {
            keep_files(&mut j, &settings.keep, case, n);
        } else {
            j.serial_log = None;
            j.screenshot = None;
        }
        let _ = std::fs::remove_dir_all(&work);
        attempts.push(j);
        if !failed || cancel() {
            break;
        }
    }
    CaseResult {
        suite: case.suite.clone(),
        mode: case.mode,
        attempts,
    }
}

/// Runs every case; `progress(result, done, total)` is called as each finishes.
pub fn run(
    machine: &Machine,
    cases: &[Case],
    settings: &Settings,
    cancel: &(dyn Fn() -> bool + Sync),
    progress: &(dyn Fn(&CaseResult, usize, usize) + Sync),
) -> Result<Vec<CaseResult>, Error> {
    let scratch = tempfile::Builder::new()
        .prefix("isoproof-boot")
        .tempdir()
        .map_err(|e| Error::scratch(std::env::temp_dir(), e))?;
    let next = AtomicUsize::new(0);
    // Results by case index; the lock also keeps progress lines whole.
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|s| {
        for _ in 0..settings.jobs.clamp(1, cases.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                if cancel() {
                    break;
                }
                let r = run_case(
                    machine,
                    case,
                    settings,
                    &scratch.path().join(format!("{i}")),
                    cancel,
                );
                let mut all = results.lock().unwrap_or_else(|e| e.into_inner());
                let done = all.iter().filter(|x| x.is_some()).count() + 1;
                progress(&r, done, cases.len());
                all[i] = Some(r);
            });
        }
    });
    Ok(results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

/// One line of progress: `[3/12] pass  installer-minimal  uefi-usb  3.9 s`.
pub fn progress_line(r: &CaseResult, done: usize, total: usize) -> String {
    let status = match (r.passed(), r.flaky()) {
        (true, true) => "FLAKY",
        (true, false) => "pass",
        (false, _) => "FAIL",
    };
    let secs: f64 = r.attempts.iter().map(|a| a.elapsed.as_secs_f64()).sum();
    format!(
        "[{done}/{total}] {status:<5} {:<28} {:<10} {secs:5.1} s",
        r.suite,
        r.mode.to_string()
    )
}

/// The results as a table (suites down, modes across; a suite that was not built is a row
/// of its own), failures explained below it, and the closing `N passed, M failed` line (a
/// suite not built counts as one failure).
pub fn table(results: &[CaseResult], unbuilt: &[Unbuilt]) -> String {
    // The modes that ran (all when none did), so that an ISO-only or netboot-only matrix
    // stays narrow.
    let ran: Vec<Mode> = Mode::all()
        .into_iter()
        .filter(|m| results.iter().any(|r| r.mode == *m))
        .collect();
    let modes = if ran.is_empty() { Mode::all() } else { ran };
    let mut suites: Vec<&str> = Vec::new();
    for s in results
        .iter()
        .map(|r| r.suite.as_str())
        .chain(unbuilt.iter().map(|u| u.suite.as_str()))
    {
        if !suites.contains(&s) {
            suites.push(s);
        }
    }
    let w = suites.iter().map(|s| s.len()).max().unwrap_or(8).max(8);
    let mut o = String::new();
    let _ = write!(o, "{:<w$}", "scenario");
    // As wide as the widest mode name that ran (uefi-sb-cdrom), at least "ok 100.0s".
    let c = modes
        .iter()
        .map(|m| m.to_string().len())
        .max()
        .unwrap_or(0)
        .max(10);
    for m in &modes {
        let _ = write!(o, "  {:<c$}", m.to_string());
    }
    o.push('\n');
    for s in &suites {
        let _ = write!(o, "{s:<w$}");
        if unbuilt.iter().any(|u| u.suite == *s) {
            let _ = writeln!(o, "  NOT BUILT");
            continue;
        }
        for m in &modes {
            let cell = match results.iter().find(|r| r.suite == *s && r.mode == *m) {
                None => "-".to_string(),
                Some(r) if r.flaky() => "flaky".into(),
                Some(r) if r.passed() => {
                    let t = r.attempts.last().map_or(0.0, |a| a.elapsed.as_secs_f64());
                    format!("ok {t:.1}s")
                }
                Some(_) => "FAIL".into(),
            };
            let _ = write!(o, "  {cell:<c$}");
        }
        o.push('\n');
    }
    for u in unbuilt {
        let _ = writeln!(o, "\n{}: not built:", u.suite);
        for l in u.why.lines() {
            let _ = writeln!(o, "  {l}");
        }
    }
    for r in results.iter().filter(|r| !r.passed() || r.flaky()) {
        let _ = writeln!(o, "\n{} {}:", r.suite, r.mode);
        for (n, a) in r.attempts.iter().enumerate() {
            let word = if a.verdict.passed() {
                "passed"
            } else {
                "failed"
            };
            let text = a.verdict.text();
            let _ = writeln!(o, "  attempt {} {word}: {text}", n + 1);
            if let Some(p) = &a.serial_log {
                let _ = writeln!(o, "    serial log: {}", p.display());
            }
            if let Some(p) = &a.screenshot {
                let _ = writeln!(o, "    screenshot: {}", p.display());
            }
        }
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    let flaky = results.iter().filter(|r| r.flaky()).count();
    let failed = results.len() - passed + unbuilt.len();
    let _ = write!(o, "\n{passed} passed, {failed} failed");
    if !unbuilt.is_empty() {
        let n = unbuilt.len();
        let _ = write!(
            o,
            " ({n} scenario{} not built)",
            if n == 1 { "" } else { "s" }
        );
    }
    if flaky > 0 {
        let _ = write!(o, " ({flaky} passed only on retry)");
    }
    o.push('\n');
    o
}

/// JUnit XML: one test suite per scenario, one test case per mode; a retried case carries
/// its failed attempts as flaky failures (the format Jenkins and GitLab read); a suite that
/// was not built has one failed test case, `build`, with the reason.
pub fn junit(results: &[CaseResult], unbuilt: &[Unbuilt]) -> Result<String, Error> {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};
    let mut report = Report::new("isoproof boot-matrix");
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in results {
        let idx = match suites.iter().position(|s| s.name.as_str() == r.suite) {
            Some(i) => i,
            None => {
                suites.push(TestSuite::new(r.suite.clone()));
                suites.len() - 1
            }
        };
        let last = r.attempts.last();
        let mut status = match last.and_then(|a| a.verdict.failure()) {
            None => TestCaseStatus::success(),
            Some(why) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(why);
                s
            }
        };
        for a in &r.attempts[..r.attempts.len().saturating_sub(1)] {
            let mut rerun = TestRerun::new(NonSuccessKind::Failure);
            if let Some(why) = a.verdict.failure() {
                rerun.set_message(why);
            }
            rerun.set_time(a.elapsed);
            status.add_rerun(rerun);
        }
        let mut tc = TestCase::new(r.mode.to_string(), status);
        tc.set_classname(format!("boot.{}", r.suite));
        if let Some(a) = last {
            tc.set_time(a.elapsed);
            if let Some(p) = &a.serial_log {
                tc.set_system_out(format!("serial log: {}", p.display()));
            }
        }
        suites[idx].add_test_case(tc);
    }
    for u in unbuilt {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_message(u.why.clone());
        let mut tc = TestCase::new("build", status);
        tc.set_classname(format!("boot.{}", u.suite));
        let mut suite = TestSuite::new(u.suite.clone());
        suite.add_test_case(tc);
        suites.push(suite);
    }
    report.add_test_suites(suites);
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_not_built_is_a_failed_row_and_a_junit_failure() {
        let mode = Mode::parse("bios-cdrom").unwrap();
        let results = [CaseResult {
            suite: "good".into(),
            mode,
            attempts: vec![Judged {
                verdict: Verdict::Pass("reported".into()),
                elapsed: Duration::from_millis(300),
                serial_log: None,
                screenshot: None,
            }],
        }];
        let unbuilt = [Unbuilt {
            suite: "broken".into(),
            why: "no payload root at x\n  defined at broken.yaml:5:29".into(),
        }];
        let t = table(&results, &unbuilt);
        assert!(t.contains("\ngood      ok 0.3s"), "{t}");
        assert!(t.contains("\nbroken    NOT BUILT\n"), "{t}");
        assert!(
            t.contains(
                "\nbroken: not built:\n  no payload root at x\n    defined at broken.yaml:5:29\n"
            ),
            "{t}"
        );
        assert!(
            t.ends_with("\n1 passed, 1 failed (1 scenario not built)\n"),
            "{t}"
        );
        let xml = junit(&results, &unbuilt).unwrap();
        assert!(
            xml.contains("tests=\"2\"") && xml.contains("failures=\"1\""),
            "{xml}"
        );
        assert!(
            xml.contains("<testcase name=\"build\" classname=\"boot.broken\">"),
            "{xml}"
        );
    }
}
