//! Tells the crate which model `pipeline init` embeds: the one the workspace's registry serves,
//! as `BASE_MODEL`.

fn main() {
    // Read at run time: a build script binary compiled for one checkout may be reused by another.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let registry = std::path::Path::new(&manifest_dir).join("../models/registry.json");
    println!("cargo:rerun-if-changed={}", registry.display());
    let text = std::fs::read_to_string(&registry).unwrap_or_default();
    let version = text.split("\"serving\"").nth(1).and_then(|rest| rest.split('"').nth(1)).unwrap_or_default();
    println!("cargo:rustc-env=BASE_MODEL={version}");
}
