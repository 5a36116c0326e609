//! The sponsorship policy applied (API.md section 10): the checks before any simulation,
//! the reservation of every limit a request falls under, the operator's webhook, and the
//! usage page.

use std::time::Duration;

use chipi_core::{Call, Felt};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;

use super::{Engine, EngineError};
use crate::auth::Caller;
use crate::policy::{Charge, Knob, OnError, Policy, Refusal, RefusalKind, Scope, FEE_UNIT_FRI};
use crate::store::{felt_text, now, TxStatus};

/// The header carrying `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` on webhook calls;
/// `x-chipi-timestamp` carries the timestamp (unix seconds), so a captured call cannot be
/// replayed later unnoticed.
pub const WEBHOOK_SIGNATURE_HEADER: &str = "x-chipi-signature";

/// One limit on the usage page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageLimit {
    /// The knob's name (`user.fee_fri_per_day`, ...).
    pub limit: String,
    /// `app` or `user`.
    pub scope: &'static str,
    /// `minute`, `hour`, `day` or `month`.
    pub window: &'static str,
    /// The current window's start and end (unix seconds).
    pub window_start: i64,
    /// The end.
    pub window_end: i64,
    /// The cap (transactions, or fri).
    pub cap: String,
    /// Taken and final.
    pub used: String,
    /// Held by transactions not yet final.
    pub reserved: String,
    /// What is left.
    pub remaining: String,
}

/// `GET /v1/sponsorship/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    /// The app's name.
    pub app: String,
    /// The user, when one was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    /// Each limit of the policy that applies.
    pub limits: Vec<UsageLimit>,
    /// Transactions sent (pending, accepted or reverted).
    pub sent: u64,
    /// Sent and not final yet.
    pub pending: u64,
    /// Accepted.
    pub accepted: u64,
    /// Reverted (paid).
    pub reverted: u64,
    /// Fees paid (fri).
    pub fees_paid_fri: String,
    /// Distinct users with a sent transaction.
    pub users: u64,
}

impl Engine {
    /// The checks that take nothing from a counter, before any simulation: the policy is
    /// on, the calls are sponsored, the wallet's class is sponsored (and, if the policy
    /// says so, it is the user's own wallet), the user and the wallet are under their
    /// revert limits. With `peek_counts` (on prepare), also refuses when a count limit is
    /// already reached. `class` is the class of a wallet still to be deployed (read from
    /// the chain when `None`); a deployment alone makes no `calls`, and the call rules
    /// then do not apply (as for a Chipi wallet creation).
    pub(crate) async fn admit(
        &self,
        caller: &Caller,
        user: &str,
        wallet: Felt,
        class: Option<Felt>,
        calls: &[Call],
        peek_counts: bool,
    ) -> Result<(), EngineError> {
        let policy = &caller.app.policy;
        let now = now();
        let refused = |refusal: Refusal| self.refused(caller, refusal);
        policy.check_active(now).map_err(refused)?;
        if !calls.is_empty() {
            policy.check_calls(calls).map_err(refused)?;
        }
        let class = match class {
            Some(class) => class,
            None => self.class_at(wallet).await?,
        };
        policy
            .check_class(class, &self.config.account_classes)
            .map_err(refused)?;
        if policy.own_wallet_only {
            if let Some(token_user) = caller.token_user() {
                let own = self
                    .store
                    .wallet_of_user(&caller.app.public_key, token_user)
                    .await?;
                if own.is_none_or(|row| row.address != wallet) {
                    return Err(refused(Refusal::new(
                        RefusalKind::WalletNotSponsored,
                        "own_wallet_only",
                        "only the wallet recorded for this user is sponsored",
                    )));
                }
            }
        }
        let reverts = policy.revert_counters(user, wallet, now);
        let values = self
            .store
            .counters(&caller.app.public_key, &reverts)
            .await?;
        if let Some((charge, _)) = reverts
            .iter()
            .zip(values)
            .find(|(charge, used)| *used >= charge.cap)
        {
            return Err(refused(charge.refusal(now)));
        }
        if peek_counts {
            // Counts, and the wallet's transactions in flight: a full one refuses the
            // prepare already, with no nonce issued.
            let counts: Vec<Charge> = policy
                .charges(user, wallet, now, 0)
                .into_iter()
                .filter(|c| matches!(c.knob, Knob::Transactions | Knob::InFlight))
                .collect();
            let mut full = self.first_full(caller, &counts).await?;
            if full.is_some_and(|i| counts[i].knob == Knob::InFlight) {
                // Read again after the look, whatever it found: the follower may have
                // settled the wallet's last transaction between the read and the look.
                self.follow_now(wallet).await?;
                full = self.first_full(caller, &counts).await?;
            }
            if let Some(index) = full {
                return Err(refused(counts[index].refusal(now)));
            }
        }
        Ok(())
    }

