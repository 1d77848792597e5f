//! Stage 5: boot. Builds each scenario's image, works out which modes it must boot in
//! (BIOS needs `makeBiosBootable`, UEFI `makeEfiBootable`, USB stick and disk
//! `makeUsbBootable`), and judges what the payload printed against the resolved config:
//! boot path, volume ID, hostname, kernel parameters, the config's sha256 and, under UEFI, the
//! CRC-32 of the config as the firmware's FAT driver read it from the ESP. The QEMU side is
//! the `isoproof-harness` crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use isoproof_harness::expect::{Expectation, Source};
use isoproof_harness::matrix::{self, Case, CaseResult, Check, Unbuilt, Verdict};
use isoproof_harness::run::Ended;
use isoproof_harness::{accel, firmware};
use isoproof_harness::{Attempt, Firmware, Media, Mode};

use crate::compose::{self, BuildError, ImagePlan};
use crate::image::format::structure::Structure;
use crate::payload::{self, Reported, Via};

/// Why boots could not be run (a boot that ran and failed is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The harness could not run (no QEMU, no OVMF, a file it needs).
    #[error(transparent)]
    Harness(#[from] isoproof_harness::Error),
    /// The image to boot is not a regular file or block device.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// The image cannot boot in the mode asked for (what `inspect` reads says why).
    #[error("{mode}: cannot boot: {why}")]
    CannotBoot {
        /// The mode.
        mode: Mode,
        /// Why.
        #[source]
        why: Unbootable,
    },
    /// None of the scenarios turns on a boot mode (or none of the modes asked for).
    #[error("no scenario turns on a boot mode")]
    NothingToBoot,
    /// `--enroll`: not a PEM X.509 certificate, or not readable.
    #[error("{}: {why}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A file or directory could not be written (the images, the JUnit report).
    #[error("{}: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A boot's deadline that is not a number of seconds in range.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("{0}: expected seconds more than 0 and less than 86400 (a day)")]
pub struct BadDeadline(pub f64);

/// A boot's deadline of `seconds`: more than 0 and less than a day.
pub fn deadline(seconds: f64) -> Result<std::time::Duration, BadDeadline> {
    if seconds.is_finite() && seconds > 0.0 && seconds < 86_400.0 {
        Ok(std::time::Duration::from_secs_f64(seconds))
    } else {
        Err(BadDeadline(seconds))
    }
}

impl BootError {
    /// Its exit class.
    pub fn class(&self) -> crate::exit::Class {
        use crate::exit::Class;
        match self {
            BootError::Harness(h) => h.cause().into(),
            BootError::Input(e) => e.class(),
            BootError::NothingToBoot | BootError::Certificate { .. } => Class::BadInput,
            BootError::CannotBoot { .. } => Class::BootFailed,
            BootError::Write { .. } => Class::Output,
        }
    }
}

/// What a boot in one mode must report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The boot path the payload must state.
    pub via: Via,
    /// The values of the resolved config.
    pub report: payload::Report,
    /// UEFI: the CRC-32 of `/isoproof/config.json`, as read back from the ESP.
    pub esp_crc32: Option<u32>,
    /// A live Linux image: what its stage 1 must have seen.
    pub linux: Option<LiveExpected>,
}

/// What a live image's Linux must report (see [`crate::payload::linux`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveExpected {
    /// `bios` or `uefi`.
    pub firmware: &'static str,
    /// `networking.hostName`.
    pub host: String,
    /// `boot.kernelParams`, in order.
    pub params: Vec<String>,
    /// Every `fileSystems` entry: (mount point, fsType).
    pub mounts: Vec<(String, String)>,
    /// The `SecureBoot` variable as Linux reads it: `on`, `off`, or `none` without UEFI.
    pub secure_boot: &'static str,
}

impl LiveExpected {
    /// Judges the serial log of a live boot: every field compared, each mismatch named; a
    /// pass says briefly what Linux saw.
    pub fn check(&self, ended: &Ended, serial: &str) -> Verdict {
        use crate::payload::linux::{LinuxReport, REPORT_TAG};
        if let Some(why) = LinuxReport::failure(serial) {
            return Verdict::Fail(format!("stage 1 failed: {REPORT_TAG}-FAIL {why}"));
        }
        let Some(r) = LinuxReport::find(serial) else {
            let last: Vec<&str> = serial.lines().rev().take(3).collect();
            return Verdict::Fail(format!(
                "{}; no {REPORT_TAG} report (last serial lines: {})",
                describe_end(ended),
                last.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ));
        };
        let mut wrong = Vec::new();
        if r.field("host") != self.host {
            wrong.push(format!(
                "host name: expected `{}` (networking.hostName), Linux has `{}`",
                self.host,
                r.field("host")
            ));
        }
        if r.field("firmware") != self.firmware {
            wrong.push(format!(
                "firmware: expected {}, Linux saw {}",
                self.firmware,
                r.field("firmware")
            ));
        }
        if r.field("secureboot") != self.secure_boot {
            wrong.push(format!(
                "Secure Boot: expected {}, Linux read the SecureBoot variable as {} (setup mode {})",
                self.secure_boot,
                r.field("secureboot"),
                r.field("setupmode")
            ));
        }
        if self.secure_boot == "on" && r.field("setupmode") != "0" {
            wrong.push(format!(
                "Secure Boot: the firmware is in setup mode ({}), not user mode",
                r.field("setupmode")
            ));
        }
        if r.field("failed") != "0" {
            wrong.push(format!(
                "{} files failed verification: {}",
                r.field("failed"),
                r.field("failed_paths").trim_end_matches(',')
            ));
        }
        if r.field("modules_failed") != "0" {
            wrong.push(format!(
                "{} modules failed to load",
                r.field("modules_failed")
            ));
        }
        let mut at = 0;
        for p in &self.params {
            match r.cmdline[at..].iter().position(|w| w == p) {
                Some(i) => at += i + 1,
                None => wrong.push(format!(
                    "boot.kernelParams: `{p}` is not on /proc/cmdline in order ({})",
                    r.cmdline.join(" ")
                )),
            }
        }
        for (point, fs_type) in &self.mounts {
            match r.mounts.iter().find(|m| m.point == *point) {
                Some(m) if m.fs_type == *fs_type => {}
                Some(m) => wrong.push(format!(
                    "fileSystems.\"{point}\": mounted as {}, fsType is {fs_type}",
                    m.fs_type
                )),
                None => wrong.push(format!("fileSystems.\"{point}\" is not mounted")),
            }
        }
        for m in &r.mounts {
            if !self.mounts.iter().any(|(q, _)| *q == m.point) {
                wrong.push(format!(
                    "{} ({}) is mounted but not in fileSystems",
                    m.point, m.fs_type
                ));
            }
        }
        if !wrong.is_empty() {
            return Verdict::Fail(format!("wrong live system: {}", wrong.join("; ")));
        }
        if !live_exit_passed(ended, &r) {
            return Verdict::Fail(format!("the report was right, but {}", describe_end(ended)));
        }
        Verdict::Pass(format!(
            "{}; kernelParams in order on /proc/cmdline",
            r.summary()
        ))
    }
}

