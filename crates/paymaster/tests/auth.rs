//! API.md section 2, as a matrix: every way a caller can be wrong is a JSON 401 that
//! echoes nothing it was sent, records nothing and sends nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use chipi_contract_tests::paymaster::{
    now, token, Options, API_KEY, JWT_SECRET, OTHER_SECRET_KEY, SECRET_KEY,
};
use chipi_paymaster::{AppConfig, JwtConfig, RpcUrl};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const JWKS_APP: &str = "pk_prod_jwksjwksjwksjwksjwksjwksjwksjwks";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "chipi-tests";

fn keys(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

/// An app whose tokens are verified by `jwt`, with this file's issuer and audience.
fn jwt_app(public_key: &str, name: &str, mut jwt: JwtConfig) -> AppConfig {
    jwt.issuer = Some(ISSUER.into());
    jwt.audience = Some(AUDIENCE.into());
    let mut app = AppConfig::new(name, public_key);
    app.jwt = Some(jwt);
    app
}

fn jwks_options() -> Options {
    Options::default().configure(|config| {
        config.apps.push(jwt_app(
            JWKS_APP,
            "jwks",
            JwtConfig::jwks_file(keys("jwks.json")),
        ))
    })
}

fn claims() -> Value {
    json!({ "sub": "user-9", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now() })
}

fn rs256(claims: &Value, kid: &str) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let key = EncodingKey::from_rsa_der(&std::fs::read(keys("rsa-private.der")).unwrap());
    encode(&header, claims, &key).unwrap()
}

fn es256(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let key = EncodingKey::from_ec_der(&std::fs::read(keys("ec-private.der")).unwrap());
    encode(&header, claims, &key).unwrap()
}

