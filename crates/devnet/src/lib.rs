//! starknet-devnet 0.10.1 embedded in-process: a local Starknet for tests, examples and
//! the CLI, with no external binary.
//!
//! [`Devnet::start`] binds `127.0.0.1` on a free port (so any number can run at once),
//! serves JSON-RPC 0.10 from its own thread and runtime, and declares the session
//! account class from the committed artifacts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chipi_devnet::DevnetError> {
//! use starknet_rust::core::types::Felt;
//!
//! let devnet = chipi_devnet::Devnet::start().await?;
//! let owner = starknet_rust::signers::SigningKey::from_random();
//! let wallet = devnet
//!     .deploy_session_wallet(owner.verifying_key().scalar(), 10u128.pow(18))
//!     .await?;
//! devnet.increase_time(3600).await;
//! println!("wallet {wallet:#x} on {}", devnet.rpc_url());
//! devnet.shutdown();
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use starknet_devnet_core::starknet::starknet_config::StarknetConfig;
use starknet_devnet_core::starknet::Starknet;
use starknet_devnet_server::api::{Api, JsonRpcHandler};
use starknet_devnet_server::ServerConfig;
use starknet_rust::accounts::{Account, ExecutionEncoding, SingleOwnerAccount};
use starknet_rust::contract::{ContractFactory, UdcSelector};
use starknet_rust::core::types::{
    BlockId, BlockTag, Call, ExecutionResult, Felt, MaybePreConfirmedBlockWithTxHashes,
    StarknetError, TransactionReceiptWithBlockInfo,
};
use starknet_rust::core::utils::{get_selector_from_name, get_udc_deployed_address, UdcUniqueness};
use starknet_rust::providers::jsonrpc::HttpTransport;
use starknet_rust::providers::{JsonRpcClient, Provider, ProviderError};
use starknet_rust::signers::{LocalWallet, SigningKey};
use tokio::sync::oneshot;
use url::Url;

/// The STRK fee token of every devnet.
pub const STRK_ADDRESS: Felt = starknet_devnet_core::constants::STRK_ERC20_CONTRACT_ADDRESS;

/// The ETH token of every devnet.
pub const ETH_ADDRESS: Felt = starknet_devnet_core::constants::ETH_ERC20_CONTRACT_ADDRESS;

/// A JSON-RPC client for the devnet.
pub type DevnetProvider = JsonRpcClient<HttpTransport>;
/// A predeployed account as a starknet-rust account.
pub type DevnetAccount = SingleOwnerAccount<DevnetProvider, LocalWallet>;

/// What can go wrong starting or driving the devnet.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The devnet could not be created or bound.
    #[error("devnet failed to start: {0}")]
    Start(String),
    /// A JSON-RPC call failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A transaction from a predeployed account could not be sent.
    #[error("transaction failed: {0}")]
    Transaction(String),
    /// A transaction was included but reverted.
    #[error("transaction {hash:#x} reverted: {reason}")]
    Reverted {
        /// Its hash.
        hash: Felt,
        /// The revert reason.
        reason: String,
    },
    /// The committed contract artifacts are unreadable.
    #[error(transparent)]
    Artifact(#[from] chipi_contracts::ArtifactError),
}

/// A funded account created by the devnet at start.
#[derive(Debug, Clone)]
pub struct PredeployedAccount {
    /// Its address.
    pub address: Felt,
    /// Its private key (devnet test keys: public knowledge, never use elsewhere).
    pub private_key: Felt,
    /// Its public key.
    pub public_key: Felt,
}

/// Options of [`Devnet::start_with`].
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Seed of the predeployed accounts' keys.
    pub seed: u32,
    /// How many predeployed accounts.
    pub accounts: u8,
    /// Unix time of the first block (by default, now).
    pub start_time: Option<u64>,
    /// The port on 127.0.0.1 (a free one by default).
    pub port: Option<u16>,
    /// A file the chain is kept in: every block is appended to it, and an existing one
    /// is replayed at start, so the chain survives a restart.
    pub state_file: Option<std::path::PathBuf>,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self {
            seed: 0,
            accounts: 10,
            start_time: None,
            port: None,
            state_file: None,
        }
    }
}