impl Expected {
    /// The expectation for `plan` booted in `mode`.
    pub fn new(plan: &ImagePlan, mode: Mode) -> Expected {
        let via = match (mode.firmware, mode.media) {
            (Firmware::Bios, Media::Cdrom) => Via::ElTorito,
            (Firmware::Bios, _) => Via::Mbr,
            (Firmware::Uefi | Firmware::UefiSecure, _) => Via::Esp,
        };
        Expected {
            via,
            report: plan.report.clone(),
            esp_crc32: (via == Via::Esp).then(|| crc32fast::hash(plan.config_json())),
            linux: plan.linux.as_ref().map(|l| LiveExpected {
                firmware: via.mode(),
                host: plan.report.hostname.clone(),
                params: plan
                    .report
                    .kernel_params
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
                mounts: l.mounts.clone(),
                secure_boot: match mode.firmware {
                    Firmware::Bios => "none",
                    Firmware::Uefi => "off",
                    Firmware::UefiSecure => "on",
                },
            }),
        }
    }

    /// The line a correct boot prints.
    pub fn line(&self) -> String {
        self.report.line(self.via, self.esp_crc32)
    }

    /// Judges a boot: QEMU must exit with the payload's pass status and the serial log must
    /// hold the expected report. A mismatch names every field that differs.
    pub fn check(&self, ended: &Ended, serial: &str) -> Verdict {
        // Nothing of ours ran: the firmware's own line is the reason.
        if let Ended::Refused(_) = ended {
            return Verdict::Fail(describe_end(ended));
        }
        if let Some(l) = &self.linux {
            return l.check(ended, serial);
        }
        let tail = || {
            let lines: Vec<&str> = serial
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let last = &lines[lines.len().saturating_sub(3)..];
            if last.is_empty() {
                "the serial console stayed silent".to_string()
            } else {
                format!("last serial lines: {}", last.join(" | "))
            }
        };
        let Some(got) = Reported::find(serial) else {
            return Verdict::Fail(format!(
                "{}; no {} line ({})",
                describe_end(ended),
                payload::REPORT_TAG,
                tail()
            ));
        };
        let want = Reported::find(&self.line()).expect("the expected line parses");
        let mut wrong = Vec::new();
        for (k, v) in &want.fields {
            match got.get(k) {
                Some(g) if g == v => {}
                Some(g) => wrong.push(format!("{k}: expected `{v}`, got `{g}`")),
                None => wrong.push(format!("{k}: expected `{v}`, missing")),
            }
        }
        if let Some(e) = got.get("error") {
            wrong.insert(0, format!("the payload reported error `{e}`"));
        }
        if !wrong.is_empty() {
            return Verdict::Fail(format!("wrong report: {}", wrong.join("; ")));
        }
        if *ended != Ended::Exited(payload::PASS_STATUS) {
            return Verdict::Fail(format!("the report was right, but {}", describe_end(ended)));
        }
        Verdict::Pass(format!("reported {}", got.get("via").unwrap_or("?")))
    }
}

fn describe_end(e: &Ended) -> String {
    match e {
        Ended::Exited(s) if *s == payload::PASS_STATUS => {
            "QEMU exited through isa-debug-exit".into()
        }
        Ended::Exited(s) if *s == payload::FAIL_STATUS => {
            "the payload exited with its failure status".into()
        }
        Ended::TimedOut => "the guest never finished before the deadline".into(),
        other => matrix::ended_text(other, std::time::Duration::ZERO),
    }
}

