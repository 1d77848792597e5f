//! Hostile input, one test per input (`hostile::scenario::*`, `hostile::generated::*`): every
//! scenario that once made isoproof panic, abort, hang or exhaust memory, run through the real
//! CLI. Each must end with the exit status and message its case names, without a panic or a
//! signal, within 500 MB of peak memory, and before a watchdog calls it hung.
//!
//! Small inputs are files in `tests/hostile/scenarios/` (a `# expect: CODE TEXT` line, and an
//! `# explain: OPTION` line for the option `explain` is run on); large ones are generated here.
//! `ISOPROOF_FIGURES=1` prints each run's wall time and peak memory (`just bench-hostile`).

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

/// The most memory a run on an input under 10 MB may take.
const MAX_RSS_KB: i64 = 500 * 1024;

/// A run still going after this is hung: three times the 20 s any run on an input under
/// 10 MB may take, so a slow machine does not fail it (`just bench-hostile` prints the
/// real figures).
const WATCHDOG: Duration = Duration::from_secs(60);

/// How one run of the CLI ended.
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    /// The ends of its standard error, then of its standard output.
    stderr: String,
    peak_kb: i64,
    wall: Duration,
}

/// Waits for child `pid` (killing its process group past `deadline`): its wait status and
/// resource use.
fn reap(pid: libc::pid_t, deadline: Option<Instant>) -> Result<(i32, libc::rusage), Failed> {
    loop {
        let mut status = 0;
        // SAFETY: `rusage` is plain data; wait4 fills it for our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            return Ok((status, usage));
        }
        if r < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()).into());
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            // SAFETY: killing our own child's process group, then reaping the child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            return Err(format!("hung: still running after {WATCHDOG:?}").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `hostile --measure REPORT PROGRAM ARGS...`: runs PROGRAM and writes its wait status and
/// peak memory to REPORT. Linux gives a process, as its starting peak, the peak of the
/// memory it ran in before `exec` — the parent's, with `posix_spawn` — so measuring from
/// this test process, which holds images, would count those. This trampoline is a fresh,
/// small process.
fn measure(args: &[OsString]) -> ! {
    let outcome = (|| -> Result<String, Failed> {
        let [report, program, rest @ ..] = args else {
            return Err("usage: --measure REPORT PROGRAM ARGS...".into());
        };
        // A test may cap the run's address space (the child inherits the limit).
        if let Some(bytes) = std::env::var("HOSTILE_ADDRESS_SPACE")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            // SAFETY: setrlimit with a filled struct, on this process only.
            if unsafe { libc::setrlimit(libc::RLIMIT_AS, &lim) } != 0 {
                return Err(format!("setrlimit: {}", std::io::Error::last_os_error()).into());
            }
        }
        let child = Command::new(program).args(rest).spawn()?;
        let (status, usage) = reap(child.id() as libc::pid_t, None)?;
        std::fs::write(report, format!("{status} {}", usage.ru_maxrss))?;
        Ok(String::new())
    })();
    std::process::exit(match outcome {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("measure: {e:?}");
            1
        }
    })
}

/// Runs `isoproof ARGS` with its output in files (no pipe to fill), through [`measure`] for
/// its own peak memory, and kills it if the watchdog fires.
fn run(args: &[OsString]) -> Result<Ended, Failed> {
    run_limited(args, None)
}

/// [`run`], with the run's address space capped at `limit` bytes.
fn run_limited(args: &[OsString], limit: Option<u64>) -> Result<Ended, Failed> {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir()?;
    let err_path = dir.path().join("stderr");
    let report = dir.path().join("report");
    let started = Instant::now();
    let mut trampoline = Command::new(std::env::current_exe()?);
    if let Some(bytes) = limit {
        trampoline.env("HOSTILE_ADDRESS_SPACE", bytes.to_string());
    }
    let child = trampoline
        .arg("--measure")
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_isoproof"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(dir.path().join("stdout"))?)
        .stderr(File::create(&err_path)?)
        .process_group(0)
        .spawn()?;
    reap(child.id() as libc::pid_t, Some(started + WATCHDOG))?;
    let wall = started.elapsed();
    // What it printed: its errors, then its output (`diff` reports on standard output).
    let stderr = ends(&err_path)? + &ends(&dir.path().join("stdout"))?;
    let text = std::fs::read_to_string(&report)
        .map_err(|e| format!("no report from the trampoline ({e}):\n{stderr}"))?;
    let (status, peak_kb) = text
        .split_once(' ')
        .and_then(|(s, p)| Some((s.parse::<i32>().ok()?, p.parse::<i64>().ok()?)))
        .ok_or_else(|| format!("bad report {text:?}"))?;
    let ended = Ended {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stderr,
        peak_kb,
        wall,
    };
    if std::env::var_os("ISOPROOF_FIGURES").is_some() {
        let shown: Vec<String> = args.iter().map(|a| a.to_string_lossy().into()).collect();
        eprintln!(
            "{:>7.2} s {:>7} KB  exit {:?}  isoproof {}",
            wall.as_secs_f64(),
            ended.peak_kb,
            ended.code,
            shown.join(" ")
        );
    }
    Ok(ended)
}

