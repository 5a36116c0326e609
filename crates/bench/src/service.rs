//! The paymaster service as a Chipi client meets it over HTTP: `prepare-typed-data`, the
//! owner signs the typed data, `execute-sponsored-transaction`. Shared by the benchmarks
//! that drive the service (`paymaster-bench`, `sponsorship-bench`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chipi_core::{Felt, OutsideExecution};
use serde_json::{json, Value};

/// The two routes, as the service's metrics label them.
pub const PREPARE: &str = "/v1/transactions/prepare-typed-data";
/// See [`PREPARE`].
pub const EXECUTE: &str = "/v1/transactions/execute-sponsored-transaction";

/// One app's client with one user's token.
#[derive(Clone)]
pub struct ServiceClient {
    /// Shared by every client (keep-alive connections).
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The app's public key.
    pub api_key: String,
    /// The user's bearer token.
    pub token: Arc<String>,
}

/// A wallet the benchmark signs for.
pub struct Wallet {
    /// The owner's private key.
    pub key: Felt,
    /// The wallet's address.
    pub address: Felt,
}

/// A sponsored transaction the service took, and its two round trips.
#[derive(Debug, Clone, Copy)]
pub struct Sponsored {
    /// Its hash.
    pub hash: Felt,
    /// The prepare round trip.
    pub prepare: Duration,
    /// The execute round trip.
    pub execute: Duration,
}

/// Why a sponsored transaction did not go through.
#[derive(Debug, Clone)]
pub struct Failed {
    /// The HTTP status, when the service answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub message: String,
    /// Time until the answer.
    pub took: Duration,
}

impl ServiceClient {
    /// A POST of `body` to `path`: the status and the JSON body (null if none).
    pub async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value), reqwest::Error> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("x-api-key", &self.api_key)
            .bearer_auth(self.token.as_str())
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// prepare → sign as the owner → execute; the transaction's hash and timings.
    pub async fn sponsored(&self, wallet: &Wallet, call: Value) -> Result<Sponsored, Failed> {
        let address = format!("{:#x}", wallet.address);
        let t0 = Instant::now();
        let fail = |status, message: String| Failed {
            status,
            message,
            took: t0.elapsed(),
        };
        let (status, prepared) = self
            .post(PREPARE, &json!({ "publicKey": address, "calls": [call] }))
            .await
            .map_err(|e| fail(None, format!("prepare: {e}")))?;
        let prepare = t0.elapsed();
        if status != 200 {
            return Err(fail(
                Some(status),
                format!("prepare answered {status}: {prepared}"),
            ));
        }
        let typed_data = &prepared["typedData"];
        let (execution, chain) = OutsideExecution::from_typed_data(typed_data)
            .map_err(|e| fail(None, format!("typed data: {e}")))?;
        let (r, s) =
            chipi_core::sign_hash(&wallet.key, execution.message_hash(chain, wallet.address))
                .map_err(|e| fail(None, format!("owner signature: {e}")))?;
        let body = json!({
            "publicKey": address,
            "typedData": typed_data,
            "userSignature": { "r": format!("{r:#x}"), "s": format!("{s:#x}") },
        });
        let t1 = Instant::now();
        let (status, answer) = self
            .post(EXECUTE, &body)
            .await
            .map_err(|e| fail(None, format!("execute: {e}")))?;
        let execute = t1.elapsed();
        if status != 200 {
            return Err(fail(
                Some(status),
                format!("execute answered {status}: {answer}"),
            ));
        }
        let hash = answer["transactionHash"]
            .as_str()
            .and_then(chipi_core::parse_felt_strict)
            .ok_or_else(|| fail(None, format!("execute answered without a hash: {answer}")))?;
        Ok(Sponsored {
            hash,
            prepare,
            execute,
        })
    }
}

/// A transfer of `amount` fri of STRK to `to`, as Chipi's JS SDK writes a call.
pub fn transfer_json(to: Felt, amount: u64) -> Value {
    json!({
        "contractAddress": format!("{:#x}", chipi_devnet::STRK_ADDRESS),
        "entrypoint": "transfer",
        "calldata": [format!("{to:#x}"), amount.to_string(), "0"],
    })
}

/// A benchmark's `main`: runs `run` on a multi-threaded runtime; success when it says all
/// went well, failure (with `name: error` on stderr) otherwise.
pub fn main_with<F, E>(name: &str, run: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<bool, E>>,
    E: std::fmt::Display,
{
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(run).map_err(|e| e.to_string()));
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(error) => {
            eprintln!("{name}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
