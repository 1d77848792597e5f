//! The image writer's progress, drawn on a terminal: only on a terminal, only for writes
//! longer than a second, at most ten times a second.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use isoproof::image::write::Progress;

/// A progress bar on standard error.
pub struct Bar {
    start: Instant,
    last: Instant,
    shown: bool,
    tty: bool,
}

impl Bar {
    /// A bar that has drawn nothing yet.
    pub fn new() -> Bar {
        Bar {
            start: Instant::now(),
            last: Instant::now(),
            shown: false,
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// Shows how far the write is.
    pub fn update(&mut self, p: Progress) {
        let now = Instant::now();
        if !self.tty
            || now - self.start < Duration::from_secs(1)
            || now - self.last < Duration::from_millis(100)
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let pct = p.done * 100 / p.total.max(1);
        let bar = "#".repeat((pct / 4) as usize);
        eprint!(
            "\r[{bar:<25}] {pct:>3}% {} / {} MiB",
            p.done >> 20,
            p.total >> 20
        );
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.shown {
            eprintln!();
        }
    }
}
