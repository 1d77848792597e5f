//! The `isoproof` command line: parses arguments ([`args`]), calls one library function per
//! subcommand, prints what it returns or reports as it goes, and maps the outcome to an
//! exit code ([`exit`]). No pipeline logic lives here.

mod args;
mod exit;
mod interrupt;
mod progress;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches};
use isoproof::compose::BuildError;
use isoproof::golden;
use isoproof::payload::linux::fetch;
use isoproof::{boot, compose, diag, image, output, resolve, scenario};
use isoproof_harness::expect::{Expectation, Source};
use isoproof_harness::{matrix, Firmware, Media, Mode};

use args::{
    AccelArg, Cli, Command, FirmwareArg, Format, GoldenAction, ImageArgs, InspectFormat, MediaArg,
    PayloadAction, RunArgs,
};

/// Runs the command line; returns the exit code.
pub fn main() -> u8 {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let mut out = Out::default();
    let code = match cli.command {
        Command::Resolve {
            format,
            allow_undeclared,
            scenario,
        } => resolve_cmd(&mut out, format, allow_undeclared, &scenario),
        Command::Explain {
            allow_undeclared,
            scenario,
            option,
        } => explain_cmd(&mut out, allow_undeclared, &scenario, &option),
        Command::Mkiso {
            output,
            volid,
            bios_boot,
            efi_boot,
            hybrid,
            dir,
        } => mkiso_cmd(&mut out, &output, &volid, bios_boot, efi_boot, hybrid, &dir),
        Command::Build {
            plan,
            format,
            output,
            scenario,
        } => build_cmd(&mut out, plan, format, output, &scenario),
        Command::Golden { action } => golden_cmd(&mut out, action),
        Command::Diff { a, b } => diff_cmd(&mut out, &a, &b),
        Command::Boot {
            iso,
            firmware,
            media,
            enroll,
            run,
            ..
        } => {
            let boot = matches
                .subcommand_matches("boot")
                .expect("the boot subcommand");
            let enroll = match enroll.as_deref().map(boot::enrollment).transpose() {
                Ok(e) => e,
                Err(e) => {
                    out.error(&e.to_string());
                    return e.class().code();
                }
            };
            match expectations(boot) {
                Ok(expect) => {
                    let m = mode(firmware, media);
                    boot_cmd(&mut out, &iso, m, expect, enroll, &run)
                }
                Err(e) => {
                    out.error(&e.to_string());
                    exit::BAD_INPUT
                }
            }
        }
        Command::BootMatrix {
            modes,
            partition,
            jobs,
            junit,
            no_retry,
            verbose,
            run,
            scenarios,
        } => boot_matrix_cmd(
            &mut out,
            (&modes, partition),
            jobs,
            junit,
            (no_retry, verbose),
            &run,
            scenarios,
        ),
        Command::Inspect { format, iso } => inspect_cmd(&mut out, format, &iso),
        Command::Payload { action } => payload_cmd(&mut out, action),
    };
    exit::worst(code, out.code)
}

/// Standard output and error. A closed pipe (`isoproof resolve x | head`) ends the output
/// quietly; any other failure to write standard output is an error with its own exit code.
#[derive(Default)]
struct Out {
    /// [`exit::OUTPUT`] once standard output failed.
    code: u8,
    closed: bool,
}

impl Out {
    fn print(&mut self, s: &str) {
        if self.closed || s.is_empty() {
            return;
        }
        let mut o = std::io::stdout().lock();
        if let Err(e) = o.write_all(s.as_bytes()).and_then(|()| o.flush()) {
            self.closed = true;
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                self.error(&format!("writing to standard output: {e}"));
                self.code = exit::OUTPUT;
            }
        }
    }

    /// A message on standard error (which has nowhere to report its own failure).
    fn note(&mut self, s: &str) {
        let _ = std::io::stderr().lock().write_all(s.as_bytes());
    }

    fn error(&mut self, msg: &str) {
        self.note(&format!("error: {}\n", msg.trim_end()));
    }
}

/// Makes Ctrl-C a request the library's cancel checks see ([`interrupt::requested`]), for
/// commands that write images or run boots; quick commands keep the default (Ctrl-C ends them).
fn cancellable(out: &mut Out) -> Result<(), u8> {
    interrupt::install().map_err(|e| {
        out.error(&format!("signal handlers: {e}"));
        exit::INTERNAL
    })
}