fn hs256_with(secret: &[u8], claims: &Value, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = kid.map(str::to_string);
    encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn unsigned(claims: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}

#[tokio::test]
async fn every_bad_caller_gets_a_json_401_and_nothing_happens() {
    let e = common::env_with(jwks_options()).await;
    let body = json!({ "publicKey": e.wallet(), "calls": [e.transfer("0x77", 1)] });
    // One good prepare, so the execute cases have a real body to carry.
    let prepared = e.prepare(json!([e.transfer("0x77", 1)])).await;
    assert_eq!(prepared.status, 200);
    let execute = e.execute_body(&prepared.body["typedData"]);
    let relayer_nonce = e.relayer_nonce(3).await;
    let issued = e.pm.state.store().issued_count().await.unwrap();

    let hs = |claims: Value| token(claims);
    let user = |extra: Value| {
        let mut c = json!({ "sub": "user-1", "exp": now() + 600 });
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let rsa_public = std::fs::read(keys("rsa-public.pem")).unwrap();
    let cases: Vec<(&str, Option<&str>, Option<String>)> = vec![
        ("no API key", None, Some(e.token.clone())),
        (
            "malformed API key",
            Some("pk_dev_short"),
            Some(e.token.clone()),
        ),
        (
            "unknown API key",
            Some("pk_dev_unknownunknownunknownunknown00"),
            Some(e.token.clone()),
        ),
        (
            "secret key as API key",
            Some(SECRET_KEY),
            Some(e.token.clone()),
        ),
        ("no token", Some(API_KEY), None),
        ("garbage token", Some(API_KEY), Some("not-a-token".into())),
        (
            "expired",
            Some(API_KEY),
            Some(hs(user(json!({ "exp": now() - 120 })))),
        ),
        (
            "not yet valid",
            Some(API_KEY),
            Some(hs(user(json!({ "nbf": now() + 600 })))),
        ),
        (
            "no subject",
            Some(API_KEY),
            Some(hs(json!({ "exp": now() + 600 }))),
        ),
        (
            "wrong signature",
            Some(API_KEY),
            Some(hs256_with(
                b"another-secret-another-secret-another",
                &user(json!({})),
                None,
            )),
        ),
        ("alg none", Some(API_KEY), Some(unsigned(&user(json!({}))))),
        (
            "RS256 for an HS256 app",
            Some(API_KEY),
            Some(rs256(&claims(), "rsa-1")),
        ),
        (
            "another app's secret key",
            Some(API_KEY),
            Some(OTHER_SECRET_KEY.into()),
        ),
        (
            "a wrong secret key",
            Some(API_KEY),
            Some("sk_dev_00000000000000000000000000000000".into()),
        ),
        // The JWKS app.
        (
            "HS256 signed with the RSA public key (confusion)",
            Some(JWKS_APP),
            Some(hs256_with(&rsa_public, &claims(), Some("rsa-1"))),
        ),
        (
            "HS256 with the app's HS secret of another app",
            Some(JWKS_APP),
            Some(hs256_with(JWT_SECRET.as_bytes(), &claims(), None)),
        ),
        ("alg none (JWKS)", Some(JWKS_APP), Some(unsigned(&claims()))),
        (
            "wrong audience",
            Some(JWKS_APP),
            Some(rs256(
                &{
                    let mut c = claims();
                    c["aud"] = json!("someone-else");
                    c
                },
                "rsa-1",
            )),
        ),
        (
            "no audience",
            Some(JWKS_APP),
            Some(rs256(
                &{
                    let mut c = claims();
                    c.as_object_mut().unwrap().remove("aud");
                    c
                },
                "rsa-1",
            )),
        ),
        (
            "wrong issuer",
            Some(JWKS_APP),
            Some(rs256(
                &{
                    let mut c = claims();
                    c["iss"] = json!("https://evil.test");
                    c
                },
                "rsa-1",
            )),
        ),
        (
            "RSA token naming the EC key",
            Some(JWKS_APP),
            Some(rs256(&claims(), "ec-1")),
        ),
        (
            "unknown key id",
            Some(JWKS_APP),
            Some(rs256(&claims(), "rsa-9")),
        ),
        (
            "expired (JWKS)",
            Some(JWKS_APP),
            Some(es256(&{
                let mut c = claims();
                c["exp"] = json!(now() - 120);
                c
            })),
        ),
        (
            "the app's secret key where none is configured",
            Some(JWKS_APP),
            Some(SECRET_KEY.into()),
        ),
    ];
    for (name, api_key, bearer) in &cases {
        for (path, body) in [
            ("/v1/transactions/prepare-typed-data", &body),
            ("/v1/transactions/execute-sponsored-transaction", &execute),
        ] {
            let mut request = e.http.post(format!("{}{path}", e.pm.url)).json(body);
            if let Some(key) = api_key {
                request = request.header("x-api-key", *key);
            }
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{name} on {path}");
            let answer: Value = response.json().await.unwrap();
            assert_eq!(answer["statusCode"], 401, "{name}");
            assert_eq!(answer["code"], "AUTHENTICATION_FAILED", "{name}");
            let message = answer["message"].as_str().unwrap();
            if let Some(bearer) = bearer {
                assert!(!message.contains(bearer.as_str()), "{name}: {message}");
            }
            assert!(!message.contains("pk_"), "{name}: {message}");
        }
    }
    assert_eq!(
        e.pm.state.store().issued_count().await.unwrap(),
        issued,
        "nothing issued"
    );
    assert!(
        e.pm.state.store().transactions().await.unwrap().is_empty(),
        "nothing recorded"
    );
    assert_eq!(e.relayer_nonce(3).await, relayer_nonce, "nothing sent");

    // The good tokens of the JWKS app work: RS256 and ES256, with iss and aud.
    for good in [rs256(&claims(), "rsa-1"), es256(&claims())] {
        let answer = e
            .post_as(
                "/v1/transactions/prepare-typed-data",
                &body,
                JWKS_APP,
                Some(&good),
            )
            .await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
    }
    // And the app's secret key works for its own app.
    let answer = e
        .post_as(
            "/v1/transactions/prepare-typed-data",
            &body,
            API_KEY,
            Some(SECRET_KEY),
        )
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

#[tokio::test]
async fn a_jwks_by_url_is_fetched_once_and_refetched_for_a_new_key_at_most_once_per_interval() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    // The identity provider: serves the JWKS (first without `rsa-1`, then, after a key
    // rotation, with it) and counts the fetches.
    let fetches = Arc::new(AtomicUsize::new(0));
    let rotated = Arc::new(AtomicBool::new(false));
    let full: Value = serde_json::from_slice(&std::fs::read(keys("jwks.json")).unwrap()).unwrap();
    let mut before_rotation = full.clone();
    before_rotation["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|key| key["kid"] != "rsa-1");
    let (counter, rotation) = (fetches.clone(), rotated.clone());
    let provider = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let jwks = if rotation.load(Ordering::SeqCst) {
                full.clone()
            } else {
                before_rotation.clone()
            };
            async move { axum::Json(jwks) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, provider).await });

    // The refetch interval is 10 s by default; 2 s here keeps the test short.
    const REFETCH_SECONDS: u64 = 2;
    let e = common::env_with(Options::default().configure(move |config| {
        let mut jwt = JwtConfig::jwks_url(RpcUrl::parse(&jwks_url).unwrap());
        jwt.jwks_refetch_seconds = REFETCH_SECONDS;
        config.apps.push(jwt_app(JWKS_APP, "jwks-url", jwt));
    }))
    .await;
    let body = json!({ "publicKey": e.wallet(), "calls": [e.transfer("0x77", 1)] });
    let prepare = |token: String| {
        let body = body.clone();
        let e = &e;
        async move {
            e.post_as(
                "/v1/transactions/prepare-typed-data",
                &body,
                JWKS_APP,
                Some(&token),
            )
            .await
            .status
        }
    };
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        0,
        "fetched on first use, not at start"
    );
    // Taken before the first use, so no later than the service's fetch: the interval,
    // counted from here, is never longer than the service's own.
    let fetched_at = std::time::Instant::now();
    assert_eq!(prepare(es256(&claims())).await, 200);
    assert_eq!(prepare(es256(&claims())).await, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "cached");

    // The provider rotates `rsa-1` in. A token signed with it right after the fetch is
    // refused without asking the provider again...
    rotated.store(true, Ordering::SeqCst);
    assert_eq!(prepare(rs256(&claims(), "rsa-1")).await, 401);
    assert_eq!(prepare(rs256(&claims(), "rsa-1")).await, 401);
    assert_eq!(fetches.load(Ordering::SeqCst), 1);
    // ...and accepted once the interval has passed, after exactly one more fetch however
    // often it was tried meanwhile.
    let mut tries = 0;
    while prepare(rs256(&claims(), "rsa-1")).await != 200 {
        tries += 1;
        assert!(tries < 300, "the rotated key was never fetched");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        fetched_at.elapsed() >= std::time::Duration::from_secs(REFETCH_SECONDS),
        "refetched within the interval"
    );
    assert!(tries > 0, "accepted at once: the key was not unknown");
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "one refetch for {tries} tries"
    );
}

