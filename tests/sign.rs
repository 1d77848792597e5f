//! Authenticode signatures as real verifiers read them: every EFI binary isoproof signs is
//! accepted by `sbverify` (Debian's sbsigntool, OpenSSL underneath) with the signing
//! certificate, refused with another certificate, and refused once one byte of it changes.
//! Signing is deterministic: the same key gives the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use isoproof::image::format::authenticode::{
    certificate_table, image_digest, signatures, WinCertificate,
};
use isoproof::payload::sign::Signer;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn signer(name: &str) -> Signer {
    let k = std::fs::read_to_string(root().join(format!("tests/keys/{name}.key"))).unwrap();
    let c = std::fs::read_to_string(root().join(format!("tests/keys/{name}.pem"))).unwrap();
    Signer::from_pem(&k, &c).unwrap()
}

fn sbverify(cert: &str, efi: &Path) -> (bool, String) {
    let o = Command::new("sbverify")
        .arg("--cert")
        .arg(root().join(format!("tests/keys/{cert}.pem")))
        .arg(efi)
        .output()
        .expect("sbverify (Debian's sbsigntool; .ci/setup installs it)");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// The EFI binaries the project signs: systemd-stub as the payload root has it, and the
/// Unified Kernel Image of a built live image.
fn binaries(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let stub = root().join("payload/root/usr/lib/systemd/boot/efi/linuxx64.efi.stub");
    let iso = dir.join("live.iso");
    let built =
        isoproof::compose::plan_scenario(&root().join("scenarios/live-minimal.yaml")).unwrap();
    isoproof::compose::build(&built.plan, &iso, &|| false, &mut |_| {}).unwrap();
    let uki = Command::new("mtype")
        .args(["-i"])
        .arg(format!("{}@@{}", iso.display(), esp_offset(&iso)))
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .output()
        .unwrap();
    assert!(
        uki.status.success(),
        "{}",
        String::from_utf8_lossy(&uki.stderr)
    );
    vec![
        ("systemd-stub".into(), std::fs::read(stub).unwrap()),
        ("UKI".into(), uki.stdout),
    ]
}

fn esp_offset(iso: &Path) -> u64 {
    let r = isoproof::image::read::inspect::inspect(iso).unwrap();
    r.range_of(&isoproof::image::format::structure::Structure::EspImage)
        .unwrap()
        .0
}

#[test]
fn sbverify_accepts_every_signature_and_refuses_changes_and_other_keys() {
    let d = tempfile::tempdir().unwrap();
    let s = signer("test-signing");
    for (name, pe) in binaries(d.path()) {
        let signed = s.sign(&pe).unwrap();
        assert_eq!(
            signed,
            s.sign(&pe).unwrap(),
            "{name}: signing is deterministic"
        );
        // Signing again replaces the signature instead of adding one.
        assert_eq!(s.sign(&signed).unwrap(), signed, "{name}: re-signing");
        let (at, table) = certificate_table(&signed).unwrap().unwrap();
        assert_eq!(at % 8, 0);
        assert_eq!(WinCertificate::decode_all(table).unwrap().len(), 1);
        // The digest skips the table, and covers the zeros that 8-align it.
        let mut padded = pe.clone();
        padded.resize(pe.len().next_multiple_of(8), 0);
        assert_eq!(
            image_digest(&signed).unwrap(),
            image_digest(&padded).unwrap()
        );
        let f = d.path().join(format!("{name}.efi"));
        std::fs::write(&f, &signed).unwrap();
        let (ok, out) = sbverify("test-signing", &f);
        assert!(ok, "{name}: {out}");
        let (ok, out) = sbverify("other-test-signing", &f);
        assert!(
            !ok,
            "{name}: verified with a certificate that did not sign it: {out}"
        );
        let mut changed = signed.clone();
        changed[at / 2] ^= 1;
        std::fs::write(&f, &changed).unwrap();
        let (ok, out) = sbverify("test-signing", &f);
        assert!(!ok, "{name}: a changed byte still verified: {out}");
        // What inspect reads back agrees with sbverify: the signer, and whether it holds.
        let read = signatures(&signed).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].signer, s.subject);
        assert_eq!(read[0].matches, Some(true), "{name}");
        assert_eq!(signatures(&changed).unwrap()[0].matches, Some(false));
    }
}

#[test]
fn keys_and_certificates_that_do_not_belong_together_are_refused() {
    let k = std::fs::read_to_string(root().join("tests/keys/test-signing.key")).unwrap();
    let c = std::fs::read_to_string(root().join("tests/keys/other-test-signing.pem")).unwrap();
    let e = Signer::from_pem(&k, &c).err().unwrap();
    assert!(e.to_string().contains("not the signing key's"), "{e}");
    let e = Signer::from_pem("junk", &c).err().unwrap();
    assert!(e.to_string().starts_with("signing key:"), "{e}");
}
