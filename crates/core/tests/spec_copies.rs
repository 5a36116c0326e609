//! `docs/PROTOCOL.md` and `docs/API.md` are copies of the shared specification, so that
//! links in the code resolve inside the repository; this flags a copy that drifted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn the_spec_in_docs_is_the_shared_one() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for name in ["PROTOCOL.md", "API.md"] {
        let ours = std::fs::read_to_string(format!("{root}/docs/{name}")).unwrap();
        // The shared folder sits beside the repository where it exists (CI, sessions).
        if let Ok(shared) = std::fs::read_to_string(format!("{root}/../shared/spec/{name}")) {
            assert_eq!(
                ours, shared,
                "docs/{name} is stale: copy ../shared/spec/{name}"
            );
        }
    }
}
