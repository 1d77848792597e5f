//! The QEMU command line of every mode, as a snapshot: what the harness runs is reviewed like
//! code. Paths are placeholders.

use std::path::PathBuf;

use isoproof_harness::qemu::{Accel, Launch, Mode};

fn launch(mode: Mode) -> Launch {
    let uefi = mode.firmware.is_uefi();
    let code = match mode.firmware {
        isoproof_harness::Firmware::UefiSecure => "OVMF_CODE_4M.snakeoil.fd",
        _ => "OVMF_CODE_4M.fd",
    };
    Launch {
        image: PathBuf::from("work/image,1.iso"),
        mode,
        accel: Accel::Tcg,
        ovmf: uefi.then(|| (PathBuf::from(code), PathBuf::from("work/OVMF_VARS.fd"))),
        serial: PathBuf::from("work/serial.log"),
        qmp: Some(PathBuf::from("work/qmp.sock")),
        memory_mib: 256,
    }
}

#[test]
fn command_lines_of_every_mode() {
    let mut out = String::new();
    for mode in Mode::all() {
        out.push_str(&format!("{mode}:\n  qemu-system-x86_64"));
        // One option per line, with its value.
        for a in launch(mode).args() {
            let a = a.to_string_lossy();
            if a.starts_with('-') {
                out.push_str(" \\\n    ");
            } else {
                out.push(' ');
            }
            out.push_str(&a);
        }
        out.push('\n');
    }
    insta::assert_snapshot!(out);
}
