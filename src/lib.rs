//! # isoproof
//!
//! Proves live/installer ISO images right. The library is a pipeline; each module owns a stage:
//!
//! - [`scenario`]: YAML scenario files → modules with spans (tags, dotted paths, imports);
//! - [`resolve`]: the NixOS module system (`lib.evalModules`) → the resolved config, or every
//!   error with file:line:col;
//! - [`output`]: renderings of a resolved config (JSON, YAML, text);
//! - [`diag`]: diagnostics shared by every stage;
//! - [`interrupt`]: Ctrl-C as a flag that long-running stages poll.
//!
//! The binary (`src/main.rs`) is a thin CLI over these.
#![deny(missing_docs)]
// Diagnostics travel by value on the cold error path; boxing them would only add noise.
#![allow(clippy::result_large_err)]

pub mod build;
pub mod diag;
pub mod golden;
pub mod image;
pub mod interrupt;
pub mod output;
pub mod payload;
pub mod resolve;
pub mod scenario;
