//! Sponsorship policies (API.md section 10): who may make the relayers pay, and how much.
//!
//! A policy is a value read from the app's `[apps.sponsorship]` table. The checks that need
//! nothing but the request (dates, calls, classes) are pure functions here; the limits that
//! count (transactions, fees, transactions in flight, reverts) become [`Charge`]s that the
//! store applies atomically, so they hold across requests and, later, across instances.
//!
//! ```
//! use chipi_paymaster::{CallRule, Policy};
//! use chipi_core::{Call, Felt};
//!
//! let policy: Policy = toml::from_str(r#"
//!     max_calls = 2
//!     allow = [{ contract = "0x4718", selector = "transfer" }]
//!     [[limits]]
//!     scope = "user"
//!     window = "day"
//!     max_transactions = 20
//! "#).unwrap();
//! let transfer = Call {
//!     to: Felt::from_hex_unchecked("0x4718"),
//!     selector: starknet_rust_core::utils::get_selector_from_name("transfer").unwrap(),
//!     calldata: vec![],
//! };
//! assert!(policy.check_calls(&[transfer.clone()]).is_ok());
//! let approve = Call { selector: Felt::from(7u8), ..transfer };
//! assert_eq!(policy.check_calls(&[approve]).unwrap_err().limit, "allow");
//! ```

use std::fmt;

use chipi_core::{Call, Felt};
use serde::Deserialize;

use crate::values::{felt, optional_amount, wrong, ConfigError, RpcUrl, Secret};

/// 1 STRK in fri: the default per-transaction cap.
pub const ONE_STRK: u128 = 1_000_000_000_000_000_000;

/// Fee counters are kept in units of 10^9 fri (a nano-STRK), rounded up, so that a budget
/// of billions of STRK fits a database integer.
pub const FEE_UNIT_FRI: u128 = 1_000_000_000;

/// `amount` fri in counter units, rounded up.
pub fn fee_units(amount: u128) -> i64 {
    i64::try_from(amount.div_ceil(FEE_UNIT_FRI)).unwrap_or(i64::MAX)
}

/// An app's sponsorship policy. Every knob is optional; a missing one means "no limit",
/// except the per-transaction fee cap and the in-flight cap, which have safe defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Sponsorship switched on.
    pub active: bool,
    /// No sponsorship before this (unix seconds, or RFC 3339 text).
    #[serde(deserialize_with = "timestamp")]
    pub starts_at: Option<i64>,
    /// No sponsorship from this moment on (unix seconds, or RFC 3339 text).
    #[serde(deserialize_with = "timestamp")]
    pub ends_at: Option<i64>,
    /// The largest fee bound of one transaction (fri); the service's `max_fee_fri` when absent.
    #[serde(deserialize_with = "optional_amount")]
    pub max_fee_fri: Option<u128>,
    /// The most calls in one transaction.
    pub max_calls: Option<usize>,
    /// The most calldata felts over all calls of one transaction.
    pub max_calldata_felts: Option<usize>,
    /// Sponsored transactions of one wallet sent and not yet final.
    pub in_flight_per_wallet: u32,
    /// The account classes sponsored; the service's `account_classes` when absent.
    #[serde(deserialize_with = "optional_felts")]
    pub account_classes: Option<Vec<Felt>>,
    /// With a user token, only the wallet recorded for that user is sponsored.
    pub own_wallet_only: bool,
    /// SNIP-29 requests carrying the public key alone (no user token, no secret key) are
    /// served, the wallet being the user (API.md section 7).
    pub anonymous: bool,
    /// Only these calls are sponsored (absent: any call).
    pub allow: Option<Vec<CallRule>>,
    /// These calls are never sponsored.
    pub deny: Vec<CallRule>,
    /// A call that must be in every sponsored multicall.
    pub trigger: Option<CallRule>,
    /// Counts and fee budgets over windows.
    pub limits: Vec<Limit>,
    /// Reverted sponsored transactions tolerated per user and per wallet.
    pub reverts: Option<RevertLimit>,
    /// An operator's service that decides each sponsorship.
    pub webhook: Option<WebhookConfig>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            active: true,
            starts_at: None,
            ends_at: None,
            max_fee_fri: None,
            max_calls: None,
            max_calldata_felts: None,
            in_flight_per_wallet: 1,
            account_classes: None,
            own_wallet_only: false,
            anonymous: true,
            allow: None,
            deny: Vec::new(),
            trigger: None,
            limits: Vec::new(),
            reverts: None,
            webhook: None,
        }
    }
}

