//! The boot matrix as test cases: every shipped scenario booted in every mode it turns on,
//! each (scenario, mode) its own test (`boot::installer-minimal::uefi-usb`), so nextest can
//! partition them; plus the harness's own guarantees: a guest that never reports is killed
//! at its deadline and leaves no process, and a payload that reports a wrong hostname fails.
//!
//! Runs under TCG unless `ISOPROOF_TEST_ACCEL=auto|kvm` (every test is its own process under
//! nextest, and the KVM self-test costs up to 1.5 s each time).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use isoproof::boot::{self, Expected, MachineOptions};
use isoproof_harness::accel::Choice;
use isoproof_harness::boot::Request;
use isoproof_harness::matrix::Verdict;
use isoproof_harness::run::Ended;
use isoproof_harness::{Firmware, Machine, Mode};
use libtest_mimic::{Arguments, Failed, Trial};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn machine(need_uefi: bool) -> Result<Machine, Failed> {
    let accel = std::env::var("ISOPROOF_TEST_ACCEL")
        .ok()
        .and_then(|a| Choice::parse(&a))
        .unwrap_or(Choice::Tcg);
    boot::machine(
        &MachineOptions {
            accel,
            ovmf: None,
            kvm_cache: None,
            recheck_kvm: false,
        },
        need_uefi,
    )
    .map(|(m, _)| m)
    .map_err(|e| format!("{e}\n(.ci/run installs qemu-system-x86 and ovmf)").into())
}

fn boot_once(
    m: &Machine,
    image: &Path,
    mode: Mode,
    timeout: Duration,
    work: &Path,
) -> Result<isoproof_harness::Attempt, Failed> {
    boot_enrolling(m, image, mode, timeout, work, None)
}

/// A boot that, under Secure Boot, enrolls `enroll` (DER) unless the firmware trusts it.
fn boot_enrolling(
    m: &Machine,
    image: &Path,
    mode: Mode,
    timeout: Duration,
    work: &Path,
    enroll: Option<&[u8]>,
) -> Result<isoproof_harness::Attempt, Failed> {
    let req = Request {
        image,
        mode,
        timeout,
        expect: &[],
        work,
        cancel: &|| false,
        enroll,
    };
    Ok(isoproof_harness::boot::boot(m, &req)?)
}

/// Boots `image` once in `mode` on a machine for that firmware, with `dir/work` as the
/// boot's scratch directory.
fn boot_in(
    dir: &Path,
    image: &Path,
    mode: Mode,
    deadline: Duration,
) -> Result<isoproof_harness::Attempt, Failed> {
    boot_in_enrolling(dir, image, mode, deadline, None)
}

/// [`boot_in`], enrolling `enroll` (DER) under Secure Boot unless the firmware trusts it.
fn boot_in_enrolling(
    dir: &Path,
    image: &Path,
    mode: Mode,
    deadline: Duration,
    enroll: Option<&[u8]>,
) -> Result<isoproof_harness::Attempt, Failed> {
    let m = machine(mode.firmware.is_uefi())?;
    let work = dir.join("work");
    std::fs::create_dir(&work)?;
    boot_enrolling(&m, image, mode, deadline, &work, enroll)
}

/// One (scenario, mode): build, boot, check the report against the resolved config.
fn scenario_mode(scenario: &Path, mode: Mode) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let built = boot::build_scenario(scenario, dir.path(), &|| false).map_err(|e| e.to_string())?;
    booted_as_planned(dir.path(), &built, mode)
}

/// Boots a built scenario as the matrix does (its own certificate enrolled when the firmware
/// does not trust it) and checks the report against the resolved config.
fn booted_as_planned(dir: &Path, built: &boot::Built, mode: Mode) -> Result<(), Failed> {
    // A live system boots a real kernel: slower than the probe, more so under load.
    let deadline = if built.plan.linux.is_some() { 180 } else { 60 };
    let enroll = built.plan.signing.as_ref().map(|s| &s.certificate_der[..]);
    let a = boot_in_enrolling(
        dir,
        &built.image,
        mode,
        Duration::from_secs(deadline),
        enroll,
    )?;
    match Expected::new(&built.plan, mode).check(&a.ended, &a.serial) {
        Verdict::Pass(_) => Ok(()),
        Verdict::Fail(e) => Err(format!("{e}\nserial log:\n{}", a.serial).into()),
    }
}

/// A scenario that imports a shipped module (`scenarios/modules/<base>`) and sets more.
fn derived(dir: &Path, base: &str, extra: &str) -> PathBuf {
    let p = dir.join("derived.yaml");
    let base = root().join("scenarios/modules").join(base);
    std::fs::write(
        &p,
        format!(
            "name: derived\nmodules:\n  - imports: [{}]\n  - config:\n{extra}",
            base.display()
        ),
    )
    .unwrap();
    p
}

/// QEMU processes whose command line mentions `needle`.
fn qemus_with(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit_once(") ")
            .is_some_and(|(_, s)| s.starts_with('Z'));
        if cmd.contains("qemu-system") && cmd.contains(needle) && !zombie {
            found.push(cmd);
        }
    }
    found
}

