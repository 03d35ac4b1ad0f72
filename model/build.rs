//! Embeds libtorch's directory as an rpath so every binary and test of the crate runs without
//! `LD_LIBRARY_PATH`. torch-sys declares `links = "tch"`, which hands us `DEP_TCH_LIBTORCH_LIB`.
//! The `stages` and `model-server` crates, which link libtorch too, reuse this script.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let dir = std::fs::canonicalize(&dir).map_or(dir, |p| p.display().to_string());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