/// The verdict for any image (`isoproof boot`): with expectations, every one must have
/// matched, in order, each within the deadline from the one before; without, QEMU must exit
/// with the payloads' pass status. A report line, when there is one, is shown.
pub(crate) fn image_check(expect: Vec<Expectation>, timeout: std::time::Duration) -> Check {
    Arc::new(move |a: &Attempt| {
        let ended = matrix::ended_text(&a.ended, timeout);
        let line = payload::report_line(&a.serial).unwrap_or("").to_string();
        if !expect.is_empty() {
            let found: Vec<String> = expect
                .iter()
                .zip(&a.matched)
                .map(|(e, t)| format!("found {e} at {:.1} s", t.as_secs_f64()))
                .collect();
            let Some(missing) = expect.get(a.matched.len()) else {
                return Verdict::Pass(found.join("; "));
            };
            let after = match (a.matched.len(), &a.ended) {
                (_, Ended::Exited(_) | Ended::Signalled(_)) => "before QEMU ended".to_string(),
                (0, _) => format!("within {:.0} s", timeout.as_secs_f64()),
                (n, _) => format!("within {:.0} s of {}", timeout.as_secs_f64(), expect[n - 1]),
            };
            let seen = match missing.source {
                Source::Serial => last_lines(&a.serial),
                Source::Screen => match a.screen.as_deref() {
                    None => "  (the screen was never read)".into(),
                    Some("") => "  (a blank text screen: firmware and loaders that draw graphics, as UEFI ones do, leave it empty)".into(),
                    Some(s) => last_lines(s),
                },
            };
            let mut why = format!("{ended}; {missing} never appeared {after}");
            if !found.is_empty() {
                why = format!("{}; {why}", found.join("; "));
            }
            return Verdict::Fail(format!("{why}; it showed:\n{seen}"));
        }
        // A live image's stage 1 says what Linux saw; that is the line to show.
        let report = payload::linux::LinuxReport::find(&a.serial);
        let live_passed = report
            .as_ref()
            .is_some_and(|r| live_exit_passed(&a.ended, r));
        let line = match report {
            Some(r) if line.is_empty() => r.summary(),
            _ => line,
        };
        if let Some(why) = payload::linux::LinuxReport::failure(&a.serial) {
            return Verdict::Fail(format!("{ended}; stage 1 failed: {why}"));
        }
        match &a.ended {
            Ended::Exited(s) if *s == payload::PASS_STATUS => Verdict::Pass(line),
            _ if live_passed => Verdict::Pass(line),
            _ if line.is_empty() => Verdict::Fail(ended),
            _ => Verdict::Fail(format!("{ended}; {line}")),
        }
    })
}

/// Whether QEMU's end is a live stage 1's pass: isa-debug-exit's pass status, or a power-off
/// (exit 0) when its kernel is locked down, as under Secure Boot, which forbids that I/O port.
fn live_exit_passed(ended: &Ended, r: &payload::linux::LinuxReport) -> bool {
    match ended {
        Ended::Exited(s) if *s == payload::PASS_STATUS => true,
        Ended::Exited(0) => r.locked_down(),
        _ => false,
    }
}

