//! The commands for real use, against any node and paymaster: `wallet`, `session`,
//! `policy`. Every write goes through the SDK and is waited for on chain.

use std::path::PathBuf;

use chipi_core::{ErrorCode, Felt};
use chipi_sdk::{
    AddSessionKey, Call, ChipiSdk, CreateSessionKey, CreateWallet, ExecuteWithSession,
    GetSessionData, GetSpendingPolicy, KeyFormat, RemoveSpendingPolicy, RevokeSessionKey,
    SessionConfig, SessionError, SessionKeyData, SetSpendingPolicy, SpendingPolicyConfig,
    Submitted, WalletData,
};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use starknet_rust_core::types::{BlockId, BlockTag, StarknetError};
use starknet_rust_providers::{Provider, ProviderError};

use crate::{exit, files, pin};

/// A failed command: its exit code and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// The process exit code ([`crate::exit`]).
    pub exit: u8,
    /// The SDK code, when there is one.
    pub code: Option<ErrorCode>,
    /// What went wrong.
    pub message: String,
}

impl CliError {
    /// A failure with an SDK error code.
    pub fn code(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            exit: exit::of(code),
            code: Some(code),
            message: message.into(),
        }
    }

    /// As JSON (`--json`).
    pub fn to_json(&self) -> Value {
        json!({
            "ok": false,
            "code": self.code.map(|c| c.as_str()),
            "exit": self.exit,
            "message": self.message,
        })
    }
}

impl From<SessionError> for CliError {
    fn from(error: SessionError) -> Self {
        Self::code(error.code(), error.message().to_string())
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// What a command prints: JSON for `--json`, text otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The `--json` document.
    pub json: Value,
    /// The human text.
    pub text: String,
}

/// Where the node and the paymaster are. The bearer token comes from `CHIPI_TOKEN` only
/// (a flag would leave it in the shell's history).
#[derive(Debug, Clone, Args)]
pub struct Network {
    /// The Starknet node's JSON-RPC URL.
    #[arg(long, env = "CHIPI_RPC_URL", hide_env_values = true, global = true)]
    pub rpc_url: Option<String>,
    /// The paymaster's base URL: writes are sponsored through it. Without it, writes are
    /// direct and the wallet pays its fees.
    #[arg(long, env = "CHIPI_PAYMASTER_URL", global = true)]
    pub paymaster_url: Option<String>,
    /// The app's public API key (`pk_dev_...` / `pk_prod_...`), with `--paymaster-url`.
    #[arg(long, env = "CHIPI_API_KEY", global = true)]
    pub api_key: Option<String>,
    /// The API the paymaster speaks: `chipi` (Chipi's REST API, the default) or `snip29`
    /// (the standard JSON-RPC API: ours at `/`, AVNU's). A `snip29+http(s)://` URL
    /// selects `snip29` too.
    #[arg(long, value_enum, env = "CHIPI_PAYMASTER_KIND", global = true)]
    pub paymaster_kind: Option<PaymasterKind>,
    /// A TOML file with `rpc_url`, `paymaster_url`, `api_key` (flags and environment
    /// variables take precedence).
    #[arg(long, env = "CHIPI_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// The API a paymaster speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymasterKind {
    /// Chipi's REST API (`/v1/...`).
    Chipi,
    /// SNIP-29 JSON-RPC.
    Snip29,
}

/// The scheme prefix that selects SNIP-29 from the URL alone.
const SNIP29_SCHEME: &str = "snip29+";

/// The transport for a paymaster at `url`: the kind given, else the URL's scheme.
fn paymaster_transport(
    url: &str,
    api_key: &str,
    kind: Option<PaymasterKind>,
) -> Option<chipi_sdk::Transport> {
    let (url, by_scheme) = match url.strip_prefix(SNIP29_SCHEME) {
        Some(rest) => (rest, true),
        None => (url, false),
    };
    match kind {
        Some(PaymasterKind::Snip29) => {}
        None if by_scheme => {}
        _ => return None,
    }
    Some(chipi_sdk::Transport::Snip29 {
        url: url.to_string(),
        api_key: Some(api_key.to_string()),
    })
}

/// The keys of `--config`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    rpc_url: Option<String>,
    paymaster_url: Option<String>,
    api_key: Option<String>,
    paymaster_kind: Option<PaymasterKind>,
}