fn load(
    out: &mut Out,
    path: &Path,
    json: bool,
    undeclared: bool,
) -> Result<scenario::Scenario, u8> {
    let mut s = scenario::load(path).map_err(|e| {
        if json {
            out.print(&output::json(&diag::errors_json(&e.sources, &e.errors)));
        }
        out.note(&diag::render_all(&e.sources, &e.errors));
        exit::BAD_INPUT
    })?;
    if undeclared {
        let names = resolve::accept_undeclared(&mut s);
        if !names.is_empty() {
            out.note(&format!(
                "warning: {} option{} no module declares, taken as freeform values of type anything: {}\n",
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ));
        }
    }
    Ok(s)
}

fn resolve_cmd(out: &mut Out, format: Format, undeclared: bool, path: &Path) -> u8 {
    let s = match load(out, path, matches!(format, Format::Json), undeclared) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let r = resolve::resolve(&s);
    let code = match (&r.config, format) {
        (Some(c), Format::Json) => {
            out.print(&output::json(c));
            exit::OK
        }
        (Some(c), Format::Yaml) => {
            out.print(&output::yaml(&c.to_json()));
            exit::OK
        }
        (Some(c), Format::Text) => {
            out.print(&output::text(&c.to_json()));
            exit::OK
        }
        (None, format) => {
            if matches!(format, Format::Json) {
                out.print(&output::json(&diag::errors_json(&s.sources, &r.errors)));
            }
            out.note(&diag::render_all(&s.sources, &r.errors));
            exit::RESOLVE_ERRORS
        }
    };
    // The process ends right after printing: freeing a large scenario node by node would only
    // delay the exit (rustc does the same with its arenas).
    std::mem::forget(r);
    std::mem::forget(s);
    code
}

fn explain_cmd(out: &mut Out, undeclared: bool, path: &Path, option: &str) -> u8 {
    let s = match load(out, path, false, undeclared) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match resolve::explain(&s, option) {
        // The story is told either way; a value that is an error is the scenario's error.
        Ok(e) => {
            out.print(&e.text);
            if e.value_failed {
                exit::RESOLVE_ERRORS
            } else {
                exit::OK
            }
        }
        Err(errs) => {
            out.note(&diag::render_all(&s.sources, &errs));
            exit::RESOLVE_ERRORS
        }
    }
}

fn mkiso_cmd(
    out: &mut Out,
    target: &Path,
    volid: &str,
    bios: Option<PathBuf>,
    efi: Option<PathBuf>,
    hybrid: bool,
    dir: &Path,
) -> u8 {
    let clock = match image::clock::Clock::from_env() {
        Ok(c) => c,
        Err(e) => {
            out.error(&e.to_string());
            return exit::BAD_INPUT;
        }
    };
    let mut opts = image::write::plan::Options::new(volid, clock);
    opts.hybrid = hybrid;
    if let Err(e) = opts.boot_files(bios.as_deref(), efi.as_deref()) {
        out.error(&e.to_string());
        return e.class().code();
    }
    if let Err(code) = cancellable(out) {
        return code;
    }
    let mut bar = progress::Bar::new();
    let made = image::mkiso(dir, target, &opts, &interrupt::requested, &mut |p| {
        bar.update(p)
    });
    drop(bar);
    match made {
        Ok(p) => {
            out.note(&format!("{}: {} bytes\n", target.display(), p.size));
            exit::OK
        }
        Err(e) => {
            out.error(&e.to_string());
            e.class().code()
        }
    }
}

fn build_cmd(
    out: &mut Out,
    plan_only: bool,
    format: InspectFormat,
    target: Option<PathBuf>,
    scenario: &Path,
) -> u8 {
    let fail = |out: &mut Out, e: BuildError| {
        match &e {
            // Each diagnostic names its own kind (`error[undeclared]`), then the count.
            BuildError::Resolve { sources, errors } => out.note(&diag::render_all(sources, errors)),
            _ => out.error(&e.to_string()),
        }
        e.class().code()
    };
    let planned = match compose::plan_scenario(scenario) {
        Ok(p) => p,
        Err(e) => return fail(out, e),
    };
    for w in &planned.warnings {
        out.note(&format!("warning: {w}\n"));
    }
    if plan_only {
        out.print(&match format {
            InspectFormat::Text => planned.plan.to_text(),
            InspectFormat::Json => output::json(&planned.plan.to_json()),
        });
        return exit::OK;
    }
    let target = target.unwrap_or_else(|| PathBuf::from(&planned.plan.iso_name));
    if let Err(code) = cancellable(out) {
        return code;
    }
    let mut bar = progress::Bar::new();
    let made = compose::build(&planned.plan, &target, &interrupt::requested, &mut |p| {
        bar.update(p)
    });
    drop(bar);
    match made {
        Ok(p) => {
            out.note(&format!("{}: {} bytes\n", target.display(), p.size()));
            exit::OK
        }
        Err(e) => fail(out, e),
    }
}

