//! The streaming writer: writes a [`Plan`] in offset order into a temporary file beside the
//! target and renames it into place only when everything was written (see
//! [`crate::publish`]), so an error or a cancel never leaves a partial image at the target. File data goes through
//! `std::io::copy` (`copy_file_range` between files), so memory does not grow with the image.
//! The caller says when to stop (`cancel`, asked between pieces) and hears how far the write
//! is (`progress`); the writer draws nothing itself.

pub(crate) mod fat;
pub mod plan;
pub mod tree;

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::path::Path;

use crate::image::write::plan::{Content, Plan};
use crate::image::ImageError;
use crate::input::{self, InputError, Stamp};
use crate::publish::{Durable, Pending};

/// Copy file data in pieces of this size, to report progress and ask whether to stop.
const PIECE: u64 = 64 << 20;

/// How far a write is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Bytes written.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// Writes the plan to `out` atomically. `cancel` is asked between extents and pieces of
/// file data; when it says stop, the temporary file goes and [`ImageError::Interrupted`]
/// comes back.
pub(crate) fn write(
    plan: &Plan,
    out: &Path,
    durable: Durable,
    cancel: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ImageError> {
    let mut pending = Pending::create_as(out, durable).map_err(|e| ImageError::write(out, e))?;
    let mut w = Sink {
        cancel,
        progress,
        total: plan.size,
    };
    write_into(plan, pending.file(), &mut w, out)?;
    pending.commit().map_err(|e| ImageError::write(out, e))
}

/// The caller's side of a write.
struct Sink<'a> {
    cancel: &'a dyn Fn() -> bool,
    progress: &'a mut dyn FnMut(Progress),
    total: u64,
}

impl Sink<'_> {
    fn at(&mut self, done: u64) -> Result<(), ImageError> {
        (self.progress)(Progress {
            done,
            total: self.total,
        });
        if (self.cancel)() {
            return Err(ImageError::Interrupted);
        }
        Ok(())
    }
}

fn write_into(
    plan: &Plan,
    f: &mut File,
    sink: &mut Sink<'_>,
    out: &Path,
) -> Result<(), ImageError> {
    let io_err = |e| ImageError::write(out, e);
    let mut pos = 0u64;
    let mut buf = io::BufWriter::with_capacity(1 << 20, f);
    for e in &plan.extents {
        sink.at(pos)?;
        let gap = e.offset.checked_sub(pos).ok_or(ImageError::Plan(
            crate::image::write::plan::PlanError::Internal("an extent overlaps the one before"),
        ))?;
        zeros(&mut buf, gap).map_err(io_err)?;
        pos = e.offset;
        match &e.content {
            Content::Bytes(b) => buf.write_all(b).map_err(io_err)?,
            Content::File {
                source,
                size,
                stamp,
            } => {
                buf.flush().map_err(io_err)?;
                copy_file(source, *size, *stamp, buf.get_mut(), out, pos, sink)?;
            }
        }
        pos += e.content.len();
    }
    let tail = plan.size.checked_sub(pos).ok_or(ImageError::Plan(
        crate::image::write::plan::PlanError::Internal("extents past the image size"),
    ))?;
    zeros(&mut buf, tail).map_err(io_err)?;
    buf.flush().map_err(io_err)?;
    let f = buf.get_mut();
    debug_assert_eq!(f.stream_position().ok(), Some(plan.size));
    sink.at(plan.size)?;
    Ok(())
}

fn zeros(w: &mut impl Write, mut n: u64) -> io::Result<()> {
    const Z: [u8; 8192] = [0; 8192];
    while n > 0 {
        let k = n.min(Z.len() as u64) as usize;
        w.write_all(&Z[..k])?;
        n -= k as u64;
    }
    Ok(())
}

/// Whether an error of a copy means the target cannot take more bytes.
fn is_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded | io::ErrorKind::FileTooLarge
    ) || e.raw_os_error() == Some(28) // ENOSPC
}