/// A `(contract, selector)` pattern: `*` matches anything, a selector is a name or hex.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRule {
    /// The contract, or `*`.
    #[serde(deserialize_with = "pattern_contract")]
    pub contract: Option<Felt>,
    /// The selector (an entrypoint name or hex), or `*`.
    #[serde(deserialize_with = "pattern_selector")]
    pub selector: Option<Felt>,
}

impl CallRule {
    /// Whether `call` matches.
    pub fn matches(&self, call: &Call) -> bool {
        self.contract.is_none_or(|c| c == call.to)
            && self.selector.is_none_or(|s| s == call.selector)
    }
}

/// Whose usage a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every user of the app together.
    App,
    /// One user (the token's `sub`; with the secret key, `externalUserId` or the wallet).
    User,
}

impl Scope {
    /// The scope's name in limit names.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::User => "user",
        }
    }
}

/// A calendar window (UTC): counters start again at its boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// A calendar minute.
    Minute,
    /// A calendar hour.
    Hour,
    /// A calendar day (UTC).
    Day,
    /// A calendar month (UTC).
    Month,
}

impl Window {
    /// The window's name in limit names.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
        }
    }

    /// The window holding `now` (unix seconds): its start and end.
    pub fn bounds(self, now: i64) -> (i64, i64) {
        let fixed = |length: i64| {
            let start = now.div_euclid(length) * length;
            (start, start + length)
        };
        match self {
            Self::Minute => fixed(60),
            Self::Hour => fixed(3600),
            Self::Day => fixed(86_400),
            Self::Month => {
                let Ok(at) = time::OffsetDateTime::from_unix_timestamp(now) else {
                    return fixed(86_400 * 31);
                };
                let first = |year: i32, month: time::Month| {
                    time::Date::from_calendar_date(year, month, 1)
                        .map(|d| d.midnight().assume_utc().unix_timestamp())
                        .unwrap_or(now)
                };
                let (year, month) = (at.year(), at.month());
                let next_year = if month == time::Month::December {
                    year + 1
                } else {
                    year
                };
                (first(year, month), first(next_year, month.next()))
            }
        }
    }
}

/// A count and/or fee budget for a scope over a window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Per app or per user.
    pub scope: Scope,
    /// Over which window.
    pub window: Window,
    /// Sponsored requests that reach the simulation (refused ones count too).
    pub max_transactions: Option<u64>,
    /// Fees in fri: reserved before simulation, settled to the fee paid.
    #[serde(default, deserialize_with = "optional_amount")]
    pub max_fee_fri: Option<u128>,
}

/// How many reverted sponsored transactions a user or a wallet may cause per window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevertLimit {
    /// Reverts tolerated; the next request is refused until the window passes.
    pub max: u32,
    /// The window.
    pub window: Window,
}

/// What the service does when the webhook does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Refuse the request (the safe default).
    #[default]
    Refuse,
    /// Sponsor it anyway.
    Sponsor,
}

/// The operator's decision endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to `POST` (it may hold a key: never logged).
    pub url: RpcUrl,
    /// The HMAC-SHA256 key of the `x-chipi-signature` header.
    pub secret: Secret,
    /// How long to wait for the answer.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_ms: u64,
    /// What to do without an answer.
    #[serde(default)]
    pub on_error: OnError,
}

fn default_webhook_timeout() -> u64 {
    2000
}

/// Which section-10 refusal this is: each has its code and HTTP status at the front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// 429 `RATE_LIMITED`.
    RateLimited,
    /// 402 `SPONSORSHIP_BUDGET_EXCEEDED`.
    BudgetExceeded,
    /// 403 `CALL_NOT_SPONSORED`.
    CallNotSponsored,
    /// 403 `WALLET_NOT_SPONSORED`.
    WalletNotSponsored,
    /// 403 `SPONSORSHIP_INACTIVE`.
    Inactive,
    /// 403 `SPONSORSHIP_DECLINED`.
    Declined,
}