/// The first and last 64 KiB of a file. A run's error output can be gigabytes (it was,
/// before excerpts were clipped).
fn ends(path: &Path) -> Result<String, Failed> {
    use std::io::{Read, Seek, SeekFrom};
    const KEEP: u64 = 64 << 10;
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut head = Vec::new();
    (&mut f).take(KEEP).read_to_end(&mut head)?;
    let mut text = String::from_utf8_lossy(&head).into_owned();
    if len > KEEP {
        let mut tail = Vec::new();
        f.seek(SeekFrom::Start((len - KEEP).max(KEEP)))?;
        f.take(KEEP).read_to_end(&mut tail)?;
        text.push_str("\n[…]\n");
        text.push_str(&String::from_utf8_lossy(&tail));
    }
    Ok(text)
}

/// The bounds every run keeps, whatever its input: no panic, no signal, no blow-up.
fn bounded(e: &Ended) -> Result<(), Failed> {
    let mut problems = String::new();
    if e.stderr.contains("panicked") || e.code == Some(101) {
        let _ = write!(problems, "panicked; ");
    }
    if let Some(sig) = e.signal {
        let _ = write!(problems, "killed by signal {sig}; ");
    }
    if e.peak_kb > MAX_RSS_KB {
        let _ = write!(problems, "peak memory {} MB; ", e.peak_kb / 1024);
    }
    if problems.is_empty() {
        return Ok(());
    }
    let tail: String = e.stderr.chars().take(2000).collect();
    Err(format!("{problems}after {:.1} s\n{tail}", e.wall.as_secs_f64()).into())
}

/// What a case must end with.
struct Expect {
    code: i32,
    /// Text the error output must contain (nothing for success).
    text: String,
    /// The option to run `explain` on.
    explain: Option<String>,
}

/// `resolve --format text`, which must end as expected, then `explain`, which must keep
/// the bounds (its status depends on whether the option itself failed).
fn scenario_case(file: &Path, want: &Expect) -> Result<(), Failed> {
    let e = run(&[
        "resolve".into(),
        "--format".into(),
        "text".into(),
        file.into(),
    ])?;
    bounded(&e)?;
    if e.code != Some(want.code) {
        let tail: String = e.stderr.chars().take(2000).collect();
        return Err(format!("exit {:?}, expected {}:\n{tail}", e.code, want.code).into());
    }
    if !e.stderr.contains(&want.text) {
        let tail: String = e.stderr.chars().take(2000).collect();
        return Err(format!("expected `{}` in:\n{tail}", want.text).into());
    }
    if let Some(option) = &want.explain {
        let e = run(&["explain".into(), file.into(), option.into()])?;
        bounded(&e)?;
        if !matches!(e.code, Some(0..=2)) {
            return Err(format!("explain exited {:?}:\n{}", e.code, e.stderr).into());
        }
    }
    Ok(())
}

/// The `# expect:` and `# explain:` lines of a fixture.
fn expectation(file: &Path) -> Result<Expect, Failed> {
    let text = std::fs::read_to_string(file)?;
    let line = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).map(str::to_string))
    };
    let expect =
        line("# expect: ").ok_or_else(|| format!("{}: no `# expect:` line", file.display()))?;
    let (code, rest) = expect.split_once(' ').unwrap_or((&expect, ""));
    Ok(Expect {
        code: code.parse()?,
        text: rest.to_string(),
        explain: line("# explain: "),
    })
}

/// A generated scenario: written to a temporary directory, then run as a fixture is.
fn generated(text: String, want: Expect) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("hostile.yaml");
    std::fs::write(&file, text)?;
    scenario_case(&file, &want)
}

fn expect(code: i32, text: &str, explain: &str) -> Expect {
    Expect {
        code,
        text: text.into(),
        explain: Some(explain.into()),
    }
}

/// `modules: [ {options: ...}, {config: ...}, ... ]` from declaration and definition lines.
fn scenario(options: impl Iterator<Item = String>, configs: &[Vec<String>]) -> String {
    let mut s = String::from("modules:\n  - options:\n");
    for o in options {
        let _ = writeln!(s, "      {o}");
    }
    for c in configs {
        s.push_str("  - config:\n");
        for l in c {
            let _ = writeln!(s, "      {l}");
        }
    }
    s
}

