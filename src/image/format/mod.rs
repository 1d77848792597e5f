//! The image's on-disk formats: one module per specification, each record one type with its
//! encoder, bounds-checked decoder, field list and a layout test against the specification's
//! byte offsets. Readers and writers use these; nothing here reads or writes an image.

pub mod apm;
pub mod authenticode;
pub mod cpio;
pub mod eltorito;
pub mod fat;
pub mod gpt;
pub mod iso9660;
pub(crate) mod joliet;
pub mod mbr;
pub mod pe;
pub mod record;
pub mod rockridge;
pub mod structure;
pub mod susp;

/// The first free name among `build("")`, `build("~1")`, `build("~2")`, ... (from `"~1"` on
/// when `plain` is false, as FAT basis names go). Every name mapping of the image (primary,
/// Joliet, FAT) disambiguates by this one rule.
pub(crate) fn first_free<T>(
    plain: bool,
    build: impl Fn(&str) -> T,
    taken: impl Fn(&T) -> bool,
) -> T {
    std::iter::once(String::new())
        .filter(|_| plain)
        .chain((1u32..).map(|n| format!("~{n}")))
        .map(|suffix| build(&suffix))
        .find(|c| !taken(c))
        .expect("an unbounded search finds a free name")
}
