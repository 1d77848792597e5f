//! The image's on-disk formats: one module per specification, each record one type with its
//! encoder, bounds-checked decoder, field list and a layout test against the specification's
//! byte offsets. Readers and writers use these; nothing here reads or writes an image.

pub mod apm;
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