/// The last few non-empty lines of a text, indented, for a failure message.
fn last_lines(s: &str) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(6)..];
    if tail.is_empty() {
        return "  (nothing)".into();
    }
    tail.iter()
        .map(|l| format!("  | {}", l.chars().take(160).collect::<String>()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why an image cannot boot in a mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unbootable {
    /// A CD-ROM boot needs El Torito.
    #[error("the image has no El Torito boot catalog")]
    NoCatalog,
    /// A BIOS CD-ROM boot needs a BIOS entry.
    #[error("the boot catalog has no bootable BIOS (platform 0x00) entry")]
    NoBiosEntry,
    /// A UEFI CD-ROM boot needs an EFI entry.
    #[error("the boot catalog has no bootable UEFI (platform 0xEF) entry")]
    NoUefiEntry,
    /// A BIOS disk boot needs an MBR.
    #[error("the image has no MBR (no 0x55 0xAA at byte 510)")]
    NoMbr,
    /// ... with boot code.
    #[error("the MBR holds no boot code (bytes 0-439 are zero)")]
    NoBootCode,
    /// A UEFI disk boot needs an EFI system partition.
    #[error("no EFI system partition: no MBR partition of type 0xEF, no GPT partition of the ESP type and no partition holding the FAT ESP")]
    NoEsp,
    /// A netboot mode serves a directory with the script iPXE is told to run.
    #[error("a netboot mode boots a netboot directory (with netboot.ipxe), not an image file")]
    NoIpxeScript,
    /// A directory boots only over the network.
    #[error("a directory boots only in a netboot mode (bios-netboot, uefi-netboot)")]
    Directory,
}

/// Why an image cannot boot in a mode, from what `inspect` reads: no BIOS or UEFI entry in
/// the boot catalog for a CD-ROM, no MBR boot code or no EFI system partition for a disk.
/// `None` when it may boot (or is not an ISO 9660 image, which is left to the firmware).
pub fn cannot_boot(image: &Path, mode: Mode) -> Option<Unbootable> {
    use crate::image::format::eltorito::{BOOTABLE, PLATFORM_EFI, PLATFORM_X86};
    match (mode.media.is_network(), image.is_dir()) {
        (true, true) if image.join("netboot.ipxe").is_file() => return None,
        (true, _) => return Some(Unbootable::NoIpxeScript),
        (false, true) => return Some(Unbootable::Directory),
        (false, false) => {}
    }
    let r = crate::image::read::inspect::inspect(image).ok()?;
    let entry = |platform: u8| {
        r.catalog.as_ref().is_some_and(|(_, c)| {
            c.entries
                .iter()
                .any(|e| e.platform == platform && e.entry.boot_indicator == BOOTABLE)
        })
    };
    match (mode.firmware, mode.media) {
        (Firmware::Bios, Media::Cdrom) if !entry(PLATFORM_X86) => Some(match &r.catalog {
            None => Unbootable::NoCatalog,
            Some(_) => Unbootable::NoBiosEntry,
        }),
        (Firmware::Uefi | Firmware::UefiSecure, Media::Cdrom) if !entry(PLATFORM_EFI) => {
            Some(match &r.catalog {
                None => Unbootable::NoCatalog,
                Some(_) => Unbootable::NoUefiEntry,
            })
        }
        (Firmware::Bios, Media::Usb | Media::Disk) => match &r.mbr {
            None => Some(Unbootable::NoMbr),
            Some(m) if m.boot_code.0.iter().all(|&b| b == 0) => Some(Unbootable::NoBootCode),
            _ => None,
        },
        (Firmware::Uefi | Firmware::UefiSecure, Media::Usb | Media::Disk) => {
            let in_mbr = r.mbr.as_ref().is_some_and(|m| {
                m.partitions
                    .iter()
                    .any(|p| p.in_use() && p.os_type == crate::image::format::mbr::EFI_SYSTEM)
            });
            let in_gpt = r.gpt.as_ref().is_some_and(|g| {
                g.entries
                    .iter()
                    .any(|(_, e)| e.partition_type_guid == crate::image::format::gpt::ESP_TYPE)
            });
            // A FAT file system at a partition's start serves too (OVMF looks at every
            // file system it finds).
            let fat_at = |lba: u64| {
                r.range_of(&Structure::EspImage)
                    .is_some_and(|(start, _)| start == lba * crate::image::format::mbr::LBA)
            };
            let fat_partition = r.mbr.as_ref().is_some_and(|m| {
                m.partitions
                    .iter()
                    .any(|p| p.in_use() && fat_at(u64::from(p.starting_lba.get())))
            }) || r
                .gpt
                .as_ref()
                .is_some_and(|g| g.entries.iter().any(|(_, e)| fat_at(e.starting_lba.get())));
            (!(in_mbr || in_gpt || fat_partition)).then_some(Unbootable::NoEsp)
        }
        _ => None,
    }
}

/// The modes a plan must boot in: those its image options turn on; a netboot image's are
/// both firmwares' netboot.
pub fn modes(plan: &ImagePlan) -> Vec<Mode> {
    if plan.is_netboot() {
        return Mode::all()
            .into_iter()
            .filter(|m| m.media.is_network() && m.firmware != Firmware::UefiSecure)
            .collect();
    }
    Mode::all()
        .into_iter()
        .filter(|m| !m.media.is_network())
        .filter(|m| match m.firmware {
            Firmware::Bios => plan.bios,
            Firmware::Uefi => plan.efi,
            // Only a signed image is expected to pass Secure Boot.
            Firmware::UefiSecure => plan.efi && plan.signed,
        })
        .filter(|m| m.media == Media::Cdrom || plan.usb)
        .collect()
}

/// A scenario built for booting.
pub struct Built {
    /// The scenario's name (its file stem).
    pub name: String,
    /// The plan.
    pub plan: ImagePlan,
    /// The image.
    pub image: PathBuf,
}

/// Builds a scenario's image into `dir`.
pub fn build_scenario(
    scenario: &Path,
    dir: &Path,
    cancel: &dyn Fn() -> bool,
) -> Result<Built, BuildError> {
    let planned = compose::plan_scenario(scenario)?;
    let name = scenario
        .file_stem()
        .map_or_else(|| "scenario".into(), |s| s.to_string_lossy().into_owned());
    let extension = if planned.plan.is_netboot() {
        "netboot"
    } else {
        "iso"
    };
    let image = dir.join(format!("{name}.{extension}"));
    compose::build(&planned.plan, &image, cancel, &mut |_| {})?;
    Ok(Built {
        name,
        plan: planned.plan,
        image,
    })
}

/// The certificate (PEM X.509, read as untrusted input) that a Secure Boot boot enrolls when
/// the firmware does not trust it, as DER.
pub fn enrollment(path: &Path) -> Result<Vec<u8>, BootError> {
    use der::{DecodePem, Encode};
    let bad = |why: String| BootError::Certificate {
        path: path.to_path_buf(),
        why,
    };
    let bytes = crate::input::read_regular(path, 1 << 20).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("not PEM text".into()))?;
    let cert = x509_cert::Certificate::from_pem(&text)
        .map_err(|e| bad(format!("not a PEM X.509 certificate: {e}")))?;
    cert.to_der().map_err(|e| bad(e.to_string()))
}

/// The verdict function of one mode.
pub(crate) fn check_for(plan: &ImagePlan, mode: Mode) -> Check {
    let want = Expected::new(plan, mode);
    Arc::new(move |a: &Attempt| want.check(&a.ended, &a.serial))
}

/// The matrix cases of a built scenario (one per mode it turns on, or only `only`).
pub(crate) fn cases(b: &Built, only: Option<&[Mode]>) -> Vec<Case> {
    modes(&b.plan)
        .into_iter()
        .filter(|m| only.is_none_or(|o| o.contains(m)))
        .map(|mode| Case {
            suite: b.name.clone(),
            mode,
            image: b.image.clone(),
            expect: Vec::new(),
            check: check_for(&b.plan, mode),
            enroll: b.plan.signing.as_ref().map(|s| s.certificate_der.clone()),
        })
        .collect()
}

/// How to set up the emulator (`--accel`, `--ovmf-code`, `--ovmf-vars`).
#[derive(Clone, Debug)]
pub struct MachineOptions {
    /// `--accel`.
    pub accel: accel::Choice,
    /// `--ovmf-code` and `--ovmf-vars`, together.
    pub ovmf: Option<(PathBuf, PathBuf)>,
    /// Where `auto` keeps the KVM self-test's result (per QEMU binary and kernel); `None`
    /// runs it every time.
    pub kvm_cache: Option<PathBuf>,
    /// Run the KVM self-test even when a result is kept (`--recheck-kvm`).
    pub recheck_kvm: bool,
}

/// Finds QEMU and, when a UEFI boot needs it, OVMF, and picks the accelerator; also returns
/// what was chosen and why, for the user.
pub fn machine(
    o: &MachineOptions,
    need_uefi: bool,
) -> Result<(isoproof_harness::Machine, Vec<String>), BootError> {
    let qemu = isoproof_harness::boot::find_qemu()?;
    let mut notes = vec![format!("qemu:   {}", qemu.display())];
    let ovmf = match (&o.ovmf, need_uefi) {
        (Some((c, v)), _) => Some(firmware::given(c, v)?),
        (None, true) => Some(
            firmware::find_ovmf(&firmware::Search::standard(Some(&qemu)))
                .map_err(isoproof_harness::Error::from)?,
        ),
        (None, false) => None,
    };
    if let Some(f) = &ovmf {
        notes.push(format!(
            "OVMF:   {} + {} ({})",
            f.code.display(),
            f.vars.display(),
            f.origin
        ));
    }
    let decision = accel::decide_cached(o.accel, &qemu, o.kvm_cache.as_deref(), o.recheck_kvm);
    notes.push(format!("accel:  {decision}"));
    Ok((
        isoproof_harness::Machine {
            qemu,
            accel: decision.accel,
            ovmf,
            ovmf_secure: firmware::find_secure_ovmf(),
            memory_mib: 256,
        },
        notes,
    ))
}

/// What a run of boots reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The emulator was set up: what was chosen and why.
    Machine(&'a [String]),
    /// The boots start: how many, how many at a time.
    Started {
        /// Boots in all.
        boots: usize,
        /// At once.
        jobs: usize,
    },
    /// A scenario could not be built: a failed row; the others are still booted.
    NotBuilt {
        /// The scenario.
        scenario: &'a Path,
        /// Why.
        error: &'a BuildError,
    },
    /// One case finished (after its retries).
    Finished {
        /// Its result.
        result: &'a CaseResult,
        /// Cases finished so far.
        done: usize,
        /// Cases in all.
        total: usize,
    },
}

/// How a run of boots went.
#[derive(Clone, Debug)]
pub struct Report {
    /// Every case, in order.
    pub results: Vec<CaseResult>,
    /// The scenarios that could not be built (each a failed row).
    pub unbuilt: Vec<Unbuilt>,
    /// Wall time of the boots.
    pub wall: Duration,
    /// Whether the cancel check stopped the run.
    pub interrupted: bool,
}

impl Report {
    /// Whether every case passed (and the run was not stopped).
    pub fn passed(&self) -> bool {
        !self.interrupted && self.unbuilt.is_empty() && self.results.iter().all(CaseResult::passed)
    }

    /// The results as a table, ending with `N passed, M failed`.
    pub fn table(&self) -> String {
        matrix::table(&self.results, &self.unbuilt)
    }

    /// Writes the results as JUnit XML at `path`, atomically.
    pub fn write_junit(&self, path: &Path) -> Result<(), BootError> {
        let xml = matrix::junit(&self.results, &self.unbuilt)?;
        crate::publish::write_atomic(path, xml.as_bytes()).map_err(|source| BootError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Runs cases on a machine set up from `o`, reporting events; `unbuilt` are the suites that
/// could not be built (with no cases, nothing is booted and the report holds them alone).
fn run(
    cases: &[Case],
    unbuilt: Vec<Unbuilt>,
    o: &MachineOptions,
    settings: &matrix::Settings,
    cancel: &(dyn Fn() -> bool + Sync),
    on: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Report, BootError> {
    if cases.is_empty() {
        if unbuilt.is_empty() {
            return Err(BootError::NothingToBoot);
        }
        return Ok(Report {
            results: Vec::new(),
            unbuilt,
            wall: Duration::ZERO,
            interrupted: cancel(),
        });
    }
    let need_uefi = cases.iter().any(|c| c.mode.firmware == Firmware::Uefi);
    let (machine, notes) = machine(o, need_uefi)?;
    on(Event::Machine(&notes));
    on(Event::Started {
        boots: cases.len(),
        jobs: settings.jobs.min(cases.len()),
    });
    let start = Instant::now();
    // The harness calls back from its worker threads, one at a time.
    let on = std::sync::Mutex::new(on);
    let results = matrix::run(&machine, cases, settings, cancel, &|result, done, total| {
        let mut f = on.lock().unwrap_or_else(|e| e.into_inner());
        (*f)(Event::Finished {
            result,
            done,
            total,
        });
    })?;
    Ok(Report {
        results,
        unbuilt,
        wall: start.elapsed(),
        interrupted: cancel(),
    })
}

/// Builds every scenario and boots it in every mode it turns on (or only those of `only`),
/// checking each report against the resolved config; with a [`matrix::Partition`], only that
/// share of the (scenario, mode) pairs (see [`share`]). A scenario that does not build is a
/// failed row of the report (and an [`Event::NotBuilt`]); the others are still booted.
///
/// # Example
///
/// ```no_run
/// use std::path::PathBuf;
/// use isoproof::boot::{matrix, Event, MachineOptions};
/// use isoproof_harness::{accel::Choice, matrix::{Partition, Settings}};
///
/// let settings = Settings {
///     jobs: 2,
///     timeout: std::time::Duration::from_secs(30),
///     retries: 1,
///     keep: PathBuf::from("boot-failures"),
/// };
/// let machine = MachineOptions {
///     accel: Choice::Auto,
///     ovmf: None,
///     kvm_cache: isoproof_harness::accel::default_cache(),
///     recheck_kvm: false,
/// };
/// let scenarios = [PathBuf::from("scenarios/installer-minimal.yaml")];
/// let report = matrix(&scenarios, &[], Partition::ALL, &machine, &settings, &|| false, &mut |e| {
///     if let Event::Finished { result, done, total } = e {
///         eprintln!("{}", isoproof_harness::matrix::progress_line(result, done, total));
///     }
/// })?;
/// print!("{}", report.table());
/// # Ok::<(), isoproof::boot::BootError>(())
/// ```
pub fn matrix(
    scenarios: &[PathBuf],
    only: &[Mode],
    part: matrix::Partition,
    o: &MachineOptions,
    settings: &matrix::Settings,
    cancel: &(dyn Fn() -> bool + Sync),
    on: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Report, BootError> {
    let dir = tempfile::Builder::new()
        .prefix("isoproof-matrix")
        .tempdir()
        .map_err(|source| BootError::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    let mut cases = Vec::new();
    let mut unbuilt = Vec::new();
    for (s, modes) in share(scenarios, only, part) {
        let s = &s;
        match build_scenario(s, dir.path(), cancel) {
            Ok(b) => cases.extend(self::cases(&b, Some(&modes))),
            Err(BuildError::Image(crate::image::ImageError::Interrupted)) => {
                return Ok(Report {
                    results: Vec::new(),
                    unbuilt,
                    wall: Duration::ZERO,
                    interrupted: true,
                })
            }
            Err(error) => {
                on(Event::NotBuilt {
                    scenario: s,
                    error: &error,
                });
                unbuilt.push(Unbuilt {
                    suite: s.file_stem().map_or_else(
                        || s.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    ),
                    why: error.to_string(),
                });
            }
        }
    }
    run(&cases, unbuilt, o, settings, cancel, on)
}

/// This share's (scenario, modes) pairs: scenarios sorted by path, each with the modes (of
/// `only`, or all) whose pair number [`matrix::Partition::owns`]; scenarios with none are
/// left out (not even built). A mode a scenario does not turn on is still a pair, so the
/// shares do not depend on what the scenarios say.
pub fn share(
    scenarios: &[PathBuf],
    only: &[Mode],
    part: matrix::Partition,
) -> Vec<(PathBuf, Vec<Mode>)> {
    let modes: Vec<Mode> = Mode::all()
        .into_iter()
        .filter(|m| only.is_empty() || only.contains(m))
        .collect();
    let mut sorted = scenarios.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut out = Vec::new();
    for (j, s) in sorted.into_iter().enumerate() {
        let mine: Vec<Mode> = modes
            .iter()
            .enumerate()
            .filter(|(m, _)| part.owns(j * modes.len() + m))
            .map(|(_, &mode)| mode)
            .collect();
        if !mine.is_empty() {
            out.push((s, mine));
        }
    }
    out
}

/// One image to boot in one mode (`isoproof boot`).
#[derive(Clone, Debug)]
pub struct ImageBoot {
    /// The image (or netboot directory).
    pub image: PathBuf,
    /// Firmware and medium.
    pub mode: Mode,
    /// Pass once these have matched, in order; none: when QEMU exits with the pass status.
    pub expect: Vec<Expectation>,
    /// Under Secure Boot, the certificate (DER) enrolled when the firmware's store does not
    /// trust it ([`enrollment`] reads one).
    pub enroll: Option<Vec<u8>>,
}

/// Boots any image in one mode: with expectations, it passes when each has matched in order
/// (each within the deadline from the one before); without, when QEMU exits with the
/// payloads' pass status. A mode the image cannot boot in fails before QEMU starts.
pub fn boot_image(
    b: &ImageBoot,
    o: &MachineOptions,
    settings: &matrix::Settings,
    cancel: &(dyn Fn() -> bool + Sync),
    on: &mut (dyn FnMut(Event<'_>) + Send),
) -> Result<Report, BootError> {
    let (image, mode) = (b.image.as_path(), b.mode);
    match crate::input::open_image(image) {
        Err(crate::input::InputError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Err(isoproof_harness::Error::Missing(image.to_path_buf()).into())
        }
        // A netboot directory is judged by `cannot_boot`.
        Err(_) if image.is_dir() => {}
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    if let Some(why) = cannot_boot(image, mode) {
        return Err(BootError::CannotBoot { mode, why });
    }
    let case = Case {
        suite: image
            .file_name()
            .map_or_else(|| "image".into(), |n| n.to_string_lossy().into_owned()),
        mode,
        image: image.to_path_buf(),
        expect: b.expect.clone(),
        check: image_check(b.expect.clone(), settings.timeout),
        enroll: b.enroll.clone(),
    };
    run(&[case], Vec::new(), o, settings, cancel, on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_boot_every_pair_exactly_once() {
        use matrix::Partition;
        let scenarios: Vec<PathBuf> = (0..7)
            .rev()
            .map(|i| PathBuf::from(format!("s{i}.yaml")))
            .collect();
        for only in [
            Vec::new(),
            vec![
                Mode::parse("uefi-usb").unwrap(),
                Mode::parse("bios-cdrom").unwrap(),
            ],
        ] {
            let whole: Vec<(PathBuf, Mode)> = share(&scenarios, &only, Partition::ALL)
                .into_iter()
                .flat_map(|(s, ms)| ms.into_iter().map(move |m| (s.clone(), m)))
                .collect();
            let per_scenario = if only.is_empty() {
                Mode::all().len()
            } else {
                2
            };
            assert_eq!(whole.len(), 7 * per_scenario);
            for n in 1..=5 {
                let mut seen: Vec<(PathBuf, Mode)> = Vec::new();
                let mut sizes = Vec::new();
                for k in 1..=n {
                    let mine: Vec<(PathBuf, Mode)> = share(&scenarios, &only, Partition { k, n })
                        .into_iter()
                        .flat_map(|(s, ms)| ms.into_iter().map(move |m| (s.clone(), m)))
                        .collect();
                    sizes.push(mine.len());
                    seen.extend(mine);
                }
                seen.sort();
                let mut all = whole.clone();
                all.sort();
                assert_eq!(seen, all, "N = {n}: every pair once");
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "N = {n}: shares {sizes:?}");
            }
        }
        // The order the scenarios are named in does not change the shares.
        let mut reversed = scenarios.clone();
        reversed.reverse();
        let p = Partition { k: 2, n: 3 };
        assert_eq!(share(&scenarios, &[], p), share(&reversed, &[], p));
    }

    #[test]
    fn partitions_are_k_of_n() {
        use matrix::Partition;
        assert_eq!("2/4".parse(), Ok(Partition { k: 2, n: 4 }));
        for bad in ["0/2", "3/2", "1/0", "2", "a/b", "1/2/3", ""] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        assert_eq!(
            "3/2".parse::<Partition>().unwrap_err().to_string(),
            "\"3/2\": expected K/N with 1 <= K <= N, e.g. 2/4"
        );
    }

    #[test]
    fn deadlines_are_positive_and_under_a_day() {
        assert_eq!(deadline(1.5), Ok(std::time::Duration::from_millis(1500)));
        for bad in [0.0, -1.0, 86_400.0, f64::NAN, f64::INFINITY] {
            assert!(deadline(bad).is_err(), "{bad}");
        }
        assert_eq!(
            BadDeadline(0.0).to_string(),
            "0: expected seconds more than 0 and less than 86400 (a day)"
        );
    }

    /// Refused before anything runs: no QEMU is needed to find these wrong.
    #[test]
    fn fifos_and_modes_the_image_cannot_boot_are_refused() {
        use crate::image::{clock::Clock, mkiso, write::plan::Options};
        let d = tempfile::tempdir().unwrap();
        let o = MachineOptions {
            accel: accel::Choice::Tcg,
            ovmf: None,
            kvm_cache: None,
            recheck_kvm: false,
        };
        let settings = matrix::Settings {
            jobs: 1,
            timeout: std::time::Duration::from_secs(1),
            retries: 0,
            keep: d.path().join("keep"),
        };
        let boot = |image: &Path, mode: &str| {
            let b = ImageBoot {
                image: image.to_path_buf(),
                mode: Mode::parse(mode).unwrap(),
                expect: Vec::new(),
                enroll: None,
            };
            boot_image(&b, &o, &settings, &|| false, &mut |_| {})
        };
        let fifo = d.path().join("fifo.iso");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(matches!(
            boot(&fifo, "bios-cdrom"),
            Err(BootError::Input(crate::input::InputError::NotRegular {
                kind: "a FIFO",
                ..
            }))
        ));
        // A plain data image: no catalog, no MBR, no ESP.
        let src = d.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("a"), "a").unwrap();
        let iso = d.path().join("data.iso");
        mkiso(
            &src,
            &iso,
            &Options::new("DATA", Clock::at(0)),
            &|| false,
            &mut |_| {},
        )
        .unwrap();
        for (mode, why) in [
            ("bios-cdrom", "no El Torito boot catalog"),
            ("uefi-cdrom", "no El Torito boot catalog"),
            ("bios-usb", "no MBR"),
            ("uefi-disk", "no EFI system partition"),
        ] {
            match boot(&iso, mode) {
                Err(e @ BootError::CannotBoot { .. }) => {
                    let e = e.to_string();
                    assert!(e.starts_with(&format!("{mode}: cannot boot: ")), "{e}");
                    assert!(e.contains(why), "{e}");
                }
                other => panic!("{mode}: {:?}", other.map(|r| r.passed())),
            }
        }
    }

    #[test]
    fn expectations_are_judged_in_order_with_what_was_seen() {
        let e = |s: Source, p: &str| Expectation::new(s, p).unwrap();
        let check = image_check(
            vec![e(Source::Serial, "ISOLINUX"), e(Source::Screen, "boot:")],
            Duration::from_secs(30),
        );
        let attempt = |matched: Vec<Duration>, screen: Option<&str>| Attempt {
            ended: if matched.len() == 2 {
                Ended::Matched
            } else {
                Ended::TimedOut
            },
            elapsed: Duration::from_secs(1),
            serial: "SeaBIOS\nISOLINUX 6.04\n".into(),
            serial_log: PathBuf::new(),
            screenshot: None,
            matched,
            screen: screen.map(String::from),
            stderr: String::new(),
            command: Vec::new(),
        };
        let ok = check(&attempt(
            vec![Duration::from_millis(400), Duration::from_millis(2500)],
            Some("boot:"),
        ))
        .text()
        .to_string();
        assert_eq!(
            ok,
            "found /ISOLINUX/ on the serial console at 0.4 s; found /boot:/ on the screen at 2.5 s"
        );
        let e = check(&attempt(
            vec![Duration::from_millis(400)],
            Some("SeaBIOS\nBooting"),
        ))
        .failure()
        .expect("it fails")
        .to_string();
        assert!(e.contains("/boot:/ on the screen never appeared within 30 s of /ISOLINUX/ on the serial console"), "{e}");
        assert!(e.ends_with("it showed:\n  | SeaBIOS\n  | Booting"), "{e}");
        let e = check(&attempt(vec![], None))
            .failure()
            .expect("it fails")
            .to_string();
        assert!(
            e.ends_with("it showed:\n  | SeaBIOS\n  | ISOLINUX 6.04"),
            "{e}"
        );
    }

    fn expected(via: Via) -> Expected {
        Expected {
            via,
            report: payload::Report {
                volume_id: "NIXOS".into(),
                hostname: "host".into(),
                kernel_params: "quiet splash".into(),
                config_sha256: "00".repeat(32),
            },
            esp_crc32: (via == Via::Esp).then_some(0x1234_abcd),
            linux: None,
        }
    }

    fn live() -> LiveExpected {
        LiveExpected {
            firmware: "bios",
            host: "workstation".into(),
            params: vec!["quiet".into(), "console=ttyS0,115200".into()],
            mounts: vec![
                ("/".into(), "tmpfs".into()),
                ("/iso".into(), "iso9660".into()),
            ],
            secure_boot: "none",
        }
    }

    const LIVE_LOG: &str = "ISOPROOF-LINUX host=workstation firmware=bios secureboot=none setupmode=none lockdown=none medium=/dev/sr0 modules_failed=0 verified=40 failed=0 failed_paths=none\n\
        ISOPROOF-MOUNT / tmpfs tmpfs rw,mode=755\n\
        ISOPROOF-MOUNT /iso iso9660 /dev/root ro\n\
        ISOPROOF-CMDLINE BOOT_IMAGE=/boot/bzImage root=LABEL=X panic=-1 quiet console=ttyS0,115200\n";

    #[test]
    fn secure_boot_is_judged_and_a_refusal_named() {
        let sb = LiveExpected {
            firmware: "uefi",
            secure_boot: "on",
            ..live()
        };
        let log = LIVE_LOG.replace("firmware=bios", "firmware=uefi").replace(
            "secureboot=none setupmode=none lockdown=none",
            "secureboot=on setupmode=0 lockdown=integrity",
        );
        // Locked down, stage 1 powers off instead of using isa-debug-exit's port.
        assert!(sb.check(&Ended::Exited(0), &log).passed());
        let e = sb
            .check(
                &Ended::Exited(0),
                &log.replace("secureboot=on", "secureboot=off"),
            )
            .failure()
            .expect("it fails")
            .to_string();
        assert!(e.contains("Secure Boot: expected on"), "{e}");
        let e = sb
            .check(
                &Ended::Exited(0),
                &log.replace("setupmode=0", "setupmode=1"),
            )
            .failure()
            .expect("it fails")
            .to_string();
        assert!(e.contains("setup mode"), "{e}");
        // Not locked down, exiting with 0 is not the pass status.
        let open = log.replace("lockdown=integrity", "lockdown=none");
        assert!(!sb.check(&Ended::Exited(0), &open).passed());
        let refusal =
            "BdsDxe: failed to load Boot0001 \"UEFI QEMU DVD-ROM QM00001 \": Access Denied";
        let e = Expected {
            linux: Some(sb),
            ..expected(Via::Esp)
        }
        .check(&Ended::Refused(refusal.into()), refusal)
        .failure()
        .expect("it fails")
        .to_string();
        assert!(e.contains("the firmware refused to boot it: BdsDxe"), "{e}");
    }

    #[test]
    fn live_reports_are_judged_field_by_field() {
        let pass = Ended::Exited(payload::PASS_STATUS);
        assert!(live().check(&pass, LIVE_LOG).passed());
        let e = live()
            .check(
                &pass,
                &LIVE_LOG.replace(
                    "failed=0 failed_paths=none",
                    "failed=1 failed_paths=rr:/etc/hostname,",
                ),
            )
            .failure()
            .expect("it fails")
            .to_string();
        assert!(
            e.contains("1 files failed verification: rr:/etc/hostname"),
            "{e}"
        );
        let e = live()
            .check(
                &pass,
                &format!("{LIVE_LOG}ISOPROOF-MOUNT /boot vfat /dev/sda1 rw\n"),
            )
            .failure()
            .expect("it fails")
            .to_string();
        assert!(
            e.contains("/boot (vfat) is mounted but not in fileSystems"),
            "{e}"
        );
        let e = live()
            .check(&pass, &LIVE_LOG.replace("host=workstation", "host=nixos"))
            .failure()
            .expect("it fails")
            .to_string();
        assert!(e.contains("host name: expected `workstation`"), "{e}");
        let e = live()
            .check(&pass, &LIVE_LOG.replace(" quiet console", " console"))
            .failure()
            .expect("it fails")
            .to_string();
        assert!(e.contains("`quiet` is not on /proc/cmdline"), "{e}");
        let e = live()
            .check(&pass, &LIVE_LOG.replace("/iso iso9660", "/iso vfat"))
            .failure()
            .expect("it fails")
            .to_string();
        assert!(e.contains("mounted as vfat, fsType is iso9660"), "{e}");
        assert!(live()
            .check(&pass, "ISOPROOF-LINUX-FAIL step=mount /iso: no medium\n")
            .failure()
            .expect("it fails")
            .contains("step=mount /iso"));
    }

    #[test]
    fn the_right_line_and_exit_pass() {
        let e = expected(Via::Esp);
        let log = format!("BdsDxe: loading\r\n{}", e.line());
        assert_eq!(
            e.check(&Ended::Exited(33), &log),
            Verdict::Pass("reported esp".into())
        );
    }

    #[test]
    fn every_wrong_field_is_named() {
        let e = expected(Via::Mbr);
        let mut other = e.clone();
        other.report.hostname = "evil".into();
        other.via = Via::ElTorito;
        let err = e
            .check(&Ended::Exited(33), &other.line())
            .failure()
            .expect("it fails")
            .to_string();
        assert_eq!(
            err,
            "wrong report: via: expected `mbr`, got `eltorito`; hostname: expected `host`, got `evil`"
        );
    }

    #[test]
    fn silence_and_bad_exits_fail() {
        let e = expected(Via::ElTorito);
        let err = e
            .check(&Ended::TimedOut, "SeaBIOS\nBooting from DVD/CD...\n")
            .failure()
            .expect("it fails")
            .to_string();
        assert!(err.starts_with("the guest never finished"), "{err}");
        assert!(err.contains("Booting from DVD/CD..."), "{err}");
        let err = e
            .check(&Ended::Exited(1), &e.line())
            .failure()
            .expect("it fails")
            .to_string();
        assert_eq!(err, "the report was right, but QEMU exited with status 1");
        let esp = expected(Via::Esp);
        let broken = esp
            .line()
            .replace("esp-crc32=1234abcd", "esp-crc32=error-open-file");
        let err = esp
            .check(&Ended::Exited(33), &broken)
            .failure()
            .expect("it fails")
            .to_string();
        assert!(
            err.contains("esp-crc32: expected `1234abcd`, got `error-open-file`"),
            "{err}"
        );
    }
}
