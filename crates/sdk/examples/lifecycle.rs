//! The session lifecycle through the SDK on the embedded devnet, direct transport:
//! create a session key, register it with a whitelist and a call budget, spend with
//! it, read its status, see the wallet refuse what the session may not do, revoke it.
//!
//! ```sh
//! cargo run -p chipi-sdk --example lifecycle
//! ```

use std::error::Error;
use std::time::Instant;

use chipi_core::{encrypt_private_key, KeyFormat, SecretKey};
use chipi_devnet::{Devnet, STRK_ADDRESS};
use chipi_sdk::{
    AddSessionKey, Call, ChipiSdk, CreateSessionKey, ExecuteWithSession, GetSessionData,
    RevokeSessionKey, SessionConfig, SessionDataResponse, SessionError, Submitted, Transport,
    WalletData, WalletType,
};

const OWNER_PIN: &str = "correct horse battery staple";
const SESSION_PIN: &str = "1234-session";
const STRK: u128 = 1_000_000_000_000_000_000;

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

fn status(data: &SessionDataResponse) {
    println!(
        "    isActive={} validUntil={} remainingCalls={} allowedEntrypoints={:?}",
        data.is_active, data.valid_until, data.remaining_calls, data.allowed_entrypoints
    );
}

/// Prints the refusal's code and message; an acceptance is a failure of the demo.
fn refused(label: &str, result: Result<Submitted, SessionError>) -> Result<(), Box<dyn Error>> {
    match result {
        Ok(tx) => Err(format!("{label}: accepted ({tx}) but should have been refused").into()),
        Err(e) => {
            println!("    {label}: {} ({})", e.code(), e.message());
            Ok(())
        }
    }
}

fn strk(fri: u128) -> String {
    format!("{}.{:04} STRK", fri / STRK, (fri % STRK) / (STRK / 10_000))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    run().await
}

/// The whole demo; `tests/lifecycle_example.rs` runs it too, so `cargo test` checks the
/// README's first command.
pub async fn run() -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    step(1, "Start starknet-devnet in this process");
    let devnet = Devnet::start().await?;
    println!("    RPC {}", devnet.rpc_url());

    step(
        2,
        "Deploy a CHIPI wallet for a new owner key (funded with 10 STRK)",
    );
    let owner = SecretKey::random();
    let address = devnet
        .deploy_session_wallet(owner.public_key(), 10 * STRK)
        .await?;
    let wallet = WalletData {
        public_key: format!("{address:#x}"),
        encrypted_private_key: encrypt_private_key(&owner, OWNER_PIN, KeyFormat::Compatible)?,
        wallet_type: WalletType::Chipi,
    };
    drop(owner);
    println!("    wallet {}", wallet.public_key);

    let sdk = ChipiSdk::builder(devnet.rpc_url().as_str())
        .transport(Transport::Direct)
        .build()?;
    println!(
        "    chain id {:#x} (read from the node)",
        sdk.chain_id().await?
    );

    step(
        3,
        "sessions().create_session_key: a 1-hour session, nothing stored",
    );
    let session = sdk
        .sessions()
        .create_session_key(CreateSessionKey::new(SESSION_PIN).duration_seconds(3600))?;
    println!("    {}", serde_json::to_string(&session)?);

    step(
        4,
        "sessions().add_session_key_to_contract: 3 calls, `transfer` only (owner-signed)",
    );
    let config = SessionConfig {
        session_public_key: session.public_key.clone(),
        valid_until: session.valid_until,
        max_calls: 3,
        allowed_entrypoints: vec!["transfer".into()],
    };
    let tx = sdk
        .sessions()
        .add_session_key_to_contract(
            AddSessionKey {
                encrypt_key: OWNER_PIN,
                wallet: &wallet,
                session_config: &config,
            },
            None,
        )
        .await?;
    sdk.wait_for_transaction(&tx).await?;
    println!("    tx {tx}");

    let query = GetSessionData {
        wallet_address: &wallet.public_key,
        session_public_key: &session.public_key,
    };
    step(5, "sessions().get_session_data");
    status(&sdk.sessions().get_session_data(query).await?);

    step(
        6,
        "execute_transaction_with_session: send 1 STRK, signed by the session key",
    );
    let recipient = "0x7777";
    let call = |entrypoint: &str| Call {
        contract_address: format!("{STRK_ADDRESS:#x}"),
        entrypoint: entrypoint.into(),
        calldata: vec![recipient.into(), STRK.to_string(), "0".into()],
    };
    let run = |calls: Vec<Call>| {
        let sdk = sdk.clone();
        let wallet = wallet.clone();
        let session = session.clone();
        async move {
            sdk.execute_transaction_with_session(
                ExecuteWithSession {
                    encrypt_key: SESSION_PIN,
                    wallet: &wallet,
                    session: &session,
                    calls: &calls,
                },
                None,
            )
            .await
        }
    };
    let tx = run(vec![call("transfer")]).await?;
    sdk.wait_for_transaction(&tx).await?;
    let recipient_felt = chipi_core::parse_felt_strict(recipient).ok_or("recipient")?;
    println!(
        "    tx {tx}; recipient holds {}, wallet {}",
        strk(devnet.strk_balance(recipient_felt).await?),
        strk(devnet.strk_balance(address).await?)
    );
    status(&sdk.sessions().get_session_data(query).await?);

    step(
        7,
        "What the session may not do is refused before anything is signed",
    );
    refused(
        "approve (not whitelisted)",
        run(vec![call("approve")]).await,
    )?;
    let wrong_pin = sdk
        .execute_transaction_with_session(
            ExecuteWithSession {
                encrypt_key: "0000",
                wallet: &wallet,
                session: &session,
                calls: &[call("transfer")],
            },
            None,
        )
        .await;
    refused("wrong PIN", wrong_pin)?;

    step(8, "sessions().revoke_session_key (owner-signed)");
    let tx = sdk
        .sessions()
        .revoke_session_key(
            RevokeSessionKey {
                encrypt_key: OWNER_PIN,
                wallet: &wallet,
                session_public_key: &session.public_key,
            },
            None,
        )
        .await?;
    sdk.wait_for_transaction(&tx).await?;
    println!("    tx {tx}");
    status(&sdk.sessions().get_session_data(query).await?);
    refused("transfer after revoke", run(vec![call("transfer")]).await)?;

    println!(
        "\nDone in {:.1} s. The same calls run sponsored (gasless) when the client is built \
         with a paymaster: ChipiSdk::builder(rpc).paymaster(url, api_key).",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
