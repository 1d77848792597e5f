//! Images read back, whoever made them: [`inspect`] decodes every structure it finds with the
//! format modules' records and maps which structure owns which bytes; [`snapshot`] keeps an
//! image as a record of its structures and files (golden records of any image); [`diff`]
//! compares two images structure by structure, then byte range by owner; [`content`] compares
//! text and the embedded config; [`fat`] reads ESPs of any origin.

pub mod content;
pub mod descriptor;
pub mod diff;
pub mod error;
pub mod fat;
pub(crate) mod img;
pub mod inspect;
mod render;
pub mod report;
pub mod snapshot;
pub mod walk;