/// The minimal installer with a payload that halts without reporting, built in `dir`.
fn silent_installer(dir: &Path) -> Result<boot::Built, Failed> {
    let s = derived(
        dir,
        "installation-cd-minimal.yaml",
        "      isoImage.bootPayload: silent\n",
    );
    Ok(boot::build_scenario(&s, dir, &|| false).map_err(|e| e.to_string())?)
}

fn silent_guest_is_killed_at_its_deadline(mode: Mode) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let built = silent_installer(dir.path())?;
    let m = machine(mode.firmware.is_uefi())?;
    let work = dir.path().join("work");
    std::fs::create_dir(&work)?;
    let deadline = Duration::from_secs(if mode.firmware == Firmware::Uefi {
        8
    } else {
        2
    });
    let t = Instant::now();
    let a = boot_once(&m, &built.image, mode, deadline, &work)?;
    let took = t.elapsed();
    if a.ended != Ended::TimedOut {
        return Err(format!("expected a timeout, got {:?}", a.ended).into());
    }
    // The deadline, the 2 s grace at most, and slack for a loaded machine.
    if took > deadline + Duration::from_secs(4) {
        return Err(format!("took {took:?} for a {deadline:?} deadline").into());
    }
    let left = qemus_with(&built.image.to_string_lossy());
    if !left.is_empty() {
        return Err(format!("QEMU left running: {left:?}").into());
    }
    let png = a.screenshot.ok_or("no screenshot of the hung guest")?;
    let bytes = std::fs::read(&png)?;
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err("the screenshot is not a PNG".into());
    }
    let Verdict::Fail(e) = Expected::new(&built.plan, mode).check(&a.ended, &a.serial) else {
        return Err("a silent guest passed".into());
    };
    if !e.contains("never finished before the deadline") {
        return Err(format!("unexpected verdict: {e}").into());
    }
    Ok(())
}

fn wrong_hostname_fails(mode: Mode) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let scenario = root().join("scenarios/installer-minimal.yaml");
    let planned = isoproof::compose::plan_scenario(&scenario).map_err(|e| e.to_string())?;
    // The image's payload claims another hostname than the resolved config has.
    let mut lying = planned.plan.clone();
    lying.report.hostname = "impostor".into();
    let image = dir.path().join("lying.iso");
    isoproof::compose::build(&lying, &image, &|| false, &mut |_| {}).map_err(|e| e.to_string())?;
    let a = boot_in(dir.path(), &image, mode, Duration::from_secs(60))?;
    let want = Expected::new(&planned.plan, mode);
    match want.check(&a.ended, &a.serial) {
        Verdict::Pass(_) => Err("a wrong hostname passed the check".into()),
        Verdict::Fail(e) if e.contains("hostname: expected `nixos-installer`, got `impostor`") => {
            Ok(())
        }
        Verdict::Fail(e) => Err(format!("unexpected verdict: {e}").into()),
    }
}

/// One byte of one file flipped inside a built live image, and one of the backup GPT:
/// Linux's verification must fail and the verdict must name that file (through Rock Ridge,
/// whose extent Joliet shares) and that structure.
fn corrupted_file_is_named(mode: Mode) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let built = boot::build_scenario(
        &root().join("scenarios/live-minimal.yaml"),
        dir.path(),
        &|| false,
    )
    .map_err(|e| e.to_string())?;
    let report =
        isoproof::image::read::inspect::inspect(&built.image).map_err(|e| e.to_string())?;
    let f = report
        .files
        .iter()
        .find(|f| f.path == "/etc/fstab")
        .ok_or("no /etc/fstab in the image")?;
    let at = u64::from(f.extents[0].0) * 2048 + 3;
    let mut bytes = std::fs::read(&built.image)?;
    bytes[at as usize] ^= 0x20;
    // And one byte of a structure no firmware reads on the way: the name of the first
    // partition in the backup GPT's entries (16 KiB before the last 512-byte block).
    let backup_name = bytes.len() - 512 - 16384 + 56;
    bytes[backup_name] ^= 0x01;
    std::fs::write(&built.image, &bytes)?;
    let a = boot_in(dir.path(), &built.image, mode, Duration::from_secs(180))?;
    match Expected::new(&built.plan, mode).check(&a.ended, &a.serial) {
        Verdict::Pass(_) => Err("a corrupted image passed".into()),
        Verdict::Fail(e) if e.contains("rr:/etc/fstab") && e.contains("raw:backup_GPT_entries") => {
            Ok(())
        }
        Verdict::Fail(e) => Err(format!("unexpected verdict: {e}\n{}", a.serial).into()),
    }
}