fn golden_cmd(out: &mut Out, action: GoldenAction) -> u8 {
    let (golden_dir, named, keep, bless, image) = match action {
        GoldenAction::Check {
            golden,
            keep,
            image,
            scenarios,
        } => (golden, scenarios, keep, false, image),
        GoldenAction::Bless {
            golden,
            image,
            scenarios,
        } => (golden, scenarios, None, true, image),
    };
    if let Some(ImageArgs {
        image: Some(image),
        name: Some(name),
    }) = image
    {
        return golden_image_cmd(out, &image, &name, &golden_dir, bless);
    }
    let list = match scenarios_or_all(out, named) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(code) = cancellable(out) {
        return code;
    }
    let settings = golden::Settings {
        golden: &golden_dir,
        keep: keep.as_deref(),
        cancel: &interrupt::requested,
    };
    let mut code = exit::OK;
    let mut on = |e: golden::Event<'_>| match e {
        golden::Event::Checked { scenario, outcome } => {
            out.print(&golden::describe(
                &scenario.display().to_string(),
                outcome,
                &golden_dir,
            ));
            code = exit::worst(code, outcome.class().code());
        }
        golden::Event::Blessed { scenario, manifest } => out.print(&format!(
            "blessed       {} ({} bytes, sha256 {})\n",
            scenario.display(),
            manifest.output.size,
            manifest.output.sha256.get(..16).unwrap_or_default()
        )),
        golden::Event::Failed { error, .. } => {
            out.error(&error.to_string());
            code = exit::worst(code, error.class().code());
        }
    };
    let sum = if bless {
        golden::bless_all(&list, &settings, &mut on)
    } else {
        golden::check_all(&list, &settings, &mut on)
    };
    if sum.interrupted {
        out.note("interrupted\n");
        return exit::INTERRUPTED;
    }
    out.print(&format!(
        "{} {}, {} differ, {} failed to build\n",
        sum.ok,
        if bless { "blessed" } else { "match" },
        sum.regressions + sum.input_changed + sum.no_manifest,
        sum.failed
    ));
    code
}

/// `golden bless|check --image FILE --name NAME`: an image built by any tool.
fn golden_image_cmd(out: &mut Out, image: &Path, name: &str, dir: &Path, bless: bool) -> u8 {
    let done = if bless {
        golden::image::bless_image(image, name, dir).map(|r| (r.describe(image, name), exit::OK))
    } else {
        golden::image::check_image(image, name, dir)
            .map(|o| (o.describe(image, name, dir), o.class().code()))
    };
    match done {
        Ok((text, code)) => {
            out.print(&text);
            code
        }
        Err(e) => {
            out.error(&e.to_string());
            e.class().code()
        }
    }
}

/// The scenarios to work on: those named, or every `scenarios/*.yaml`.
fn scenarios_or_all(out: &mut Out, named: Vec<PathBuf>) -> Result<Vec<PathBuf>, u8> {
    if !named.is_empty() {
        return Ok(named);
    }
    golden::scenarios_in(Path::new("scenarios")).map_err(|e| {
        out.error(&e.to_string());
        e.class().code()
    })
}

fn diff_cmd(out: &mut Out, a: &Path, b: &Path) -> u8 {
    if a.is_dir() && b.is_dir() {
        return match image::read::diff::diff_dirs(a, b) {
            Ok(d) if d.is_empty() => {
                out.print("identical\n");
                exit::OK
            }
            Ok(d) => {
                out.print(&(d.lines().join("\n") + "\n"));
                exit::IMAGES_DIFFER
            }
            Err(e) => {
                out.error(&e.to_string());
                e.class().code()
            }
        };
    }
    match image::read::diff::diff(a, b) {
        Ok(d) => {
            out.print(&d.to_text());
            if d.is_empty() {
                exit::OK
            } else {
                exit::IMAGES_DIFFER
            }
        }
        Err(e) => {
            out.error(&e.to_string());
            e.class().code()
        }
    }
}