impl RefusalKind {
    /// The wire code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::RateLimited => "RATE_LIMITED",
            Self::BudgetExceeded => "SPONSORSHIP_BUDGET_EXCEEDED",
            Self::CallNotSponsored => "CALL_NOT_SPONSORED",
            Self::WalletNotSponsored => "WALLET_NOT_SPONSORED",
            Self::Inactive => "SPONSORSHIP_INACTIVE",
            Self::Declined => "SPONSORSHIP_DECLINED",
        }
    }

    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::RateLimited,
        Self::BudgetExceeded,
        Self::CallNotSponsored,
        Self::WalletNotSponsored,
        Self::Inactive,
        Self::Declined,
    ];

    /// From the wire code (a refusal recorded in the database).
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// A sponsorship refused: which knob, why, and when waiting helps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The kind (code and status).
    pub kind: RefusalKind,
    /// The knob's name (`allow`, `user.transactions_per_day`, ...).
    pub limit: String,
    /// Seconds after which the same request may pass.
    pub retry_after: Option<u64>,
    /// For the client: names the knob or the call's index, never calldata.
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// A refusal of `kind` for knob `limit`.
    pub fn new(kind: RefusalKind, limit: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind,
            limit: limit.into(),
            retry_after: None,
            message: message.into(),
        }
    }

    /// The same, retryable after `seconds`.
    #[must_use]
    pub fn after(mut self, seconds: i64) -> Self {
        self.retry_after = Some(seconds.max(1) as u64);
        self
    }
}

/// What a counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    /// Requests (never given back: refusals count).
    Transactions,
    /// Fees, in [`FEE_UNIT_FRI`] units: reserved, then settled to the fee paid.
    Fees,
    /// Transactions of a wallet not yet final: given back when final.
    InFlight,
    /// Reverted transactions.
    Reverts,
}

impl Knob {
    /// The counter's name in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Transactions => "transactions",
            Self::Fees => "fees",
            Self::InFlight => "in_flight",
            Self::Reverts => "reverts",
        }
    }

    /// From the database.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Transactions,
            Self::Fees,
            Self::InFlight,
            Self::Reverts,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// One increment of one counter, with its cap: what a request takes from a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// `app`, `user:<id>` or `wallet:<address>`.
    pub subject: String,
    /// What is counted.
    pub knob: Knob,
    /// The window's start (0 for counters without a window).
    pub window_start: i64,
    /// The window's end (`i64::MAX` without a window).
    pub window_end: i64,
    /// How much this request takes.
    pub amount: i64,
    /// The most the counter may reach.
    pub cap: i64,
    /// The knob's name for refusals and the usage page.
    pub limit: String,
}

impl Charge {
    /// The refusal when this charge does not fit.
    pub fn refusal(&self, now: i64) -> Refusal {
        let (kind, what) = match self.knob {
            Knob::Transactions => (RefusalKind::RateLimited, "too many sponsored transactions"),
            Knob::InFlight => (
                RefusalKind::RateLimited,
                "this wallet has sponsored transactions still in flight",
            ),
            Knob::Fees => (
                RefusalKind::BudgetExceeded,
                "the sponsorship budget is spent",
            ),
            Knob::Reverts => (
                RefusalKind::WalletNotSponsored,
                "too many reverted transactions",
            ),
        };
        let refusal = Refusal::new(kind, &self.limit, format!("{what} (`{}`)", self.limit));
        match self.knob {
            // Wait for the transaction before to be final: a few seconds.
            Knob::InFlight => refusal.after(2),
            _ => refusal.after(self.window_end.saturating_sub(now)),
        }
    }

    /// Whether what this charge takes is given back or settled later (a reservation).
    pub fn reserved(&self) -> bool {
        matches!(self.knob, Knob::Fees | Knob::InFlight)
    }
}

/// The subject of a user's counters.
pub fn user_subject(user: &str) -> String {
    format!("user:{user}")
}

