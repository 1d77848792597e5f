//! Ctrl-C as a flag: SIGINT, SIGTERM and SIGHUP set it, and the command line passes
//! [`requested`] to long-running library calls (the image writer, golden runs, the boot
//! harness) as their cancel check, so they stop cleanly — the writer drops its temporary
//! file, so an interrupted build leaves nothing at its target. A second signal ends the
//! process at once with status 130, after removing the temporary files being written.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::flag;

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// Installs the handlers (once; later calls do nothing).
pub fn install() -> io::Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let f = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // Registered first, so it sees the flag as it was before this signal set it.
        let seen = Arc::clone(&f);
        // SAFETY: the handler only loads an atomic, calls `remove_pending_now` (atomic swaps
        // and unlink) and `_exit`: all async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                if seen.load(Ordering::SeqCst) {
                    isoproof::publish::remove_pending_now();
                    signal_hook::low_level::exit(130);
                }
            })?;
        }
        flag::register(sig, Arc::clone(&f))?;
    }
    let _ = FLAG.set(f);
    Ok(())
}

/// Whether a signal asked the process to stop.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
