//! The command line's definition (clap): subcommands, their arguments and their help.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "isoproof",
    version,
    about = "Prove live/installer ISO images right: NixOS module resolution, reproducible bytes, real boots"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Resolve a scenario's modules exactly as `lib.evalModules` would.
    Resolve {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Take options no module declares as freeform values of type `anything` (listed
        /// once as a warning) instead of failing with `undeclared`, as for a whole host
        /// configuration whose options isoproof has never heard of.
        #[arg(long)]
        allow_undeclared: bool,
        /// The scenario file.
        scenario: PathBuf,
    },
    /// Explain how one option gets its value: every definition, its priority, who won and why.
    Explain {
        /// Take undeclared options as freeform values (see `resolve --allow-undeclared`).
        #[arg(long)]
        allow_undeclared: bool,
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
        /// The image to write (default: `image.fileName` in the current directory).
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
        /// The image (with `--media netboot`, a netboot directory).
        iso: PathBuf,
        /// The firmware.
        #[arg(long, value_enum, default_value_t = FirmwareArg::Bios)]
        firmware: FirmwareArg,
        /// How the image is attached (`netboot`: the directory is served over TFTP to the
        /// NIC's iPXE, which runs its `netboot.ipxe`).
        #[arg(long, value_enum, default_value_t = MediaArg::Cdrom)]
        media: MediaArg,
        /// Pass once the serial console shows a match of this regular expression (escape
        /// sequences removed); repeatable, matched in order with `--expect-screen`, each
        /// within `--timeout` of the one before (default: QEMU exits with status 33 through
        /// isa-debug-exit, as isoproof's payloads make it).
        #[arg(long, value_name = "REGEX")]
        expect: Vec<String>,
        /// Like `--expect`, on the 80x25 VGA text screen (read through QMP; BIOS firmware and
        /// boot loaders in text mode, such as an ISOLINUX or GRUB menu).
        #[arg(long, value_name = "REGEX")]
        expect_screen: Vec<String>,
        /// With `--firmware uefi-sb`: the certificate (PEM) the image is signed with. When
        /// the firmware's variable store does not trust it, the boot gets a store with it
        /// enrolled as PK, KEK and db.
        #[arg(long, value_name = "CERT.pem")]
        enroll: Option<PathBuf>,
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
        /// Only share K of N (`2/4`): N CI jobs given the same scenarios together boot every
        /// (scenario, mode) pair exactly once.
        #[arg(long, value_name = "K/N", default_value = "1/1")]
        partition: isoproof_harness::matrix::Partition,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Do not retry a failing mode (by default it is retried once, to tell flaky from broken).
        #[arg(long)]
        no_retry: bool,
        /// Under each boot's progress line, what it showed (a live image: what Linux saw,
        /// its mounts and the checks it ran).
        #[arg(short, long)]
        verbose: bool,
        #[command(flatten)]
        run: RunArgs,
        /// Scenarios (default: every `scenarios/*.yaml`).
        scenarios: Vec<PathBuf>,
    },
    /// The live payload: the pinned Debian packages a `linux` boot payload is made of.
    Payload {
        #[command(subcommand)]
        action: PayloadAction,
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
pub(crate) enum GoldenAction {
    /// Rebuild each scenario in a temporary directory and compare it with its manifest.
    Check {
        /// Where the manifests are.
        #[arg(long, default_value = "golden")]
        golden: PathBuf,
        /// Keep the rebuilt images in this directory (for `isoproof diff`).
        #[arg(long, conflicts_with = "image")]
        keep: Option<PathBuf>,
        #[command(flatten)]
        image: Option<ImageArgs>,
        /// Scenarios (default: every `scenarios/*.yaml`).
        #[arg(conflicts_with = "image")]
        scenarios: Vec<PathBuf>,
    },
    /// Rebuild each scenario and rewrite its manifest: the only way manifests change.
    Bless {
        /// Where the manifests are.
        #[arg(long, default_value = "golden")]
        golden: PathBuf,
        #[command(flatten)]
        image: Option<ImageArgs>,
        /// Scenarios (default: every `scenarios/*.yaml`).
        #[arg(conflicts_with = "image")]
        scenarios: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum PayloadAction {
    /// Make the payload root hold exactly what the lock pins: `apt-get download NAME=VERSION`
    /// of each package, its locked files unpacked without root, `depmod`, every file checked
    /// against its sha256. A root that already matches is left alone.
    Fetch {
        /// The lock.
        #[arg(long, default_value = "payload/lock.json")]
        lock: PathBuf,
        /// The payload root to make (default: `root` beside the lock).
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Re-pin the lock to the versions the archive has now (same packages, same modules),
    /// make the root from them and rewrite the lock.
    Pin {
        /// The lock.
        #[arg(long, default_value = "payload/lock.json")]
        lock: PathBuf,
        /// The payload root to make (default: `root` beside the lock).
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

/// An image built by any tool, recorded without its scenario.
#[derive(clap::Args)]
pub(crate) struct ImageArgs {
    /// The image: its record (`golden/NAME.json`) holds every structure's fields and hash and
    /// every file's hash, mode and link target, not the image.
    #[arg(long, requires = "name")]
    pub(crate) image: Option<PathBuf>,
    /// The record's name (a file name without `.json`).
    #[arg(long, requires = "image")]
    pub(crate) name: Option<String>,
}

/// Options every boot command takes.
#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// Each boot's deadline, in seconds; then QEMU gets SIGTERM, and SIGKILL 2 s later.
    #[arg(long, default_value_t = 30.0)]
    pub(crate) timeout: f64,
    /// `auto` uses KVM only if a real KVM boot self-test passes, else TCG.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    pub(crate) accel: AccelArg,
    /// OVMF code image (with --ovmf-vars; default: QEMU's firmware descriptors, then the
    /// known paths of common distributions).
    #[arg(long, requires = "ovmf_vars")]
    pub(crate) ovmf_code: Option<PathBuf>,
    /// OVMF variable store template (copied for every boot).
    #[arg(long, requires = "ovmf_code")]
    pub(crate) ovmf_vars: Option<PathBuf>,
    /// Where the serial log and screenshot of every failed boot are kept.
    #[arg(long, default_value = "boot-failures")]
    pub(crate) keep: PathBuf,
    /// Run the KVM self-test of `--accel auto` even when its result for this QEMU binary
    /// and kernel is kept (in `$XDG_CACHE_HOME/isoproof/`, else `~/.cache/isoproof/`).
    #[arg(long)]
    pub(crate) recheck_kvm: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum FirmwareArg {
    Bios,
    Uefi,
    /// OVMF's Secure Boot build with test keys enrolled, Secure Boot enforced.
    UefiSb,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MediaArg {
    Cdrom,
    Usb,
    Disk,
    Netboot,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum AccelArg {
    Auto,
    Kvm,
    Tcg,
}

pub(crate) fn parse_mode(
    s: &str,
) -> Result<isoproof_harness::Mode, isoproof_harness::qemu::UnknownMode> {
    s.parse()
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum InspectFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Json,
    Yaml,
    Text,
}
