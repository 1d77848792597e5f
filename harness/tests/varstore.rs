//! The variable stores isoproof writes, against the ones the machine's OVMF ships: an empty
//! store is Debian's `OVMF_VARS_4M.fd` byte for byte, and the snakeoil store that package
//! ships reads back with its certificate in db.

use isoproof_harness::firmware::{find_ovmf, find_secure_ovmf, Search};
use isoproof_harness::varstore;

#[test]
fn an_empty_store_is_the_firmware_s_own_template() {
    let o = find_ovmf(&Search::standard(None)).expect("OVMF (.ci/setup installs ovmf)");
    let template = std::fs::read(&o.vars).unwrap();
    assert_eq!(template.len(), varstore::SIZE, "{}", o.vars.display());
    let ours = varstore::encode(&[]).unwrap();
    let first = ours.iter().zip(&template).position(|(a, b)| a != b);
    assert_eq!(
        first,
        None,
        "differs from {} at this offset",
        o.vars.display()
    );
}

#[test]
fn debian_s_snakeoil_store_trusts_the_snakeoil_certificate() {
    use der::{DecodePem, Encode};
    let o = find_secure_ovmf().expect("OVMF's Secure Boot build (.ci/setup installs ovmf)");
    let vars = varstore::decode(&std::fs::read(&o.vars).unwrap()).unwrap();
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios/data/keys/PkKek-1-snakeoil.pem"),
    )
    .unwrap();
    let der = x509_cert::Certificate::from_pem(&pem)
        .unwrap()
        .to_der()
        .unwrap();
    assert!(varstore::db_trusts(&vars, &der));
    for name in ["PK", "KEK", "db", "SecureBootEnable"] {
        assert!(vars.iter().any(|v| v.name == name), "no {name}");
    }
    // What isoproof writes for the same certificate reads back the same way.
    let ours = varstore::encode(&varstore::secure_boot(
        &der,
        varstore::Guid([1; 16]),
        [0; 16],
    ))
    .unwrap();
    assert!(varstore::db_trusts(&varstore::decode(&ours).unwrap(), &der));
}
