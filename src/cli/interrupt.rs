//! Ctrl-C as a flag: SIGINT, SIGTERM and SIGHUP set it, and the command line passes
//! [`requested`] to long-running library calls (the image writer, golden runs, the boot
//! harness) as their cancel check, so they stop cleanly — the writer drops its temporary
//! file, so an interrupted build leaves nothing at its target. A second signal ends the
//! process at once with status 130.

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
        flag::register_conditional_shutdown(sig, 130, Arc::clone(&f))?;
        flag::register(sig, Arc::clone(&f))?;
    }
    let _ = FLAG.set(f);
    Ok(())
}

/// Whether a signal asked the process to stop.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}
