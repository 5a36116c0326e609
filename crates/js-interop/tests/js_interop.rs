//! Interop with the real JS libraries, through Node (`crates/js-interop/js`, pinned by
//! its package-lock.json and installed with `npm ci` on first use):
//!
//! - the compatible key format against @chipi-stack/backend 14.4.0's own
//!   `encryptPrivateKey` / `decryptPrivateKey` (crypto-es AES), both directions;
//! - sessions stored as JSON: the JS SDK's `sessions.createSessionKey` output loads
//!   unchanged in Rust and decrypts, ours loads and decrypts in JS;
//! - our SNIP-12 hash of an OutsideExecution against starknet.js 9's
//!   `typedData.getMessageHash`, both for our typed-data JSON and for the typed data that
//!   starknet.js builds itself.
//!
//! Needs Node.js and npm: without them these tests fail, saying so.
use chipi_core::{
    chain_id, decrypt_private_key, decrypt_text, encrypt_private_key, parse_calls, Argon2Settings,
    Felt, JsCall, KeyFormat, KeystoreError, OutsideExecution, SecretKey, ANY_CALLER,
};
use chipi_js_interop::run_node;
use serde_json::{json, Value};

/// STRK on Starknet.
const STRK: &str = "0x04718f5a0fc34cc1af16a1cdee98ffb20c31f5cd61d6ab07201858f4287c938d";
/// The account of the hashed outside executions.
const ACCOUNT: &str = "0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// Their nonce.
const NONCE: &str = "0x4c6a3d9e0b7f21a5";

fn parse_felt(text: &str) -> Result<Felt, String> {
    chipi_core::parse_felt_strict(text).ok_or_else(|| format!("not a felt: {text:?}"))
}

/// PINs (encryptKeys) the JS SDK accepts: anything but the empty string.
fn pins() -> Vec<String> {
    vec![
        "1234".into(),
        "000000".into(),
        "0".into(),
        " ".into(),
        "12\n34\t".into(),
        "ñandú 🔑 ключ 鍵".into(),
        "１２３４".into(),
        "p@ss $word \\ \" ' %s {}".into(),
        "nul\u{0}inside".into(),
        "x".repeat(1000),
    ]
}

fn versions_are_pinned(output: &Value) {
    let versions = &output["versions"];
    eprintln!("JS versions: {versions}");
    assert_eq!(versions["backend"], "14.4.0", "{versions}");
    assert_eq!(versions["starknet"], "9.2.1", "{versions}");
}

fn node(mode: &str, input: Value) -> Value {
    match run_node("interop.mjs", &[mode], &input) {
        Ok(output) => {
            versions_are_pinned(&output);
            output
        }
        Err(error) => panic!("the JS interop test could not run Node: {error}"),
    }
}

