//! The KVM self-test's command line and program, run for real: under TCG it boots and
//! reports (QEMU exits 33), which proves both; under KVM it passes, or fails with the reason
//! QEMU gave (on a nested KVM that cannot run protected mode: "emulation failure"), never with
//! a command line QEMU refuses.

use isoproof_harness::accel::{self_test, KvmUnusable};
use isoproof_harness::boot::find_qemu;
use isoproof_harness::Accel;

#[test]
fn the_self_test_boots_and_reports_under_tcg() {
    let qemu = find_qemu().expect("qemu-system-x86_64 (.ci/run installs it)");
    let took = self_test(&qemu, Accel::Tcg).unwrap_or_else(|e| panic!("under TCG: {e}"));
    assert!(took.as_secs_f64() < 1.5, "{took:?}");
}

#[test]
fn under_kvm_it_passes_or_says_why() {
    let qemu = find_qemu().expect("qemu-system-x86_64 (.ci/run installs it)");
    match self_test(&qemu, Accel::Kvm) {
        Ok(_)
        | Err(KvmUnusable::NoDevice(_))
        | Err(KvmUnusable::TooSlow(_))
        | Err(KvmUnusable::Hung) => {}
        Err(KvmUnusable::Kvm(why)) => assert!(why.contains("KVM internal error"), "{why}"),
        Err(other) => panic!("the self-test itself is broken: {other}"),
    }
}
