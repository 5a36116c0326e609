//! Test harness for the session-account contract on the embedded devnet: a deployed
//! wallet, its owner, session signers for both paths (direct transaction and SNIP-9
//! outside execution), views, and revert matching.
#![deny(missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt;

/// The artifacts of `Snip9Account`, whose class a test adds to the paymaster's
/// `account_classes` (or leaves out) to sponsor it.
pub use chipi_contracts::snip9_account;
/// The paymaster service on the devnet: the local stack (`chipi-stack`).
pub use chipi_stack as paymaster;

use async_trait::async_trait;
use chipi_core::{owner_signature, public_key_of, sign_hash, OutsideExecution, ANY_CALLER};
use chipi_devnet::{Devnet, DevnetAccount, DevnetProvider, STRK_ADDRESS};
use starknet_rust::accounts::{
    Account, ConnectedAccount, ExecutionEncoder, ExecutionEncoding, RawDeclarationV3,
    RawExecutionV3, SingleOwnerAccount,
};
use starknet_rust::core::types::{
    BlockId, BlockTag, Call, ExecutionResult, Felt, FunctionCall, TransactionReceiptWithBlockInfo,
};
use starknet_rust::core::utils::get_selector_from_name;
use starknet_rust::providers::Provider;
use starknet_rust::signers::{LocalWallet, SignerInteractivityContext, SigningKey};

pub use chipi_core::selectors;

/// One STRK in fri.
pub const STRK: u128 = 1_000_000_000_000_000_000;

/// The selector of `name`.
pub fn selector(name: &str) -> Felt {
    get_selector_from_name(name).unwrap()
}

/// A call of `name` on `to`.
pub fn call(to: Felt, name: &str, calldata: Vec<Felt>) -> Call {
    Call {
        to,
        selector: selector(name),
        calldata,
    }
}

/// An STRK `transfer` of `amount` fri to `to`.
pub fn strk_transfer(to: Felt, amount: u128) -> Call {
    call(
        STRK_ADDRESS,
        "transfer",
        vec![to, Felt::from(amount), Felt::ZERO],
    )
}

/// A fresh random private key.
pub fn random_key() -> Felt {
    SigningKey::from_random().secret_scalar()
}

/// A transaction that did not go through: refused by validation or fee estimation,
/// or included and reverted. `Display` shows the node's whole message.
#[derive(Debug, Clone)]
pub struct TxFailure(pub String);

impl fmt::Display for TxFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TxFailure {
    /// Whether the failure carries the Cairo short string `message` (as text or felt).
    pub fn mentions(&self, message: &str) -> bool {
        let hex: String = message.bytes().map(|b| format!("{b:02x}")).collect();
        self.0.contains(message) || self.0.contains(&hex)
    }
}

/// Asserts that `result` failed with the contract message `message`.
#[track_caller]
pub fn assert_fails_with<T: fmt::Debug>(result: Result<T, TxFailure>, message: &str) {
    match result {
        Ok(value) => panic!("expected failure `{message}`, got success: {value:?}"),
        Err(failure) => assert!(
            failure.mentions(message),
            "expected failure `{message}`, got: {failure}"
        ),
    }
}

/// A session key signing direct transactions (INVOKE v3) for the wallet, with the
/// session signature `[key, r, s, valid_until]` over the transaction hash.
pub struct SessionKeyAccount {
    provider: DevnetProvider,
    address: Felt,
    chain_id: Felt,
    private_key: Felt,
    public_key: Felt,
    valid_until: Felt,
    signed_calls: Option<Vec<Call>>,
    signature_len: Option<usize>,
}

impl SessionKeyAccount {
    /// Sends a signature cut or padded (with ones) to `len` felts.
    pub fn with_signature_len(mut self, len: usize) -> Self {
        self.signature_len = Some(len);
        self
    }

    /// Signs with this `valid_until` felt instead (for overflow tests).
    pub fn with_raw_valid_until(mut self, valid_until: Felt) -> Self {
        self.valid_until = valid_until;
        self
    }

    /// Signs the hash of a transaction with `calls` instead of the one sent (tampering).
    pub fn signing_other_calls(mut self, calls: Vec<Call>) -> Self {
        self.signed_calls = Some(calls);
        self
    }
}

struct FixedCalls<'a>(&'a [Call]);

impl ExecutionEncoder for FixedCalls<'_> {
    fn encode_calls(&self, _calls: &[Call]) -> Vec<Felt> {
        chipi_core::encode_calls(self.0)
    }
}

/// Signing error of [`SessionKeyAccount`].
#[derive(Debug)]
pub struct SessionSignError(String);

impl fmt::Display for SessionSignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SessionSignError {}

impl ExecutionEncoder for SessionKeyAccount {
    fn encode_calls(&self, calls: &[Call]) -> Vec<Felt> {
        chipi_core::encode_calls(calls)
    }
}