/// The subject of a wallet's counters.
pub fn wallet_subject(wallet: Felt) -> String {
    format!("wallet:{wallet:#x}")
}

impl Policy {
    /// The per-transaction fee cap given the service's own.
    pub fn fee_cap(&self, service_cap: u128) -> u128 {
        self.max_fee_fri.unwrap_or(service_cap).min(service_cap)
    }

    /// Switched on, and inside its dates at `now`.
    pub fn check_active(&self, now: i64) -> Result<(), Refusal> {
        if !self.active {
            return Err(Refusal::new(
                RefusalKind::Inactive,
                "active",
                "sponsorship is switched off for this app",
            ));
        }
        if let Some(start) = self.starts_at.filter(|s| now < *s) {
            return Err(Refusal::new(
                RefusalKind::Inactive,
                "starts_at",
                "sponsorship for this app has not started",
            )
            .after(start - now));
        }
        if self.ends_at.is_some_and(|end| now >= end) {
            return Err(Refusal::new(
                RefusalKind::Inactive,
                "ends_at",
                "sponsorship for this app has ended",
            ));
        }
        Ok(())
    }

    /// The calls' count, size, allowlist, denylist and trigger.
    pub fn check_calls(&self, calls: &[Call]) -> Result<(), Refusal> {
        let call_refusal = |limit: &str, message: String| {
            Refusal::new(RefusalKind::CallNotSponsored, limit, message)
        };
        if let Some(max) = self.max_calls.filter(|max| calls.len() > *max) {
            return Err(call_refusal(
                "max_calls",
                format!("{} calls; at most {max} are sponsored", calls.len()),
            ));
        }
        let felts: usize = calls.iter().map(|c| c.calldata.len()).sum();
        if let Some(max) = self.max_calldata_felts.filter(|max| felts > *max) {
            return Err(call_refusal(
                "max_calldata_felts",
                format!("{felts} calldata felts; at most {max} are sponsored"),
            ));
        }
        for (index, call) in calls.iter().enumerate() {
            if self.deny.iter().any(|rule| rule.matches(call)) {
                return Err(call_refusal(
                    "deny",
                    format!("call {index} is not sponsored (denylist)"),
                ));
            }
            if let Some(allow) = &self.allow {
                if !allow.iter().any(|rule| rule.matches(call)) {
                    return Err(call_refusal(
                        "allow",
                        format!("call {index} is not sponsored (not in the allowlist)"),
                    ));
                }
            }
        }
        if let Some(trigger) = &self.trigger {
            if !calls.iter().any(|call| trigger.matches(call)) {
                return Err(call_refusal(
                    "trigger",
                    "the multicall lacks the call this app sponsors".into(),
                ));
            }
        }
        Ok(())
    }

    /// Whether the class of the wallet is sponsored (`served` when the app names none).
    pub fn check_class(&self, class: Felt, served: &[Felt]) -> Result<(), Refusal> {
        let classes = self.account_classes.as_deref().unwrap_or(served);
        if classes.contains(&class) {
            Ok(())
        } else {
            Err(Refusal::new(
                RefusalKind::WalletNotSponsored,
                "account_classes",
                "this wallet's account class is not sponsored by this app",
            ))
        }
    }

    /// The counters a request takes from: `fee_reserve` fri against fee budgets, one
    /// against counts and against the wallet's in-flight cap.
    pub fn charges(&self, user: &str, wallet: Felt, now: i64, fee_reserve: u128) -> Vec<Charge> {
        let mut charges = Vec::new();
        for limit in &self.limits {
            let subject = match limit.scope {
                Scope::App => "app".to_string(),
                Scope::User => user_subject(user),
            };
            let (start, end) = limit.window.bounds(now);
            let name = |what: &str| {
                format!(
                    "{}.{what}_per_{}",
                    limit.scope.as_str(),
                    limit.window.as_str()
                )
            };
            if let Some(max) = limit.max_transactions {
                charges.push(Charge {
                    subject: subject.clone(),
                    knob: Knob::Transactions,
                    window_start: start,
                    window_end: end,
                    amount: 1,
                    cap: i64::try_from(max).unwrap_or(i64::MAX),
                    limit: name("transactions"),
                });
            }
            if let Some(max) = limit.max_fee_fri {
                charges.push(Charge {
                    subject,
                    knob: Knob::Fees,
                    window_start: start,
                    window_end: end,
                    amount: fee_units(fee_reserve),
                    // Rounded down: the budget is never exceeded by rounding.
                    cap: i64::try_from(max / FEE_UNIT_FRI).unwrap_or(i64::MAX),
                    limit: name("fee_fri"),
                });
            }
        }
        charges.push(Charge {
            subject: wallet_subject(wallet),
            knob: Knob::InFlight,
            window_start: 0,
            window_end: i64::MAX,
            amount: 1,
            cap: i64::from(self.in_flight_per_wallet),
            limit: "in_flight_per_wallet".into(),
        });
        charges
    }