    /// The first of `charges` that its counter cannot take.
    async fn first_full(
        &self,
        caller: &Caller,
        charges: &[Charge],
    ) -> Result<Option<usize>, EngineError> {
        let values = self.store.counters(&caller.app.public_key, charges).await?;
        Ok(charges
            .iter()
            .zip(values)
            .position(|(charge, used)| used + charge.amount > charge.cap))
    }

    /// Looks at `wallet`'s open transactions now, unless that is being done or was done
    /// a moment ago.
    async fn follow_now(&self, wallet: Felt) -> Result<(), EngineError> {
        if let Some(mut looking) = self.may_follow(wallet) {
            looking.finished = super::settle::follow_wallet(self, wallet).await?;
        }
        Ok(())
    }

    /// Takes what transaction `id` needs from every limit (its fee bound `fee_reserve`
    /// against fee budgets), atomically; on a refusal the row is marked refused.
    pub(crate) async fn reserve(
        &self,
        caller: &Caller,
        id: i64,
        user: &str,
        wallet: Felt,
        fee_reserve: u128,
    ) -> Result<(), EngineError> {
        let now = now();
        let charges = caller.app.policy.charges(user, wallet, now, fee_reserve);
        let mut refused = self
            .store
            .reserve(id, &caller.app.public_key, &charges)
            .await?;
        if refused.is_some_and(|index| charges[index].knob == Knob::InFlight) {
            // The wallet's last transaction may be final already (found so by this look,
            // or settled by the follower since the first try): once more.
            self.follow_now(wallet).await?;
            refused = self
                .store
                .reserve(id, &caller.app.public_key, &charges)
                .await?;
        }
        match refused {
            None => Ok(()),
            Some(index) => {
                let refusal = charges[index].refusal(now);
                self.store
                    .set_status(
                        id,
                        TxStatus::Refused,
                        Some(refusal.kind.code()),
                        Some(&refusal.message),
                    )
                    .await?;
                Err(self.refused(caller, refusal))
            }
        }
    }

    /// Counts a refusal in the metrics and makes it the engine's error.
    pub(crate) fn refused(&self, caller: &Caller, refusal: Refusal) -> EngineError {
        self.metrics
            .sponsorship_refusals
            .with_label_values(&[caller.app.name.as_str(), refusal.kind.code()])
            .inc();
        EngineError::Refused(refusal)
    }