#[async_trait]
impl Account for SessionKeyAccount {
    type SignError = SessionSignError;

    fn address(&self) -> Felt {
        self.address
    }

    fn chain_id(&self) -> Felt {
        self.chain_id
    }

    async fn sign_execution_v3(
        &self,
        execution: &RawExecutionV3,
        query_only: bool,
    ) -> Result<Vec<Felt>, Self::SignError> {
        let hash = match &self.signed_calls {
            Some(calls) => execution.transaction_hash(
                self.chain_id,
                self.address,
                query_only,
                FixedCalls(calls),
            ),
            None => execution.transaction_hash(self.chain_id, self.address, query_only, self),
        };
        let (r, s) =
            sign_hash(&self.private_key, hash).map_err(|e| SessionSignError(e.to_string()))?;
        let mut signature = vec![self.public_key, r, s, self.valid_until];
        if let Some(len) = self.signature_len {
            signature.resize(len, Felt::ONE);
        }
        Ok(signature)
    }

    async fn sign_declaration_v3(
        &self,
        _declaration: &RawDeclarationV3,
        _query_only: bool,
    ) -> Result<Vec<Felt>, Self::SignError> {
        Err(SessionSignError("a session cannot declare".into()))
    }

    fn is_signer_interactive(&self, _context: SignerInteractivityContext<'_>) -> bool {
        false
    }
}

impl ConnectedAccount for SessionKeyAccount {
    type Provider = DevnetProvider;

    fn provider(&self) -> &Self::Provider {
        &self.provider
    }

    fn block_id(&self) -> BlockId {
        BlockId::Tag(BlockTag::Latest)
    }
}

/// A session key as a test holds it.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// Private key.
    pub private_key: Felt,
    /// Public key (what the contract stores).
    pub public_key: Felt,
    /// The `valid_until` it signs with.
    pub valid_until: u64,
}

impl Session {
    /// A new random session valid until `valid_until`.
    pub fn random(valid_until: u64) -> Self {
        let private_key = random_key();
        Self {
            private_key,
            public_key: public_key_of(&private_key).unwrap(),
            valid_until,
        }
    }

    /// The same key signing another `valid_until`.
    pub fn with_valid_until(self, valid_until: u64) -> Self {
        Self {
            valid_until,
            ..self
        }
    }
}

/// A devnet with one deployed, funded session wallet.
pub struct TestWallet {
    /// The devnet.
    pub devnet: Devnet,
    /// The owner's private key.
    pub owner_key: Felt,
    /// The owner's public key.
    pub owner_public_key: Felt,
    /// The wallet's address.
    pub address: Felt,
}

/// A plain receipt check.
pub fn succeeded(receipt: &TransactionReceiptWithBlockInfo) -> bool {
    matches!(
        receipt.receipt.execution_result(),
        ExecutionResult::Succeeded
    )
}

impl TestWallet {
    /// Starts a devnet and deploys a wallet funded with 100 STRK.
    pub async fn new() -> Self {
        let devnet = Devnet::start().await.expect("devnet starts");
        Self::on(devnet).await
    }

    /// Deploys a new wallet on `devnet`.
    pub async fn on(devnet: Devnet) -> Self {
        let owner_key = random_key();
        let owner_public_key = public_key_of(&owner_key).unwrap();
        let address = devnet
            .deploy_session_wallet(owner_public_key, 100 * STRK)
            .await
            .expect("wallet deploys");
        Self {
            devnet,
            owner_key,
            owner_public_key,
            address,
        }
    }

    /// The wallet as a starknet-rust account signed by its owner.
    pub fn owner_account(&self) -> SingleOwnerAccount<DevnetProvider, LocalWallet> {
        self.account_with_key(self.owner_key)
    }

    /// The wallet signed `[r, s]` by an arbitrary key (for bad-signature tests).
    pub fn account_with_key(&self, key: Felt) -> SingleOwnerAccount<DevnetProvider, LocalWallet> {
        let mut account = SingleOwnerAccount::new(
            self.devnet.provider(),
            LocalWallet::from_signing_key(SigningKey::from_secret_scalar(key)),
            self.address,
            self.devnet.chain_id(),
            ExecutionEncoding::New,
        );
        account.set_block_id(BlockId::Tag(BlockTag::Latest));
        account
    }

    /// The wallet as a starknet-rust account signed by `session`.
    pub fn session_account(&self, session: &Session) -> SessionKeyAccount {
        SessionKeyAccount {
            provider: self.devnet.provider(),
            address: self.address,
            chain_id: self.devnet.chain_id(),
            private_key: session.private_key,
            public_key: session.public_key,
            valid_until: Felt::from(session.valid_until),
            signed_calls: None,
            signature_len: None,
        }
    }