    /// The revert counters that must be below the limit for a request to pass, and that a
    /// reverted transaction increments.
    pub fn revert_counters(&self, user: &str, wallet: Felt, now: i64) -> Vec<Charge> {
        let Some(reverts) = &self.reverts else {
            return Vec::new();
        };
        let (start, end) = reverts.window.bounds(now);
        [
            (user_subject(user), "reverts.user"),
            (wallet_subject(wallet), "reverts.wallet"),
        ]
        .into_iter()
        .map(|(subject, limit)| Charge {
            subject,
            knob: Knob::Reverts,
            window_start: start,
            window_end: end,
            amount: 1,
            cap: i64::from(reverts.max),
            limit: limit.into(),
        })
        .collect()
    }
}

impl Policy {
    /// The checks serde cannot make; `key` is the table's path for messages.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if let (Some(start), Some(end)) = (self.starts_at, self.ends_at) {
            if end <= start {
                return Err(wrong(format!("{key}.ends_at"), "before starts_at"));
            }
        }
        if self.max_fee_fri == Some(0) {
            return Err(wrong(format!("{key}.max_fee_fri"), "at least 1 fri"));
        }
        if self.in_flight_per_wallet == 0 {
            return Err(wrong(
                format!("{key}.in_flight_per_wallet"),
                "at least 1 (0 would sponsor nothing)",
            ));
        }
        for (i, limit) in self.limits.iter().enumerate() {
            if limit.max_transactions.is_none() && limit.max_fee_fri.is_none() {
                return Err(wrong(
                    format!("{key}.limits[{i}]"),
                    "set max_transactions, max_fee_fri, or both",
                ));
            }
        }
        if let Some(webhook) = &self.webhook {
            if webhook.timeout_ms == 0 || webhook.timeout_ms > 30_000 {
                return Err(wrong(
                    format!("{key}.webhook.timeout_ms"),
                    "between 1 and 30000",
                ));
            }
            if webhook.secret.expose().len() < 32 {
                return Err(wrong(
                    format!("{key}.webhook.secret"),
                    "too short: use 32 bytes or more",
                ));
            }
        }
        Ok(())
    }
}

fn timestamp<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stamp {
        Seconds(i64),
        Text(String),
        Date(toml::value::Datetime),
    }
    let date = match Stamp::deserialize(deserializer)? {
        Stamp::Seconds(seconds) => return Ok(Some(seconds)),
        Stamp::Text(text) => text.parse::<toml::value::Datetime>().ok(),
        Stamp::Date(date) => Some(date),
    };
    date.and_then(unix_seconds).map(Some).ok_or_else(|| {
        serde::de::Error::custom("not a time (unix seconds or RFC 3339 with an offset)")
    })
}

/// An RFC 3339 date-time with its offset, in unix seconds.
fn unix_seconds(value: toml::value::Datetime) -> Option<i64> {
    let (date, clock, offset) = (value.date?, value.time?, value.offset?);
    let month = time::Month::try_from(date.month).ok()?;
    let day = time::Date::from_calendar_date(i32::from(date.year), month, date.day).ok()?;
    let at = time::Time::from_hms_nano(
        clock.hour,
        clock.minute,
        clock.second.unwrap_or(0),
        clock.nanosecond.unwrap_or(0),
    )
    .ok()?;
    let offset_minutes = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i32::from(minutes),
    };
    let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).ok()?;
    Some(
        time::PrimitiveDateTime::new(day, at)
            .assume_offset(offset)
            .unix_timestamp(),
    )
}