/// One byte of one store file changed inside a built netboot image: the store squashfs
/// appended to the initrd is made again with that file changed (stage 1's archive, and the
/// digests it carries, stay). Linux's verification must fail and name the file, and the
/// squashfs whose digest no longer matches.
fn corrupted_store_file_is_named(mode: Mode) -> Result<(), Failed> {
    use isoproof::image::format::cpio;
    use isoproof::payload::linux::{squashfs, StoreNode};
    use std::io::Read as _;
    let dir = tempfile::tempdir()?;
    let built = boot::build_scenario(
        &root().join("scenarios/netboot-minimal.yaml"),
        dir.path(),
        &|| false,
    )
    .map_err(|e| e.to_string())?;
    let path = built.image.join("initrd");
    let bytes = std::fs::read(&path)?;
    // The store's archive follows stage 1's gzip member, at a 4-byte boundary.
    let mut gz = flate2::bufread::GzDecoder::new(&bytes[..]);
    std::io::copy(&mut gz, &mut std::io::sink())?;
    let at = (bytes.len() - gz.into_inner().len()).next_multiple_of(4);
    let entries = cpio::read(&bytes[at..]).map_err(|e| e.to_string())?;
    let sq = entries
        .iter()
        .find(|e| e.path == "nix-store.squashfs")
        .ok_or("no nix-store.squashfs in the initrd's second archive")?;
    let store = &bytes[at..][sq.data.clone()];
    let fs = backhand::FilesystemReader::from_reader(std::io::Cursor::new(store))?;
    let mut nodes = Vec::new();
    for n in fs.files() {
        let name = n
            .fullpath
            .to_string_lossy()
            .trim_start_matches('/')
            .to_string();
        match &n.inner {
            backhand::InnerNode::Dir(_) if !name.is_empty() => nodes.push(StoreNode::Dir(name)),
            backhand::InnerNode::File(f) => {
                let mut b = Vec::new();
                fs.file(f).reader().read_to_end(&mut b)?;
                if name == "hello-2.12.1/share/doc/README" {
                    b[3] ^= 0x20;
                }
                nodes.push(StoreNode::File(name, u32::from(n.header.permissions), b));
            }
            _ => {}
        }
    }
    let changed = squashfs(&nodes, 315532800).map_err(|e| e.to_string())?;
    let archive = cpio::write(
        &[cpio::Entry {
            path: "nix-store.squashfs".into(),
            perm: 0o444,
            kind: cpio::Kind::File(changed),
        }],
        315532800,
    )
    .map_err(|e| e.to_string())?;
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(&archive);
    std::fs::write(&path, out)?;
    let a = boot_in(dir.path(), &built.image, mode, Duration::from_secs(180))?;
    match Expected::new(&built.plan, mode).check(&a.ended, &a.serial) {
        Verdict::Pass(_) => Err("a corrupted netboot image passed".into()),
        Verdict::Fail(e)
            if e.contains("store:/hello-2.12.1/share/doc/README")
                && e.contains("initrd:/nix-store.squashfs") =>
        {
            Ok(())
        }
        Verdict::Fail(e) => Err(format!("unexpected verdict: {e}\n{}", a.serial).into()),
    }
}

/// The firmware's refusal must end the boot at once (not at the deadline), and the verdict
/// must name it.
fn refused(built: &boot::Built, a: &isoproof_harness::Attempt, mode: Mode) -> Result<(), Failed> {
    let verdict = Expected::new(&built.plan, mode).check(&a.ended, &a.serial);
    match (&a.ended, verdict) {
        (_, Verdict::Pass(_)) => Err("the firmware booted it".into()),
        (Ended::Refused(_), Verdict::Fail(e))
            if e.contains("the firmware refused")
                && (e.contains("Access Denied") || e.contains("Security Violation")) =>
        {
            Ok(())
        }
        (_, Verdict::Fail(e)) => Err(format!("not refused as such: {e}\n{}", a.serial).into()),
    }
}

/// Secure Boot's half that matters: one byte flipped inside the signed UKI of a built
/// `live-secure-boot` image (in its ESP, which El Torito and the GPT share) and the firmware
/// must refuse to load it.
fn tampered_uki_is_refused(mode: Mode) -> Result<(), Failed> {
    use isoproof::image::format::structure::Structure;
    let dir = tempfile::tempdir()?;
    let built = boot::build_scenario(
        &root().join("scenarios/live-secure-boot.yaml"),
        dir.path(),
        &|| false,
    )
    .map_err(|e| e.to_string())?;
    let report =
        isoproof::image::read::inspect::inspect(&built.image).map_err(|e| e.to_string())?;
    let (start, end) = report
        .range_of(&Structure::EspImage)
        .ok_or("the image has no ESP")?;
    let mut bytes = std::fs::read(&built.image)?;
    let esp = &bytes[start as usize..end as usize];
    let uki = isoproof::image::read::fat::files(esp)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|f| f.path == "/EFI/BOOT/BOOTX64.EFI")
        .ok_or("no /EFI/BOOT/BOOTX64.EFI in the ESP")?;
    // Halfway through the file: inside the kernel's section, which the signed digest covers.
    let mut at = uki.size / 2;
    let (run, _) = uki
        .runs
        .iter()
        .find(|&&(_, n)| {
            let here = at < n;
            if !here {
                at -= n;
            }
            here
        })
        .ok_or("the UKI's runs are shorter than its size")?;
    bytes[(start + run + at) as usize] ^= 0x01;
    std::fs::write(&built.image, &bytes)?;
    let a = boot_in(dir.path(), &built.image, mode, Duration::from_secs(180))?;
    refused(&built, &a, mode)
}