/// Copies one source file into the image at `at`. The file must still be the one planned
/// (same stamp) when it is opened and when the copy ends, and give exactly `size` bytes: a
/// file rewritten meanwhile, even to the same size, would make a torn image.
fn copy_file(
    source: &Path,
    size: u64,
    stamp: Stamp,
    out: &mut File,
    target: &Path,
    at: u64,
    sink: &mut Sink<'_>,
) -> Result<(), ImageError> {
    let read_err = |e| ImageError::read(source, e);
    let changed = || ImageError::Changed(source.to_path_buf());
    let (mut src, md) = input::open_regular(source).map_err(|e| match e {
        InputError::Io { source: e, .. } => read_err(e),
        other => read_err(io::Error::other(other.to_string())),
    })?;
    if Stamp::of(&md) != stamp {
        return Err(changed());
    }
    let mut done = 0u64;
    while done < size {
        sink.at(at + done)?;
        let want = (size - done).min(PIECE);
        // copy_file_range does both sides in one call: a full disk is the target's fault.
        let n = io::copy(&mut (&mut src).take(want), out).map_err(|e| {
            if is_full(&e) {
                ImageError::write(target, e)
            } else {
                read_err(e)
            }
        })?;
        if n == 0 {
            return Err(changed());
        }
        done += n;
    }
    // Nothing may follow: a file that grew is as wrong as one that shrank.
    let mut probe = [0u8; 1];
    if src.read(&mut probe).map_err(read_err)? != 0 {
        return Err(changed());
    }
    if Stamp::of(&src.metadata().map_err(read_err)?) != stamp {
        return Err(changed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{clock::Clock, write::plan, write::tree};
    use std::fs;

    #[test]
    fn a_file_rewritten_to_the_same_size_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("same"), "before").unwrap();
        let root = tree::scan(&src).unwrap();
        let p = plan::plan(&root, &plan::Options::new("X", Clock::at(0))).unwrap();
        // Past the kernel's timestamp granularity, so the rewrite gets a new ctime.
        std::thread::sleep(std::time::Duration::from_millis(30));
        fs::write(src.join("same"), "after!").unwrap();
        let out = t.path().join("out.iso");
        let e = write(&p, &out, Durable::Yes, &|| false, &mut |_| {}).unwrap_err();
        assert!(matches!(e, ImageError::Changed(_)), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn a_file_that_changes_size_is_an_error_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("grows"), "short").unwrap();
        let root = tree::scan(&src).unwrap();
        let p = plan::plan(&root, &plan::Options::new("X", Clock::at(0))).unwrap();
        fs::write(src.join("grows"), "much longer now").unwrap();
        let out = t.path().join("out.iso");
        let e = write(&p, &out, Durable::Yes, &|| false, &mut |_| {}).unwrap_err();
        assert!(matches!(e, ImageError::Changed(_)), "{e}");
        assert!(!out.exists());
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "only src/ remains"
        );
    }

    #[test]
    fn cancel_stops_the_write_and_progress_is_reported() {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        fs::create_dir(&src).unwrap();
        fs::write(src.join("a"), vec![7u8; 5000]).unwrap();
        let root = tree::scan(&src).unwrap();
        let p = plan::plan(&root, &plan::Options::new("X", Clock::at(0))).unwrap();
        let out = t.path().join("out.iso");
        let mut seen = Vec::new();
        write(&p, &out, Durable::Yes, &|| false, &mut |pr| seen.push(pr)).unwrap();
        assert_eq!(
            seen.last(),
            Some(&Progress {
                done: p.size,
                total: p.size
            })
        );
        assert!(seen.windows(2).all(|w| w[0].done <= w[1].done));
        fs::remove_file(&out).unwrap();
        let e = write(&p, &out, Durable::Yes, &|| true, &mut |_| {}).unwrap_err();
        assert!(matches!(e, ImageError::Interrupted));
        assert_eq!(
            fs::read_dir(t.path()).unwrap().count(),
            1,
            "only src/ remains"
        );
    }
}
