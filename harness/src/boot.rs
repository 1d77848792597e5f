//! One boot: a fresh working directory (this run's copy of the OVMF variables, the serial log,
//! the QMP socket), the QEMU command line, the run under its deadline, and what it left.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::expect::Expectation;
use crate::qemu::{Accel, Firmware, Launch, Mode, Ovmf};
use crate::run::{self, Ended, Limits};
use crate::Error;

/// The emulator and firmware every boot of a session uses.
#[derive(Clone, Debug)]
pub struct Machine {
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// The accelerator.
    pub accel: Accel,
    /// OVMF, for UEFI modes.
    pub ovmf: Option<Ovmf>,
    /// OVMF's Secure Boot build with keys enrolled, for the `uefi-sb` modes.
    pub ovmf_secure: Option<Ovmf>,
    /// Guest memory.
    pub memory_mib: u32,
}

/// One boot to make.
pub struct Request<'a> {
    /// The image.
    pub image: &'a Path,
    /// Firmware and medium.
    pub mode: Mode,
    /// The deadline.
    pub timeout: Duration,
    /// Stop once these have matched, in order (for images that do not exit QEMU).
    pub expect: &'a [Expectation],
    /// An empty directory for this boot's files.
    pub work: &'a Path,
    /// Ctrl-C.
    pub cancel: &'a (dyn Fn() -> bool + Sync),
    /// Under Secure Boot, the certificate (DER) the image is signed with: when the firmware's
    /// own variable store does not trust it, the boot gets a store with it enrolled as PK,
    /// KEK and db ([`varstore`](crate::varstore)). `None` boots with the firmware's store.
    pub enroll: Option<&'a [u8]>,
}

/// What one boot did.
#[derive(Clone, Debug)]
pub struct Attempt {
    /// How QEMU ended.
    pub ended: Ended,
    /// Wall time.
    pub elapsed: Duration,
    /// COM1, as text, with terminal escape sequences and carriage returns removed (the log
    /// file keeps every byte).
    pub serial: String,
    /// Where COM1 was written.
    pub serial_log: PathBuf,
    /// The screenshot of a guest that ran into the deadline.
    pub screenshot: Option<PathBuf>,
    /// When each expectation matched (from the start), as many as matched.
    pub matched: Vec<Duration>,
    /// The text screen last read for a screen expectation.
    pub screen: Option<String>,
    /// QEMU's own messages.
    pub stderr: String,
    /// The full command line (program first).
    pub command: Vec<OsString>,
}

/// The owner GUID of the certificates isoproof enrolls.
const OWNER: crate::varstore::Guid = crate::varstore::Guid(*b"isoproof-enroll!");

/// The variable store a boot starts from: the firmware's template, or (Secure Boot with a
/// certificate the template does not trust) one that enrolls that certificate.
fn variable_store(template: &[u8], mode: Mode, enroll: Option<&[u8]>) -> Vec<u8> {
    use crate::varstore;
    let Some(cert) = enroll.filter(|_| mode.firmware == Firmware::UefiSecure) else {
        return template.to_vec();
    };
    let trusted = varstore::decode(template).is_ok_and(|v| varstore::db_trusts(&v, cert));
    if trusted {
        return template.to_vec();
    }
    // A fixed time keeps the store the same bytes for the same certificate.
    let vars = varstore::secure_boot(cert, OWNER, varstore::efi_time(2024, 1, 1, 0, 0, 0));
    varstore::encode(&vars).unwrap_or_else(|| template.to_vec())
}

/// The QEMU arguments for a boot with files in `work` (a fresh variable store for UEFI, with
/// `enroll` enrolled under Secure Boot when the firmware's store does not trust it).
pub fn launch(
    machine: &Machine,
    image: &Path,
    mode: Mode,
    work: &Path,
    enroll: Option<&[u8]>,
) -> Result<Launch, Error> {
    let ovmf = match mode.firmware {
        Firmware::Bios => None,
        f => {
            let o = match f {
                Firmware::UefiSecure => machine
                    .ovmf_secure
                    .as_ref()
                    .ok_or(Error::SecureOvmfNeeded)?,
                _ => machine.ovmf.as_ref().ok_or(Error::OvmfNeeded)?,
            };
            let vars = work.join("OVMF_VARS.fd");
            // Read, then written: a firmware that cannot be read is the machine's trouble,
            // a work file that cannot be written the caller's.
            let template = std::fs::read(&o.vars).map_err(|source| Error::Firmware {
                path: o.vars.clone(),
                source,
            })?;
            let store = variable_store(&template, mode, enroll);
            std::fs::write(&vars, store).map_err(|e| Error::scratch(&vars, e))?;
            Some((o.code.clone(), vars))
        }
    };
    Ok(Launch {
        image: image.to_path_buf(),
        mode,
        accel: machine.accel,
        ovmf,
        serial: work.join("serial.log"),
        qmp: Some(work.join("qmp.sock")),
        memory_mib: machine.memory_mib,
    })
}

/// Boots once.
pub fn boot(machine: &Machine, req: &Request<'_>) -> Result<Attempt, Error> {
    // A netboot mode serves a directory; the others attach an image file.
    let there = match req.mode.media.is_network() {
        true => req.image.join("netboot.ipxe").is_file(),
        false => req.image.is_file(),
    };
    if !there {
        return Err(Error::Missing(req.image.to_path_buf()));
    }
    let l = launch(machine, req.image, req.mode, req.work, req.enroll)?;
    let args = l.args();
    let qmp = l.qmp.clone().expect("launch sets a QMP socket");
    let png = req.work.join("screen.png");
    let out = run::run(
        &machine.qemu,
        &args,
        &l.serial,
        &Limits {
            timeout: req.timeout,
            grace: Duration::from_secs(2),
            expect: req.expect,
            cancel: req.cancel,
            screenshot: Some((&qmp, png)),
            qmp: Some(&qmp),
            refusal: req
                .mode
                .firmware
                .is_uefi()
                .then_some(crate::firmware::refusal as fn(&str) -> bool),
        },
    )
    .map_err(|source| Error::Run {
        program: machine.qemu.clone(),
        source,
    })?;
    let _ = std::fs::remove_file(&qmp);
    let mut command = vec![machine.qemu.clone().into_os_string()];
    command.extend(args);
    Ok(Attempt {
        ended: out.ended,
        elapsed: out.elapsed,
        serial: crate::expect::strip_escapes(&run::read_serial(&l.serial)),
        serial_log: l.serial,
        screenshot: out.screenshot,
        matched: out.matched,
        screen: out.screen,
        stderr: match out.screenshot_error {
            Some(e) => format!("{}(screenshot failed: {e})\n", out.stderr),
            None => out.stderr,
        },
        command,
    })
}

/// Finds `qemu-system-x86_64` (or `$ISOPROOF_QEMU`) on the `PATH`.
pub fn find_qemu() -> Result<PathBuf, Error> {
    if let Some(q) = std::env::var_os("ISOPROOF_QEMU") {
        let q = PathBuf::from(q);
        return if q.is_file() {
            Ok(q)
        } else {
            Err(Error::QemuNotFound(Some(q)))
        };
    }
    let name = "qemu-system-x86_64";
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(Error::QemuNotFound(None))
}