    /// Asks the app's webhook, when it has one, whether to sponsor `calls` for at most
    /// `max_fee` fri.
    pub(crate) async fn decide(
        &self,
        caller: &Caller,
        user: &str,
        wallet: Felt,
        calls: &[Call],
        max_fee: u128,
    ) -> Result<(), Refusal> {
        let Some(webhook) = &caller.app.policy.webhook else {
            return Ok(());
        };
        let body = json!({
            "app": caller.app.name,
            "externalUserId": user,
            "wallet": felt_text(wallet),
            "calls": calls.iter().map(|c| json!({
                "contractAddress": felt_text(c.to),
                "selector": felt_text(c.selector),
                "calldata": c.calldata.iter().map(|f| felt_text(*f)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "maxFeeFri": max_fee.to_string(),
        })
        .to_string();
        let timestamp = now().to_string();
        let signature = sign_webhook(webhook.secret.expose().as_bytes(), &timestamp, &body);
        let answer = self
            .webhook
            .post(webhook.url.0.clone())
            .timeout(Duration::from_millis(webhook.timeout_ms))
            .header("content-type", "application/json")
            .header("x-chipi-timestamp", &timestamp)
            .header(WEBHOOK_SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await;
        let decision = match answer {
            Ok(response) if response.status().is_success() => response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| v.get("sponsor").and_then(|s| s.as_bool())),
            _ => None,
        };
        let declined = || {
            Refusal::new(
                RefusalKind::Declined,
                "webhook",
                "the operator declined to sponsor this transaction",
            )
        };
        match decision {
            Some(true) => Ok(()),
            Some(false) => Err(declined()),
            None => {
                tracing::warn!(app = %caller.app.name, "sponsorship webhook did not answer");
                match webhook.on_error {
                    OnError::Sponsor => Ok(()),
                    OnError::Refuse => Err(declined()),
                }
            }
        }
    }

    /// The usage page of `caller`'s app, and of `user` when given.
    pub async fn usage(
        &self,
        caller: &Caller,
        user: Option<&str>,
    ) -> Result<UsageReport, EngineError> {
        let policy: &Policy = &caller.app.policy;
        let now = now();
        let app = &caller.app.public_key;
        let mut limits = Vec::new();
        for limit in &policy.limits {
            let subject_user = match (limit.scope, user) {
                (Scope::App, _) => "",
                (Scope::User, Some(user)) => user,
                (Scope::User, None) => continue,
            };
            let scoped = crate::policy::Policy {
                limits: vec![limit.clone()],
                ..Policy::default()
            };
            let charges: Vec<Charge> = scoped
                .charges(subject_user, Felt::ZERO, now, 0)
                .into_iter()
                .filter(|c| c.knob != Knob::InFlight)
                .collect();
            let taken = self.store.counters(app, &charges).await?;
            let held = self.store.reserved(app, &charges).await?;
            for ((charge, taken), held) in charges.iter().zip(taken).zip(held) {
                let scale = |units: i64| -> u128 {
                    let units = u128::try_from(units.max(0)).unwrap_or(0);
                    match charge.knob {
                        Knob::Fees => units * FEE_UNIT_FRI,
                        _ => units,
                    }
                };
                let cap = match charge.knob {
                    Knob::Fees => limit.max_fee_fri.unwrap_or(0),
                    _ => scale(charge.cap),
                };
                let used = scale(taken - held);
                let reserved = scale(held);
                limits.push(UsageLimit {
                    limit: charge.limit.clone(),
                    scope: limit.scope.as_str(),
                    window: limit.window.as_str(),
                    window_start: charge.window_start,
                    window_end: charge.window_end,
                    cap: cap.to_string(),
                    used: used.to_string(),
                    reserved: reserved.to_string(),
                    remaining: cap.saturating_sub(used + reserved).to_string(),
                });
            }
        }
        let usage = self.store.usage(app, user).await?;
        Ok(UsageReport {
            app: caller.app.name.clone(),
            external_user_id: user.map(str::to_string),
            limits,
            sent: usage.sent,
            pending: usage.pending,
            accepted: usage.accepted,
            reverted: usage.reverted,
            fees_paid_fri: usage.fees_paid_fri.to_string(),
            users: usage.users,
        })
    }
}

/// `sha256=` + hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`: what an operator's
/// webhook recomputes to know the call came from this service.
///
/// ```
/// let header = chipi_paymaster::sign_webhook(b"a-webhook-secret-of-32-bytes-or-more", "1700000000", "{}");
/// assert!(header.starts_with("sha256=") && header.len() == 7 + 64);
/// ```
pub fn sign_webhook(secret: &[u8], timestamp: &str, body: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}
