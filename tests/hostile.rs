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

/// A run still going after this is hung. Generous: this catches a hang, not slowness (the
/// figures are for `just bench-hostile`).
const WATCHDOG: Duration = Duration::from_secs(120);

/// How one run of the CLI ended.
struct Ended {
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
    peak_kb: i64,
    wall: Duration,
}

/// Runs `isoproof ARGS` with its output in files (no pipe to fill), reaps it with `wait4` for
/// its own peak memory, and kills it if the watchdog fires.
fn run(args: &[OsString]) -> Result<Ended, Failed> {
    let dir = tempfile::tempdir()?;
    let err_path = dir.path().join("stderr");
    let started = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(dir.path().join("stdout"))?)
        .stderr(File::create(&err_path)?)
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: `rusage` is plain data; wait4 fills it for our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        if r < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()).into());
        }
        if started.elapsed() > WATCHDOG {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            return Err(format!("hung: still running after {WATCHDOG:?}").into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let stderr = String::from_utf8_lossy(&std::fs::read(&err_path)?).into_owned();
    let ended = Ended {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stderr,
        peak_kb: usage.ru_maxrss,
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
        case("output-is-dev-null", |d| {
            let src = d.join("src");
            std::fs::create_dir(&src)?;
            files_case(
                os(&[&"mkiso", &"-o", &"/dev/null", &src]),
                9,
                "/dev/null is a character device, not a regular file; refusing to replace it",
                still("/dev/null".into(), |t| t.is_char_device()),
            )
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

fn main() {
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
    libtest_mimic::run(&args, trials).exit();
}
