//! One set of logging macros for the crate: they go to `defmt` or `log` when that feature is
//! on, and compile to nothing otherwise. With both features on (Cargo features add up: another
//! crate of the build may turn on the other one), `defmt` wins and `log` gets nothing, as in
//! embassy's crates. Only status, framing and byte counts are logged here; never body bytes or
//! header values (the opt-in wire trace is separate, and follows the same rule).
#![allow(unused_macros)]

macro_rules! trace {
    ($s:literal $(, $x:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::trace!($s $(, $x)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::trace!($s $(, $x)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        let _ = ($( & $x ),*);
    }};
}

macro_rules! debug {
    ($s:literal $(, $x:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::debug!($s $(, $x)*);
        #[cfg(all(feature = "log", not(feature = "defmt")))]
        ::log::debug!($s $(, $x)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        let _ = ($( & $x ),*);
    }};
}

pub(crate) use debug;
pub(crate) use trace;
