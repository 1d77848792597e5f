//! Stage 5 of the isoproof pipeline: **boot**. Launches `qemu-system-x86_64` through
//! `std::process` (never a shell) to boot an image on SeaBIOS or OVMF from a CD-ROM, a USB
//! stick or a virtio disk, under a deadline that always ends in a dead and reaped QEMU, and
//! runs boot matrices in parallel with retries, a table and JUnit XML.
//!
//! - [`qemu`]: the command line of one boot;
//! - [`firmware`]: finding OVMF through QEMU's firmware descriptors and known paths;
//! - [`accel`]: KVM only when a real self-test says it works, else TCG;
//! - [`run`]: one process, its process group, deadline and Ctrl-C;
//! - [`qmp`]: screenshots of guests that hang;
//! - [`boot`]: one boot in a fresh working directory;
//! - [`matrix`]: many boots, judged;
//! - [`varstore`]: OVMF variable stores with the image's own key enrolled for Secure Boot.
//!
//! What a guest must print is not this crate's business: callers pass a verdict function.

pub mod accel;
pub mod boot;
pub mod error;
pub mod expect;
pub mod firmware;
pub mod matrix;
pub mod qemu;
pub mod qmp;
pub mod run;
pub mod varstore;

pub use boot::{Attempt, Machine};
pub use error::{Cause, Error};
pub use qemu::{Accel, Firmware, Media, Mode, Ovmf};
