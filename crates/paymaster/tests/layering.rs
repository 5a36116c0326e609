//! The crate's layering, as docs/paymaster.md states it: the engine knows nothing about
//! HTTP (no axum, no status codes, no front-end module), and no module imports its way
//! back to itself (no import loop between the top-level modules).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules it names through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut visit = |path: &Path, module: &str| {
        let text = std::fs::read_to_string(path).unwrap();
        let entry = graph.entry(module.to_string()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                entry.insert(name);
            }
        }
    };
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            for inner in std::fs::read_dir(&path).unwrap() {
                visit(&inner.unwrap().path(), &stem);
            }
        } else if stem != "lib" && stem != "main" {
            visit(&path, &stem);
        }
    }
    graph
}

#[test]
fn no_module_imports_its_way_back_to_itself() {
    let graph = imports();
    assert!(
        graph.contains_key("engine") && graph.contains_key("http"),
        "{graph:?}"
    );
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].iter().collect();
        while let Some(next) = stack.pop() {
            assert_ne!(next, start, "import loop through `{start}`: {graph:#?}");
            if seen.insert(next.clone()) {
                stack.extend(graph.get(next).into_iter().flatten());
            }
        }
    }
}

#[test]
fn the_engine_knows_nothing_about_http() {
    let graph = imports();
    for front in ["http", "error", "state"] {
        assert!(
            !graph["engine"].contains(front),
            "the engine imports `{front}`: {:?}",
            graph["engine"]
        );
    }
    let engine = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    for entry in std::fs::read_dir(engine).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for word in ["axum", "StatusCode"] {
            assert!(!text.contains(word), "{} names {word}", path.display());
        }
    }
}