/// The live installer signed with the key pair `KEY.key`/`KEY.pem` (paths in the repository),
/// built in `dir`.
fn signed_live(dir: &Path, key: &str) -> Result<boot::Built, Failed> {
    let r = root();
    let p = dir.join("signed.yaml");
    std::fs::write(
        &p,
        format!(
            "name: signed\nmodules:\n  - imports: [{m}]\n  - config:\n      isoImage.bootPayload: linux\n      isoImage.payloadRoot: {r}/payload/root\n      isoImage.storeContents: [{r}/scenarios/data/store/hello-2.12.1]\n      isoImage.secureBoot.key: {r}/{key}.key\n      isoImage.secureBoot.certificate: {r}/{key}.pem\n",
            m = r.join("scenarios/modules/installation-cd-minimal.yaml").display(),
            r = r.display()
        ),
    )?;
    Ok(boot::build_scenario(&p, dir, &|| false).map_err(|e| e.to_string())?)
}

/// The other way to Secure Boot: an image signed with the snakeoil key Debian's OVMF store
/// already trusts boots with that store as shipped (`live-secure-boot` boots with a store
/// isoproof writes), and Linux reports Secure Boot on in user mode.
fn snakeoil_signed_boots_with_debian_s_store(mode: Mode) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let built = signed_live(dir.path(), "scenarios/data/keys/PkKek-1-snakeoil")?;
    let m = machine(true)?;
    let template = std::fs::read(&m.ovmf_secure.as_ref().ok_or("no Secure Boot OVMF")?.vars)?;
    let vars = isoproof_harness::varstore::decode(&template)?;
    let cert = &built
        .plan
        .signing
        .as_ref()
        .ok_or("not signed")?
        .certificate_der;
    if !isoproof_harness::varstore::db_trusts(&vars, cert) {
        return Err("Debian's snakeoil store does not trust the snakeoil certificate".into());
    }
    booted_as_planned(dir.path(), &built, mode)
}

/// An image signed with a key the firmware has not enrolled (the tests' other throwaway key)
/// is refused as well.
fn foreign_signature_is_refused(mode: Mode) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let built = signed_live(dir.path(), "tests/keys/other-test-signing")?;
    let a = boot_in(dir.path(), &built.image, mode, Duration::from_secs(180))?;
    refused(&built, &a, mode)
}

/// The BIOS probe reads the volume ID from the image's primary volume descriptor: a built
/// image whose PVD was changed afterwards reports the changed ID, and the check fails.
fn volume_is_read_from_the_image(mode: Mode) -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let built = boot::build_scenario(
        &root().join("scenarios/installer-minimal.yaml"),
        dir.path(),
        &|| false,
    )
    .map_err(|e| e.to_string())?;
    let mut bytes = std::fs::read(&built.image)?;
    // ECMA-119 8.4.6: the volume identifier at byte 40 of the descriptor in sector 16.
    let at = 16 * 2048 + 40;
    if bytes[at] != b'N' {
        return Err("the volume ID does not start with N".into());
    }
    bytes[at] = b'M';
    std::fs::write(&built.image, &bytes)?;
    let a = boot_in(dir.path(), &built.image, mode, Duration::from_secs(60))?;
    match Expected::new(&built.plan, mode).check(&a.ended, &a.serial) {
        Verdict::Pass(_) => Err("a changed volume ID passed".into()),
        Verdict::Fail(e) if e.contains("volume: expected `NIXOS_MINIMAL`, got `MIXOS_MINIMAL`") => {
            Ok(())
        }
        Verdict::Fail(e) => Err(format!("unexpected verdict: {e}").into()),
    }
}