impl Network {
    /// The flags and variables, completed from `--config`.
    fn resolved(&self) -> Result<Network, CliError> {
        let Some(path) = &self.config else {
            return Ok(self.clone());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            invalid(format!(
                "cannot read the config file {}: {e}",
                path.display()
            ))
        })?;
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            invalid(format!(
                "{} is not a chipi config file: {}",
                path.display(),
                e.message()
            ))
        })?;
        Ok(Network {
            rpc_url: self.rpc_url.clone().or(file.rpc_url),
            paymaster_url: self.paymaster_url.clone().or(file.paymaster_url),
            api_key: self.api_key.clone().or(file.api_key),
            paymaster_kind: self.paymaster_kind.or(file.paymaster_kind),
            config: self.config.clone(),
        })
    }
}

/// The bearer token variable (a user JWT, or the app's secret key).
pub const TOKEN_ENV: &str = "CHIPI_TOKEN";

/// `chipi wallet ...`
#[derive(Debug, Clone, Subcommand)]
pub enum WalletCommand {
    /// Create a wallet: a new owner key, encrypted with a PIN (`CHIPI_OWNER_PIN` or typed
    /// twice), deployed by the paymaster; writes the wallet file (the JS SDK's shape).
    Create {
        /// The app's id for the user.
        #[arg(long)]
        user: String,
        /// The account class (the session account's class hash).
        #[arg(long)]
        class_hash: String,
        /// Where to write the wallet file (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Show a wallet: address, class on chain, STRK balance.
    Show {
        /// The wallet file.
        #[arg(long)]
        wallet: PathBuf,
    },
}

/// `chipi session ...`
#[derive(Debug, Clone, Subcommand)]
pub enum SessionCommand {
    /// Create a session key (nothing on chain), encrypted with a PIN (`CHIPI_SESSION_PIN`
    /// or typed twice); writes the session file (the JS SDK's shape).
    Create {
        /// Where to write the session file (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Its lifetime in seconds.
        #[arg(long, default_value_t = 21_600)]
        duration: u64,
        /// Store it in the Argon2id format (resists PIN guessing; only this SDK reads it).
        #[arg(long)]
        strong: bool,
    },
    /// Register a session on the wallet (owner-signed: `CHIPI_OWNER_PIN`).
    Register {
        /// The wallet file.
        #[arg(long)]
        wallet: PathBuf,
        /// The session file.
        #[arg(long)]
        session: PathBuf,
        /// How many transactions it may send.
        #[arg(long)]
        max_calls: u32,
        /// Entrypoints it may call (names or selectors), comma-separated; none allows all.
        #[arg(long, value_delimiter = ',')]
        allow: Vec<String>,
    },
    /// Run calls signed by the session (`CHIPI_SESSION_PIN`).
    Exec {
        /// The wallet file.
        #[arg(long)]
        wallet: PathBuf,
        /// The session file.
        #[arg(long)]
        session: PathBuf,
        /// A call `CONTRACT:ENTRYPOINT[:ARG,ARG,...]` (repeat for several, run atomically).
        #[arg(long = "call", required = true)]
        calls: Vec<String>,
    },
    /// A session's state on the wallet (`getSessionData`).
    Status {
        /// The wallet file.
        #[arg(long)]
        wallet: PathBuf,
        /// The session file.
        #[arg(long, conflicts_with = "key", required_unless_present = "key")]
        session: Option<PathBuf>,
        /// Or the session's public key.
        #[arg(long)]
        key: Option<String>,
    },
    /// Every session ever registered on the wallet (from its events), with its state.
    List {
        /// The wallet file.
        #[arg(long)]
        wallet: PathBuf,
    },
    /// Revoke a session (owner-signed: `CHIPI_OWNER_PIN`).
    Revoke {
        /// The wallet file.
        #[arg(long)]
        wallet: PathBuf,
        /// The session file.
        #[arg(long, conflicts_with = "key", required_unless_present = "key")]
        session: Option<PathBuf>,
        /// Or the session's public key.
        #[arg(long)]
        key: Option<String>,
    },
}

/// Which session a policy binds, and which token.
#[derive(Debug, Clone, Args)]
pub struct PolicyTarget {
    /// The wallet file.
    #[arg(long)]
    pub wallet: PathBuf,
    /// The session file.
    #[arg(long, conflicts_with = "key", required_unless_present = "key")]
    pub session: Option<PathBuf>,
    /// Or the session's public key.
    #[arg(long)]
    pub key: Option<String>,
    /// The token contract it limits.
    #[arg(long)]
    pub token: String,
}

/// `chipi policy ...`
#[derive(Debug, Clone, Subcommand)]
pub enum PolicyCommand {
    /// Limit what a session may spend of a token (owner-signed: `CHIPI_OWNER_PIN`).
    Set {
        /// The wallet, the session and the token.
        #[command(flatten)]
        target: PolicyTarget,
        /// Largest amount in one call (base units).
        #[arg(long)]
        max_per_call: String,
        /// Largest total in one window (base units).
        #[arg(long)]
        max_per_window: String,
        /// The window, seconds.
        #[arg(long)]
        window_seconds: u64,
    },
    /// Show a session's policy for a token, and what it spent in the window.
    Get {
        /// The wallet, the session and the token.
        #[command(flatten)]
        target: PolicyTarget,
    },
    /// Remove a session's policy for a token (owner-signed: `CHIPI_OWNER_PIN`).
    Remove {
        /// The wallet, the session and the token.
        #[command(flatten)]
        target: PolicyTarget,
    },
}

/// A connected client and what was read from the node.
struct Client {
    sdk: ChipiSdk,
    chain_id: Felt,
}

fn invalid(message: impl Into<String>) -> CliError {
    CliError::code(ErrorCode::InvalidInput, message)
}

async fn connect(network: &Network) -> Result<Client, CliError> {
    let network = &network.resolved()?;
    let rpc_url = network
        .rpc_url
        .as_deref()
        .ok_or_else(|| invalid("no node: pass --rpc-url or set CHIPI_RPC_URL"))?;
    let mut builder = ChipiSdk::builder(rpc_url);
    match (&network.paymaster_url, &network.api_key) {
        (Some(url), Some(key)) => {
            builder = match paymaster_transport(url, key, network.paymaster_kind) {
                Some(snip29) => builder.transport(snip29),
                None => builder.paymaster(url, key),
            }
        }
        (Some(_), None) => return Err(invalid("--paymaster-url needs --api-key (CHIPI_API_KEY)")),
        _ => builder = builder.transport(chipi_sdk::Transport::Direct),
    }
    if let Ok(token) = std::env::var(TOKEN_ENV) {
        builder = builder.bearer_token(token);
    }
    let sdk = builder.build()?;
    let chain_id = sdk.chain_id().await?;
    Ok(Client { sdk, chain_id })
}

fn chain_name(chain_id: Felt) -> String {
    let name = starknet_rust_core::utils::parse_cairo_short_string(&chain_id)
        .unwrap_or_else(|_| format!("{chain_id:#x}"));
    format!("{name} ({chain_id:#x})")
}

fn sent_json(client: &Client, sent: &Submitted) -> Value {
    json!({
        "ok": true,
        "chainId": format!("{:#x}", client.chain_id),
        "transactionHash": format!("{:#x}", sent.transaction_hash),
        "wallet": format!("{:#x}", sent.wallet),
        "sponsored": sent.outside_nonce.is_some(),
    })
}

async fn confirm(
    client: &Client,
    sent: Result<Submitted, SessionError>,
    what: &str,
) -> Result<Outcome, CliError> {
    let sent = sent?;
    client.sdk.wait_for_transaction(&sent).await?;
    Ok(Outcome {
        json: sent_json(client, &sent),
        text: format!(
            "{what}: transaction {sent} on {}{}",
            chain_name(client.chain_id),
            if sent.outside_nonce.is_some() {
                " (sponsored)"
            } else {
                ""
            }
        ),
    })
}

fn session_key(session: &Option<PathBuf>, key: &Option<String>) -> Result<String, CliError> {
    match (session, key) {
        (Some(path), _) => Ok(files::read::<SessionKeyData>(path, "session")?.public_key),
        (None, Some(key)) => chipi_core::parse_felt_strict(key)
            .map(|k| format!("{k:#x}"))
            .ok_or_else(|| invalid("--key is not a felt")),
        (None, None) => Err(invalid("pass --session or --key")),
    }
}

/// `CONTRACT:ENTRYPOINT[:ARG,ARG,...]` as a JS call.
pub fn parse_call(text: &str) -> Result<Call, CliError> {
    let mut parts = text.splitn(3, ':');
    let (Some(contract), Some(entrypoint)) = (parts.next(), parts.next()) else {
        return Err(invalid(format!(
            "--call {text:?}: expected CONTRACT:ENTRYPOINT[:ARG,ARG,...]"
        )));
    };
    let calldata = parts
        .next()
        .filter(|a| !a.is_empty())
        .map(|args| args.split(',').map(|a| a.trim().to_string()).collect())
        .unwrap_or_default();
    let call = Call {
        contract_address: contract.to_string(),
        entrypoint: entrypoint.to_string(),
        calldata,
    };
    call.parse()
        .map_err(|e| invalid(format!("--call {text:?}: {e}")))?;
    Ok(call)
}

/// Runs `chipi wallet ...`.
pub async fn wallet(network: &Network, command: WalletCommand) -> Result<Outcome, CliError> {
    let client = connect(network).await?;
    match command {
        WalletCommand::Create {
            user,
            class_hash,
            out,
        } => {
            if out.exists() {
                return Err(invalid(format!(
                    "{} exists; not overwritten",
                    out.display()
                )));
            }
            let class_hash = chipi_core::parse_felt_strict(&class_hash)
                .ok_or_else(|| invalid("--class-hash is not a felt"))?;
            let pin = pin::read(pin::OWNER_PIN_ENV, "Owner PIN", true)?;
            let created = client
                .sdk
                .create_wallet(
                    CreateWallet {
                        encrypt_key: &pin,
                        external_user_id: &user,
                        class_hash,
                    },
                    None,
                )
                .await?;
            client.sdk.wait_for_wallet(&created).await?;
            files::write_new(&out, &created.wallet)?;
            Ok(Outcome {
                json: json!({
                    "ok": true,
                    "chainId": format!("{:#x}", client.chain_id),
                    "wallet": created.wallet.public_key,
                    "transactionHash": created.transaction_hash.map(|h| format!("{h:#x}")),
                    "file": out.display().to_string(),
                }),
                text: format!(
                    "wallet {} deployed on {}; saved to {} (keep it and the PIN: together they are the wallet)",
                    created.wallet.public_key,
                    chain_name(client.chain_id),
                    out.display()
                ),
            })
        }
        WalletCommand::Show { wallet } => {
            let data: WalletData = files::read(&wallet, "wallet")?;
            let address = chipi_core::parse_felt_strict(&data.public_key)
                .ok_or_else(|| invalid("the wallet file's publicKey is not a felt"))?;
            let provider = client.sdk.provider();
            let class = match provider
                .get_class_hash_at(BlockId::Tag(BlockTag::Latest), address)
                .await
            {
                Ok(class) => Some(class),
                Err(ProviderError::StarknetError(StarknetError::ContractNotFound)) => None,
                Err(_) => {
                    return Err(CliError::code(
                        ErrorCode::NetworkError,
                        "the node did not answer",
                    ))
                }
            };
            let balance = strk_balance(&client, address).await?;
            let wallet_type: String = data.wallet_type.clone().into();
            Ok(Outcome {
                json: json!({
                    "ok": true,
                    "chainId": format!("{:#x}", client.chain_id),
                    "wallet": data.public_key,
                    "walletType": wallet_type,
                    "deployed": class.is_some(),
                    "classHash": class.map(|c| format!("{c:#x}")),
                    "strkBalance": balance.to_string(),
                }),
                text: format!(
                    "wallet {} ({wallet_type}) on {}\n  {}\n  STRK balance {} fri",
                    data.public_key,
                    chain_name(client.chain_id),
                    match class {
                        Some(class) => format!("deployed, class {class:#x}"),
                        None => "not deployed".into(),
                    },
                    balance
                ),
            })
        }
    }
}

/// STRK (the same address on every network and the devnet).
const STRK: Felt = chipi_core::STRK_ADDRESS;

async fn strk_balance(client: &Client, address: Felt) -> Result<u128, CliError> {
    let result = client
        .sdk
        .provider()
        .call(
            starknet_rust_core::types::FunctionCall {
                contract_address: STRK,
                entry_point_selector: starknet_rust_core::utils::get_selector_from_name(
                    "balance_of",
                )
                .unwrap_or_default(),
                calldata: vec![address],
            },
            BlockId::Tag(BlockTag::Latest),
        )
        .await
        .map_err(|_| CliError::code(ErrorCode::NetworkError, "cannot read the STRK balance"))?;
    Ok(result
        .first()
        .and_then(|low| u128::try_from(*low).ok())
        .unwrap_or(0))
}

/// Runs `chipi session ...`.
pub async fn session(network: &Network, command: SessionCommand) -> Result<Outcome, CliError> {
    if let SessionCommand::Create {
        out,
        duration,
        strong,
    } = &command
    {
        // Local: a node, when one is configured, only tells the chain's time (its
        // `validUntil` is judged by the chain, which may be ahead of this machine).
        if out.exists() {
            return Err(invalid(format!(
                "{} exists; not overwritten",
                out.display()
            )));
        }
        let pin = pin::read(pin::SESSION_PIN_ENV, "Session PIN", true)?;
        let format = if *strong {
            KeyFormat::Strong(chipi_sdk::Argon2Settings::default())
        } else {
            KeyFormat::Compatible
        };
        // The later of the chain's time and this machine's (a devnet's last block can
        // be old), the machine's alone without a node.
        let machine = chipi_sdk::Clock::now(&chipi_sdk::SystemClock);
        let now = match connect(network).await {
            Ok(client) => client.sdk.chain_now().await.max(machine),
            Err(_) => machine,
        };
        let session = chipi_sdk::create_session_key(
            CreateSessionKey::new(&pin)
                .duration_seconds(*duration)
                .format(format)
                .now(now),
        )?;
        files::write_new(out, &session)?;
        return Ok(Outcome {
            json: json!({
                "ok": true,
                "sessionPublicKey": session.public_key,
                "validUntil": session.valid_until,
                "file": out.display().to_string(),
            }),
            text: format!(
                "session {} valid until {} (unix); saved to {}",
                session.public_key,
                session.valid_until,
                out.display()
            ),
        });
    }
    let client = connect(network).await?;
    match command {
        SessionCommand::Create { .. } => Err(invalid("unreachable")),
        SessionCommand::Register {
            wallet,
            session,
            max_calls,
            allow,
        } => {
            let wallet: WalletData = files::read(&wallet, "wallet")?;
            let session: SessionKeyData = files::read(&session, "session")?;
            let pin = pin::read(pin::OWNER_PIN_ENV, "Owner PIN", false)?;
            let config = SessionConfig {
                session_public_key: session.public_key.clone(),
                valid_until: session.valid_until,
                max_calls,
                allowed_entrypoints: allow,
            };
            let sent = client
                .sdk
                .sessions()
                .add_session_key_to_contract(
                    AddSessionKey {
                        encrypt_key: &pin,
                        wallet: &wallet,
                        session_config: &config,
                    },
                    None,
                )
                .await;
            confirm(&client, sent, "session registered").await
        }
        SessionCommand::Exec {
            wallet,
            session,
            calls,
        } => {
            let wallet: WalletData = files::read(&wallet, "wallet")?;
            let session: SessionKeyData = files::read(&session, "session")?;
            let calls = calls
                .iter()
                .map(|c| parse_call(c))
                .collect::<Result<Vec<_>, _>>()?;
            let pin = pin::read(pin::SESSION_PIN_ENV, "Session PIN", false)?;
            let sent = client
                .sdk
                .execute_transaction_with_session(
                    ExecuteWithSession {
                        encrypt_key: &pin,
                        wallet: &wallet,
                        session: &session,
                        calls: &calls,
                    },
                    None,
                )
                .await;
            confirm(&client, sent, "executed").await
        }
        SessionCommand::Status {
            wallet,
            session,
            key,
        } => {
            let wallet: WalletData = files::read(&wallet, "wallet")?;
            let key = session_key(&session, &key)?;
            let data = client
                .sdk
                .sessions()
                .get_session_data(GetSessionData {
                    wallet_address: &wallet.public_key,
                    session_public_key: &key,
                })
                .await?;
            Ok(Outcome {
                json: json!({
                    "ok": true,
                    "sessionPublicKey": key,
                    "isActive": data.is_active,
                    "validUntil": data.valid_until,
                    "remainingCalls": data.remaining_calls,
                    "allowedEntrypoints": data.allowed_entrypoints,
                }),
                text: format!(
                    "session {key}: {}, valid until {}, {} calls left, allowed: {}",
                    if data.is_active { "active" } else { "inactive" },
                    data.valid_until,
                    data.remaining_calls,
                    if data.allowed_entrypoints.is_empty() {
                        "any entrypoint".to_string()
                    } else {
                        data.allowed_entrypoints.join(", ")
                    }
                ),
            })
        }
        SessionCommand::List { wallet } => {
            let wallet: WalletData = files::read(&wallet, "wallet")?;
            list_sessions(&client, &wallet).await
        }
        SessionCommand::Revoke {
            wallet,
            session,
            key,
        } => {
            let wallet: WalletData = files::read(&wallet, "wallet")?;
            let key = session_key(&session, &key)?;
            let pin = pin::read(pin::OWNER_PIN_ENV, "Owner PIN", false)?;
            let sent = client
                .sdk
                .sessions()
                .revoke_session_key(
                    RevokeSessionKey {
                        encrypt_key: &pin,
                        wallet: &wallet,
                        session_public_key: &key,
                    },
                    None,
                )
                .await;
            confirm(&client, sent, "session revoked").await
        }
    }
}

/// Every session key the wallet's events name, with its state now.
async fn list_sessions(client: &Client, wallet: &WalletData) -> Result<Outcome, CliError> {
    let listed = client.sdk.sessions().list(&wallet.public_key).await?;
    let mut sessions = Vec::new();
    let mut text = format!(
        "{} session(s) on wallet {} ({})",
        listed.len(),
        wallet.public_key,
        chain_name(client.chain_id)
    );
    for session in listed {
        let (key, state) = (&session.session_public_key, &session.state);
        let status = state.status();
        let remaining = state.max_calls.saturating_sub(state.calls_used);
        text.push_str(&format!(
            "\n  {key}  {:<14} {remaining} calls left, valid until {}",
            status.as_str(),
            state.valid_until
        ));
        sessions.push(json!({
            "sessionPublicKey": key,
            "state": status,
            "validUntil": state.valid_until,
            "remainingCalls": remaining,
        }));
    }
    Ok(Outcome {
        json: json!({ "ok": true, "wallet": wallet.public_key, "sessions": sessions }),
        text,
    })
}

/// Runs `chipi policy ...`.
pub async fn policy(network: &Network, command: PolicyCommand) -> Result<Outcome, CliError> {
    let client = connect(network).await?;
    match command {
        PolicyCommand::Set {
            target,
            max_per_call,
            max_per_window,
            window_seconds,
        } => {
            let wallet: WalletData = files::read(&target.wallet, "wallet")?;
            let key = session_key(&target.session, &target.key)?;
            let pin = pin::read(pin::OWNER_PIN_ENV, "Owner PIN", false)?;
            let policy = SpendingPolicyConfig {
                session_public_key: key,
                token: target.token,
                max_per_call,
                max_per_window,
                window_seconds,
            };
            let sent = client
                .sdk
                .sessions()
                .set_spending_policy(
                    SetSpendingPolicy {
                        encrypt_key: &pin,
                        wallet: &wallet,
                        policy: &policy,
                    },
                    None,
                )
                .await;
            confirm(&client, sent, "policy set").await
        }
        PolicyCommand::Get { target } => {
            let wallet: WalletData = files::read(&target.wallet, "wallet")?;
            let key = session_key(&target.session, &target.key)?;
            let policy = client
                .sdk
                .sessions()
                .get_spending_policy(GetSpendingPolicy {
                    wallet_address: &wallet.public_key,
                    session_public_key: &key,
                    token: &target.token,
                })
                .await?;
            let json = serde_json::to_value(&policy).map_err(|e| invalid(e.to_string()))?;
            Ok(Outcome {
                text: if policy.window_seconds == 0 {
                    format!(
                        "no spending policy for session {key} and token {}",
                        target.token
                    )
                } else {
                    format!(
                        "session {key}, token {}: at most {} per call and {} per {} s; {} spent in the window",
                        target.token,
                        policy.max_per_call,
                        policy.max_per_window,
                        policy.window_seconds,
                        policy.spent_in_window
                    )
                },
                json: json!({ "ok": true, "policy": json }),
            })
        }
        PolicyCommand::Remove { target } => {
            let wallet: WalletData = files::read(&target.wallet, "wallet")?;
            let key = session_key(&target.session, &target.key)?;
            let pin = pin::read(pin::OWNER_PIN_ENV, "Owner PIN", false)?;
            let sent = client
                .sdk
                .sessions()
                .remove_spending_policy(
                    RemoveSpendingPolicy {
                        encrypt_key: &pin,
                        wallet: &wallet,
                        session_public_key: &key,
                        token: &target.token,
                    },
                    None,
                )
                .await;
            confirm(&client, sent, "policy removed").await
        }
    }
}
