//! `cairo-build`: compiles the session-account contract with cairo-lang 2.16.0 and the
//! corelib of the `cairo-native` 0.9.0-rc.5 package, and writes the committed artifacts
//! (Sierra, CASM, manifest with both class hashes). `--check` compiles and fails when
//! the committed artifacts differ from what the source gives.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use cairo_lang_compiler::db::RootDatabase;
use cairo_lang_compiler::diagnostics::DiagnosticsReporter;
use cairo_lang_compiler::project::setup_project;
use cairo_lang_compiler::CompilerConfig;
use cairo_lang_filesystem::ids::CrateInput;
use cairo_lang_lowering::optimizations::config::Optimizations;
use cairo_lang_lowering::utils::InliningStrategy;
use cairo_lang_starknet::compile::compile_contract_in_prepared_db;
use cairo_lang_starknet_classes::casm_contract_class::CasmContractClass;
use clap::Parser;
use starknet_rust_core::types::contract::SierraClass;

const COMPILER: &str = "cairo-lang 2.16.0";
const CORELIB: &str = "cairo-native 0.9.0-rc.5 corelib (Cairo 2.16.0)";
const CONTRACT: &str = "session_account";

/// One contract to compile.
struct Target {
    /// The project under `contracts/`.
    project: &'static str,
    /// The contract's name (and, with several in one project, its module path).
    contract: &'static str,
    path: Option<&'static str>,
    /// The artifacts' file stem (`<stem>.sierra.json`, `<stem>.casm.json`).
    stem: &'static str,
    /// The manifest file.
    manifest: &'static str,
}

/// What is compiled. The test contracts are deployed only by tests: a third party that
/// reverts with a message imitating the wallet's, a gas burner, a call that reverts only
/// outside simulation, an SRC-5 impostor, and a SNIP-9 v2 account of another class than
/// the session account (built on the session account's crate, which the test project
/// lists as a dependency).
const TARGETS: [Target; 6] = [
    Target {
        project: CONTRACT,
        contract: "SessionAccount",
        path: None,
        stem: CONTRACT,
        manifest: "manifest.json",
    },
    Target {
        project: "test_contracts",
        contract: "RevertWith",
        path: Some("test_contracts::RevertWith"),
        stem: "test_contracts",
        manifest: "test_contracts.manifest.json",
    },
    Target {
        project: "test_contracts",
        contract: "GasBurner",
        path: Some("test_contracts::GasBurner"),
        stem: "gas_burner",
        manifest: "gas_burner.manifest.json",
    },
    Target {
        project: "test_contracts",
        contract: "RevertsOnChain",
        path: Some("test_contracts::RevertsOnChain"),
        stem: "reverts_on_chain",
        manifest: "reverts_on_chain.manifest.json",
    },
    Target {
        project: "test_contracts",
        contract: "Src5Impostor",
        path: Some("test_contracts::Src5Impostor"),
        stem: "src5_impostor",
        manifest: "src5_impostor.manifest.json",
    },
    Target {
        project: "test_contracts",
        contract: "Snip9Account",
        path: Some("test_contracts::snip9_account::Snip9Account"),
        stem: "snip9_account",
        manifest: "snip9_account.manifest.json",
    },
];

#[derive(Parser)]
#[command(
    about = "Compile contracts/session_account (and the test contracts) into contracts/artifacts"
)]
struct Args {
    /// Compile, compare with the committed artifacts, write nothing; fail on a difference.
    #[arg(long)]
    check: bool,
    /// The corelib `src` folder; by default the one of the cairo-native package, fetched by cargo.
    #[arg(long)]
    corelib: Option<PathBuf>,
}