    /// A relayer: predeployed account `index` (1.. by convention; 0 deploys and funds).
    pub fn relayer(&self, index: usize) -> DevnetAccount {
        self.devnet.account(index)
    }

    /// Sends `calls` from `account`, waits, and returns the successful receipt.
    pub async fn send<A>(
        &self,
        account: &A,
        calls: Vec<Call>,
    ) -> Result<TransactionReceiptWithBlockInfo, TxFailure>
    where
        A: ConnectedAccount + Sync,
    {
        let result = account
            .execute_v3(calls)
            .send()
            .await
            .map_err(|e| TxFailure(format!("{e} / {e:?}")))?;
        let receipt = self
            .devnet
            .wait_for_receipt(result.transaction_hash)
            .await
            .map_err(|e| TxFailure(e.to_string()))?;
        match receipt.receipt.execution_result() {
            ExecutionResult::Succeeded => Ok(receipt),
            ExecutionResult::Reverted { reason } => Err(TxFailure(reason.clone())),
        }
    }

    /// The owner sends `calls` as a direct transaction.
    pub async fn owner_invoke(
        &self,
        calls: Vec<Call>,
    ) -> Result<TransactionReceiptWithBlockInfo, TxFailure> {
        self.send(&self.owner_account(), calls).await
    }

    /// `session` sends `calls` as a direct transaction (the wallet pays the fee).
    pub async fn session_invoke(
        &self,
        session: &Session,
        calls: Vec<Call>,
    ) -> Result<TransactionReceiptWithBlockInfo, TxFailure> {
        self.send(&self.session_account(session), calls).await
    }

    /// An outside execution of `calls` for any caller, valid for the next hour, with a
    /// random nonce.
    pub async fn outside_execution(&self, calls: Vec<Call>) -> OutsideExecution {
        let now = self.now().await;
        OutsideExecution {
            caller: ANY_CALLER,
            nonce: random_key(),
            execute_after: now.saturating_sub(60),
            execute_before: now + 3600,
            calls,
        }
    }

    /// The SNIP-12 hash the wallet checks for `execution`.
    pub fn outside_hash(&self, execution: &OutsideExecution) -> Felt {
        execution.message_hash(self.devnet.chain_id(), self.address)
    }

    /// `[r, s]` of the owner over `execution`.
    pub fn owner_sign_outside(&self, execution: &OutsideExecution) -> Vec<Felt> {
        owner_signature(&self.owner_key, self.outside_hash(execution)).unwrap()
    }

    /// `[key, r, s, valid_until]` of `session` over `execution`.
    pub fn session_sign_outside(
        &self,
        session: &Session,
        execution: &OutsideExecution,
    ) -> Vec<Felt> {
        // The signature claims `session.public_key`, whichever key actually signs.
        let (r, s) = sign_hash(&session.private_key, self.outside_hash(execution)).unwrap();
        vec![session.public_key, r, s, Felt::from(session.valid_until)]
    }

    /// The `execute_from_outside_v2` call for `execution` and `signature`.
    pub fn outside_call(&self, execution: &OutsideExecution, signature: &[Felt]) -> Call {
        Call {
            to: self.address,
            selector: selectors::EXECUTE_FROM_OUTSIDE_V2,
            calldata: execution.calldata(signature),
        }
    }

    /// Relayer `relayer` submits `execution` with `signature`.
    pub async fn submit_outside(
        &self,
        relayer: usize,
        execution: &OutsideExecution,
        signature: &[Felt],
    ) -> Result<TransactionReceiptWithBlockInfo, TxFailure> {
        let call = self.outside_call(execution, signature);
        self.send(&self.relayer(relayer), vec![call]).await
    }

    /// Builds, signs by `session` and submits (relayer 1) an outside execution of `calls`.
    pub async fn session_outside(
        &self,
        session: &Session,
        calls: Vec<Call>,
    ) -> Result<TransactionReceiptWithBlockInfo, TxFailure> {
        let execution = self.outside_execution(calls).await;
        let signature = self.session_sign_outside(session, &execution);
        self.submit_outside(1, &execution, &signature).await
    }

    /// Builds, signs by the owner and submits (relayer 1) an outside execution of `calls`.
    pub async fn owner_outside(
        &self,
        calls: Vec<Call>,
    ) -> Result<TransactionReceiptWithBlockInfo, TxFailure> {
        let execution = self.outside_execution(calls).await;
        let signature = self.owner_sign_outside(&execution);
        self.submit_outside(1, &execution, &signature).await
    }

    /// A call to the wallet itself.
    pub fn self_call(&self, name: &str, calldata: Vec<Felt>) -> Call {
        call(self.address, name, calldata)
    }