/// An identity provider whose answer the test switches: the JWKS, a 500, or a document
/// past the size cap. It counts the requests it gets.
struct Provider {
    url: String,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

const SERVE: u8 = 0;
const FAIL: u8 = 1;
const HUGE: u8 = 2;

async fn provider() -> Provider {
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
    use std::sync::Arc;
    let fetches = Arc::new(AtomicUsize::new(0));
    let mode = Arc::new(AtomicU8::new(SERVE));
    let jwks: Value = serde_json::from_slice(&std::fs::read(keys("jwks.json")).unwrap()).unwrap();
    let (counter, switch) = (fetches.clone(), mode.clone());
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let (jwks, mode) = (jwks.clone(), switch.load(Ordering::SeqCst));
            async move {
                use axum::response::IntoResponse;
                match mode {
                    SERVE => axum::Json(jwks).into_response(),
                    FAIL => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                    _ => {
                        let mut padded = jwks;
                        padded["padding"] = json!("x".repeat(400 * 1024));
                        axum::Json(padded).into_response()
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Provider { url, fetches, mode }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unknown_keys_and_a_failing_provider_cost_one_fetch_per_interval() {
    use std::sync::atomic::Ordering;
    let idp = provider().await;
    let big = provider().await;
    big.mode.store(HUGE, Ordering::SeqCst);
    const BIG_APP: &str = "pk_prod_bigbigbigbigbigbigbigbigbigbig01";
    let e = std::sync::Arc::new(
        common::env_with(Options::default().configure({
            let (idp, big) = (idp.url.clone(), big.url.clone());
            move |config| {
                let mut jwt = JwtConfig::jwks_url(RpcUrl::parse(&idp).unwrap());
                jwt.jwks_cache_seconds = 1;
                jwt.jwks_refetch_seconds = 2;
                config.apps.push(jwt_app(JWKS_APP, "jwks-url", jwt));
                let jwt = JwtConfig::jwks_url(RpcUrl::parse(&big).unwrap());
                config.apps.push(jwt_app(BIG_APP, "big", jwt));
            }
        }))
        .await,
    );
    let body = json!({ "publicKey": e.wallet(), "calls": [e.transfer("0x77", 1)] });
    let status = |app: &'static str, token: String| {
        let (e, body) = (e.clone(), body.clone());
        async move {
            e.post_as(
                "/v1/transactions/prepare-typed-data",
                &body,
                app,
                Some(&token),
            )
            .await
            .status
        }
    };
    assert_eq!(status(JWKS_APP, rs256(&claims(), "rsa-1")).await, 200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    // 200 tokens with made-up key ids at once, valid tokens among them.
    let mut flood = Vec::new();
    for i in 0..200 {
        let token = if i % 20 == 0 {
            rs256(&claims(), "rsa-1")
        } else {
            rs256(&claims(), &format!("made-up-{i}-{}", rand_kid()))
        };
        flood.push(tokio::spawn(status(JWKS_APP, token)));
    }
    let started = std::time::Instant::now();
    let mut answers = Vec::new();
    for task in flood {
        answers.push(task.await.unwrap());
    }
    let valid: Vec<u16> = answers.iter().step_by(20).copied().collect();
    assert!(valid.iter().all(|s| *s == 200), "{valid:?}");
    let refused = answers.iter().filter(|s| **s == 401).count();
    assert_eq!(refused, 190, "{answers:?}");
    // The cache expired during the flood at most a few times: one fetch per 2 s at most.
    let intervals = started.elapsed().as_secs() as usize / 2 + 1;
    let fetched = idp.fetches.load(Ordering::SeqCst);
    assert!(
        fetched <= 1 + intervals,
        "{fetched} fetches for {intervals} intervals"
    );

    // The provider fails: its last keys still verify, and it is not asked again at once.
    idp.mode.store(FAIL, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let before = idp.fetches.load(Ordering::SeqCst);
    assert_eq!(status(JWKS_APP, rs256(&claims(), "rsa-1")).await, 200);
    assert_eq!(idp.fetches.load(Ordering::SeqCst), before + 1);
    for _ in 0..5 {
        assert_eq!(status(JWKS_APP, rs256(&claims(), "rsa-1")).await, 200);
        assert_eq!(status(JWKS_APP, rs256(&claims(), "other")).await, 401);
    }
    assert_eq!(
        idp.fetches.load(Ordering::SeqCst),
        before + 1,
        "failure remembered"
    );

    // A document past the size cap is not read: the service says the keys are unavailable.
    let answer = e
        .post_as(
            "/v1/transactions/prepare-typed-data",
            &body,
            BIG_APP,
            Some(&rs256(&claims(), "rsa-1")),
        )
        .await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
    assert_eq!(answer.code(), "AUTHENTICATION_UNAVAILABLE");
}

fn rand_kid() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(1);
    hasher.finish()
}