/// Large inputs, each the smallest form of a blow-up found by fuzzing.
fn generated_cases() -> Vec<Trial> {
    let case = |name: &str, f: fn() -> Result<(), Failed>| {
        Trial::test(format!("hostile::generated::{name}"), f)
    };
    vec![
        // A `!config` chain 4,000 long overflowed the stack (exit 134); it resolves.
        case("config-chain-4000", || {
            let n = 4000;
            let opts = (0..n).map(|i| format!("o{i}: {{type: str}}"));
            let mut defs: Vec<String> = (0..n - 1)
                .map(|i| format!("o{i}: !config o{}", i + 1))
                .collect();
            defs.push(format!("o{}: end", n - 1));
            generated(scenario(opts, &[defs]), expect(0, "", "o0"))
        }),
        // A `!format` chain 100,000 long (6 MB) overflowed the stack; past the depth bound
        // it is an error naming both ends of the chain.
        case("format-chain-100000", || {
            let n = 100_000;
            let opts = (0..n).map(|i| format!("f{i}: {{type: str}}"));
            let mut defs: Vec<String> = (0..n - 1)
                .map(|i| format!("f{i}: !format \"${{f{}}}x\"", i + 1))
                .collect();
            defs.push(format!("f{}: end", n - 1));
            generated(
                scenario(opts, &[defs]),
                expect(1, "error[limit]: references nest more than 30000 evaluations deep: f0 → f1 → f2 → …", "f0"),
            )
        }),
        // `lib.unique` compares each element with those kept: 20,000 distinct elements are
        // 200 million comparisons, bounded by the evaluation's work bound.
        case("unique-of-20000", || {
            let items: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
            let text = format!(
                "modules:\n  - options: {{l: {{type: listOf int}}}}\n  - config:\n      l: !call [unique, [{}]]\n",
                items.join(", ")
            );
            generated(
                text,
                expect(
                    1,
                    "error[limit]: in `l`: evaluation would build more than",
                    "l",
                ),
            )
        }),
        // A type expression nested 10,000 deep overflowed the stack.
        case("type-nested-10000", || {
            let t = format!("{}str{}", "listOf (".repeat(10_000), ")".repeat(10_000));
            generated(
                scenario(std::iter::once(format!("x: {{type: \"{t}\"}}")), &[]),
                Expect {
                    code: 2,
                    text: "types nest more than 32 levels deep".into(),
                    explain: None,
                },
            )
        }),
        // 20,000 undeclared keys on one line took 13 s and 6 GB: every error quoted the line.
        case("undeclared-20000-on-one-line", || {
            let keys: Vec<String> = (0..20_000).map(|i| format!("k{i}: {i}")).collect();
            let text = format!("modules:\n  - config: {{{}}}\n", keys.join(", "));
            generated(
                text,
                expect(1, "error[limit]: 19000 more errors were found and not shown: isoproof reports the first 1000", "k1"),
            )
        }),
        // 20,000 undeclared names among 20,000 declared ones: every "did you mean" compared
        // each name with every option (94 s).
        case("undeclared-among-20000-options", || {
            let n = 20_000;
            let opts = (0..n).map(|i| format!("opt{i}: {{type: int, default: 1}}"));
            let defs: Vec<String> = (0..n).map(|i| format!("opu{i}: 1")).collect();
            generated(
                scenario(opts, &[defs]),
                expect(
                    1,
                    "error[undeclared]: The option `opu0' does not exist",
                    "opt1",
                ),
            )
        }),
        // A list nested 50,000 deep through references: every option's value walked its
        // whole depth.
        case("list-nested-by-references-50000", || {
            let n = 50_000;
            let opts = (0..n).map(|i| format!("o{i}: {{type: anything}}"));
            let mut defs: Vec<String> = (0..n - 1)
                .map(|i| format!("o{i}: [!config o{}]", i + 1))
                .collect();
            defs.push(format!("o{}: [1]", n - 1));
            generated(
                scenario(opts, &[defs]),
                expect(
                    1,
                    "error[limit]: in `o0`: a value nests deeper than 1000 levels",
                    "o0",
                ),
            )
        }),
        // Sets nested 20,000 deep through references, defined twice so `anything` merges
        // them level by level (24 GB before the bounds).
        case("sets-merged-by-references-20000", || {
            let n = 20_000;
            let opts = (0..n).map(|i| format!("o{i}: {{type: anything}}"));
            let mut defs: Vec<String> = (0..n - 1)
                .map(|i| format!("o{i}: {{x: !config o{}}}", i + 1))
                .collect();
            defs.push(format!("o{}: {{x: 1}}", n - 1));
            generated(
                scenario(opts, &[defs.clone(), defs]),
                expect(
                    1,
                    "error[limit]: references nest more than 30000 evaluations deep: o0 → o1",
                    "o0",
                ),
            )
        }),
    ]
}