struct Artifacts {
    sierra: String,
    casm: String,
    manifest: String,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cairo-build: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let repo = find_repo()?;
    let tool_dir = repo.join("tools").join("cairo-build");
    let corelib = match args.corelib {
        Some(path) => path,
        None => locate_corelib(&tool_dir)?,
    };
    let out_dir = repo.join("contracts").join("artifacts");
    let mut files = Vec::new();
    for target in &TARGETS {
        let artifacts = compile(
            &repo.join("contracts").join(target.project),
            &corelib,
            target,
        )?;
        files.push((format!("{}.sierra.json", target.stem), artifacts.sierra));
        files.push((format!("{}.casm.json", target.stem), artifacts.casm));
        files.push((target.manifest.to_string(), artifacts.manifest));
    }
    if args.check {
        let mut stale = Vec::new();
        for (name, content) in files {
            let committed = std::fs::read_to_string(out_dir.join(&name)).unwrap_or_default();
            if committed != content {
                stale.push(name);
            }
        }
        if !stale.is_empty() {
            bail!(
                "committed artifacts differ from the source: {}; run `cargo run --release --manifest-path tools/cairo-build/Cargo.toml` and commit",
                stale.join(", ")
            );
        }
        println!("artifacts up to date");
    } else {
        std::fs::create_dir_all(&out_dir)?;
        for (name, content) in files {
            std::fs::write(out_dir.join(name), content)?;
        }
        println!("wrote {}", out_dir.display());
    }
    Ok(())
}

/// The repository around the working directory. Not `CARGO_MANIFEST_DIR`: cargo may
/// run a binary built from another clone that shares the target directory.
fn find_repo() -> Result<PathBuf> {
    let start = std::env::current_dir()?;
    for dir in start.ancestors() {
        if dir
            .join("contracts")
            .join(CONTRACT)
            .join("cairo_project.toml")
            .is_file()
        {
            return Ok(dir.to_path_buf());
        }
    }
    bail!(
        "run from inside the repository (no contracts/{CONTRACT} above {})",
        start.display()
    )
}

/// Has cargo download the pinned cairo-native package, then finds its corelib.
fn locate_corelib(tool_dir: &Path) -> Result<PathBuf> {
    let manifest = tool_dir.join("corelib-pin").join("Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let packages = metadata["packages"].as_array().context("no packages")?;
    let native = packages
        .iter()
        .find(|p| p["name"] == "cairo-native" && p["version"] == "0.9.0-rc.5")
        .context("cairo-native 0.9.0-rc.5 not in the metadata")?;
    let package_manifest = PathBuf::from(native["manifest_path"].as_str().context("no path")?);
    let corelib = package_manifest
        .parent()
        .context("no package dir")?
        .join("corelib")
        .join("src");
    if !corelib.join("lib.cairo").is_file() {
        bail!("no corelib at {}", corelib.display());
    }
    Ok(corelib)
}

fn compile(project: &Path, corelib: &Path, target: &Target) -> Result<Artifacts> {
    let (name, contract) = (target.stem, target.contract);
    let mut db = RootDatabase::builder()
        .with_optimizations(Optimizations::enabled_with_default_movable_functions(
            InliningStrategy::Default,
        ))
        .with_default_plugin_suite(cairo_lang_starknet::starknet_plugin_suite())
        .build()?;
    cairo_lang_filesystem::db::init_dev_corelib(&mut db, corelib.to_path_buf());
    let inputs = setup_project(&mut db, project)?;
    let config = CompilerConfig {
        replace_ids: true,
        diagnostics_reporter: DiagnosticsReporter::stderr().with_crates(&inputs),
        ..Default::default()
    };
    let crate_ids = CrateInput::into_crate_ids(&db, inputs);
    let class = compile_contract_in_prepared_db(&db, target.path, crate_ids, config)?;
    let sierra = serde_json::to_string_pretty(&class)? + "\n";
    let program = class.extract_sierra_program(false)?;
    let casm = CasmContractClass::from_contract_class(class, program, false, usize::MAX)?;
    let compiled_class_hash = casm.compiled_class_hash();
    let casm_json = serde_json::to_string_pretty(&casm)? + "\n";

    let sierra_class: SierraClass = serde_json::from_str(&sierra)?;
    let class_hash = sierra_class.flatten()?.class_hash();
    let manifest = serde_json::json!({
        "contract": contract,
        "class_hash": format!("{class_hash:#066x}"),
        "compiled_class_hash": format!("{:#066x}", compiled_class_hash.to_biguint()),
        "compiler": COMPILER,
        "corelib": CORELIB,
        "sierra": format!("{name}.sierra.json"),
        "casm": format!("{name}.casm.json"),
    });
    Ok(Artifacts {
        sierra,
        casm: casm_json,
        manifest: serde_json::to_string_pretty(&manifest)? + "\n",
    })
}
