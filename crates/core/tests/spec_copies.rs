//! `docs/PROTOCOL.md` and `docs/API.md` are copies of the shared specification, so that
//! links in the code resolve inside the repository; this flags a copy that drifted.
//! Without the shared folder it says it was skipped, and fails under CI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/shared_dir.rs"]
mod shared_dir;

#[test]
fn the_spec_in_docs_is_the_shared_one() {
    let Some(shared) = shared_dir::shared_dir("the_spec_in_docs_is_the_shared_one") else {
        return;
    };
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for name in ["PROTOCOL.md", "API.md"] {
        let ours = std::fs::read_to_string(format!("{root}/docs/{name}")).unwrap();
        let path = shared.join("spec").join(name);
        let shared =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            ours, shared,
            "docs/{name} is stale: copy ../shared/spec/{name}"
        );
    }
}