/// The real CLI: `isoproof boot` on a built image, and a one-mode `boot-matrix` with JUnit.
fn cli_boot_and_boot_matrix() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let exe = env!("CARGO_BIN_EXE_isoproof");
    let iso = dir.path().join("min.iso");
    let run = |args: &[&std::ffi::OsStr]| -> Result<std::process::Output, Failed> {
        Ok(std::process::Command::new(exe)
            .args(args)
            .current_dir(root())
            .output()?)
    };
    let scenario = root().join("scenarios/installer-minimal.yaml");
    let o = run(&[
        "build".as_ref(),
        "-o".as_ref(),
        iso.as_os_str(),
        scenario.as_os_str(),
    ])?;
    if !o.status.success() {
        return Err(format!("build: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    let o = run(&[
        "boot".as_ref(),
        iso.as_os_str(),
        "--firmware=bios".as_ref(),
        "--media=disk".as_ref(),
        "--accel=tcg".as_ref(),
    ])?;
    let out = String::from_utf8_lossy(&o.stdout);
    if o.status.code() != Some(0) || !out.starts_with("bios-disk: ISOPROOF-BOOT mode=bios via=mbr")
    {
        return Err(format!(
            "boot: {:?} {out} {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        )
        .into());
    }
    // --expect on text that never comes: a failure with the reason, within the deadline.
    let o = run(&[
        "boot".as_ref(),
        iso.as_os_str(),
        "--expect=login:".as_ref(),
        "--timeout=1".as_ref(),
        "--accel=tcg".as_ref(),
        "--keep".as_ref(),
        dir.path().join("failures").as_os_str(),
    ])?;
    let err = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    // Exit 7: a boot failed its check (the probe exits QEMU before the deadline).
    if o.status.code() != Some(7)
        || !err.contains("/login:/ on the serial console never appeared before QEMU ended")
    {
        return Err(format!("boot --expect: {:?} {err}", o.status).into());
    }
    if !dir
        .path()
        .join("failures/min.iso/bios-cdrom-attempt1/serial.log")
        .is_file()
    {
        return Err("the failed boot's serial log was not kept".into());
    }
    let junit = dir.path().join("junit.xml");
    // A BIOS CD-ROM boot-matrix of `scenarios`, with its JUnit report.
    let matrix = |scenarios: &[&std::ffi::OsStr]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "boot-matrix".as_ref(),
            "--mode=bios-cdrom".as_ref(),
            "--accel=tcg".as_ref(),
            "--junit".as_ref(),
            junit.as_os_str(),
        ];
        args.extend(scenarios);
        run(&args)
    };
    let host = root().join("scenarios/host-keeps-root-with-force.yaml");
    let o = matrix(&[host.as_os_str()])?;
    let out = String::from_utf8_lossy(&o.stdout);
    if o.status.code() != Some(0) || !out.ends_with("1 passed, 0 failed\n") {
        return Err(format!("boot-matrix: {:?} {out}", o.status).into());
    }
    let xml = std::fs::read_to_string(&junit)?;
    if !xml.contains("<testcase name=\"bios-cdrom\" classname=\"boot.host-keeps-root-with-force\"")
    {
        return Err(format!("JUnit: {xml}").into());
    }
    // `--partition K/2`: two jobs, each with its JUnit, boot every (scenario, mode) pair
    // exactly once between them.
    let mut pairs: Vec<String> = Vec::new();
    let mut whole: Vec<String> = Vec::new();
    for k in ["1/1", "1/2", "2/2"] {
        let part = format!("--partition={k}");
        let o = run(&[
            "boot-matrix".as_ref(),
            "--mode=bios-cdrom".as_ref(),
            "--mode=bios-usb".as_ref(),
            "--accel=tcg".as_ref(),
            part.as_ref(),
            "--junit".as_ref(),
            junit.as_os_str(),
            host.as_os_str(),
            scenario.as_os_str(),
        ])?;
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        if o.status.code() != Some(0) || !out.ends_with(" passed, 0 failed\n") {
            return Err(format!("boot-matrix {part}: {:?} {out}", o.status).into());
        }
        let xml = std::fs::read_to_string(&junit)?;
        let booted = xml.split("<testcase name=\"").skip(1).map(|t| {
            let (mode, rest) = t.split_once('"').unwrap_or_default();
            let class = rest.split('"').nth(1).unwrap_or_default();
            format!("{class} {mode}")
        });
        if k == "1/1" {
            whole.extend(booted);
        } else {
            pairs.extend(booted);
        }
    }
    pairs.sort();
    whole.sort();
    if pairs != whole || whole.len() < 3 {
        return Err(format!("the two shares booted {pairs:?}, not each pair once").into());
    }
    let o = run(&["boot-matrix".as_ref(), "--partition=3/2".as_ref()])?;
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() != Some(2) || !err.contains("expected K/N with 1 <= K <= N") {
        return Err(format!("--partition=3/2: {:?} {err}", o.status).into());
    }
    // A scenario that does not build is a failed row with its error, in the table and in
    // JUnit; the scenario after it is still booted; the run exits 7.
    let broken = derived(
        dir.path(),
        "installation-cd-minimal.yaml",
        "      isoImage.bootPayload: linux\n      isoImage.payloadRoot: no-such-root\n",
    );
    let o = matrix(&[broken.as_os_str(), scenario.as_os_str()])?;
    let out = String::from_utf8_lossy(&o.stdout);
    let stem = broken.file_stem().unwrap().to_string_lossy().into_owned();
    let xml = std::fs::read_to_string(&junit)?;
    if o.status.code() != Some(7)
        || !out
            .lines()
            .any(|l| l.starts_with(&stem) && l.ends_with("  NOT BUILT"))
        || !out.contains("no payload root at")
        || !out.contains("installer-minimal  ok ")
        || !out.ends_with("1 passed, 1 failed (1 scenario not built)\n")
        || !xml.contains(&format!(
            "<testcase name=\"build\" classname=\"boot.{stem}\">"
        ))
    {
        return Err(format!(
            "boot-matrix with a broken scenario: {:?} {out}\n{xml}",
            o.status
        )
        .into());
    }
    Ok(())
}

