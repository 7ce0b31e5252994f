//! Release builds for the browser drop the wasm `name` section (function names, ~28 KB
//! gzipped that no user needs) with wasm-ld's `--strip-debug`. Unlike `strip = true`, this
//! keeps the `target_features` section that wasm-bindgen reads. Native and debug builds
//! (tests, where names make panics readable) are left alone, and so is a build with
//! `IACSCOPE_WASM_NAMES=1` in its environment (for `twiggy`: it then names every function and static).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let keep_names = std::env::var_os("IACSCOPE_WASM_NAMES").is_some_and(|v| v == "1");
    if target.starts_with("wasm32") && profile == "release" && !keep_names {
        println!("cargo:rustc-link-arg-bins=--strip-all");
        println!("cargo:rustc-link-arg-bins=--keep-section=target_features");
    } else if target.starts_with("wasm32") && keep_names {
        // One data segment per static, so twiggy names the tables too.
        println!("cargo:rustc-link-arg-bins=--no-merge-data-segments");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=IACSCOPE_WASM_NAMES");
}
