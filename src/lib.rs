//! # isoproof
//!
//! Proves live/installer ISO images right. The library is a pipeline; each module owns a stage:
//!
//! - [`scenario`]: YAML scenario files → modules with spans (tags, dotted paths, imports);
//! - [`resolve`]: the NixOS module system (`lib.evalModules`) → the resolved config, or every
//!   error with file:line:col;
//! - [`build`]: a resolved config → an image plan (every file, every boot structure) → an ISO;
//! - [`image`]: the ISO writer (ISO 9660, Rock Ridge, Joliet, El Torito, isohybrid, FAT ESP)
//!   and reader;
//! - [`payload`]: the boot programs images carry (El Torito, MBR, UEFI);
//! - [`golden`]: golden manifests and the structural diff;
//! - [`boot`]: booting images under QEMU and judging what they report (with the
//!   `isoproof-harness` crate);
//! - [`output`]: renderings of a resolved config (JSON, YAML, text);
//! - [`diag`]: diagnostics shared by every stage;
//!
//! The binary (`src/main.rs`) is a thin CLI over these.
#![deny(missing_docs)]
// Diagnostics travel by value on the cold error path; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod boot;
pub mod build;
pub mod diag;
pub mod golden;
pub mod image;
pub mod output;
pub mod payload;
pub mod resolve;
pub mod scenario;
pub mod source;