/// A command on files of the wrong kind: it must end at once with `code` and `text`, and
/// `after` must hold (the device or FIFO named as output is still there, untouched).
fn files_case(
    args: Vec<OsString>,
    code: i32,
    text: &str,
    after: impl FnOnce() -> Result<(), Failed>,
) -> Result<(), Failed> {
    let e = run(&args)?;
    bounded(&e)?;
    if e.code != Some(code) || !e.stderr.contains(text) {
        return Err(format!(
            "exit {:?} (expected {code} with `{text}`):
{}",
            e.code, e.stderr
        )
        .into());
    }
    after()
}

/// A check that `path` is still what `kind` says (not replaced by an image).
fn still(
    path: PathBuf,
    kind: fn(&std::fs::FileType) -> bool,
) -> impl FnOnce() -> Result<(), Failed> {
    move || {
        let t = std::fs::symlink_metadata(&path)?.file_type();
        kind(&t)
            .then_some(())
            .ok_or_else(|| format!("{} was replaced", path.display()).into())
    }
}

fn mkfifo(path: &Path) -> Result<(), Failed> {
    let ok = Command::new("mkfifo").arg(path).status()?.success();
    ok.then_some(()).ok_or_else(|| "mkfifo failed".into())
}

fn os(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_owned()).collect()
}

/// Devices, FIFOs and links where files are read or written: each blocked for ever, read
/// until memory ran out, or was replaced by an image.
fn file_cases() -> Vec<Trial> {
    let case = |name: &str, f: fn(&Path) -> Result<(), Failed>| {
        Trial::test(format!("hostile::files::{name}"), move || {
            let d = tempfile::tempdir()?;
            f(d.path())
        })
    };
    use std::os::unix::fs::FileTypeExt;
    vec![
        case("scenario-is-a-fifo", |d| {
            let f = d.join("s.yaml");
            mkfifo(&f)?;
            files_case(
                os(&[&"resolve", &f]),
                2,
                "is a FIFO, not a regular file",
                || Ok(()),
            )
        }),
        case("import-of-dev-zero-and-a-fifo", |d| {
            mkfifo(&d.join("fifo.yaml"))?;
            let s = d.join("s.yaml");
            std::fs::write(
                &s,
                "modules:\n  - imports: [/dev/zero]\n  - imports: [fifo.yaml]\n",
            )?;
            files_case(
                os(&[&"resolve", &"--format", &"text", &s]),
                2,
                "cannot import /dev/zero: it is a character device, not a regular file",
                || Ok(()),
            )?;
            files_case(
                os(&[&"resolve", &"--format", &"text", &s]),
                2,
                "fifo.yaml: it is a FIFO, not a regular file",
                || Ok(()),
            )
        }),
        case("contents-source-is-a-fifo", |d| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
            let s = d.join("s.yaml");
            mkfifo(&d.join("pipe"))?;
            std::fs::write(&s, format!(
                "modules:\n  - imports: [{}]\n  - config:\n      isoImage.contents:\n        - {{source: pipe, target: /pipe}}\n",
                root.join("modules/installation-cd-minimal.yaml").display()
            ))?;
            files_case(
                os(&[&"build", &s, &"-o", &d.join("x.iso")]),
                2,
                "source pipe is a FIFO: a contents source is a file or a directory",
                || Ok(()),
            )
        }),
        case("tree-holds-a-fifo", |d| {
            let src = d.join("src");
            std::fs::create_dir(&src)?;
            mkfifo(&src.join("pipe"))?;
            files_case(
                os(&[&"mkiso", &"-o", &d.join("x.iso"), &src]),
                2,
                "a FIFO",
                || Ok(()),
            )
        }),
        case("boot-file-is-dev-zero", |d| {
            let src = d.join("src");
            std::fs::create_dir(&src)?;
            files_case(
                os(&[
                    &"mkiso",
                    &"--bios-boot",
                    &"/dev/zero",
                    &"-o",
                    &d.join("x.iso"),
                    &src,
                ]),
                2,
                "/dev/zero is a character device, not a regular file",
                || Ok(()),
            )
        }),
        case("output-is-a-device", |d| {
            // A device node of our own, like /dev/null (1, 3): a regression must not destroy
            // the real one. Making it needs root, as CI has.
            let src = d.join("src");
            std::fs::create_dir(&src)?;
            let dev = d.join("null");
            let made = Command::new("mknod")
                .arg(&dev)
                .args(["c", "1", "3"])
                .stderr(Stdio::null())
                .status()?
                .success();
            if !made {
                return Err("mknod failed: this test needs root to make a device node (.ci/run runs as root); it fails rather than passing silently".into());
            }
            files_case(
                os(&[&"mkiso", &"-o", &dev, &src]),
                9,
                "is a character device, not a regular file; refusing to replace it",
                still(dev, |t| t.is_char_device()),
            )
        }),
        case("output-disk-is-full", |d| {
            // A 1 MiB tmpfs of our own (root, as in CI) and a 2 MB source:
            // the error names the output, not the source, and no partial image stays.
            let src = d.join("src");
            std::fs::create_dir(&src)?;
            std::fs::write(
                src.join("big"),
                (0..2_000_000u32)
                    .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
                    .collect::<Vec<_>>(),
            )?;
            let small = d.join("small");
            std::fs::create_dir(&small)?;
            let mounted = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
                .arg(&small)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !mounted {
                return Err("mount -t tmpfs failed: this test needs root (.ci/run runs as root); it fails rather than passing silently".into());
            }
            let target = small.join("x.iso");
            let text = format!("{}: No space left on device", target.display());
            let r = files_case(os(&[&"mkiso", &"-o", &target, &src]), 9, &text, || {
                let left: Vec<_> = std::fs::read_dir(&small)?
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                left.is_empty()
                    .then_some(())
                    .ok_or_else(|| format!("left behind: {left:?}").into())
            });
            let _ = Command::new("umount").arg(&small).status();
            r
        }),
        case("output-is-a-fifo-or-a-link", |d| {
            let src = d.join("src");
            std::fs::create_dir(&src)?;
            let fifo = d.join("out.iso");
            mkfifo(&fifo)?;
            files_case(
                os(&[&"mkiso", &"-o", &fifo, &src]),
                9,
                "is a FIFO, not a regular file; refusing to replace it",
                still(fifo, |t| t.is_fifo()),
            )?;
            let link = d.join("link.iso");
            std::os::unix::fs::symlink("elsewhere.iso", &link)?;
            files_case(
                os(&[&"mkiso", &"-o", &link, &src]),
                9,
                "is a symbolic link, not a regular file",
                still(link, |t| t.is_symlink()),
            )
        }),
        case("image-is-a-fifo-or-a-device", |d| {
            let fifo = d.join("in.iso");
            mkfifo(&fifo)?;
            files_case(
                os(&[&"inspect", &fifo]),
                2,
                "is a FIFO, not a regular file",
                || Ok(()),
            )?;
            files_case(
                os(&[&"diff", &"/dev/zero", &fifo]),
                2,
                "/dev/zero is a character device",
                || Ok(()),
            )
        }),
    ]
}