/// A running in-process devnet. Dropping it shuts it down.
pub struct Devnet {
    url: Url,
    chain_id: Felt,
    accounts: Vec<PredeployedAccount>,
    api: Api,
    session_class_hash: Felt,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Devnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devnet")
            .field("url", &self.url.as_str())
            .field("chain_id", &self.chain_id)
            .finish_non_exhaustive()
    }
}

impl Devnet {
    /// Starts a devnet with default options and declares the session-account class.
    pub async fn start() -> Result<Self, DevnetError> {
        Self::start_with(DevnetOptions::default()).await
    }

    /// Starts a devnet with `options` and declares the session-account class.
    pub async fn start_with(options: DevnetOptions) -> Result<Self, DevnetError> {
        let state_file = options.state_file.clone();
        let mut devnet = Self::launch(options)?;
        if let Some(path) = state_file.filter(|p| p.exists()) {
            devnet.replay(&path).await?;
        }
        devnet.session_class_hash = devnet.declare_session_account().await?;
        Ok(devnet)
    }

    /// Replays the blocks kept in `path` (a previous run's chain).
    async fn replay(&self, path: &std::path::Path) -> Result<(), DevnetError> {
        let handler = JsonRpcHandler::new(self.api.clone());
        let request = starknet_devnet_server::api::models::LoadRequest::Path {
            path: path.display().to_string(),
        };
        handler.load(request).await.map(|_| ()).map_err(|e| {
            DevnetError::Start(format!(
                "cannot replay the chain in {}: {e}",
                path.display()
            ))
        })
    }