#[test]
fn rust_compatible_ciphertexts_decrypt_with_the_js_sdk() {
    let mut cases = Vec::new();
    let mut expected = Vec::new();
    let mut keys = vec![SecretKey::from_hex("0x1").unwrap()];
    keys.extend((0..pins().len() - 1).map(|_| SecretKey::random()));
    for (key, pin) in keys.iter().zip(pins()) {
        let encrypted = encrypt_private_key(key, &pin, KeyFormat::Compatible).unwrap();
        cases.push(json!({ "encrypted": encrypted, "pin": pin }));
        expected.push(Some(key.to_hex().to_string()));
    }
    // A wrong PIN must not give the key back.
    let key = SecretKey::random();
    let encrypted = encrypt_private_key(&key, "1234", KeyFormat::Compatible).unwrap();
    cases.push(json!({ "encrypted": encrypted, "pin": "1235" }));
    expected.push(None);
    // The strong format is not readable by the JS SDK.
    let fast = Argon2Settings {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let encrypted = encrypt_private_key(&key, "1234", KeyFormat::Strong(fast)).unwrap();
    cases.push(json!({ "encrypted": encrypted, "pin": "1234" }));
    expected.push(None);

    let output = node("decrypt", json!({ "cases": cases }));
    let results = output["results"].as_array().unwrap();
    assert_eq!(results.len(), expected.len());
    for ((case, result), expected) in cases.iter().zip(results).zip(&expected) {
        for library in ["sdk", "crypto_es"] {
            let got = result[library]["value"].as_str();
            match expected {
                Some(key) => assert_eq!(got, Some(key.as_str()), "{library}: {case} -> {result}"),
                None => assert_ne!(
                    got.map(|text| text.starts_with("0x") && text.len() == 66),
                    Some(true),
                    "{library} read a key it should not: {case} -> {result}"
                ),
            }
        }
    }
}

#[test]
fn js_sdk_ciphertexts_decrypt_in_rust() {
    let mut cases = Vec::new();
    for pin in pins() {
        cases.push(json!({ "generate": "wallet", "pin": pin }));
        cases.push(json!({ "generate": "session", "pin": pin }));
    }
    for key in [
        "0x1",
        "0xabc",
        "0xABCDEF0123",
        "0x0000000000000000000000000000000000000000000000000000000000000042",
        "0x7ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ] {
        cases.push(json!({ "key": key, "pin": "482916" }));
    }

    let output = node("encrypt", json!({ "cases": cases }));
    let results = output["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len());
    for result in results {
        let key_text = result["key"].as_str().unwrap();
        let pin = result["pin"].as_str().unwrap();
        let encrypted = result["encrypted"].as_str().unwrap();
        let public_key = parse_felt(result["public_key"].as_str().unwrap()).unwrap();

        let plaintext = decrypt_text(encrypted, pin).unwrap();
        assert_eq!(plaintext.as_slice(), key_text.as_bytes(), "{result}");
        let key = decrypt_private_key(encrypted, pin, public_key)
            .unwrap_or_else(|e| panic!("{e}: {result}"));
        assert_eq!(key.to_felt(), parse_felt(key_text).unwrap(), "{result}");
        assert_eq!(
            decrypt_private_key(encrypted, &format!("{pin}0"), public_key).unwrap_err(),
            KeystoreError::DecryptionFailed
        );
    }
}

/// 1 to 3 calls of different shapes, as a JS user writes them.
fn js_calls(n: usize) -> Vec<JsCall> {
    let all = [
        JsCall {
            contract_address: STRK.into(),
            entrypoint: "transfer".into(),
            calldata: vec![
                "0x5c1b1e2a3f4d5c6b7a8998877665544332211ffeeddccbbaa99887766554433".into(),
                "100".into(),
                "0".into(),
            ],
        },
        JsCall {
            contract_address: "0x49d36570d4e46f48e99674bd3fcc84644ddd6b96f7c741b1562b82f9e004dc7"
                .into(),
            entrypoint: "approve".into(),
            calldata: vec![
                "0x2".into(),
                "0xde0b6b3a7640000".into(),
                "0".into(),
                "12345678901234567890".into(),
            ],
        },
        JsCall {
            contract_address: "0x7".into(),
            entrypoint: "ping".into(),
            calldata: vec![],
        },
    ];
    all[..n].to_vec()
}

#[test]
fn starknet_js_hashes_outside_executions_like_chipi() {
    let account = parse_felt(ACCOUNT).unwrap();
    let cases = [
        (chain_id::SEPOLIA, 1),
        (chain_id::SEPOLIA, 3),
        (chain_id::MAINNET, 3),
    ];
    let mut typed = Vec::new();
    let mut build = Vec::new();
    let mut ours = Vec::new();
    for (chain, n) in cases {
        let calls = js_calls(n);
        let execution = OutsideExecution {
            caller: ANY_CALLER,
            nonce: parse_felt(NONCE).unwrap(),
            execute_after: 1_767_225_600,
            execute_before: 1_767_229_200,
            calls: parse_calls(&calls).unwrap(),
        };
        ours.push((execution.clone(), chain));
        typed.push(json!({
            "typed_data": execution.to_typed_data(chain),
            "account": ACCOUNT,
        }));
        build.push(json!({
            "chain_id": format!("{chain:#x}"),
            "caller": format!("{ANY_CALLER:#x}"),
            "nonce": NONCE,
            "execute_after": execution.execute_after,
            "execute_before": execution.execute_before,
            "calls": calls,
            "account": ACCOUNT,
        }));
    }

    let output = node("hash", json!({ "typed": typed, "build": build }));
    let js_hashes = output["results"]["typed"].as_array().unwrap();
    let js_built = output["results"]["build"].as_array().unwrap();
    assert_eq!(js_hashes.len(), ours.len());
    assert_eq!(js_built.len(), ours.len());
    for (((execution, chain), js_hash), js_built) in ours.iter().zip(js_hashes).zip(js_built) {
        let hash = execution.message_hash(*chain, account);
        // starknet.js hashes our typed-data JSON to our hash ...
        assert_eq!(
            parse_felt(js_hash.as_str().unwrap()).unwrap(),
            hash,
            "{} calls on {chain:#x}",
            execution.calls.len()
        );
        // ... and builds, from the same JS calls, typed data that we read back as the same
        // outside execution with the same hash.
        assert_eq!(
            parse_felt(js_built["hash"].as_str().unwrap()).unwrap(),
            hash
        );
        let (read, read_chain) = OutsideExecution::from_typed_data(&js_built["typed_data"])
            .unwrap_or_else(|e| panic!("{e}: {}", js_built["typed_data"]));
        assert_eq!(&read, execution);
        assert_eq!(read_chain, *chain);
    }
}

#[test]
fn stored_sessions_load_both_ways() {
    // Sessions the real JS SDK creates, as a client stores them (JSON.stringify), load
    // unchanged in Rust and their keys decrypt; ours load and decrypt in JS.
    let create: Vec<Value> = pins()
        .into_iter()
        .map(|pin| json!({ "pin": pin, "duration": 3600 }))
        .collect();
    let ours: Vec<(String, String)> = pins()
        .into_iter()
        .map(|pin| {
            let session = chipi_sdk::create_session_key(
                chipi_sdk::CreateSessionKey::new(&pin).duration_seconds(3600),
            )
            .unwrap();
            (serde_json::to_string(&session).unwrap(), pin)
        })
        .collect();
    let load: Vec<Value> = ours
        .iter()
        .map(|(json, pin)| json!({ "json": json, "pin": pin }))
        .collect();
    let output = node("sessions", json!({ "create": create, "load": load }));
    let created = output["results"]["created"].as_array().unwrap();
    assert_eq!(created.len(), pins().len());
    for (text, pin) in created.iter().zip(pins()) {
        let text = text.as_str().unwrap();
        let session: chipi_sdk::SessionKeyData = serde_json::from_str(text).unwrap();
        // Unchanged: written back, it is the same JSON value.
        assert_eq!(
            serde_json::to_value(&session).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        let public_key = parse_felt(&session.public_key).unwrap();
        let key = decrypt_private_key(&session.encrypted_private_key, &pin, public_key).unwrap();
        assert_eq!(key.public_key(), public_key);
    }
    let loaded = output["results"]["loaded"].as_array().unwrap();
    assert_eq!(loaded.len(), ours.len());
    for result in loaded {
        assert_eq!(result["public_key_matches"], true, "{result}");
        assert_eq!(result["valid_until_type"], "number", "{result}");
    }
}
