//! Exit codes: the command line's contract with scripts and CI, as the library's exit
//! classes ([`isoproof::exit::Class`]) give them; each error answers its own class. A run
//! that meets several outcomes ends with the most severe.

use isoproof::exit::Class;

/// Success: resolved, built, identical, golden records match, every boot passed.
pub const OK: u8 = Class::Ok.code();
/// The scenario resolved to errors (conflicts, type errors, ...).
pub const RESOLVE_ERRORS: u8 = Class::ResolveErrors.code();
/// Bad input or usage.
pub const BAD_INPUT: u8 = Class::BadInput.code();
/// `diff`: the images differ.
pub const IMAGES_DIFFER: u8 = Class::ImagesDiffer.code();
/// `boot`, `boot-matrix`: a boot failed its check.
pub const BOOT_FAILED: u8 = Class::BootFailed.code();
/// An output could not be written (standard output included).
pub const OUTPUT: u8 = Class::Output.code();
/// A bug in isoproof.
pub const INTERNAL: u8 = Class::Internal.code();
/// A signal (Ctrl-C) stopped the command.
pub const INTERRUPTED: u8 = Class::Interrupted.code();

/// The more severe of two codes.
pub fn worst(a: u8, b: u8) -> u8 {
    let class = |c: u8| {
        Class::ALL
            .into_iter()
            .find(|k| k.code() == c)
            .unwrap_or(Class::Internal)
    };
    class(a).worst(class(b)).code()
}