    fn launch(options: DevnetOptions) -> Result<Self, DevnetError> {
        let config = StarknetConfig {
            seed: options.seed,
            total_accounts: options.accounts,
            start_time: options.start_time,
            dump_on: options
                .state_file
                .as_ref()
                .map(|_| starknet_devnet_core::starknet::starknet_config::DumpOn::Block),
            dump_path: options.state_file.as_ref().map(|p| p.display().to_string()),
            // Block hashes and commitments are not needed here and cost time.
            lite_mode: true,
            ..StarknetConfig::default()
        };
        let starknet = Starknet::new(&config).map_err(|e| DevnetError::Start(e.to_string()))?;
        let accounts = starknet
            .get_predeployed_accounts()
            .into_iter()
            .map(|account| PredeployedAccount {
                address: account.account_address.into(),
                private_key: account.keys.private_key,
                public_key: account.keys.public_key,
            })
            .collect();
        let chain_id = starknet.chain_id().to_felt();

        let port = options.port.unwrap_or(0);
        let listener =
            std::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
                .map_err(|e| DevnetError::Start(format!("bind 127.0.0.1:{port}: {e}")))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| DevnetError::Start(e.to_string()))?;
        let address = listener
            .local_addr()
            .map_err(|e| DevnetError::Start(e.to_string()))?;
        let server_config = ServerConfig {
            host: address.ip(),
            port: address.port(),
            timeout: 120,
            log_request: false,
            log_response: false,
            restricted_methods: None,
            ui_enabled: false,
        };
        let api = Api::new(starknet, server_config);
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let server_api = api.clone();
        // Its own thread and runtime: callers may be sync, or on a current-thread runtime.
        let thread = std::thread::Builder::new()
            .name(format!("devnet-{}", address.port()))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let handler = JsonRpcHandler::new(server_api.clone());
                    let server = starknet_devnet_server::server::serve_http_json_rpc(
                        listener,
                        &server_api.server_config,
                        handler,
                    )
                    .await;
                    let _ = ready_tx.send(Ok(()));
                    let _ = server
                        .with_graceful_shutdown(async {
                            let _ = shutdown_rx.await;
                        })
                        .await;
                });
            })
            .map_err(|e| DevnetError::Start(e.to_string()))?;
        match ready_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(DevnetError::Start(e)),
            Err(e) => return Err(DevnetError::Start(format!("server thread: {e}"))),
        }
        let url = Url::parse(&format!("http://{address}/rpc"))
            .map_err(|e| DevnetError::Start(e.to_string()))?;
        Ok(Self {
            url,
            chain_id,
            accounts,
            api,
            session_class_hash: Felt::ZERO,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }

    async fn declare_session_account(&self) -> Result<Felt, DevnetError> {
        self.declare(chipi_contracts::session_account()).await
    }

    /// Declares a committed contract class (from predeployed account 0) unless it is
    /// declared already; returns its class hash.
    pub async fn declare(
        &self,
        artifacts: &chipi_contracts::ContractArtifacts,
    ) -> Result<Felt, DevnetError> {
        let declared = self
            .provider()
            .get_class(BlockId::Tag(BlockTag::Latest), artifacts.class_hash)
            .await;
        match declared {
            Ok(_) => return Ok(artifacts.class_hash),
            Err(ProviderError::StarknetError(StarknetError::ClassHashNotFound)) => {}
            Err(e) => return Err(e.into()),
        }
        let result = self
            .account(0)
            .declare_v3(artifacts.flattened_class()?, artifacts.compiled_class_hash)
            .send()
            .await
            .map_err(|e| DevnetError::Transaction(format!("declare: {e}")))?;
        self.wait_for_success(result.transaction_hash).await?;
        Ok(result.class_hash)
    }

    /// Declares `artifacts` if needed and deploys an instance through the UDC with
    /// `calldata` and `salt` (not unique); returns its address.
    pub async fn deploy(
        &self,
        artifacts: &chipi_contracts::ContractArtifacts,
        calldata: Vec<Felt>,
        salt: Felt,
    ) -> Result<Felt, DevnetError> {
        let class_hash = self.declare(artifacts).await?;
        let deployer = self.account(0);
        let factory = ContractFactory::new_with_udc(class_hash, &deployer, UdcSelector::New);
        let deployment = factory.deploy_v3(calldata, salt, false);
        let address = deployment.deployed_address();
        let result = deployment
            .send()
            .await
            .map_err(|e| DevnetError::Transaction(format!("deploy: {e}")))?;
        self.wait_for_success(result.transaction_hash).await?;
        Ok(address)
    }

    /// JSON-RPC URL (`http://127.0.0.1:<port>/rpc`).
    pub fn rpc_url(&self) -> &Url {
        &self.url
    }

    /// Chain id (`SN_SEPOLIA`).
    pub fn chain_id(&self) -> Felt {
        self.chain_id
    }

    /// The funded predeployed accounts.
    pub fn accounts(&self) -> &[PredeployedAccount] {
        &self.accounts
    }

    /// The declared session-account class hash.
    pub fn session_class_hash(&self) -> Felt {
        self.session_class_hash
    }

    /// A new JSON-RPC client for this devnet.
    pub fn provider(&self) -> DevnetProvider {
        JsonRpcClient::new(HttpTransport::new(self.url.clone()))
    }

    /// Predeployed account `index` as a starknet-rust account.
    ///
    /// # Panics
    /// When `index` is not below the number of predeployed accounts.
    pub fn account(&self, index: usize) -> DevnetAccount {
        let predeployed = &self.accounts[index];
        let mut account = SingleOwnerAccount::new(
            self.provider(),
            LocalWallet::from_signing_key(SigningKey::from_secret_scalar(predeployed.private_key)),
            predeployed.address,
            self.chain_id,
            ExecutionEncoding::New,
        );
        account.set_block_id(BlockId::Tag(BlockTag::Latest));
        account
    }

    /// Deploys a session wallet for `owner_public_key` the standard counterfactual way
    /// (deployer 0, salt = owner key, calldata `[owner key]`), funds it with `fund_fri`
    /// STRK (in fri) from predeployed account 0, and returns its address. Deploying
    /// the same owner again returns the same address and only funds it.
    pub async fn deploy_session_wallet(
        &self,
        owner_public_key: Felt,
        fund_fri: u128,
    ) -> Result<Felt, DevnetError> {
        let calldata = vec![owner_public_key];
        let address = get_udc_deployed_address(
            owner_public_key,
            self.session_class_hash,
            &UdcUniqueness::NotUnique,
            &calldata,
        );
        let deployer = self.account(0);
        let deployed = self
            .provider()
            .get_class_hash_at(BlockId::Tag(BlockTag::Latest), address)
            .await;
        match deployed {
            Ok(_) => {}
            Err(ProviderError::StarknetError(StarknetError::ContractNotFound)) => {
                let factory = ContractFactory::new_with_udc(
                    self.session_class_hash,
                    &deployer,
                    UdcSelector::New,
                );
                let result = factory
                    .deploy_v3(calldata, owner_public_key, false)
                    .send()
                    .await
                    .map_err(|e| DevnetError::Transaction(format!("deploy session wallet: {e}")))?;
                self.wait_for_success(result.transaction_hash).await?;
            }
            Err(e) => return Err(e.into()),
        }
        if fund_fri > 0 {
            self.transfer_strk(&deployer, address, fund_fri).await?;
        }
        Ok(address)
    }

    /// Sends `amount` fri of STRK from `from` to `to` and waits for success.
    pub async fn transfer_strk(
        &self,
        from: &DevnetAccount,
        to: Felt,
        amount: u128,
    ) -> Result<Felt, DevnetError> {
        let call = Call {
            to: STRK_ADDRESS,
            selector: get_selector_from_name("transfer")
                .map_err(|e| DevnetError::Transaction(e.to_string()))?,
            calldata: vec![to, Felt::from(amount), Felt::ZERO],
        };
        let result = from
            .execute_v3(vec![call])
            .send()
            .await
            .map_err(|e| DevnetError::Transaction(format!("STRK transfer: {e}")))?;
        self.wait_for_success(result.transaction_hash).await?;
        Ok(result.transaction_hash)
    }

    /// STRK balance of `address`, in fri.
    pub async fn strk_balance(&self, address: Felt) -> Result<u128, DevnetError> {
        let result = self
            .provider()
            .call(
                starknet_rust::core::types::FunctionCall {
                    contract_address: STRK_ADDRESS,
                    entry_point_selector: get_selector_from_name("balance_of")
                        .map_err(|e| DevnetError::Transaction(e.to_string()))?,
                    calldata: vec![address],
                },
                BlockId::Tag(BlockTag::Latest),
            )
            .await?;
        let low = result.first().copied().unwrap_or_default();
        u128::try_from(low).map_err(|_| DevnetError::Transaction("balance above u128".into()))
    }

    /// Waits for `hash` to be included and fails with [`DevnetError::Reverted`] if it reverted.
    pub async fn wait_for_success(
        &self,
        hash: Felt,
    ) -> Result<TransactionReceiptWithBlockInfo, DevnetError> {
        let receipt = self.wait_for_receipt(hash).await?;
        match receipt.receipt.execution_result() {
            ExecutionResult::Succeeded => Ok(receipt),
            ExecutionResult::Reverted { reason } => Err(DevnetError::Reverted {
                hash,
                reason: reason.clone(),
            }),
        }
    }

    /// Waits for the receipt of `hash` (succeeded or reverted).
    pub async fn wait_for_receipt(
        &self,
        hash: Felt,
    ) -> Result<TransactionReceiptWithBlockInfo, DevnetError> {
        let provider = self.provider();
        let mut attempt = 0;
        loop {
            match provider.get_transaction_receipt(hash).await {
                Ok(receipt) => return Ok(receipt),
                Err(ProviderError::StarknetError(StarknetError::TransactionHashNotFound))
                    if attempt < 100 =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Timestamp the next transaction executes at (that of the latest block).
    pub async fn block_timestamp(&self) -> Result<u64, DevnetError> {
        match self
            .provider()
            .get_block_with_tx_hashes(BlockId::Tag(BlockTag::Latest))
            .await?
        {
            MaybePreConfirmedBlockWithTxHashes::Block(block) => Ok(block.timestamp),
            MaybePreConfirmedBlockWithTxHashes::PreConfirmedBlock(block) => Ok(block.timestamp),
        }
    }

    /// Moves block time forward by `seconds` and closes a block, so that the next
    /// transaction runs at least `seconds` later.
    pub async fn increase_time(&self, seconds: u64) {
        self.api.starknet.lock().await.increase_time(seconds);
    }

    /// Closes a block at exactly `timestamp`: the next transaction executes at that time
    /// (later ones drift with the wall clock from there).
    pub async fn set_time(&self, timestamp: u64) {
        self.api.starknet.lock().await.set_time(timestamp, true);
    }

    /// Stops the server and joins its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Shared handle for tests that pass one devnet around.
pub type SharedDevnet = Arc<Devnet>;

#[cfg(test)]
mod tests {
    #[test]
    fn the_devnets_strk_is_the_one_the_core_names() {
        assert_eq!(super::STRK_ADDRESS, chipi_core::STRK_ADDRESS);
    }
}