/// Just enough ISO 9660 to find what to corrupt in an image the writer made.
mod iso {
    pub const SECTOR: usize = 2048;

    /// A directory record: where it is, its extent and its identifier.
    pub struct Rec {
        pub at: usize,
        pub len: usize,
        pub extent: u32,
        pub size: u32,
        pub name: Vec<u8>,
    }

    fn le32(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Writes a both-endian 32-bit field (ECMA-119 7.3.3).
    pub fn set_both32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&v.to_be_bytes());
    }

    /// The root directory record of the volume descriptor in `sector`.
    pub fn root(img: &[u8], sector: usize) -> Rec {
        record(img, sector * SECTOR + 156)
    }

    pub fn record(img: &[u8], at: usize) -> Rec {
        let len = usize::from(img[at]);
        let n = usize::from(img[at + 32]);
        Rec {
            at,
            len,
            extent: le32(img, at + 2),
            size: le32(img, at + 10),
            name: img[at + 33..at + 33 + n].to_vec(),
        }
    }

    /// The records of a directory, `.` and `..` left out.
    pub fn children(img: &[u8], dir: &Rec) -> Vec<Rec> {
        let start = dir.extent as usize * SECTOR;
        let end = start + dir.size as usize;
        let mut out = Vec::new();
        let mut at = start;
        while at < end {
            if img[at] == 0 {
                at = (at / SECTOR + 1) * SECTOR;
                continue;
            }
            let r = record(img, at);
            at += r.len;
            if r.name != [0] && r.name != [1] {
                out.push(r);
            }
        }
        out
    }

    /// Points record `r` at another directory's extent and size.
    pub fn redirect(img: &mut [u8], r: &Rec, to: &Rec) {
        set_both32(img, r.at + 2, to.extent);
        set_both32(img, r.at + 10, to.size);
    }

    /// The offset of the first System Use entry `sig` in record `r`.
    pub fn su_entry(img: &[u8], r: &Rec, sig: &[u8; 2]) -> usize {
        let mut su = r.at + 33 + r.name.len();
        if r.name.len() % 2 == 0 {
            su += 1;
        }
        let end = r.at + r.len;
        while su + 4 <= end {
            if &img[su..su + 2] == sig {
                return su;
            }
            su += usize::from(img[su + 2]).max(4);
        }
        panic!("no {} entry", String::from_utf8_lossy(sig));
    }
}

