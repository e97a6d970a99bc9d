//! The Rust side of ganzoo's CUDA kernels against their C side, as text, on every
//! machine: each kernel of `kernels.cu` has one launch declaration in `cuda/launch.rs`
//! with the same parameters (names, order, types), every launch goes through those
//! declarations, and the launch shape's block size is the kernels'. A mismatch here would
//! reach a GPU as garbage values or a fault, with nothing on the CPU to show it.

use std::collections::BTreeMap;
use std::path::Path;

fn source(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/ganzoo-kernels/src/cuda").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `a, b<c, d>, e` → `["a", "b<c, d>", "e"]`: commas outside brackets.
fn split_params(list: &str) -> Vec<String> {
    let (mut parts, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for ch in list.chars() {
        match ch {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    if !current.trim().is_empty() {
        parts.push(current.trim().to_string());
    }
    parts
}

/// Each `{marker}NAME(PARAMS)` in `text`: NAME → PARAMS.
fn signatures(text: &str, marker: &str) -> BTreeMap<String, Vec<String>> {
    let mut found = BTreeMap::new();
    for piece in text.split(marker).skip(1) {
        let open = piece.find('(').unwrap();
        let (name, rest) = (piece[..open].trim().to_string(), &piece[open + 1..]);
        let mut depth = 1;
        let close = rest
            .char_indices()
            .find(|&(_, ch)| {
                depth += match ch {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .unwrap()
            .0;
        let params = split_params(&rest[..close].split_whitespace().collect::<Vec<_>>().join(" "));
        assert!(found.insert(name.clone(), params).is_none(), "{name} is declared twice");
    }
    found
}

/// `const float* x` → `("x", "const float*")`.
fn c_param(param: &str) -> (String, String) {
    let spaced = param.replace('*', " * ");
    let mut tokens: Vec<&str> = spaced.split_whitespace().collect();
    let name = tokens.pop().unwrap().to_string();
    (name, tokens.join(" ").replace(" *", "*"))
}

/// `x: &CudaView<'_, f32>` → `("x", "const float*")`, by `launch.rs`'s convention.
fn rust_param(param: &str) -> (String, String) {
    let (name, ty) = param.split_once(':').unwrap_or_else(|| panic!("'{param}' has no type"));
    let ty = ty.replace(' ', "");
    let scalar = |t: &str| match t {
        "usize" => "size_t",
        "i32" => "int",
        "f32" => "float",
        "f64" => "double",
        "u64" => "unsigned long long",
        other => panic!("{name}: no C type for {other}"),
    };
    let pointer = |t: &str, open: &str| {
        t.strip_prefix(open).and_then(|t| t.strip_suffix('>')).map(|e| scalar(e.trim_start_matches("'_,")))
    };
    let c = if let Some(t) = ty.strip_prefix("&mut") {
        let element = pointer(t, "CudaViewMut<").or_else(|| pointer(t, "CudaSlice<"));
        format!("{}*", element.unwrap_or_else(|| panic!("{name}: {ty} is not a writable device pointer")))
    } else if let Some(t) = ty.strip_prefix('&') {
        match pointer(t, "CudaView<").or_else(|| pointer(t, "CudaSlice<")) {
            Some(element) => format!("const {element}*"),
            None => scalar(t).to_string(),
        }
    } else {
        panic!("{name}: {ty} is not a reference (the launch pushes every parameter by reference)")
    };
    (name.trim().to_string(), c)
}

#[test]
fn every_kernel_is_launched_with_its_c_signature() {
    let c = signatures(&source("kernels.cu"), "extern \"C\" __global__ void ");
    let launch = source("launch.rs");
    let declared = launch.split_once("kernels! {\n").unwrap().1;
    let rust = signatures(declared, "    fn ");
    assert_eq!(c.keys().collect::<Vec<_>>(), rust.keys().collect::<Vec<_>>(), "kernels in kernels.cu vs launch.rs");
    assert!(c.len() >= 12, "found only {} kernels", c.len());
    for (name, params) in &c {
        let want: Vec<_> = params.iter().map(|p| c_param(p)).collect();
        let have: Vec<_> = rust[name].iter().map(|p| rust_param(p)).collect();
        assert_eq!(have, want, "{name}: launch.rs's parameters (left) vs kernels.cu's (right)");
    }
}

#[test]
fn launches_go_through_the_declarations_with_the_kernels_block_size() {
    for file in ["mod.rs", "batch_norm.rs", "layer_norm.rs", "multi_tensor.rs"] {
        let text = source(file);
        for call in ["get_or_load_custom_func", ".builder()", ".launch("] {
            assert!(!text.contains(call), "{file} calls {call} itself; launches belong in launch.rs");
        }
    }
    let number = |text: &str, before: &str, after: char| -> u32 {
        let rest = text.split_once(before).unwrap_or_else(|| panic!("no '{before}'")).1;
        rest[..rest.find(after).unwrap()].trim().parse().unwrap()
    };
    let kernels = number(&source("kernels.cu"), "#define GZ_BLOCK", '\n');
    let launches = number(&source("mod.rs"), "const BLOCK: u32 =", ';');
    assert_eq!(launches, kernels, "block size of the per-channel and per-sample launches vs GZ_BLOCK");
}

#[test]
fn the_checks_read_c_and_rust_parameters_as_intended() {
    assert_eq!(c_param("const float *x"), ("x".into(), "const float*".into()));
    assert_eq!(c_param("double* moments"), ("moments".into(), "double*".into()));
    assert_eq!(c_param("size_t n"), ("n".into(), "size_t".into()));
    assert_eq!(rust_param("x: &CudaView<'_, f32>"), ("x".into(), "const float*".into()));
    assert_eq!(rust_param("m: &mut CudaSlice<f64>"), ("m".into(), "double*".into()));
    assert_eq!(rust_param("v: &mut CudaViewMut<'_, f32>"), ("v".into(), "float*".into()));
    assert_eq!(rust_param("n: &i32"), ("n".into(), "int".into()));
    assert_eq!(split_params("a: &CudaView<'_, f32>, b: &usize"), ["a: &CudaView<'_, f32>", "b: &usize"]);
    assert!(std::panic::catch_unwind(|| rust_param("n: usize")).is_err(), "a value, not a reference");
    assert_eq!(rust_param("t: &CudaSlice<u64>"), ("t".into(), "const unsigned long long*".into()));
    assert_eq!(c_param("const unsigned long long* t"), ("t".into(), "const unsigned long long*".into()));
    assert!(std::panic::catch_unwind(|| rust_param("n: &u8")).is_err(), "no C type chosen for u8");
}
