//! Links the `berth-runtime` binary as a non-PIE executable.
//!
//! A PIE makes the dynamic loader write every pointer in `.data.rel.ro` at start-up, which
//! dirties (and keeps resident) about 0.6 MiB per invocation; a fixed-address executable has
//! those pointers resolved at link time. The library (linked into the shim) is unaffected.
fn main() {
    println!("cargo:rustc-link-arg-bin=berth-runtime=-no-pie");
}
