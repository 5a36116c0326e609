//! The JS reference stack, for tests and benchmarks: starknet.js 9.2.1 and Chipi's
//! `@chipi-stack/backend` 14.4.0, pinned by `js/package-lock.json` and installed with
//! `npm ci` on first use, and a runner for the Node scripts in `js/` (`interop.mjs` for
//! the interop tests of this crate, `chipi_e2e.mjs` and `chipi_policy.mjs`
//! (over `chipi_sdk.mjs`) for Chipi's JS SDK against our paymaster service, `snip29.mjs`,
//! `snip29_accounts.mjs` and `snip29_deploy.mjs` for starknet.js's SNIP-29 client against it, `oe_sign.mjs` for
//! chipi-bench's comparison).
//!
//! Test-only: nothing of the product depends on it. Needs Node.js (20 or newer) and npm;
//! without them every call fails, saying so.
#![deny(missing_docs)]

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// Node.js or npm is missing, or a script failed or printed no JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsError(pub String);

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsError {}

fn err(message: impl Into<String>) -> JsError {
    JsError(message.into())
}

/// `crates/js-interop/js`: the pinned npm packages and the Node scripts.
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

fn tool_version(tool: &str) -> Result<String, JsError> {
    let missing = || {
        err(format!(
            "`{tool}` was not found on PATH. The starknet.js comparison and the JS interop \
             tests need Node.js (20 or newer) and npm with access to the npm registry \
             (Debian: `apt-get install nodejs npm`)."
        ))
    };
    let output = Command::new(tool)
        .arg("--version")
        .output()
        .map_err(|_| missing())?;
    if !output.status.success() {
        return Err(missing());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn install_js_deps(dir: &Path) -> Result<(), JsError> {
    tool_version("node")?;
    let installed = dir.join("node_modules/.package-lock.json");
    let fresh = match (
        modified(&installed),
        modified(&dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if fresh
        && dir.join("node_modules/starknet/package.json").exists()
        && dir
            .join("node_modules/@chipi-stack/backend/package.json")
            .exists()
    {
        return Ok(());
    }
    tool_version("npm")?;
    eprintln!(
        "installing the pinned npm packages: npm ci --prefix {}",
        dir.display()
    );
    let output = Command::new("npm")
        .arg("ci")
        .arg("--prefix")
        .arg(dir)
        .args(["--no-audit", "--no-fund"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| err(format!("could not run npm: {e}")))?;
    if !output.status.success() {
        return Err(err(format!(
            "`npm ci --prefix {}` failed ({}):\n{}{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(())
}

/// Installs the pinned npm packages (`npm ci`) unless `node_modules` is already
/// there and newer than the lock file; fails clearly without Node.js or npm. Once per
/// process.
pub fn ensure_js_deps() -> Result<(), JsError> {
    static DONE: OnceLock<Result<(), JsError>> = OnceLock::new();
    DONE.get_or_init(|| install_js_deps(&js_dir())).clone()
}

/// Runs `node js/<script> <args>` with `input` as JSON on stdin, and parses the JSON it
/// prints. Installs the npm packages first if needed.
pub fn run_node(script: &str, args: &[&str], input: &Value) -> Result<Value, JsError> {
    ensure_js_deps()?;
    let dir = js_dir();
    let mut child = Command::new("node")
        .arg(dir.join(script))
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("could not start node: {e}")))?;
    let stdin = child.stdin.take();
    if let Some(mut stdin) = stdin {
        stdin
            .write_all(input.to_string().as_bytes())
            .map_err(|e| err(format!("could not write to node: {e}")))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| err(format!("node failed: {e}")))?;
    if !output.status.success() {
        return Err(err(format!(
            "node {script} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        err(format!(
            "node {script} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        ))
    })
}

/// The Node.js version (`v20...`), or a clear error when Node.js is missing.
pub fn node_version() -> Result<String, JsError> {
    tool_version("node")
}
