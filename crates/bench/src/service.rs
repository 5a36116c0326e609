//! The paymaster service as a client meets it over HTTP: Chipi's API
//! (`prepare-typed-data`, the owner signs the typed data, `execute-sponsored-transaction`)
//! and SNIP-29's (`paymaster_buildTransaction`, the owner signs,
//! `paymaster_executeTransaction`). Shared by the benchmarks that drive the service
//! (`paymaster-bench`, `sponsorship-bench`).

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

impl ServiceClient {
    /// One SNIP-29 JSON-RPC call: the result, or why not.
    async fn rpc(&self, method: &str, params: Value) -> Result<Value, (Option<u16>, String)> {
        let response = self
            .http
            .post(format!("{}/", self.base))
            .header("x-paymaster-api-key", &self.api_key)
            .bearer_auth(self.token.as_str())
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .map_err(|e| (None, format!("{method}: {e}")))?;
        let status = response.status().as_u16();
        let mut answer: Value = response.json().await.unwrap_or(Value::Null);
        match answer.get_mut("result").map(Value::take) {
            Some(result) if status == 200 => Ok(result),
            _ => Err((
                Some(status),
                format!("{method} answered {status}: {answer}"),
            )),
        }
    }

    /// The same transaction as [`ServiceClient::sponsored`] through the SNIP-29 API:
    /// build → sign as the owner → execute, sponsored. `call` is `{to, selector,
    /// calldata}`.
    pub async fn sponsored_snip29(
        &self,
        wallet: &Wallet,
        call: Value,
    ) -> Result<Sponsored, Failed> {
        let address = format!("{:#x}", wallet.address);
        let t0 = Instant::now();
        let fail = |(status, message): (Option<u16>, String)| Failed {
            status,
            message,
            took: t0.elapsed(),
        };
        let parameters = json!({"version": "0x1", "fee_mode": {"mode": "sponsored"}});
        let built = self
            .rpc(
                "paymaster_buildTransaction",
                json!({
                    "transaction": {"type": "invoke", "invoke": {"user_address": address, "calls": [call]}},
                    "parameters": parameters,
                }),
            )
            .await
            .map_err(fail)?;
        let build = t0.elapsed();
        let typed_data = &built["typed_data"];
        let (execution, chain) = OutsideExecution::from_typed_data(typed_data)
            .map_err(|e| fail((None, format!("typed data: {e}"))))?;
        let (r, s) =
            chipi_core::sign_hash(&wallet.key, execution.message_hash(chain, wallet.address))
                .map_err(|e| fail((None, format!("owner signature: {e}"))))?;
        let t1 = Instant::now();
        let executed = self
            .rpc(
                "paymaster_executeTransaction",
                json!({
                    "transaction": {"type": "invoke", "invoke": {
                        "user_address": address,
                        "typed_data": typed_data,
                        "signature": [format!("{r:#x}"), format!("{s:#x}")],
                    }},
                    "parameters": parameters,
                }),
            )
            .await
            .map_err(fail)?;
        let execute = t1.elapsed();
        let hash = executed["transaction_hash"]
            .as_str()
            .and_then(chipi_core::parse_felt_strict)
            .ok_or_else(|| fail((None, format!("execute answered without a hash: {executed}"))))?;
        Ok(Sponsored {
            hash,
            prepare: build,
            execute,
        })
    }
}

/// The same transfer as [`transfer_json`] on the SNIP-29 wire (selector hashed).
pub fn transfer_snip29(to: Felt, amount: u64) -> Value {
    json!({
        "to": format!("{:#x}", chipi_devnet::STRK_ADDRESS),
        "selector": format!("{:#x}", chipi_core::selectors::TRANSFER),
        "calldata": [format!("{to:#x}"), format!("{amount:#x}"), "0x0"],
    })
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