/// An image of `tree` (relative paths; a trailing `/` makes a directory) written by the CLI.
fn image(dir: &Path, name: &str, tree: &[&str], extra: &[&str]) -> Result<PathBuf, Failed> {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src)?;
    for t in tree {
        let p = src.join(t.trim_end_matches('/'));
        if t.ends_with('/') {
            std::fs::create_dir_all(&p)?;
        } else {
            std::fs::create_dir_all(p.parent().unwrap_or(&src))?;
            std::fs::write(&p, t.as_bytes())?;
        }
    }
    let out = dir.join(format!("{name}.iso"));
    let o = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("mkiso")
        .args(extra)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()?;
    if !o.status.success() {
        return Err(format!("mkiso: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    Ok(out)
}

/// `inspect` and `diff` (against the uncorrupted image) on a corrupted image: both must keep
/// the bounds and end with the status and text given (`None`: any status but a crash).
fn readers_case(
    good: &Path,
    bad: &Path,
    inspect: (i32, &str),
    diff: (i32, &str),
) -> Result<(), Failed> {
    for (args, (code, text)) in [
        (os(&[&"inspect", &bad]), inspect),
        (os(&[&"inspect", &"--format", &"json", &bad]), inspect),
        (os(&[&"diff", &good, &bad]), diff),
        (os(&[&"diff", &bad, &good]), diff),
    ] {
        files_case(args, code, text, || Ok(()))?;
    }
    Ok(())
}

/// Corrupts a copy of `good` with `f` and returns its path.
fn corrupt(good: &Path, f: impl FnOnce(&mut Vec<u8>)) -> Result<PathBuf, Failed> {
    let mut b = std::fs::read(good)?;
    f(&mut b);
    let bad = good.with_extension("bad.iso");
    std::fs::write(&bad, b)?;
    Ok(bad)
}

/// Images with one structure made hostile: each once panicked `inspect` or `diff`, or made
/// them allocate or walk without bound.
fn image_cases() -> Vec<Trial> {
    let case = |name: &str, f: fn(&Path) -> Result<(), Failed>| {
        Trial::test(format!("hostile::image::{name}"), move || {
            let d = tempfile::tempdir()?;
            f(d.path())
        })
    };
    vec![
        case("name-longer-than-its-record", |d| {
            let good = image(d, "g", &["a-file", "dir/inner"], &[])?;
            let bad = corrupt(&good, |b| {
                let first = &iso::children(b, &iso::root(b, 16))[0];
                b[first.at + 32] = 250;
            })?;
            readers_case(
                &good,
                &bad,
                (2, "directory record"),
                (2, "directory record"),
            )
        }),
        case("rock-ridge-nm-of-length-4", |d| {
            let good = image(d, "g", &["a-file"], &[])?;
            let bad = corrupt(&good, |b| {
                let first = &iso::children(b, &iso::root(b, 16))[0];
                let nm = iso::su_entry(b, first, b"NM");
                b[nm + 2] = 4;
            })?;
            readers_case(&good, &bad, (2, "NM"), (2, "NM"))
        }),
        case("rock-ridge-px-shorter-than-its-fields", |d| {
            let good = image(d, "g", &["a-file"], &[])?;
            let bad = corrupt(&good, |b| {
                let first = &iso::children(b, &iso::root(b, 16))[0];
                let px = iso::su_entry(b, first, b"PX");
                b[px + 2] = 8;
            })?;
            readers_case(&good, &bad, (2, "PX"), (2, "PX"))
        }),
        case("joliet-name-longer-than-its-record", |d| {
            let good = image(d, "g", &["a-file", "dir/inner"], &[])?;
            let bad = corrupt(&good, |b| {
                // The Joliet descriptor follows the primary one and the boot record (if any).
                let sector = (17..20)
                    .find(|&s| b[s * iso::SECTOR] == 2)
                    .expect("a Joliet descriptor");
                let first = &iso::children(b, &iso::root(b, sector))[0];
                b[first.at + 32] = 250;
            })?;
            readers_case(&good, &bad, (2, "Joliet"), (2, "Joliet"))
        }),
        case("root-directory-claims-4-gib", |d| {
            let good = image(d, "g", &["a-file"], &[])?;
            let bad = corrupt(&good, |b| {
                iso::set_both32(b, 16 * iso::SECTOR + 156 + 10, u32::MAX);
            })?;
            readers_case(
                &good,
                &bad,
                (2, "reaches past the end of the image"),
                (2, "reaches past the end of the image"),
            )
        }),
        case("root-directory-claims-4-gib-in-a-sparse-10-gb-file", |d| {
            // The claim fits the file, so only a bound on directory extents stops a 4 GiB
            // read: under a 4 GiB address space, it must end with the reason, quickly.
            let good = image(d, "g", &["a-file"], &[])?;
            let bad = corrupt(&good, |b| {
                iso::set_both32(b, 16 * iso::SECTOR + 156 + 10, 4_294_965_248);
            })?;
            std::fs::OpenOptions::new()
                .write(true)
                .open(&bad)?
                .set_len(10 << 30)?;
            for args in [
                os(&[&"inspect", &bad]),
                os(&[
                    &"golden",
                    &"bless",
                    &"--golden",
                    &d,
                    &"--image",
                    &bad,
                    &"--name",
                    &"x",
                ]),
                os(&[&"diff", &good, &bad]),
            ] {
                let e = run_limited(&args, Some(4 << 30))?;
                bounded(&e)?;
                let want = ": a directory extent of 4294965248 bytes; isoproof reads directories of at most 64 MiB";
                let named = e.stderr.contains("directory / at byte ") && e.stderr.contains(want);
                if e.code != Some(2) || !named || e.wall > Duration::from_secs(20) {
                    return Err(format!(
                        "{args:?}: exit {:?} after {:.1} s (expected 2 with `{want}` within 20 s):\n{}",
                        e.code,
                        e.wall.as_secs_f64(),
                        e.stderr
                    )
                    .into());
                }
            }
            Ok(())
        }),
        case("continuation-area-claims-4-gib", |d| {
            // A 250-character name does not fit its record: Rock Ridge continues in a CE area.
            let long = format!("{}.txt", "n".repeat(246));
            let good = image(d, "g", &[long.as_str()], &[])?;
            let bad = corrupt(&good, |b| {
                let first = &iso::children(b, &iso::root(b, 16))[0];
                let ce = iso::su_entry(b, first, b"CE");
                iso::set_both32(b, ce + 20, u32::MAX);
            })?;
            readers_case(&good, &bad, (2, "CE entry"), (2, "CE entry"))
        }),
        case("directories-that-share-extents", |d| {
            // 200 directories in the root, each with 200 directories, each with 200 files:
            // pointing every record of a level at the first directory of that level makes a
            // DAG of 8,000,000 paths (6 GB before extents were read once).
            let mut tree: Vec<String> = (0..200).map(|i| format!("a{i:03}/")).collect();
            tree.extend((0..200).map(|i| format!("a000/b{i:03}/")));
            tree.extend((0..200).map(|i| format!("a000/b000/c{i:03}")));
            let refs: Vec<&str> = tree.iter().map(String::as_str).collect();
            let good = image(d, "g", &refs, &[])?;
            let bad = corrupt(&good, |b| {
                for sector in [16, (17..20).find(|&s| b[s * iso::SECTOR] == 2).unwrap()] {
                    let level1 = iso::children(b, &iso::root(b, sector));
                    for r in &level1[1..] {
                        iso::redirect(b, r, &level1[0]);
                    }
                    let level2 = iso::children(b, &level1[0]);
                    for r in &level2[1..] {
                        iso::redirect(b, r, &level2[0]);
                    }
                }
            })?;
            readers_case(&good, &bad, (0, ""), (3, ""))
        }),
        case("directory-extents-staggered-a-sector-apart", |d| {
            // 20,000 directories make a root of some 1,000 sectors; pointing each at the
            // root's extent a few sectors further in made every one a "new" directory that
            // listed most of the root again (quadratic: gigabytes).
            let tree: Vec<String> = (0..20_000).map(|i| format!("d{i:05}/")).collect();
            let refs: Vec<&str> = tree.iter().map(String::as_str).collect();
            let good = image(d, "g", &refs, &[])?;
            let bad = corrupt(&good, |b| {
                let root = iso::root(b, 16);
                let sectors = root.size / iso::SECTOR as u32;
                let dirs = iso::children(b, &root);
                for (i, r) in dirs.iter().enumerate() {
                    let k = i as u32 % sectors;
                    let to = iso::Rec {
                        extent: root.extent + k,
                        size: root.size - k * iso::SECTOR as u32,
                        ..iso::record(b, root.at)
                    };
                    iso::redirect(b, r, &to);
                }
            })?;
            readers_case(&good, &bad, (0, ""), (3, ""))
        }),
        case("esp-fat-chains-all-meet", |d| {
            // Every FAT entry of the ESP pointing at cluster 2: every chain meets every other.
            // `diff` compares that ESP by its bytes and ends.
            let efi = d.join("app.efi");
            std::fs::write(&efi, vec![0x5A; 300_000])?;
            let efi = efi.to_string_lossy().into_owned();
            let good = image(d, "g", &["a"], &["--hybrid", "--efi-boot", &efi])?;
            let bad = corrupt(&good, |b| {
                // The ESP is the GPT partition of type C12A7328-F81F-11D2-BA4B-00A0C93EC93B.
                const ESP: [u8; 16] = [
                    0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9,
                    0x3E, 0xC9, 0x3B,
                ];
                let u64at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
                let u32at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
                let (entries, count, size) =
                    (u64at(512 + 72) * 512, u32at(512 + 80), u32at(512 + 84));
                let e = (0..count)
                    .map(|i| entries + i * size)
                    .find(|&e| b[e..e + 16] == ESP)
                    .expect("an ESP partition");
                let esp = u64at(e + 32) * 512;
                let u16at =
                    |o: usize| usize::from(u16::from_le_bytes([b[esp + o], b[esp + o + 1]]));
                let (bps, spc, reserved) = (u16at(11), usize::from(b[esp + 13]), u16at(14));
                let (fats, roots, fat_sectors) = (usize::from(b[esp + 16]), u16at(17), u16at(22));
                let total = match u16at(19) {
                    0 => u32::from_le_bytes(b[esp + 32..esp + 36].try_into().unwrap()) as usize,
                    n => n,
                };
                let data = reserved * bps + fats * fat_sectors * bps + roots * 32;
                let clusters = (total * bps - data) / (spc * bps);
                let fat = esp + reserved * bps;
                for c in 2..clusters + 2 {
                    if clusters < 4085 {
                        let o = fat + c + c / 2;
                        let w = u16::from_le_bytes([b[o], b[o + 1]]);
                        let w = if c % 2 == 0 {
                            (w & 0xF000) | 2
                        } else {
                            (w & 0x000F) | (2 << 4)
                        };
                        b[o..o + 2].copy_from_slice(&w.to_le_bytes());
                    } else {
                        b[fat + 2 * c..fat + 2 * c + 2].copy_from_slice(&2u16.to_le_bytes());
                    }
                }
            })?;
            readers_case(&good, &bad, (0, ""), (3, "UEFI ESP image"))
        }),
        case("diff-of-two-images-with-60-mb-esps", |d| {
            // The ESPs were read whole, and their files copied out of them: 270 MB for two
            // 94 MB images. Now files are compared a piece at a time.
            let efi = d.join("app.efi");
            let write_efi = |flip: bool| -> Result<(), Failed> {
                use std::io::Write;
                let mut f = std::io::BufWriter::new(File::create(&efi)?);
                for piece in 0..60u32 {
                    let mut chunk: Vec<u8> = (0..1_000_000u32)
                        .map(|i| ((piece * 1_000_000 + i).wrapping_mul(2654435761) >> 24) as u8)
                        .collect();
                    if flip && piece == 40 {
                        chunk[0] ^= 0xFF;
                    }
                    f.write_all(&chunk)?;
                }
                Ok(f.flush()?)
            };
            let e = efi.to_string_lossy().into_owned();
            write_efi(false)?;
            let a = image(d, "a", &["a"], &["--hybrid", "--efi-boot", &e])?;
            write_efi(true)?;
            let b = image(d, "b", &["a"], &["--hybrid", "--efi-boot", &e])?;
            let run = run(&os(&[&"diff", &a, &b]))?;
            bounded(&run)?;
            if run.code != Some(3) {
                return Err(format!("exit {:?}:\n{}", run.code, run.stderr).into());
            }
            // The file's size is a field; its memory is not.
            if run.peak_kb > 64 * 1024 {
                return Err(
                    format!("peak memory {} MB comparing 60 MB ESPs", run.peak_kb / 1024).into(),
                );
            }
            Ok(())
        }),
    ]
}

fn main() {
    let raw: Vec<OsString> = std::env::args_os().collect();
    if raw.get(1).is_some_and(|a| a == "--measure") {
        measure(&raw[2..]);
    }
    let args = Arguments::from_args();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/hostile/scenarios")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut trials: Vec<Trial> = files
        .into_iter()
        .map(|f| {
            let name = f
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Trial::test(format!("hostile::scenario::{name}"), move || {
                scenario_case(&f, &expectation(&f)?)
            })
        })
        .collect();
    trials.extend(generated_cases());
    trials.extend(file_cases());
    trials.extend(image_cases());
    libtest_mimic::run(&args, trials).exit();
}