/// Image names QEMU once read as something else: `file:good.iso` booted `good.iso` (a
/// protocol prefix), so random bytes passed; a name that is not UTF-8 failed with a QEMU
/// status; an empty `--expect` passed on anything.
fn image_names_are_only_names() -> Result<(), Failed> {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir()?;
    let exe = env!("CARGO_BIN_EXE_isoproof");
    let run = |args: &[&std::ffi::OsStr]| -> Result<std::process::Output, Failed> {
        Ok(std::process::Command::new(exe)
            .args(args)
            .current_dir(dir.path())
            .output()?)
    };
    let good = dir.path().join("good.iso");
    let scenario = root().join("scenarios/installer-minimal.yaml");
    let o = run(&[
        "build".as_ref(),
        "-o".as_ref(),
        good.as_os_str(),
        scenario.as_os_str(),
    ])?;
    if !o.status.success() {
        return Err(format!("build: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    let boot = |image: &std::ffi::OsStr, extra: &[&str]| -> Result<(Option<i32>, String), Failed> {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "boot".as_ref(),
            image,
            "--accel=tcg".as_ref(),
            "--timeout=4".as_ref(),
        ];
        args.push("--keep".as_ref());
        let keep = dir.path().join("failures");
        args.push(keep.as_os_str());
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        let o = run(&args)?;
        Ok((
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        ))
    };
    // 1 MiB of noise named like a protocol in front of the good image's name.
    let noise: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(dir.path().join("file:good.iso"), noise)?;
    let (code, out) = boot("file:good.iso".as_ref(), &[])?;
    if code != Some(7) {
        return Err(format!(
            "noise named file:good.iso: exit {code:?}, expected 7 (failed)\n{out}"
        )
        .into());
    }
    // A name that is not UTF-8 boots like any other.
    let odd = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"odd-\xff,name.iso"));
    std::fs::copy(&good, &odd)?;
    let (code, out) = boot(odd.as_os_str(), &[])?;
    if code != Some(0) {
        return Err(format!("non-UTF-8 name: exit {code:?}\n{out}").into());
    }
    // An empty expectation is refused, not passed.
    let (code, out) = boot(good.as_os_str(), &["--expect="])?;
    if code != Some(2) {
        return Err(format!("--expect='': exit {code:?}, expected 2\n{out}").into());
    }
    Ok(())
}

