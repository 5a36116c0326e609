//! Shared by the service's tests: a devnet with a wallet, the service, and a raw HTTP
//! client that speaks the API as Chipi's JS SDK does.
#![allow(dead_code)]

pub mod load;
pub mod proxy;

use chipi_contract_tests::paymaster::{user_token, LocalPaymaster, Options, API_KEY, USER};
use chipi_contract_tests::TestWallet;
use chipi_core::{Felt, OutsideExecution};
use serde_json::{json, Value};

pub struct Env {
    pub w: TestWallet,
    pub pm: LocalPaymaster,
    pub http: reqwest::Client,
    pub token: String,
}

pub async fn env() -> Env {
    env_with(Options::default()).await
}

pub async fn env_with(options: Options) -> Env {
    env_on(TestWallet::new().await, options).await
}

/// The service for wallet `w` (whose devnet may sit behind a proxy in `options`).
pub async fn env_on(w: TestWallet, options: Options) -> Env {
    let pm = LocalPaymaster::start_with(&w.devnet, options)
        .await
        .unwrap();
    Env {
        w,
        pm,
        http: reqwest::Client::new(),
        token: user_token(USER),
    }
}

/// An answer: status and JSON body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl Env {
    pub async fn post_as(
        &self,
        path: &str,
        body: &Value,
        api_key: &str,
        bearer: Option<&str>,
    ) -> Answer {
        self.post_at(&self.pm.url, path, body, api_key, bearer)
            .await
    }

    /// [`Env::post_as`] to the service at `base` (another instance on the same database).
    pub async fn post_at(
        &self,
        base: &str,
        path: &str,
        body: &Value,
        api_key: &str,
        bearer: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .post(format!("{base}{path}?__chipi_api_version=2025-01-01"))
            .header("x-api-key", api_key)
            .json(body);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.expect("service answers");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer { status, body }
    }

    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_as(path, body, API_KEY, Some(&self.token)).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.get_at(&self.pm.url, path).await
    }

    /// GET `path` at the instance at `base`, as the local app's user.
    pub async fn get_at(&self, base: &str, path: &str) -> Answer {
        let response = self
            .http
            .get(format!("{base}{path}"))
            .header("x-api-key", API_KEY)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("service answers");
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Answer { status, body }
    }

    /// A STRK transfer of `amount` to `to`, in the JS call shape.
    pub fn transfer(&self, to: &str, amount: u64) -> Value {
        json!({
            "contractAddress": format!("{:#x}", chipi_devnet::STRK_ADDRESS),
            "entrypoint": "transfer",
            "calldata": [to, amount.to_string(), "0"],
        })
    }

    pub fn wallet(&self) -> String {
        format!("{:#x}", self.w.address)
    }

    pub async fn prepare(&self, calls: Value) -> Answer {
        self.post(
            "/v1/transactions/prepare-typed-data",
            &json!({ "publicKey": self.wallet(), "calls": calls, "walletType": "CHIPI" }),
        )
        .await
    }

    /// The owner's `{r, s}` over `typed_data`, as the JS SDK sends it.
    pub fn owner_sign(&self, typed_data: &Value) -> Value {
        let (execution, chain) = OutsideExecution::from_typed_data(typed_data).expect("typed data");
        let hash = execution.message_hash(chain, self.w.address);
        let (r, s) = chipi_core::sign_hash(&self.w.owner_key, hash).expect("signs");
        json!({ "r": format!("{r:#x}"), "s": format!("{s:#x}") })
    }

    pub fn execute_body(&self, typed_data: &Value) -> Value {
        json!({
            "publicKey": self.wallet(),
            "typedData": typed_data,
            "userSignature": self.owner_sign(typed_data),
            "saveToDatabase": true,
            "walletType": "CHIPI",
        })
    }

    pub async fn execute(&self, body: &Value) -> Answer {
        self.post("/v1/transactions/execute-sponsored-transaction", body)
            .await
    }

    /// Prepares `calls`, signs as the owner and executes: the answer of the execute.
    pub async fn run(&self, calls: Value) -> Answer {
        let prepared = self.prepare(calls).await;
        assert_eq!(prepared.status, 200, "{:?}", prepared.body);
        let body = self.execute_body(&prepared.body["typedData"]);
        self.execute(&body).await
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        self.metrics_at(&self.pm.url).await
    }

    /// The `/metrics` page of the instance at `base`.
    pub async fn metrics_at(&self, base: &str) -> String {
        self.http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("service answers")
            .text()
            .await
            .expect("text")
    }

    pub async fn balance(&self, address: Felt) -> u128 {
        self.w.devnet.strk_balance(address).await.expect("balance")
    }

    pub async fn relayer_nonce(&self, index: usize) -> Felt {
        use starknet_rust::providers::Provider;
        let address = self.w.devnet.accounts()[index].address;
        self.w
            .devnet
            .provider()
            .get_nonce(
                starknet_rust::core::types::BlockId::Tag(
                    starknet_rust::core::types::BlockTag::Latest,
                ),
                address,
            )
            .await
            .expect("nonce")
    }

    /// Waits until the service's record of `hash` is final; returns the record.
    pub async fn settled(&self, hash: &str) -> chipi_paymaster::TxRecord {
        // Up to 60 s: a loaded machine runs several devnets and services at once.
        let felt = chipi_core::parse_felt_strict(hash).expect("a transaction hash");
        let mut last = None;
        for _ in 0..1200 {
            let rows = self.pm.state.store().transactions().await.expect("rows");
            if let Some(row) = rows.into_iter().find(|r| r.hash == Some(felt)) {
                if matches!(
                    row.status(),
                    chipi_paymaster::TxStatus::Accepted | chipi_paymaster::TxStatus::Reverted
                ) {
                    return row;
                }
                last = Some(row);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // What the record says (a row that ended otherwise, or none) explains a failure.
        panic!("transaction {hash} not followed to its end; its record: {last:#?}");
    }
}

/// The one transaction hash every answer carries (each a 200): the same request sent
/// several times at once.
pub fn the_one_hash(answers: &[Answer]) -> String {
    let hashes: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| {
            assert_eq!(a.status, 200, "{:?}", a.body);
            a.body["transactionHash"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(hashes.len(), 1, "{answers:?}");
    hashes.into_iter().next().unwrap()
}