fn inspect_cmd(out: &mut Out, format: InspectFormat, iso: &Path) -> u8 {
    match image::read::inspect::inspect(iso) {
        Ok(r) => {
            out.print(&match format {
                InspectFormat::Text => r.to_text(),
                InspectFormat::Json => output::json(&r.to_json()),
            });
            // What could be read is shown; a truncated image is still a broken one.
            match r.truncation() {
                Some(t) => {
                    out.error(&format!("{}: {t}", iso.display()));
                    exit::BAD_INPUT
                }
                None => exit::OK,
            }
        }
        Err(e) => {
            out.error(&e.shown(iso));
            e.class().code()
        }
    }
}

fn payload_cmd(out: &mut Out, action: PayloadAction) -> u8 {
    let (lock, root, pin) = match action {
        PayloadAction::Fetch { lock, root } => (lock, root, false),
        PayloadAction::Pin { lock, root } => (lock, root, true),
    };
    let root = root.unwrap_or_else(|| {
        lock.parent()
            .map_or_else(|| PathBuf::from("root"), |d| d.join("root"))
    });
    let mut on = |e: fetch::Event<'_>| match e {
        fetch::Event::UpToDate { files } => eprintln!(
            "{}: up to date ({files} files checked against {})",
            root.display(),
            lock.display()
        ),
        fetch::Event::Downloading { name, version } => {
            eprintln!("downloading {name} {version}")
        }
        fetch::Event::Depmod { version } => eprintln!("depmod {version}"),
        fetch::Event::Installed { files } => eprintln!(
            "{}: {files} files, each checked against {}",
            root.display(),
            lock.display()
        ),
    };
    let done = if pin {
        fetch::pin(&lock, &root, &mut on).map(|l| {
            let versions: Vec<String> = l
                .packages
                .iter()
                .map(|p| format!("{} {}", p.name, p.version))
                .collect();
            format!("pinned {}: {}\n", lock.display(), versions.join(", "))
        })
    } else {
        fetch::fetch(&lock, &root, &mut on).map(|_| String::new())
    };
    match done {
        Ok(text) => {
            out.print(&text);
            exit::OK
        }
        Err(e) => {
            out.error(&e.to_string());
            e.class().code()
        }
    }
}

fn mode(firmware: FirmwareArg, media: MediaArg) -> Mode {
    Mode {
        firmware: match firmware {
            FirmwareArg::Bios => Firmware::Bios,
            FirmwareArg::Uefi => Firmware::Uefi,
            FirmwareArg::UefiSb => Firmware::UefiSecure,
        },
        media: match media {
            MediaArg::Cdrom => Media::Cdrom,
            MediaArg::Usb => Media::Usb,
            MediaArg::Disk => Media::Disk,
            MediaArg::Netboot => Media::Netboot,
        },
    }
}

fn machine_options(run: &RunArgs) -> boot::MachineOptions {
    use isoproof_harness::accel::Choice;
    boot::MachineOptions {
        accel: match run.accel {
            AccelArg::Auto => Choice::Auto,
            AccelArg::Kvm => Choice::Kvm,
            AccelArg::Tcg => Choice::Tcg,
        },
        ovmf: run.ovmf_code.clone().zip(run.ovmf_vars.clone()),
        kvm_cache: isoproof_harness::accel::default_cache(),
        recheck_kvm: run.recheck_kvm,
    }
}

/// A `--expect` or `--expect-screen` pattern that cannot be awaited.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {pattern:?}: {source}")]
struct BadExpectation {
    flag: &'static str,
    pattern: String,
    #[source]
    source: isoproof_harness::expect::PatternError,
}

/// `--expect` and `--expect-screen` in the order they were given on the command line.
fn expectations(m: &clap::ArgMatches) -> Result<Vec<Expectation>, BadExpectation> {
    let mut v: Vec<(usize, Source, &String)> = Vec::new();
    for (id, source) in [
        ("expect", Source::Serial),
        ("expect_screen", Source::Screen),
    ] {
        if let (Some(at), Some(values)) = (m.indices_of(id), m.get_many::<String>(id)) {
            v.extend(at.zip(values).map(|(i, p)| (i, source, p)));
        }
    }
    v.sort_by_key(|(i, _, _)| *i);
    v.into_iter()
        .map(|(_, source, p)| {
            Expectation::new(source, p).map_err(|e| BadExpectation {
                flag: match source {
                    Source::Serial => "--expect",
                    Source::Screen => "--expect-screen",
                },
                pattern: p.clone(),
                source: e,
            })
        })
        .collect()
}

