//! Link options for the `broker` executable only.
//!
//! Most uses of `broker` are one short process per message, where starting
//! the executable is a large part of the cost (see BENCHMARKS.md, "The last
//! quarter of a write process"). Two link options halve what the dynamic
//! loader does before `main`:
//!
//! * `-no-pie`: a position-dependent executable needs none of the ~3,600
//!   relative relocations a PIE gets (each written at start-up, dirtying the
//!   pages that hold them); the shared libraries are still randomised.
//! * `-z lazy`: library functions are bound on first call instead of all
//!   (~200) before `main`; a `write` calls a fraction of them. This gives up
//!   full RELRO (the GOT stays writable), acceptable for a local CLI that
//!   handles no untrusted network input.
//!
//! Measured with 1,000 sequential `broker write` processes on tmpfs: 8.4 ms
//! per process before, 7.3 ms after (same machine, same run).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=broker=-no-pie");
        println!("cargo:rustc-link-arg-bin=broker=-Wl,-z,lazy");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