    /// The `add_or_update_session_key` call.
    pub fn register_call(&self, session: &Session, max_calls: u32, allowed: &[Felt]) -> Call {
        let mut calldata = vec![
            session.public_key,
            Felt::from(session.valid_until),
            Felt::from(max_calls),
            Felt::from(allowed.len()),
        ];
        calldata.extend_from_slice(allowed);
        self.self_call("add_or_update_session_key", calldata)
    }

    /// Registers `session` (owner, direct transaction).
    pub async fn register(&self, session: &Session, max_calls: u32, allowed: &[Felt]) {
        self.owner_invoke(vec![self.register_call(session, max_calls, allowed)])
            .await
            .expect("session registers");
    }

    /// A new random session registered for an hour with `max_calls` and `allowed`.
    pub async fn new_session(&self, max_calls: u32, allowed: &[Felt]) -> Session {
        let session = Session::random(self.now().await + 3600);
        self.register(&session, max_calls, allowed).await;
        session
    }

    /// The `set_spending_policy` call.
    pub fn policy_call(
        &self,
        session_key: Felt,
        token: Felt,
        max_per_call: (u128, u128),
        max_per_window: (u128, u128),
        window_seconds: u64,
    ) -> Call {
        self.self_call(
            "set_spending_policy",
            vec![
                session_key,
                token,
                Felt::from(max_per_call.0),
                Felt::from(max_per_call.1),
                Felt::from(max_per_window.0),
                Felt::from(max_per_window.1),
                Felt::from(window_seconds),
            ],
        )
    }

    /// Calls view `name` of the wallet.
    pub async fn view(&self, name: &str, calldata: Vec<Felt>) -> Result<Vec<Felt>, TxFailure> {
        self.devnet
            .provider()
            .call(
                FunctionCall {
                    contract_address: self.address,
                    entry_point_selector: selector(name),
                    calldata,
                },
                BlockId::Tag(BlockTag::Latest),
            )
            .await
            .map_err(|e| TxFailure(format!("{e} / {e:?}")))
    }

    /// `get_session_data(key)` as `(valid_until, max_calls, calls_used, allowed_len)`.
    pub async fn session_data(&self, key: Felt) -> (u64, u32, u32, u32) {
        let r = self.view("get_session_data", vec![key]).await.unwrap();
        (
            u64::try_from(r[0]).unwrap(),
            u32::try_from(r[1]).unwrap(),
            u32::try_from(r[2]).unwrap(),
            u32::try_from(r[3]).unwrap(),
        )
    }

    /// `calls_used` of a session.
    pub async fn calls_used(&self, key: Felt) -> u32 {
        self.session_data(key).await.2
    }

    /// `get_spending_policy` as felts.
    pub async fn policy(&self, key: Felt, token: Felt) -> Vec<Felt> {
        self.view("get_spending_policy", vec![key, token])
            .await
            .unwrap()
    }

    /// STRK balance in fri.
    pub async fn balance(&self, address: Felt) -> u128 {
        self.devnet.strk_balance(address).await.unwrap()
    }

    /// Timestamp the next transaction runs at.
    pub async fn now(&self) -> u64 {
        self.devnet.block_timestamp().await.unwrap()
    }
}

/// The two ways a session transaction reaches the wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// INVOKE v3 from the wallet, session-signed over the transaction hash.
    Direct,
    /// SNIP-9 v2 outside execution, session-signed over its SNIP-12 hash, submitted by a relayer.
    Outside,
}

/// Both paths, for tests that must hold on each.
pub const PATHS: [Path; 2] = [Path::Direct, Path::Outside];

impl TestWallet {
    /// `session` runs `calls` on `path`.
    pub async fn session_exec(
        &self,
        path: Path,
        session: &Session,
        calls: Vec<Call>,
    ) -> Result<TransactionReceiptWithBlockInfo, TxFailure> {
        match path {
            Path::Direct => self.session_invoke(session, calls).await,
            Path::Outside => self.session_outside(session, calls).await,
        }
    }
}

/// Declares `Snip9Account` (OpenZeppelin-like, SNIP-9 v2, not a session account) on
/// `devnet` if needed, deploys one for `owner_public_key` through the UDC from
/// predeployed account 0 (salt = the key, so the same key gives the same address), funds
/// it with `fund_fri` STRK and returns its address: the "other wallet class" an app may
/// or may not sponsor.
pub async fn deploy_snip9_account(devnet: &Devnet, owner_public_key: Felt, fund_fri: u128) -> Felt {
    let address = devnet
        .deploy(
            chipi_contracts::snip9_account(),
            vec![owner_public_key],
            owner_public_key,
        )
        .await
        .expect("Snip9Account deploys");
    if fund_fri > 0 {
        devnet
            .transfer_strk(&devnet.account(0), address, fund_fri)
            .await
            .expect("Snip9Account funded");
    }
    address
}
