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
//! Measured on one `broker write` (callgrind, perf stat): the loader's work
//! before `main` falls from ~352,000 to ~266,000 instructions, and 500
//! sequential writes on tmpfs took 7.3 ms per process instead of 8.4 ms (one
//! run on a loaded machine; see BENCHMARKS.md for the side-by-side runs).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=broker=-no-pie");
        println!("cargo:rustc-link-arg-bin=broker=-Wl,-z,lazy");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
