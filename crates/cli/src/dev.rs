//! `chipi dev`: the local stack, long-running: the embedded devnet and the paymaster,
//! with everything needed to point our SDK, Chipi's JS SDK or starknet.js at them.

use std::net::SocketAddr;
use std::path::PathBuf;

use chipi_devnet::Devnet;
use chipi_stack::{LocalPaymaster, Options, Policy, API_KEY, SECRET_KEY};
use serde::Serialize;

/// What `chipi dev` serves, as printed (and as `--json`).
#[derive(Debug, Clone, Serialize)]
pub struct DevInfo {
    /// The node's JSON-RPC URL (`STARKNET_RPC_URL` for Chipi's JS SDK).
    pub rpc_url: String,
    /// The chain id.
    pub chain_id: String,
    /// The paymaster's base URL (`alphaUrl` for Chipi's JS SDK).
    pub paymaster_url: String,
    /// The same paymaster's SNIP-29 JSON-RPC endpoint (starknet.js's `PaymasterRpc`
    /// `nodeUrl`, our SDK's `Transport::Snip29`).
    pub snip29_url: String,
    /// The app's public API key (`x-api-key`).
    pub api_public_key: String,
    /// The app's secret key (a bearer that acts for any user).
    pub api_secret_key: String,
    /// A user token for `demo-user`, valid for an hour (`chipi dev token <user>` mints more).
    pub user_token: String,
    /// The session-account class hash (pass it to `createWallet` as `classHash`).
    pub session_class_hash: String,
    /// Funded predeployed accounts (address, private key): devnet keys, public knowledge.
    pub accounts: Vec<(String, String)>,
    /// The paymaster's SQLite file.
    pub database: String,
}

/// Options of [`start`].
#[derive(Debug, Clone, Default)]
pub struct DevOptions {
    /// Where the paymaster listens (by default a free port on 127.0.0.1).
    pub listen: Option<SocketAddr>,
    /// The node's port on 127.0.0.1 (by default a free one).
    pub rpc_port: Option<u16>,
    /// The paymaster's database (by default a temporary file). With it, the chain is kept
    /// beside it ([`chain_file`]) and both survive a restart.
    pub database: Option<PathBuf>,
    /// The local app's sponsorship policy (`chipi dev --policy FILE`), to try limits.
    pub policy: Option<Policy>,
}

/// Reads a sponsorship policy file: the keys of an app's `[apps.sponsorship]` table
/// (docs/paymaster.md), at the top level.
pub fn read_policy(path: &std::path::Path) -> Result<Policy, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // Messages name the key, never quote the file (it may hold the webhook's secret).
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.message()))?;
    let policy: Policy =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            format!(
                "{}: `{}`: {}",
                path.display(),
                e.path(),
                e.inner().message()
            )
        })?;
    policy
        .validate("policy")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(policy)
}

/// Where the chain of a stack whose database is `database` is kept.
pub fn chain_file(database: &std::path::Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".chain.json");
    PathBuf::from(name)
}

/// A running local stack.
pub struct DevStack {
    /// What it serves.
    pub info: DevInfo,
    /// The devnet (stops when dropped).
    pub devnet: Devnet,
    /// The paymaster.
    pub paymaster: LocalPaymaster,
}

/// Starts the devnet and the paymaster.
pub async fn start(options: DevOptions) -> Result<DevStack, String> {
    let devnet = Devnet::start_with(chipi_devnet::DevnetOptions {
        port: options.rpc_port,
        state_file: options.database.as_deref().map(chain_file),
        ..chipi_devnet::DevnetOptions::default()
    })
    .await
    .map_err(|e| format!("the embedded devnet did not start: {e}"))?;
    // SQLite always: the file asked for, or a temporary one.
    let database = match &options.database {
        Some(path) => format!("sqlite://{}", path.display()),
        None => chipi_stack::temp_sqlite(),
    };
    let mut stack_options = Options {
        relayers: vec![3, 4],
        database: Some(database),
        listen: options.listen,
        ..Options::default()
    };
    if let Some(policy) = options.policy {
        stack_options = stack_options.policy(move |p| *p = policy.clone());
    }
    let paymaster = LocalPaymaster::start_with(&devnet, stack_options)
        .await
        .map_err(|e| format!("the paymaster did not start: {e}"))?;
    let info = DevInfo {
        rpc_url: devnet.rpc_url().to_string(),
        chain_id: format!("{:#x}", devnet.chain_id()),
        paymaster_url: paymaster.url.clone(),
        snip29_url: format!("{}/", paymaster.url),
        api_public_key: API_KEY.into(),
        api_secret_key: SECRET_KEY.into(),
        user_token: chipi_stack::user_token("demo-user"),
        session_class_hash: format!("{:#x}", devnet.session_class_hash()),
        accounts: devnet
            .accounts()
            .iter()
            .take(3)
            .map(|a| (format!("{:#x}", a.address), format!("{:#x}", a.private_key)))
            .collect(),
        database: paymaster
            .database
            .strip_prefix("sqlite://")
            .unwrap_or(&paymaster.database)
            .to_string(),
    };
    Ok(DevStack {
        info,
        devnet,
        paymaster,
    })
}

/// The text `chipi dev` prints.
pub fn describe(info: &DevInfo) -> String {
    let mut out = String::new();
    out.push_str(&format!("node (STARKNET_RPC_URL)   {}\n", info.rpc_url));
    out.push_str(&format!("chain id                  {}\n", info.chain_id));
    out.push_str(&format!(
        "paymaster (alphaUrl)      {}\n",
        info.paymaster_url
    ));
    out.push_str(&format!("paymaster (SNIP-29)       {}\n", info.snip29_url));
    out.push_str(&format!(
        "x-api-key                 {}\n",
        info.api_public_key
    ));
    out.push_str(&format!(
        "secret key (Bearer)       {}\n",
        info.api_secret_key
    ));
    out.push_str(&format!("user token (demo-user)    {}\n", info.user_token));
    out.push_str("more tokens               chipi dev token <user-id>\n");
    out.push_str(&format!(
        "session-account class     {}\n",
        info.session_class_hash
    ));
    out.push_str(&format!("paymaster database        {}\n", info.database));
    out.push_str("funded accounts (devnet keys, public knowledge):\n");
    for (address, key) in &info.accounts {
        out.push_str(&format!("  {address}  key {key}\n"));
    }
    out.push_str(&format!("try: curl -s {}/health\n", info.paymaster_url));
    out
}