/// An image built by xorriso with ISOLINUX waiting at its `boot:` prompt: `--expect` finds
/// the banner on the serial console and `--expect-screen` the prompt on the VGA text screen,
/// in order; a mode it cannot boot (UEFI, no ESP) fails at once with the reason.
fn a_foreign_image_is_awaited_on_serial_and_screen() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let tree = dir.path().join("tree/isolinux");
    std::fs::create_dir_all(&tree)?;
    let payload = root().join("payload/root/usr/lib");
    for (from, to) in [
        ("ISOLINUX/isolinux.bin", "isolinux.bin"),
        ("syslinux/modules/bios/ldlinux.c32", "ldlinux.c32"),
    ] {
        std::fs::copy(payload.join(from), tree.join(to))?;
    }
    std::fs::write(
        tree.join("isolinux.cfg"),
        "SERIAL 0 115200\nPROMPT 1\nTIMEOUT 0\nSAY menu of a foreign image\nLABEL none\n  KERNEL /nothing\n",
    )?;
    let iso = dir.path().join("foreign.iso");
    let o = std::process::Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-R",
            "-V",
            "FOREIGN",
            "-b",
            "isolinux/isolinux.bin",
        ])
        .args([
            "-c",
            "isolinux/boot.cat",
            "-no-emul-boot",
            "-boot-load-size",
            "4",
        ])
        .args(["-boot-info-table", "-o"])
        .arg(&iso)
        .arg(dir.path().join("tree"))
        .output()?;
    if !o.status.success() {
        return Err(format!("xorriso: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    let run = |extra: &[&str]| -> Result<(Option<i32>, String, Duration), Failed> {
        let t = Instant::now();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_isoproof"))
            .arg("boot")
            .arg(&iso)
            .args(["--accel=tcg", "--timeout=30", "--keep"])
            .arg(dir.path().join("failures"))
            .args(extra)
            .output()?;
        Ok((
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
            t.elapsed(),
        ))
    };
    let (code, out, _) = run(&[
        "--expect",
        r"ISOLINUX \d+\.\d+",
        "--expect-screen",
        "menu of a foreign image",
        "--expect-screen",
        "(?m)^boot:",
    ])?;
    if code != Some(0)
        || !out.contains("found /ISOLINUX \\d+\\.\\d+/ on the serial console at")
        || !out.contains("found /(?m)^boot:/ on the screen at")
    {
        return Err(format!("expectations: exit {code:?}\n{out}").into());
    }
    if out.contains("Mode") || out.contains("passed,") {
        return Err(format!("a single boot printed a matrix table:\n{out}").into());
    }
    let (code, out, took) = run(&["--firmware=uefi", "--media=usb"])?;
    if code != Some(7)
        || !out.contains("uefi-usb: cannot boot: no EFI system partition")
        || took > Duration::from_secs(5)
    {
        return Err(format!("UEFI from USB: exit {code:?} after {took:?}\n{out}").into());
    }
    let (code, out, _) = run(&["--expect", "("])?;
    if code != Some(2) || !out.contains("--expect \"(\": regex parse error") {
        return Err(format!("a bad pattern: exit {code:?}\n{out}").into());
    }
    // `--accel kvm`: where KVM cannot run ISOLINUX's protected mode (nested KVM without
    // what real mode needs, as the self-test finds), the boot fails at once with QEMU's
    // reason, not at its deadline; where KVM works, the image boots under it.
    let qemu = isoproof_harness::boot::find_qemu()?;
    let kvm = isoproof_harness::accel::self_test(&qemu, isoproof_harness::Accel::Kvm);
    let t = Instant::now();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .arg("boot")
        .arg(&iso)
        .args(["--accel=kvm", "--timeout=60"])
        .args([
            "--expect",
            r"ISOLINUX \d+\.\d+",
            "--expect-screen",
            "(?m)^boot:",
        ])
        .args(["--keep"])
        .arg(dir.path().join("failures-kvm"))
        .output()?;
    let took = t.elapsed();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    use isoproof_harness::accel::KvmUnusable;
    match kvm {
        Ok(_) if o.status.code() == Some(0) => {}
        Err(KvmUnusable::Kvm(why)) => {
            if o.status.code() != Some(7)
                || !out.contains("KVM cannot run this guest")
                || !out.contains("emulation failure")
                || took > Duration::from_secs(30)
            {
                return Err(format!(
                    "--accel kvm where the self-test found {why}: exit {:?} after {took:?}\n{out}",
                    o.status.code()
                )
                .into());
            }
        }
        Err(KvmUnusable::NoDevice(_)) if o.status.code() != Some(0) => {}
        other => {
            return Err(format!(
                "--accel kvm: self-test {other:?}, boot exit {:?} after {took:?}\n{out}",
                o.status.code()
            )
            .into())
        }
    }
    Ok(())
}

/// A live image's passing boot says what Linux saw: `isoproof boot` prints it, and
/// `boot-matrix -v` under the boot's progress line.
/// `isoproof boot --firmware uefi-sb`: an image signed with a key the firmware does not
/// trust is refused (exit 7, OVMF's line), and boots with Secure Boot on once `--enroll`
/// gives its certificate.
fn cli_secure_boot_enrolls_the_given_certificate() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let iso = dir.path().join("sb.iso");
    let exe = env!("CARGO_BIN_EXE_isoproof");
    let o = std::process::Command::new(exe)
        .arg("build")
        .arg("-o")
        .arg(&iso)
        .arg(root().join("scenarios/live-secure-boot.yaml"))
        .output()?;
    if !o.status.success() {
        return Err(format!("build: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    let boot = |enroll: Option<&str>| -> Result<(Option<i32>, String), Failed> {
        let mut c = std::process::Command::new(exe);
        c.arg("boot").arg(&iso).args([
            "--firmware=uefi-sb",
            "--media=disk",
            "--accel=tcg",
            "--timeout=180",
        ]);
        if let Some(e) = enroll {
            c.arg("--enroll").arg(root().join(e));
        }
        let o = c.output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        Ok((o.status.code(), text))
    };
    let (code, text) = boot(None)?;
    if code != Some(7) || !text.contains("the firmware refused to boot it: BdsDxe: failed to load")
    {
        return Err(format!("without --enroll: {code:?} {text}").into());
    }
    let (code, text) = boot(Some("scenarios/data/keys/isoproof-test-secure-boot.pem"))?;
    if code != Some(0) || !text.contains("Secure Boot on, user mode") {
        return Err(format!("with --enroll: {code:?} {text}").into());
    }
    let (code, text) = boot(Some("scenarios/data/keys/isoproof-test-secure-boot.key"))?;
    if code != Some(2) || !text.contains("not a PEM X.509 certificate") {
        return Err(format!("--enroll of a key: {code:?} {text}").into());
    }
    Ok(())
}

fn a_live_boot_shows_what_linux_saw() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let iso = dir.path().join("live.iso");
    let exe = env!("CARGO_BIN_EXE_isoproof");
    let scenario = root().join("scenarios/live-minimal.yaml");
    let o = std::process::Command::new(exe)
        .arg("build")
        .arg("-o")
        .arg(&iso)
        .arg(&scenario)
        .output()?;
    if !o.status.success() {
        return Err(format!("build: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    let o = std::process::Command::new(exe)
        .arg("boot")
        .arg(&iso)
        .args(["--accel=tcg", "--timeout=180"])
        .output()?;
    let out = String::from_utf8_lossy(&o.stdout);
    if o.status.code() != Some(0)
        || !out.starts_with("bios-cdrom: Linux on /dev/sr0 (bios): host nixos-installer; verified ")
        || !out.contains(", 0 failed; 0 modules failed; mounted / (tmpfs), /iso (iso9660 ")
    {
        return Err(format!("boot: {:?} {out}", o.status).into());
    }
    let o = std::process::Command::new(exe)
        .args([
            "boot-matrix",
            "-v",
            "--mode=bios-disk",
            "--accel=tcg",
            "--timeout=180",
        ])
        .arg(&scenario)
        .output()?;
    let err = String::from_utf8_lossy(&o.stderr);
    if o.status.code() != Some(0)
        || !err.contains("live-minimal                 bios-disk")
        || !err.contains("\n      Linux on /dev/vda (bios): host nixos-installer; verified ")
        || !err.contains("kernelParams in order on /proc/cmdline")
    {
        return Err(format!("boot-matrix -v: {:?} {err}", o.status).into());
    }
    Ok(())
}

/// Ctrl-C during a boot: `isoproof boot` stops QEMU's whole group, exits 130 and leaves no
/// QEMU behind.
fn ctrl_c_stops_the_guest() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let built = silent_installer(dir.path())?;
    let image = built.image.to_string_lossy().into_owned();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_isoproof"))
        .args(["boot", &image, "--timeout=60", "--accel=tcg"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    // Wait until QEMU runs, then interrupt.
    let t = Instant::now();
    while qemus_with(&image).is_empty() {
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            return Err("QEMU never started".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )?;
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            return Err("isoproof did not stop within 10 s of SIGINT".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if status.code() != Some(130) {
        return Err(format!("exit status {status:?}, expected 130").into());
    }
    let left = qemus_with(&image);
    if !left.is_empty() {
        return Err(format!("QEMU left running: {left:?}").into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    let mut scenarios: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "nix"))
        .collect();
    scenarios.sort();
    for s in scenarios {
        let name = s.file_stem().unwrap().to_string_lossy().into_owned();
        let plan = match isoproof::compose::plan_scenario(&s) {
            Ok(p) => p.plan,
            Err(e) => {
                let msg = format!("{}: {e}", s.display());
                trials.push(Trial::test(format!("boot::{name}::plan"), move || {
                    Err(msg.into())
                }));
                continue;
            }
        };
        // A live image boots a real kernel (15-20 s under TCG): here one mode each, Secure
        // Boot's when it is signed, BIOS's otherwise; `just test-boot` (the boot matrix,
        // which CI runs too) boots every mode of every scenario.
        let one = match (plan.signed, plan.is_netboot()) {
            (true, _) => "uefi-sb-disk",
            (false, true) => "bios-netboot",
            (false, false) => "bios-cdrom",
        };
        let live = |m: &Mode| plan.linux.is_none() || m.to_string() == one;
        for mode in boot::modes(&plan).into_iter().filter(live) {
            let s = s.clone();
            trials.push(Trial::test(format!("boot::{name}::{mode}"), move || {
                scenario_mode(&s, mode)
            }));
        }
    }
    type HarnessTest = fn(Mode) -> Result<(), Failed>;
    let harness_tests: [(&str, HarnessTest, &[&str]); 8] = [
        (
            "snakeoil_signed_boots_with_debian_s_store",
            snakeoil_signed_boots_with_debian_s_store,
            &["uefi-sb-usb"],
        ),
        (
            "tampered_uki_is_refused",
            tampered_uki_is_refused,
            &["uefi-sb-cdrom", "uefi-sb-disk"],
        ),
        (
            "foreign_signature_is_refused",
            foreign_signature_is_refused,
            &["uefi-sb-usb", "uefi-sb-cdrom"],
        ),
        (
            "volume_is_read_from_the_image",
            volume_is_read_from_the_image,
            &["bios-cdrom", "bios-usb"],
        ),
        (
            "corrupted_file_is_named",
            corrupted_file_is_named,
            &["bios-disk", "uefi-cdrom"],
        ),
        (
            "corrupted_store_file_is_named",
            corrupted_store_file_is_named,
            &["bios-netboot", "uefi-netboot"],
        ),
        (
            "silent_guest_is_killed_at_its_deadline",
            silent_guest_is_killed_at_its_deadline,
            &["bios-cdrom", "uefi-disk"],
        ),
        (
            "wrong_hostname_fails",
            wrong_hostname_fails,
            &["bios-usb", "uefi-cdrom"],
        ),
    ];
    for (name, test, modes) in harness_tests {
        for mode in modes.iter().map(|m| Mode::parse(m).expect("a mode")) {
            trials.push(Trial::test(format!("harness::{name}::{mode}"), move || {
                test(mode)
            }));
        }
    }
    trials.push(Trial::test(
        "cli::boot_and_boot_matrix",
        cli_boot_and_boot_matrix,
    ));
    trials.push(Trial::test(
        "cli::image_names_are_only_names",
        image_names_are_only_names,
    ));
    trials.push(Trial::test(
        "cli::a_live_boot_shows_what_linux_saw",
        a_live_boot_shows_what_linux_saw,
    ));
    trials.push(Trial::test(
        "cli::secure_boot_enrolls_the_given_certificate",
        cli_secure_boot_enrolls_the_given_certificate,
    ));
    trials.push(Trial::test(
        "cli::ctrl_c_stops_the_guest",
        ctrl_c_stops_the_guest,
    ));
    trials.push(Trial::test(
        "cli::a_foreign_image_is_awaited_on_serial_and_screen",
        a_foreign_image_is_awaited_on_serial_and_screen,
    ));
    libtest_mimic::run(&args, trials).exit();
}