fn optional_felts<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Felt>>, D::Error> {
    let texts = Vec::<String>::deserialize(deserializer)?;
    texts
        .iter()
        .map(|t| felt(t).map_err(serde::de::Error::custom))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn pattern_contract<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Felt>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text == "*" {
        return Ok(None);
    }
    felt(&text).map(Some).map_err(serde::de::Error::custom)
}

fn pattern_selector<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Felt>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text == "*" {
        return Ok(None);
    }
    if let Some(selector) = text
        .starts_with("0x")
        .then(|| chipi_core::parse_felt_strict(&text))
        .flatten()
    {
        return Ok(Some(selector));
    }
    let is_name = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with(|c: char| c.is_ascii_digit());
    if !is_name {
        return Err(serde::de::Error::custom(
            "not a selector (an entrypoint name, 0x hex, or *)",
        ));
    }
    starknet_rust_core::utils::get_selector_from_name(&text)
        .map(Some)
        .map_err(|_| serde::de::Error::custom("not an entrypoint name"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn call(to: u64, selector: &str, calldata: usize) -> Call {
        Call {
            to: Felt::from(to),
            selector: starknet_rust_core::utils::get_selector_from_name(selector).unwrap(),
            calldata: vec![Felt::ONE; calldata],
        }
    }

    fn policy(text: &str) -> Policy {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn defaults_are_safe_and_sponsor_plain_calls() {
        let policy = Policy::default();
        assert!(policy.active);
        assert_eq!(policy.in_flight_per_wallet, 1);
        assert_eq!(policy.fee_cap(ONE_STRK), ONE_STRK);
        assert!(policy.check_calls(&[call(1, "transfer", 3)]).is_ok());
        let charges = policy.charges("u", Felt::ONE, 100, ONE_STRK);
        assert_eq!(charges.len(), 1);
        assert_eq!(charges[0].knob, Knob::InFlight);
        assert_eq!(charges[0].cap, 1);
    }

    #[test]
    fn an_app_cap_never_raises_the_service_cap() {
        let policy = policy("max_fee_fri = \"5000000000000000000\"");
        assert_eq!(policy.fee_cap(ONE_STRK), ONE_STRK);
        let policy = policy_small();
        assert_eq!(policy.fee_cap(ONE_STRK), 1000);
    }

    fn policy_small() -> Policy {
        policy("max_fee_fri = 1000")
    }

    #[test]
    fn dates_and_switch() {
        assert_eq!(
            policy("active = false").check_active(0).unwrap_err().limit,
            "active"
        );
        let dated = policy("starts_at = 100\nends_at = \"1970-01-01T00:03:20Z\"");
        let early = dated.check_active(40).unwrap_err();
        assert_eq!(
            (early.limit.as_str(), early.retry_after),
            ("starts_at", Some(60))
        );
        assert!(dated.check_active(100).is_ok());
        assert!(dated.check_active(199).is_ok());
        assert_eq!(dated.check_active(200).unwrap_err().limit, "ends_at");
        let offset = policy("starts_at = 2026-12-03T12:27:21+02:00");
        assert_eq!(offset.starts_at, Some(1_796_300_841 - 7200));
        assert!(toml::from_str::<Policy>("starts_at = \"2026-12-03\"").is_err());
        assert_eq!(
            dated.check_active(200).unwrap_err().kind,
            RefusalKind::Inactive
        );
    }

    #[test]
    fn call_rules_name_the_knob_and_the_index_only() {
        let policy = policy(
            r#"
            max_calls = 3
            max_calldata_felts = 10
            allow = [{ contract = "*", selector = "transfer" }, { contract = "0x9", selector = "*" }]
            deny = [{ contract = "0x66", selector = "transfer" }]
            trigger = { contract = "0x9", selector = "0x1234" }
            "#,
        );
        let trigger = Call {
            to: Felt::from(9u8),
            selector: Felt::from(0x1234u16),
            calldata: vec![],
        };
        assert!(policy
            .check_calls(&[call(5, "transfer", 2), trigger.clone()])
            .is_ok());
        let cases: Vec<(Vec<Call>, &str, &str)> = vec![
            (vec![call(5, "transfer", 2)], "trigger", "lacks"),
            (
                vec![call(5, "approve", 2), trigger.clone()],
                "allow",
                "call 0",
            ),
            (
                vec![trigger.clone(), call(0x66, "transfer", 1)],
                "deny",
                "call 1",
            ),
            (
                vec![trigger.clone(), call(5, "transfer", 11)],
                "max_calldata_felts",
                "11",
            ),
            (vec![trigger.clone(); 4], "max_calls", "4 calls"),
        ];
        for (calls, limit, words) in cases {
            let refusal = policy.check_calls(&calls).unwrap_err();
            assert_eq!(refusal.kind, RefusalKind::CallNotSponsored);
            assert_eq!(refusal.limit, limit);
            assert!(refusal.message.contains(words), "{refusal}");
        }
    }

    #[test]
    fn bad_rules_are_refused_at_load() {
        for text in [
            r#"allow = [{ contract = "0xzz", selector = "*" }]"#,
            r#"allow = [{ contract = "*", selector = "not a name" }]"#,
            r#"deny = [{ contract = "*" }]"#,
            r#"starts_at = "yesterday""#,
            r#"limits = [{ scope = "everyone", window = "day" }]"#,
            r#"limits = [{ scope = "user", window = "week" }]"#,
            "typo = 1",
        ] {
            assert!(toml::from_str::<Policy>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn classes_default_to_the_service_ones() {
        let served = [Felt::from(7u8)];
        assert!(Policy::default()
            .check_class(Felt::from(7u8), &served)
            .is_ok());
        let refusal = Policy::default()
            .check_class(Felt::from(8u8), &served)
            .unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::WalletNotSponsored);
        let own = policy(r#"account_classes = ["0x8"]"#);
        assert!(own.check_class(Felt::from(8u8), &served).is_ok());
        assert!(own.check_class(Felt::from(7u8), &served).is_err());
    }

    #[test]
    fn windows_are_calendar_windows() {
        // 2026-12-03T12:27:21Z
        let now = 1_796_300_841;
        assert_eq!(Window::Minute.bounds(now), (1_796_300_820, 1_796_300_880));
        assert_eq!(Window::Hour.bounds(now), (1_796_299_200, 1_796_302_800));
        assert_eq!(Window::Day.bounds(now), (1_796_256_000, 1_796_342_400));
        // December 2026 to January 2027.
        assert_eq!(Window::Month.bounds(now), (1_796_083_200, 1_798_761_600));
    }

    #[test]
    fn charges_name_their_limits_and_round_fees_safely() {
        let policy = policy(
            r#"
            in_flight_per_wallet = 2
            [[limits]]
            scope = "user"
            window = "hour"
            max_transactions = 5
            max_fee_fri = "2500000000000000000"
            [[limits]]
            scope = "app"
            window = "month"
            max_fee_fri = "1999999999"
            "#,
        );
        let charges = policy.charges("alice", Felt::TWO, 3_600 * 10 + 5, 1);
        let names: Vec<&str> = charges.iter().map(|c| c.limit.as_str()).collect();
        assert_eq!(
            names,
            [
                "user.transactions_per_hour",
                "user.fee_fri_per_hour",
                "app.fee_fri_per_month",
                "in_flight_per_wallet"
            ]
        );
        assert_eq!(charges[0].subject, "user:alice");
        assert_eq!(charges[1].amount, 1, "1 fri reserves one unit (rounded up)");
        assert_eq!(charges[1].cap, 2_500_000_000);
        assert_eq!(charges[2].cap, 1, "the budget is rounded down");
        assert_eq!(charges[3].subject, "wallet:0x2");
        let refusal = charges[0].refusal(3_600 * 10 + 5);
        assert_eq!(refusal.kind, RefusalKind::RateLimited);
        assert_eq!(refusal.retry_after, Some(3_595));
        assert_eq!(charges[1].refusal(0).kind, RefusalKind::BudgetExceeded);
    }
}
