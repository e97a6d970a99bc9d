//! The repository's habits, checked: every crate is in `docs/ARCHITECTURE.md` and
//! every source file of a crate is named in its section there (and every file named
//! there exists); every `.rs` file opens with a `//!` header saying what it holds;
//! every package takes the workspace's lints.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The text of `docs/ARCHITECTURE.md` under the heading `### \`crates/NAME\``, up to the next heading.
fn section<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let start = doc.find(&format!("### `crates/{name}`"))?;
    let body = &doc[start + 4..];
    Some(&body[..body.find("\n##").unwrap_or(body.len())])
}

#[test]
fn architecture_names_every_crate_and_every_file_in_it() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let mut problems = Vec::new();
    for name in crates() {
        let Some(text) = section(&doc, &name) else {
            problems.push(format!("crates/{name} has no section in docs/ARCHITECTURE.md"));
            continue;
        };
        let src = root().join("crates").join(&name).join("src");
        for file in rust_files(&src) {
            let rel = file.strip_prefix(&src).unwrap().display().to_string();
            let entry = matches!(rel.as_str(), "lib.rs" | "main.rs");
            if !entry && !text.contains(&format!("`{rel}`")) && !text.contains(&format!("`{}`", file_name(&file))) {
                problems.push(format!("crates/{name}/src/{rel} is not in its ARCHITECTURE.md section"));
            }
        }
        // Names are the crate's own files, in src/ or (with the folder) examples/; paths to
        // tests are references.
        let own = rust_files(&root().join("crates").join(&name));
        for named in text.split('`').filter(|w| w.ends_with(".rs") && !w.contains(' ') && !w.contains("tests/")) {
            let exists = own.iter().any(|f| f.ends_with(named));
            if !exists {
                problems.push(format!("ARCHITECTURE.md names {named} under crates/{name}, which has no such file"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_rust_file_opens_with_a_header_saying_what_it_holds() {
    let mut missing = Vec::new();
    for dir in ["crates", "src", "tests", "xtask"] {
        for file in rust_files(&root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap();
            if !text.trim_start().starts_with("//!") {
                missing.push(file.strip_prefix(root()).unwrap().display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "files without a //! header:\n{}", missing.join("\n"));
}

#[test]
fn every_package_takes_the_workspace_lints() {
    let manifests: Vec<PathBuf> = std::iter::once(root().join("Cargo.toml"))
        .chain(crates().iter().map(|c| root().join("crates").join(c).join("Cargo.toml")))
        .chain([root().join("xtask/Cargo.toml")])
        .collect();
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.contains("[lints]\nworkspace = true"), "{} does not take the workspace lints", manifest.display());
    }
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    for lint in ["unsafe_op_in_unsafe_fn = \"deny\"", "undocumented_unsafe_blocks = \"deny\"", "unwrap_used = \"deny\""]
    {
        assert!(workspace.contains(lint), "the workspace lints lost {lint}");
    }
}
