//! The `isoproof` command line: parses arguments, calls one library function per subcommand,
//! prints, and maps the outcome to an exit code. No logic lives here.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use isoproof::{build, diag::Diagnostic, golden, image, interrupt, output, resolve, scenario};
use isoproof_harness::matrix;

/// Exit codes, the CLI's contract.
mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The scenario resolved to errors (conflicts, type errors, ...).
    pub const RESOLVE_ERRORS: u8 = 1;
    /// The scenario could not be read (YAML syntax, unknown tag, bad type, missing import) or
    /// the command line was wrong.
    pub const BAD_INPUT: u8 = 2;
    /// A signal (Ctrl-C) stopped the command; it left no output behind.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Parser)]
#[command(
    name = "isoproof",
    version,
    about = "Prove live/installer ISO images right: NixOS module resolution, reproducible bytes, real boots"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve a scenario's modules exactly as `lib.evalModules` would.
    Resolve {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// The scenario file.
        scenario: PathBuf,
    },
    /// Explain how one option gets its value: every definition, its priority, who won and why.
    Explain {
        /// The scenario file.
        scenario: PathBuf,
        /// The option path, e.g. `fileSystems."/".device`.
        option: String,
    },
    /// Write a reproducible ISO image (Rock Ridge + Joliet) of a directory.
    Mkiso {
        /// The image to write (appears atomically).
        #[arg(short, long)]
        output: PathBuf,
        /// Volume identifier (1-32 characters: A-Z a-z 0-9 _ - .).
        #[arg(long, default_value = "ISOIMAGE")]
        volid: String,
        /// BIOS El Torito no-emulation boot image (patched with a boot info table).
        #[arg(long)]
        bios_boot: Option<PathBuf>,
        /// UEFI application, stored as \EFI\BOOT\BOOTX64.EFI in a FAT ESP.
        #[arg(long)]
        efi_boot: Option<PathBuf>,
        /// Add the MBR and GPT that make the image bootable from a USB stick or disk.
        #[arg(long)]
        hybrid: bool,
        /// The directory to put in the image.
        dir: PathBuf,
    },
    /// Build a scenario's image: resolve, plan every file and boot structure, write the ISO.
    Build {
        /// Print the image plan instead of writing the image.
        #[arg(long)]
        plan: bool,
        /// Format of `--plan`.
        #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
        format: InspectFormat,
        /// The image to write (default: `isoImage.isoName` in the current directory).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The scenario file.
        scenario: PathBuf,
    },
    /// The golden-image suite: rebuild and compare with `golden/`, or rewrite manifests.
    Golden {
        #[command(subcommand)]
        action: GoldenAction,
    },
    /// Compare two images by structure, then name the owner of every other differing byte.
    Diff {
        /// The first image.
        a: PathBuf,
        /// The second image.
        b: PathBuf,
    },
    /// Boot an image under QEMU in one mode and check that it reports (or prints `--expect`).
    Boot {
        /// The image.
        iso: PathBuf,
        /// The firmware.
        #[arg(long, value_enum, default_value_t = FirmwareArg::Bios)]
        firmware: FirmwareArg,
        /// How the image is attached.
        #[arg(long, value_enum, default_value_t = MediaArg::Cdrom)]
        media: MediaArg,
        /// Pass when the serial console shows this text (default: QEMU exits with status 33
        /// through isa-debug-exit, as isoproof's payloads make it).
        #[arg(long)]
        expect: Option<String>,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Build every bootable scenario and boot it in every mode it turns on (BIOS and UEFI,
    /// from CD-ROM, USB stick and disk), checking each report against the resolved config.
    BootMatrix {
        /// Only these modes (`bios-cdrom`, `uefi-usb`, ...); repeatable.
        #[arg(long = "mode", value_parser = parse_mode)]
        modes: Vec<isoproof_harness::Mode>,
        /// Boots at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Do not retry a failing mode (by default it is retried once, to tell flaky from broken).
        #[arg(long)]
        no_retry: bool,
        #[command(flatten)]
        run: RunArgs,
        /// Scenarios (default: every `scenarios/*.yaml`).
        scenarios: Vec<PathBuf>,
    },
    /// Show an ISO's volume descriptors, boot catalog, MBR/GPT and files with extents.
    Inspect {
        /// Output format.
        #[arg(long, value_enum, default_value_t = InspectFormat::Text)]
        format: InspectFormat,
        /// The image.
        iso: PathBuf,
    },
}

#[derive(Subcommand)]
enum GoldenAction {
    /// Rebuild each scenario in a temporary directory and compare it with its manifest.
    Check {
        /// Where the manifests are.
        #[arg(long, default_value = "golden")]
        golden: PathBuf,
        /// Keep the rebuilt images in this directory (for `isoproof diff`).
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Scenarios (default: every `scenarios/*.yaml`).
        scenarios: Vec<PathBuf>,
    },
    /// Rebuild each scenario and rewrite its manifest: the only way manifests change.
    Bless {
        /// Where the manifests are.
        #[arg(long, default_value = "golden")]
        golden: PathBuf,
        /// Scenarios (default: every `scenarios/*.yaml`).
        scenarios: Vec<PathBuf>,
    },
}

/// Options every boot command takes.
#[derive(clap::Args)]
struct RunArgs {
    /// Each boot's deadline, in seconds; then QEMU gets SIGTERM, and SIGKILL 2 s later.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// `auto` uses KVM only if a real KVM boot self-test passes, else TCG.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    accel: AccelArg,
    /// OVMF code image (with --ovmf-vars; default: QEMU's firmware descriptors, then the
    /// known paths of common distributions).
    #[arg(long, requires = "ovmf_vars")]
    ovmf_code: Option<PathBuf>,
    /// OVMF variable store template (copied for every boot).
    #[arg(long, requires = "ovmf_code")]
    ovmf_vars: Option<PathBuf>,
    /// Where the serial log and screenshot of every failed boot are kept.
    #[arg(long, default_value = "boot-failures")]
    keep: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum FirmwareArg {
    Bios,
    Uefi,
}

#[derive(Clone, Copy, ValueEnum)]
enum MediaArg {
    Cdrom,
    Usb,
    Disk,
}

#[derive(Clone, Copy, ValueEnum)]
enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

fn parse_mode(s: &str) -> Result<isoproof_harness::Mode, String> {
    isoproof_harness::Mode::parse(s)
        .ok_or_else(|| format!("{s:?}: expected FIRMWARE-MEDIA, e.g. bios-cdrom or uefi-usb"))
}

#[derive(Clone, Copy, ValueEnum)]
enum InspectFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Yaml,
    Text,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (out, err, code) = match cli.command {
        Command::Resolve { format, scenario } => resolve_cmd(format, &scenario),
        Command::Explain { scenario, option } => explain_cmd(&scenario, &option),
        Command::Mkiso {
            output,
            volid,
            bios_boot,
            efi_boot,
            hybrid,
            dir,
        } => mkiso_cmd(&output, &volid, bios_boot, efi_boot, hybrid, &dir),
        Command::Build {
            plan,
            format,
            output,
            scenario,
        } => build_cmd(plan, format, output, &scenario),
        Command::Golden { action } => golden_cmd(action),
        Command::Diff { a, b } => match golden::diff::diff(&a, &b) {
            Ok(d) if d.is_empty() => (d.to_text(), String::new(), exit::OK),
            Ok(d) => (d.to_text(), String::new(), exit::RESOLVE_ERRORS),
            Err(e) => (String::new(), format!("error: {e}\n"), exit::BAD_INPUT),
        },
        Command::Boot {
            iso,
            firmware,
            media,
            expect,
            run,
        } => {
            let mode = isoproof_harness::Mode {
                firmware: match firmware {
                    FirmwareArg::Bios => isoproof_harness::Firmware::Bios,
                    FirmwareArg::Uefi => isoproof_harness::Firmware::Uefi,
                },
                media: match media {
                    MediaArg::Cdrom => isoproof_harness::Media::Cdrom,
                    MediaArg::Usb => isoproof_harness::Media::Usb,
                    MediaArg::Disk => isoproof_harness::Media::Disk,
                },
            };
            boot_cmd(&iso, mode, expect, &run)
        }
        Command::BootMatrix {
            modes,
            jobs,
            junit,
            no_retry,
            run,
            scenarios,
        } => boot_matrix_cmd(&modes, jobs, junit, no_retry, &run, scenarios),
        Command::Inspect { format, iso } => match image::inspect::inspect(&iso) {
            Ok(r) => match format {
                InspectFormat::Text => (r.to_text(), String::new(), exit::OK),
                InspectFormat::Json => (output::json(&r.to_json()), String::new(), exit::OK),
            },
            Err(e) => (String::new(), format!("error: {e}\n"), exit::BAD_INPUT),
        },
    };
    // A closed pipe (`isoproof resolve x | head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stderr().write_all(err.as_bytes());
    ExitCode::from(code)
}

fn errors_json(sources: &scenario::Sources, errors: &[Diagnostic]) -> String {
    let v = serde_json::json!({ "errors": errors.iter().map(|e| e.to_json(sources)).collect::<Vec<_>>() });
    output::json(&v)
}

fn rendered(sources: &scenario::Sources, errors: &[Diagnostic]) -> String {
    let mut s: String = errors.iter().map(|e| e.render(sources) + "\n").collect();
    s.push_str(&format!(
        "{} error{}\n",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    ));
    s
}

fn load(path: &std::path::Path, json: bool) -> Result<scenario::Scenario, (String, String, u8)> {
    scenario::load(path).map_err(|e| {
        let text = rendered(&e.sources, &e.errors);
        let json_out = if json {
            errors_json(&e.sources, &e.errors)
        } else {
            String::new()
        };
        (json_out, text, exit::BAD_INPUT)
    })
}

fn resolve_cmd(format: Format, path: &std::path::Path) -> (String, String, u8) {
    let s = match load(path, matches!(format, Format::Json)) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let r = resolve::resolve(&s);
    let result = match (r.config, format) {
        (Some(c), Format::Json) => (output::json(&c), String::new(), exit::OK),
        (Some(c), Format::Yaml) => (output::yaml(&c.to_json()), String::new(), exit::OK),
        (Some(c), Format::Text) => (output::text(&c.to_json()), String::new(), exit::OK),
        (None, Format::Json) => (
            errors_json(&s.sources, &r.errors),
            rendered(&s.sources, &r.errors),
            exit::RESOLVE_ERRORS,
        ),
        (None, _) => (
            String::new(),
            rendered(&s.sources, &r.errors),
            exit::RESOLVE_ERRORS,
        ),
    };
    // The process ends right after printing: freeing a large scenario node by node would only
    // delay the exit (rustc does the same with its arenas).
    std::mem::forget(s);
    result
}

fn explain_cmd(path: &std::path::Path, option: &str) -> (String, String, u8) {
    let s = match load(path, false) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match resolve::explain(&s, option) {
        Ok(text) => (text, String::new(), exit::OK),
        Err(errs) => (
            String::new(),
            rendered(&s.sources, &errs),
            exit::RESOLVE_ERRORS,
        ),
    }
}

fn mkiso_cmd(
    out: &std::path::Path,
    volid: &str,
    bios: Option<PathBuf>,
    efi: Option<PathBuf>,
    hybrid: bool,
    dir: &std::path::Path,
) -> (String, String, u8) {
    let build = || -> Result<image::plan::Plan, image::ImageError> {
        let clock =
            image::clock::Clock::from_env().map_err(|e| image::ImageError::Input(e.to_string()))?;
        let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| image::ImageError::io(p, e));
        let mut opts = image::plan::Options::new(volid, clock);
        opts.hybrid = hybrid;
        opts.bios_boot = bios.as_deref().map(read).transpose()?;
        if let Some(e) = &efi {
            opts.esp_files
                .push(("EFI/BOOT/BOOTX64.EFI".into(), read(e)?));
        }
        interrupt::install().map_err(|e| image::ImageError::io(out, e))?;
        image::mkiso(dir, out, &opts)
    };
    match build() {
        Ok(p) => (
            String::new(),
            format!("{}: {} bytes\n", out.display(), p.size),
            exit::OK,
        ),
        Err(e @ image::ImageError::Interrupted) => {
            (String::new(), format!("error: {e}\n"), exit::INTERRUPTED)
        }
        Err(e) => (String::new(), format!("error: {e}\n"), exit::BAD_INPUT),
    }
}

