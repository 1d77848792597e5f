//! Exit codes: the command line's contract with scripts and CI. Each outcome has its own
//! code, and a run that meets several ends with the most severe. 0, 1 and 2 are the
//! conformance corpus's contract for `resolve`.

/// Success: resolved, built, identical, golden records match, every boot passed.
pub const OK: u8 = 0;
/// The scenario resolved to errors (conflicts, type errors, ...).
pub const RESOLVE_ERRORS: u8 = 1;
/// Bad input or usage: a scenario that cannot be read, a config the image cannot be, an
/// image that cannot be read, a wrong command line.
pub const BAD_INPUT: u8 = 2;
/// `diff`: the images differ.
pub const IMAGES_DIFFER: u8 = 3;
/// `golden check`: a regression (same inputs, another image).
pub const GOLDEN_REGRESSION: u8 = 4;
/// `golden check`: inputs changed since the record was blessed (review, then bless).
pub const GOLDEN_INPUT_CHANGED: u8 = 5;
/// `golden check`: a scenario has no golden record yet.
pub const GOLDEN_NO_RECORD: u8 = 6;
/// `boot`, `boot-matrix`: a boot failed its check.
pub const BOOT_FAILED: u8 = 7;
/// A tool the command needs is missing or unusable (QEMU, OVMF).
pub const ENVIRONMENT: u8 = 8;
/// An output could not be written (an image, a manifest, a report, standard output).
pub const OUTPUT: u8 = 9;
/// A bug in isoproof: one of its own checks failed.
pub const INTERNAL: u8 = 70;
/// A signal (Ctrl-C) stopped the command; it left nothing half-written behind.
pub const INTERRUPTED: u8 = 130;

/// The more severe of two codes (the order of this list, interrupted first).
pub fn worst(a: u8, b: u8) -> u8 {
    const ORDER: [u8; 13] = [
        INTERRUPTED,
        INTERNAL,
        OUTPUT,
        ENVIRONMENT,
        BAD_INPUT,
        RESOLVE_ERRORS,
        BOOT_FAILED,
        GOLDEN_REGRESSION,
        GOLDEN_INPUT_CHANGED,
        GOLDEN_NO_RECORD,
        IMAGES_DIFFER,
        OK,
        OK,
    ];
    let rank = |c: u8| ORDER.iter().position(|x| *x == c).unwrap_or(0);
    if rank(a) <= rank(b) {
        a
    } else {
        b
    }
}