fn settings(
    run: &RunArgs,
    jobs: Option<usize>,
    retries: u32,
) -> Result<matrix::Settings, boot::BadDeadline> {
    let timeout = boot::deadline(run.timeout)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(matrix::Settings {
        jobs: jobs.unwrap_or(cores).max(1),
        timeout,
        retries,
        keep: run.keep.clone(),
    })
}

/// Prints boot events on standard error as they come.
fn boot_event(e: boot::Event<'_>) {
    boot_event_shown(e, false)
}

/// [`boot_event`], with each finished boot's message under its line when `verbose`.
fn boot_event_shown(e: boot::Event<'_>, verbose: bool) {
    match e {
        boot::Event::Machine(notes) => eprintln!("{}", notes.join("\n")),
        boot::Event::Started { boots, jobs } => eprintln!("{boots} boots, {jobs} at a time"),
        boot::Event::NotBuilt { scenario, error } => {
            eprintln!("NOT BUILT {}: {error}", scenario.display())
        }
        boot::Event::Finished {
            result,
            done,
            total,
        } => {
            eprintln!("{}", matrix::progress_line(result, done, total));
            // Failures are explained under the table; a pass says what it showed.
            if verbose && result.passed() {
                eprintln!("      {}", result.message());
            }
        }
    }
}

fn boot_cmd(
    out: &mut Out,
    iso: &Path,
    mode: Mode,
    expect: Vec<Expectation>,
    enroll: Option<Vec<u8>>,
    run: &RunArgs,
) -> u8 {
    let settings = match settings(run, Some(1), 0) {
        Ok(s) => s,
        Err(e) => {
            out.error(&format!("--timeout {e}"));
            return exit::BAD_INPUT;
        }
    };
    if let Err(code) = cancellable(out) {
        return code;
    }
    let b = boot::ImageBoot {
        image: iso.to_path_buf(),
        mode,
        expect,
        enroll,
    };
    let report = boot::boot_image(
        &b,
        &machine_options(run),
        &settings,
        &interrupt::requested,
        &mut boot_event,
    );
    match report {
        Err(e) => {
            out.error(&e.to_string());
            e.class().code()
        }
        Ok(r) if r.interrupted => {
            out.note("interrupted\n");
            exit::INTERRUPTED
        }
        Ok(r) => {
            let msg = r.results.first().map_or("", |c| c.message());
            out.print(&format!("{mode}: {msg}\n"));
            if r.passed() {
                exit::OK
            } else {
                // One boot: its kept files, not a matrix table.
                for a in r.results.iter().flat_map(|c| &c.attempts) {
                    for (what, p) in [("serial log", &a.serial_log), ("screenshot", &a.screenshot)]
                    {
                        if let Some(p) = p {
                            out.note(&format!("{what} kept: {}\n", p.display()));
                        }
                    }
                }
                exit::BOOT_FAILED
            }
        }
    }
}

fn boot_matrix_cmd(
    out: &mut Out,
    (only, part): (&[Mode], isoproof_harness::matrix::Partition),
    jobs: Option<usize>,
    junit: Option<PathBuf>,
    (no_retry, verbose): (bool, bool),
    run: &RunArgs,
    named: Vec<PathBuf>,
) -> u8 {
    let settings = match settings(run, jobs, if no_retry { 0 } else { 1 }) {
        Ok(s) => s,
        Err(e) => {
            out.error(&format!("--timeout {e}"));
            return exit::BAD_INPUT;
        }
    };
    let list = match scenarios_or_all(out, named) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(code) = cancellable(out) {
        return code;
    }
    let report = boot::matrix(
        &list,
        only,
        part,
        &machine_options(run),
        &settings,
        &interrupt::requested,
        &mut |e| boot_event_shown(e, verbose),
    );
    let r = match report {
        Ok(r) => r,
        Err(e) => {
            out.error(&e.to_string());
            return e.class().code();
        }
    };
    out.print(&r.table());
    if r.interrupted {
        out.note("interrupted\n");
        return exit::INTERRUPTED;
    }
    out.note(&format!(
        "matrix wall time: {:.1} s\n",
        r.wall.as_secs_f64()
    ));
    if let Some(path) = junit {
        match r.write_junit(&path) {
            Ok(()) => out.note(&format!("JUnit: {}\n", path.display())),
            Err(e) => {
                out.error(&e.to_string());
                return e.class().code();
            }
        }
    }
    if r.passed() {
        exit::OK
    } else {
        exit::BOOT_FAILED
    }
}
