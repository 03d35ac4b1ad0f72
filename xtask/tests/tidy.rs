//! The codebase checks itself: every `.rs` file opens with a `//!` line saying what it is for,
//! ARCHITECTURE.md's code map names every module and binary that exists, and no crate declares
//! a dependency it does not use (or a normal dependency only its tests use).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The workspace's member folders, from the root Cargo.toml.
fn members() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let line = text.lines().find(|l| l.starts_with("members")).expect("a members line");
    line.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

/// Every file under `dir` whose name ends with `ext`, skipping build output and hidden folders.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.map(Result::unwrap) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                out.extend(files(&path, ext));
            }
        } else if name.ends_with(ext) {
            out.push(path);
        }
    }
    out.sort();
    out
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let missing: Vec<String> = members()
        .iter()
        .flat_map(|m| files(&root().join(m), ".rs"))
        .filter(|f| !std::fs::read_to_string(f).unwrap().trim_start().starts_with("//!"))
        .map(|f| f.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "these files do not open with a `//!` line saying what they are for: {missing:?}");
}

/// The text of ARCHITECTURE.md's `### ...` section whose heading names `` `crate/` ``.
fn section<'a>(arch: &'a str, krate: &str) -> &'a str {
    let heading = format!("`{krate}/`");
    let start = arch
        .match_indices("\n### ")
        .map(|(i, _)| i + 1)
        .find(|&i| arch[i..].lines().next().unwrap().contains(&heading))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no `### ` heading naming {heading}"));
    let end = arch[start + 4..].find("\n#").map_or(arch.len(), |i| start + 4 + i);
    &arch[start..end]
}

/// Whether `text` names `name` as a module or file: `name`, name.rs or name/ as a word.
fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
        let after = &text[i + name.len()..];
        before && (after.starts_with(".rs") || after.starts_with('/') || after.starts_with('`'))
    })
}

#[test]
fn the_code_map_names_every_module_folder_and_binary() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for member in members() {
        let src = root().join(&member).join("src");
        let text = section(&arch, &member);
        let mut modules = BTreeSet::new();
        for path in files(&src, ".rs") {
            let rel = path.strip_prefix(&src).unwrap();
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            if parts[0] == "bin" {
                continue;
            }
            // Every folder on the way, and the file itself when it sits at the top of src/.
            let file = parts.pop().unwrap();
            modules.extend(parts.iter().cloned());
            if parts.is_empty() && file != "lib.rs" && file != "main.rs" {
                modules.insert(file.trim_end_matches(".rs").to_string());
            }
        }
        missing.extend(modules.into_iter().filter(|m| !names(text, m)).map(|m| format!("{member}/src/{m}")));
    }
    for bin in binaries() {
        if !arch.contains(&format!("`{bin}`")) {
            missing.push(format!("binary {bin}"));
        }
    }
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map does not name: {missing:?}");
}

