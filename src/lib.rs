//! # isoproof
//!
//! Proves live/installer ISO images right: their configuration resolves exactly as NixOS's
//! `lib.evalModules` resolves it, their bytes are reproducible, and they boot.
//!
//! # Brief overview
//!
//! The library is a pipeline; each module owns a stage and has one entry point:
//!
//! | stage | entry point | gives |
//! |---|---|---|
//! | [`scenario`] | [`scenario::load`] | YAML modules with spans, or every [`scenario::LoadError`] |
//! | [`resolve`] | [`resolve::resolve`], [`resolve::explain`] | the resolved [`resolve::Config`], or every error |
//! | [`compose`] | [`compose::plan_scenario`], [`compose::build`] | the [`compose::ImageSpec`] and [`compose::ImagePlan`], then the image (what `isoproof build` does) |
//! | [`image`] | [`image::mkiso`], [`image::read::inspect::inspect`], [`image::read::diff::diff`] | images, and images read back as decoded records |
//! | [`golden`] | [`golden::check_all`], [`golden::bless_all`] | golden records and what changed |
//! | [`boot`] | [`boot::matrix`], [`boot::boot_image`] | boots under QEMU, judged against the config |
//!
//! Besides: [`payload`] (the boot programs images carry), [`output`] (renderings of a config),
//! [`hex`] (digests as text), [`exit`] (the exit class every stage error answers),
//! [`diag`] and [`source`] (diagnostics with the files and positions they point at), [`input`]
//! (opening what users name: regular files only, bounded reads), [`publish`] (writing outputs
//! whole or not at all). Stages
//! pass typed values to each other, errors are typed per stage, long-running calls take a
//! cancel check and report progress through callbacks; the library never prints.
//!
//! ```
//! let text = "modules:\n  - options: {x: {type: int}}\n  - config: {x: !mkForce 1}\n  - config: {x: 2}\n";
//! let s = isoproof::scenario::load_str(text, "s.yaml", std::path::Path::new("."))?;
//! let r = isoproof::resolve::resolve(&s);
//! assert_eq!(isoproof::output::json(&r.config.unwrap()), "{\n  \"x\": 1\n}\n");
//! # Ok::<(), isoproof::scenario::LoadError>(())
//! ```
//!
//! The binary (`src/main.rs`, `src/cli/`) is a thin command line over these.
#![deny(missing_docs)]
// Diagnostics travel by value on the cold error path; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod boot;
pub mod compose;
pub mod diag;
pub(crate) mod ere;
pub mod exit;
pub mod golden;
pub mod hex;
pub mod image;
pub mod input;
pub mod output;
pub mod payload;
pub mod publish;
pub mod resolve;
pub mod scenario;
pub mod source;
