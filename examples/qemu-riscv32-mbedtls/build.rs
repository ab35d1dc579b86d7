//! Puts ../qemu-riscv32/memory.x (the same memory map as the embedded-tls guest) where the
//! linker finds it (`-Tmemory.x` in .cargo/config.toml).
use std::{env, fs, path::PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let memory = "../qemu-riscv32/memory.x";
    fs::copy(memory, out.join("memory.x")).expect("copying memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rerun-if-changed=build.rs");
}
