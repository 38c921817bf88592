//! Nothing half-written is left behind: every temporary output is registered here while it
//! exists, and a signal (SIGINT, SIGTERM, SIGHUP, SIGPIPE) removes them all before the process
//! exits with 128 + the signal's number, as gzip does. SIGXFSZ (`ulimit -f`) is ignored, so
//! that a write past the limit fails with EFBIG: that file's output is removed and the next
//! file is tried. Inputs are never touched here: an input is removed only after its output is
//! complete and renamed.

use signal_hook::consts::{SIGHUP, SIGINT, SIGPIPE, SIGTERM};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The temporary outputs that exist now.
static TEMPORARIES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Start the thread that cleans up and exits on a signal. Call once, before any output.
pub fn install() -> std::io::Result<()> {
    // SAFETY: setting a signal's disposition to SIG_IGN runs no code in a handler.
    if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(std::io::Error::last_os_error());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGPIPE])?;
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            remove_all();
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// Remove every registered temporary output (the signal path; ordinary errors remove theirs
/// when the temporary file is dropped).
fn remove_all() {
    let paths = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    for path in paths.iter() {
        let _ = std::fs::remove_file(path);
    }
}

/// Register a temporary output.
pub fn register(path: &Path) {
    let mut paths = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    paths.push(path.to_path_buf());
}

/// Forget a temporary output that was renamed or removed.
pub fn forget(path: &Path) {
    let mut paths = TEMPORARIES.lock().unwrap_or_else(|e| e.into_inner());
    paths.retain(|p| p != path);
}
