//! Embeds libtorch's directory as an rpath so every binary and test of the crate runs without
//! `LD_LIBRARY_PATH`. torch-sys declares `links = "tch"`, which hands us `DEP_TCH_LIBTORCH_LIB`.
//! The `stages` and `model-server` crates reuse this script. It also tells the crate which
//! model `pipeline init` embeds.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    embed_serving_model();
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let dir = std::fs::canonicalize(&dir).map_or(dir, |p| p.display().to_string());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}

/// `pipeline init` embeds the model the workspace's registry serves: its version reaches the
/// crate as `BASE_MODEL`.
fn embed_serving_model() {
    // Read at run time: a build script binary compiled for one checkout may be reused by another.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let registry = std::path::Path::new(&manifest_dir).join("../models/registry.json");
    println!("cargo:rerun-if-changed={}", registry.display());
    let text = std::fs::read_to_string(&registry).unwrap_or_default();
    let version = text.split("\"serving\"").nth(1).and_then(|rest| rest.split('"').nth(1)).unwrap_or_default();
    println!("cargo:rustc-env=BASE_MODEL={version}");
}
