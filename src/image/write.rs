//! The streaming writer: writes a [`Plan`] in offset order into a temporary file beside the
//! target and renames it into place only when everything was written, so an error or Ctrl-C
//! never leaves a partial image at the target. File data goes through `std::io::copy`
//! (`copy_file_range` between files), so memory does not grow with the image.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::plan::{Content, Plan};
use super::ImageError;
use crate::interrupt;

/// Copy file data in pieces of this size, to report progress.
const PIECE: u64 = 64 << 20;

struct Progress {
    start: Instant,
    last: Instant,
    total: u64,
    shown: bool,
    tty: bool,
}

impl Progress {
    fn update(&mut self, done: u64) {
        let now = Instant::now();
        // Only on a terminal, only for writes longer than a second, at most 10 times a second.
        if !self.tty
            || now - self.start < Duration::from_secs(1)
            || now - self.last < Duration::from_millis(100)
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let pct = done * 100 / self.total.max(1);
        let bar = "#".repeat((pct / 4) as usize);
        eprint!(
            "\r[{bar:<25}] {pct:>3}% {} / {} MiB",
            done >> 20,
            self.total >> 20
        );
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// Writes the plan to `out` atomically.
pub fn write(plan: &Plan, out: &Path) -> Result<(), ImageError> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| ImageError::io(dir, e))?;
    let mut progress = Progress {
        start: Instant::now(),
        last: Instant::now(),
        total: plan.size,
        shown: false,
        tty: io::stderr().is_terminal(),
    };
    write_into(plan, tmp.as_file_mut(), &mut progress, out)?;
    progress.finish();
    crate::output::publishable(tmp.as_file()).map_err(|e| ImageError::io(out, e))?;
    tmp.persist(out).map_err(|e| ImageError::io(out, e.error))?;
    Ok(())
}

fn write_into(
    plan: &Plan,
    f: &mut File,
    progress: &mut Progress,
    out: &Path,
) -> Result<(), ImageError> {
    let io_err = |e| ImageError::io(out, e);
    let mut pos = 0u64;
    let mut buf = io::BufWriter::with_capacity(1 << 20, f);
    for e in &plan.extents {
        if interrupt::requested() {
            return Err(ImageError::Interrupted);
        }
        let gap = e.offset.checked_sub(pos).ok_or_else(|| {
            ImageError::Input(format!(
                "internal error: extent {:?} at {} overlaps the one before (ends at {pos})",
                e.what, e.offset
            ))
        })?;
        zeros(&mut buf, gap).map_err(io_err)?;
        pos = e.offset;
        match &e.content {
            Content::Bytes(b) => buf.write_all(b).map_err(io_err)?,
            Content::File { source, size } => {
                buf.flush().map_err(io_err)?;
                copy_file(source, *size, buf.get_mut(), pos, progress)?;
            }
        }
        pos += e.content.len();
        progress.update(pos);
    }
    let tail = plan
        .size
        .checked_sub(pos)
        .ok_or_else(|| ImageError::Input("internal error: extents past the image size".into()))?;
    zeros(&mut buf, tail).map_err(io_err)?;
    buf.flush().map_err(io_err)?;
    let f = buf.get_mut();
    debug_assert_eq!(f.stream_position().ok(), Some(plan.size));
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

fn copy_file(
    source: &Path,
    size: u64,
    out: &mut File,
    at: u64,
    progress: &mut Progress,
) -> Result<(), ImageError> {
    let io_err = |e| ImageError::io(source, e);
    let mut src = File::open(source).map_err(io_err)?;
    let changed = || ImageError::Changed(source.to_path_buf());
    if src.metadata().map_err(io_err)?.len() != size {
        return Err(changed());
    }
    let mut done = 0u64;
    while done < size {
        if interrupt::requested() {
            return Err(ImageError::Interrupted);
        }
        let want = (size - done).min(PIECE);
        let n = io::copy(&mut (&mut src).take(want), out).map_err(io_err)?;
        if n == 0 {
            return Err(changed());
        }
        done += n;
        progress.update(at + done);
    }
    // Nothing may follow: a file that grew is as wrong as one that shrank.
    let mut probe = [0u8; 1];
    if src.read(&mut probe).map_err(io_err)? != 0 {
        return Err(changed());
    }
    Ok(())
}
