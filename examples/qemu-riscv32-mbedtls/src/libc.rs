//! The C library functions Mbed TLS's prebuilt library refers to and no Rust crate provides
//! on stable Rust without a C compiler: the printf family (C-variadic functions cannot be
//! written in stable Rust; tinyrlibc's `snprintf` is C, built with a riscv32 C compiler this
//! program does without). Mbed TLS calls them only to format text: debug messages (off: the
//! debug threshold is 0), `mbedtls_x509_crt_info` and `mbedtls_x509_dn_gets` (which nothing
//! here calls) and a configuration self-check that prints only when it fails. Each is a stub
//! that ends the run with an error line if it is ever called, so a run that succeeds proves
//! they were not. (`memchr`, `strchr` and `strcmp` come from tinyrlibc.)

use core::ffi::{c_char, c_int};

use crate::board;

fn unexpected(name: &str) -> ! {
    use core::fmt::Write;
    let mut out = board::Host::new();
    let _ = write!(
        out,
        "\n{{\"ok\":false,\"error\":\"unexpected C library call: {name}\"}}\n"
    );
    out.flush();
    board::exit(103)
}

/// `int snprintf(char *str, size_t size, const char *format, ...)`: the fixed arguments are
/// in the same registers as for a variadic call (RISC-V ilp32); the rest are not read.
#[no_mangle]
extern "C" fn snprintf(_str: *mut c_char, _size: usize, _format: *const c_char) -> c_int {
    unexpected("snprintf")
}

#[no_mangle]
extern "C" fn vsnprintf(
    _str: *mut c_char,
    _size: usize,
    _format: *const c_char,
    _args: *mut core::ffi::c_void,
) -> c_int {
    unexpected("vsnprintf")
}

#[no_mangle]
extern "C" fn printf(_format: *const c_char) -> c_int {
    unexpected("printf")
}

#[no_mangle]
extern "C" fn puts(_s: *const c_char) -> c_int {
    unexpected("puts")
}