/// Every binary the workspace builds: `[[bin]]` names, `src/bin/*.rs`, and `src/main.rs`.
fn binaries() -> BTreeSet<String> {
    let mut bins = BTreeSet::new();
    for member in members() {
        let dir = root().join(&member);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let mut in_bin = false;
        let mut declared = false;
        for line in manifest.lines() {
            if line.starts_with('[') {
                in_bin = line == "[[bin]]";
            } else if let Some(name) = line.strip_prefix("name = ").filter(|_| in_bin) {
                bins.insert(name.trim_matches('"').to_string());
                declared = true;
            }
        }
        // `src/bin/<name>.rs`, and `src/bin/<name>/main.rs` with its modules beside it.
        for entry in std::fs::read_dir(dir.join("src/bin")).into_iter().flatten().map(Result::unwrap) {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "rs") {
                bins.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
            } else if path.join("main.rs").is_file() {
                bins.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        if !declared && dir.join("src/main.rs").is_file() {
            bins.insert(member.clone());
        }
    }
    bins
}

/// `(key, kind)` for every dependency of a manifest (the key, with `-` as `_`, is what code
/// names unless the package's library has another name), `kind` being the table it is in
/// (`dependencies`, `dev-dependencies`, `build-dependencies`).
fn dependencies(manifest: &str) -> Vec<(String, String)> {
    let mut table = String::new();
    let mut out = Vec::new();
    for line in manifest.lines() {
        if line.starts_with('[') {
            table = line.trim_matches(['[', ']']).to_string();
        } else if table.ends_with("dependencies")
            && let Some((name, _)) = line.split_once('=')
            && !line.trim_start().starts_with('#')
        {
            out.push((name.trim().trim_end_matches(".workspace").replace('-', "_"), table.clone()));
        }
    }
    out
}

/// Whether any of `files` uses the crate `ident` (a path, a `use`, or an `extern crate`).
fn used(files: &[PathBuf], ident: &str) -> bool {
    files.iter().any(|f| {
        let text = std::fs::read_to_string(f).unwrap();
        match ident {
            // The library is named otherwise.
            "md_5" => names_crate(&text, "md5"),
            // Used through its `links = "tch"` metadata, which reaches the build script.
            "torch_sys" => text.contains("DEP_TCH_"),
            other => names_crate(&text, other),
        }
    })
}

/// The crate's build script: `build = "..."` in its manifest, else `build.rs` when present.
fn build_script(dir: &Path, manifest: &str) -> Option<PathBuf> {
    let declared = manifest.lines().find_map(|l| l.strip_prefix("build = ")).map(|p| dir.join(p.trim_matches('"')));
    declared.or_else(|| Some(dir.join("build.rs"))).filter(|p| p.is_file())
}

fn names_crate(text: &str, ident: &str) -> bool {
    text.match_indices(ident).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
        let after = &text[i + ident.len()..];
        before && (after.starts_with("::") || text[..i].ends_with("extern crate "))
    })
}

#[test]
fn no_crate_declares_a_dependency_it_does_not_use() {
    let mut problems = Vec::new();
    for member in members() {
        let dir = root().join(&member);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let mut lib = files(&dir.join("src"), ".rs");
        lib.extend(build_script(&dir, &manifest));
        let tests: Vec<PathBuf> =
            ["tests", "benches", "examples"].iter().flat_map(|d| files(&dir.join(d), ".rs")).collect();
        for (ident, table) in dependencies(&manifest) {
            let in_lib = used(&lib, &ident);
            let in_tests = used(&tests, &ident);
            match table.as_str() {
                "dependencies" if !in_lib && in_tests => {
                    problems.push(format!("{member}: {ident} is used only by tests; move it to [dev-dependencies]"))
                }
                "dependencies" | "build-dependencies" if !in_lib => {
                    problems.push(format!("{member}: {ident} is declared but not used"))
                }
                "dev-dependencies" if !in_tests && !in_lib => {
                    problems.push(format!("{member}: dev-dependency {ident} is declared but not used"))
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "unused dependencies:\n{}", problems.join("\n"));
}

#[test]
fn the_checks_see_what_they_check() {
    // The helpers find what they look for, so the tests above cannot pass by finding nothing.
    assert!(members().len() >= 8, "{:?}", members());
    assert!(binaries().contains("model-server") && binaries().contains("gitops-feedback"), "{:?}", binaries());
    assert!(names("a `data/` b", "data") && names("(`idx.rs`)", "idx") && !names("metadata/", "data"));
    assert!(names_crate("use serde::Deserialize;", "serde") && !names_crate("serde_json::x", "serde"));
    let deps = dependencies("[dependencies]\nmd-5.workspace = true\nfoo-bar = { path = \"x\" }\n[features]\nx = []\n");
    assert_eq!(deps, [("md_5".to_string(), "dependencies".to_string()), ("foo_bar".into(), "dependencies".into())]);
}