fn build_cmd(
    plan_only: bool,
    format: InspectFormat,
    output: Option<PathBuf>,
    scenario: &std::path::Path,
) -> (String, String, u8) {
    let fail = |e: build::BuildError| {
        let code = match e {
            build::BuildError::Resolve(..) => exit::RESOLVE_ERRORS,
            build::BuildError::Image(image::ImageError::Interrupted) => exit::INTERRUPTED,
            _ => exit::BAD_INPUT,
        };
        (String::new(), format!("error: {e}\n"), code)
    };
    let planned = match build::plan_scenario(scenario) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if plan_only {
        let text = match format {
            InspectFormat::Text => planned.plan.to_text(),
            InspectFormat::Json => output::json(&planned.plan.to_json()),
        };
        return (text, String::new(), exit::OK);
    }
    let out = output.unwrap_or_else(|| PathBuf::from(&planned.plan.iso_name));
    if let Err(e) = interrupt::install() {
        return fail(image::ImageError::io(&out, e).into());
    }
    match build::build(&planned.plan, &out) {
        Ok(p) => (
            String::new(),
            format!("{}: {} bytes\n", out.display(), p.size),
            exit::OK,
        ),
        Err(e) => fail(e),
    }
}

/// The scenarios to work on: those named, or every `scenarios/*.yaml`.
fn scenarios_or_all(named: Vec<PathBuf>) -> Result<Vec<PathBuf>, String> {
    if !named.is_empty() {
        return Ok(named);
    }
    let dir = std::path::Path::new("scenarios");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml") && p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

fn golden_cmd(action: GoldenAction) -> (String, String, u8) {
    let root = match std::env::current_dir().and_then(std::fs::canonicalize) {
        Ok(r) => r,
        Err(e) => {
            return (
                String::new(),
                format!("error: current directory: {e}\n"),
                exit::BAD_INPUT,
            )
        }
    };
    let (golden_dir, named, keep, bless) = match action {
        GoldenAction::Check {
            golden,
            keep,
            scenarios,
        } => (golden, scenarios, keep, false),
        GoldenAction::Bless { golden, scenarios } => (golden, scenarios, None, true),
    };
    let list = match scenarios_or_all(named) {
        Ok(l) => l,
        Err(e) => return (String::new(), format!("error: {e}\n"), exit::BAD_INPUT),
    };
    let (mut out, mut err) = (String::new(), String::new());
    let (mut ok, mut failed, mut broken) = (0, 0, 0);
    for s in &list {
        let name = s.display().to_string();
        if bless {
            match golden::bless(s, &root, &golden_dir) {
                Ok(m) => {
                    ok += 1;
                    out.push_str(&format!(
                        "blessed       {name} ({} bytes, sha256 {})\n",
                        m.size,
                        &m.sha256[..16]
                    ));
                }
                Err(e) => {
                    broken += 1;
                    err.push_str(&format!("error: {e}\n"));
                }
            }
            continue;
        }
        match golden::check(s, &root, &golden_dir, keep.as_deref()) {
            Ok(o) => {
                if o == golden::Outcome::Same {
                    ok += 1;
                } else {
                    failed += 1;
                }
                out.push_str(&golden::describe(&name, &o));
            }
            Err(e) => {
                broken += 1;
                err.push_str(&format!("error: {e}\n"));
            }
        }
    }
    out.push_str(&format!(
        "{ok} {}, {failed} differ, {broken} failed to build\n",
        if bless { "blessed" } else { "match" }
    ));
    let code = if broken > 0 {
        exit::BAD_INPUT
    } else if failed > 0 {
        exit::RESOLVE_ERRORS
    } else {
        exit::OK
    };
    (out, err, code)
}

fn machine_options(run: &RunArgs, need_uefi: bool) -> isoproof::boot::MachineOptions {
    use isoproof_harness::accel::Choice;
    isoproof::boot::MachineOptions {
        accel: match run.accel {
            AccelArg::Auto => Choice::Auto,
            AccelArg::Kvm => Choice::Kvm,
            AccelArg::Tcg => Choice::Tcg,
        },
        ovmf: run.ovmf_code.clone().zip(run.ovmf_vars.clone()),
        need_uefi,
    }
}

fn settings(run: &RunArgs, jobs: Option<usize>, retries: u32) -> Result<matrix::Settings, String> {
    if !(run.timeout.is_finite() && run.timeout > 0.0 && run.timeout < 86_400.0) {
        return Err(format!(
            "--timeout {}: expected seconds between 0 and 86400",
            run.timeout
        ));
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(matrix::Settings {
        jobs: jobs.unwrap_or(cores).max(1),
        timeout: std::time::Duration::from_secs_f64(run.timeout),
        retries,
        keep: run.keep.clone(),
    })
}

/// Runs cases with progress on stderr; the table goes to stdout.
fn run_cases(
    machine: &isoproof_harness::Machine,
    cases: &[matrix::Case],
    settings: &matrix::Settings,
) -> Result<Vec<matrix::CaseResult>, String> {
    if let Err(e) = interrupt::install() {
        return Err(format!("signal handlers: {e}"));
    }
    isoproof::boot::run_matrix(machine, cases, settings, &interrupt::requested, &|line| {
        eprintln!("{line}");
    })
}

fn boot_cmd(
    iso: &std::path::Path,
    mode: isoproof_harness::Mode,
    expect: Option<String>,
    run: &RunArgs,
) -> (String, String, u8) {
    let fail = |e: String| (String::new(), format!("error: {e}\n"), exit::BAD_INPUT);
    if !iso.is_file() {
        return fail(format!("{}: no such image", iso.display()));
    }
    let settings = match settings(run, Some(1), 0) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let opts = machine_options(run, mode.firmware == isoproof_harness::Firmware::Uefi);
    let (machine, notes) = match isoproof::boot::machine(&opts) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    eprintln!("{}", notes.join("\n"));
    let check = isoproof::boot::image_check(expect.clone(), settings.timeout);
    let case = matrix::Case {
        suite: iso
            .file_name()
            .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned()),
        mode,
        image: iso.to_path_buf(),
        stop_on: expect,
        check,
    };
    match run_cases(&machine, &[case], &settings) {
        Err(e) => fail(e),
        Ok(_) if interrupt::requested() => {
            (String::new(), "interrupted\n".into(), exit::INTERRUPTED)
        }
        Ok(r) => {
            let text = matrix::table(&r);
            let code = if r.iter().all(matrix::CaseResult::passed) {
                exit::OK
            } else {
                exit::RESOLVE_ERRORS
            };
            let msg = r.first().map_or("", |c| c.message());
            (
                format!("{mode}: {msg}\n"),
                if code == exit::OK {
                    String::new()
                } else {
                    text
                },
                code,
            )
        }
    }
}

fn boot_matrix_cmd(
    only: &[isoproof_harness::Mode],
    jobs: Option<usize>,
    junit: Option<PathBuf>,
    no_retry: bool,
    run: &RunArgs,
    named: Vec<PathBuf>,
) -> (String, String, u8) {
    let fail = |e: String| (String::new(), format!("error: {e}\n"), exit::BAD_INPUT);
    let settings = match settings(run, jobs, if no_retry { 0 } else { 1 }) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let list = match scenarios_or_all(named) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let dir = match tempfile::Builder::new().prefix("isoproof-matrix").tempdir() {
        Ok(d) => d,
        Err(e) => return fail(format!("temporary directory: {e}")),
    };
    let mut cases = Vec::new();
    for s in &list {
        match isoproof::boot::build_scenario(s, dir.path()) {
            Ok(b) => cases.extend(isoproof::boot::cases(
                &b,
                (!only.is_empty()).then_some(only),
            )),
            Err(e) => return fail(format!("{}: {e}", s.display())),
        }
    }
    if cases.is_empty() {
        return fail("no scenario turns on a boot mode".into());
    }
    let need_uefi = cases
        .iter()
        .any(|c| c.mode.firmware == isoproof_harness::Firmware::Uefi);
    let (machine, notes) = match isoproof::boot::machine(&machine_options(run, need_uefi)) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    eprintln!("{}", notes.join("\n"));
    eprintln!(
        "{} boots, {} at a time",
        cases.len(),
        settings.jobs.min(cases.len())
    );
    let start = std::time::Instant::now();
    let results = match run_cases(&machine, &cases, &settings) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if interrupt::requested() {
        return (
            matrix::table(&results),
            "interrupted\n".into(),
            exit::INTERRUPTED,
        );
    }
    let mut err = format!("matrix wall time: {:.1} s\n", start.elapsed().as_secs_f64());
    if let Some(path) = junit {
        match matrix::junit(&results)
            .and_then(|x| output::write_atomic(&path, x.as_bytes()).map_err(|e| e.to_string()))
        {
            Ok(()) => err.push_str(&format!("JUnit: {}\n", path.display())),
            Err(e) => {
                return (
                    matrix::table(&results),
                    format!("error: {}: {e}\n", path.display()),
                    exit::BAD_INPUT,
                )
            }
        }
    }
    let code = if results.iter().all(matrix::CaseResult::passed) {
        exit::OK
    } else {
        exit::RESOLVE_ERRORS
    };
    (matrix::table(&results), err, code)
}
