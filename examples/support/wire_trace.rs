//! Prints rawpost's wire trace (its `info` records, feature `wire-trace` with `log`) on stdout,
//! indented. Shared by `post` and `post_rustls` (`#[path = "support/wire_trace.rs"] mod
//! wire_trace;`).

use std::sync::atomic::{AtomicBool, Ordering};

static ON: AtomicBool = AtomicBool::new(true);
static LOGGER: Stdout = Stdout;

struct Stdout;

impl log::Log for Stdout {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
            && metadata.target().starts_with("rawpost")
            && ON.load(Ordering::Relaxed)
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            println!("     {}", record.args());
        }
    }

    fn flush(&self) {}
}

/// Makes this the `log` logger (once per process).
pub fn install() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Whether rawpost was built with its wire trace going to `log`.
#[allow(dead_code)] // not every example asks
pub fn compiled_in() -> bool {
    cfg!(all(feature = "wire-trace", feature = "log"))
}

/// Turns the trace on or off.
#[allow(dead_code)]
pub fn set(on: bool) {
    ON.store(on, Ordering::Relaxed);
}
