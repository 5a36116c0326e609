//! Persistence through `sqlx`: SQLite by default (WAL, one process), PostgreSQL for
//! several instances (API.md section 11). One set of queries for both, through sqlx's
//! `Any` driver (`$N` placeholders, which both dialects read); the migrations are per
//! backend where the dialects differ. Issued nonces, transactions and wallets;
//! `(wallet, nonce)` is unique, which is what makes a duplicate execute find the first
//! one's transaction instead of paying again.

use std::str::FromStr;

use chipi_core::Felt;
use sqlx::any::{Any, AnyPoolOptions, AnyRow, AnyTypeInfo, AnyValueRef};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::AnyPool;
use sqlx::{ConnectOptions, Connection, Decode, Encode, Executor, FromRow, Row, Type};

use crate::policy::{fee_units, Charge, Knob};
pub use crate::values::{Backend, DEFAULT_MAX_CONNECTIONS};

/// Unix seconds of this service's clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds of this service's clock (leases, waiting requests).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Now, ISO 8601 (UTC): the wallet records' timestamps.
pub fn iso_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The canonical text of a felt in the database: lower-case `0x` hex.
pub fn felt_text(felt: Felt) -> String {
    format!("{felt:#x}")
}

/// The text a deployment row holds in its `nonce` column.
const DEPLOY_NONCE: &str = "deploy";

/// A felt column: TEXT, written as [`felt_text`] writes it. Reading anything but that
/// canonical text (decimal, upper case, leading zeros, not a felt) is a decode error:
/// lookups compare the text, so a value in another spelling would be a second key for
/// the same felt.
#[derive(Debug, Clone, Copy)]
struct FeltText(Felt);

/// A fee column (fri): TEXT, canonical decimal (a `u128` fits neither backend's integer).
#[derive(Debug, Clone, Copy)]
struct FriText(u128);

fn decode_felt(text: &str) -> Result<Felt, BoxDynError> {
    chipi_core::parse_felt_strict(text)
        .filter(|felt| felt_text(*felt) == text)
        .ok_or_else(|| format!("{text:?} is not a felt in canonical 0x hex").into())
}

fn decode_fri(text: &str) -> Result<u128, BoxDynError> {
    text.parse::<u128>()
        .ok()
        .filter(|fri| fri.to_string() == text)
        .ok_or_else(|| format!("{text:?} is not an amount in canonical decimal").into())
}

/// A Rust type stored as a TEXT column: `to_text` writes it, `from_text` reads it back
/// (an error for any other text).
macro_rules! text_column {
    ($ty:ty, |$value:ident| $to_text:expr, |$text:ident| $from_text:expr) => {
        impl Type<Any> for $ty {
            fn type_info() -> AnyTypeInfo {
                <String as Type<Any>>::type_info()
            }

            fn compatible(ty: &AnyTypeInfo) -> bool {
                <String as Type<Any>>::compatible(ty)
            }
        }

        impl<'q> Encode<'q, Any> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut <Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                let $value = self;
                <String as Encode<'q, Any>>::encode($to_text, buf)
            }
        }

        impl<'r> Decode<'r, Any> for $ty {
            fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
                let $text = <&str as Decode<'r, Any>>::decode(value)?;
                $from_text
            }
        }
    };
}

text_column!(FeltText, |felt| felt_text(felt.0), |text| decode_felt(text)
    .map(FeltText));
text_column!(FriText, |fri| fri.0.to_string(), |text| decode_fri(text)
    .map(FriText));
text_column!(TxStatus, |status| status.as_str().to_string(), |text| {
    TxStatus::parse(text).ok_or_else(|| format!("{text:?} is not a status").into())
});
text_column!(TxKind, |kind| kind.as_str().to_string(), |text| {
    TxKind::parse(text).ok_or_else(|| format!("{text:?} is not a kind").into())
});
text_column!(Outcome, |outcome| outcome.as_str().to_string(), |text| {
    Outcome::parse(text).ok_or_else(|| format!("{text:?} is not an outcome").into())
});

/// The `nonce` column's text: the felt, or `deploy` for a deployment.
fn nonce_text(nonce: Option<Felt>) -> String {
    nonce.map_or_else(|| DEPLOY_NONCE.to_string(), felt_text)
}

/// Column `column` of `row`, a felt (`sqlx::Error::ColumnDecode` when malformed).
fn felt(row: &AnyRow, column: &str) -> Result<Felt, sqlx::Error> {
    row.try_get::<FeltText, _>(column).map(|f| f.0)
}

/// Column `column` of `row`, a felt or NULL.
fn maybe_felt(row: &AnyRow, column: &str) -> Result<Option<Felt>, sqlx::Error> {
    row.try_get::<Option<FeltText>, _>(column)
        .map(|f| f.map(|f| f.0))
}

/// Column `column` of `row`, an amount in fri or NULL.
fn maybe_fri(row: &AnyRow, column: &str) -> Result<Option<u128>, sqlx::Error> {
    row.try_get::<Option<FriText>, _>(column)
        .map(|f| f.map(|f| f.0))
}

/// A transaction's state (the `status` column, its text as [`TxStatus::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Being simulated; nothing sent.
    Claimed,
    /// Its hash is known and it is being sent (or was, when the node did not answer).
    Submitting,
    /// The node took it.
    Pending,
    /// Included and succeeded.
    Accepted,
    /// Included and reverted (the relayer paid).
    Reverted,
    /// The simulation reverted; nothing sent.
    Refused,
    /// Nothing sent (node unreachable, relayer unusable), or dropped by the node.
    Failed,
}

impl TxStatus {
    /// The column's text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Claimed => "CLAIMED",
            Self::Submitting => "SUBMITTING",
            Self::Pending => "PENDING",
            Self::Accepted => "ACCEPTED",
            Self::Reverted => "REVERTED",
            Self::Refused => "REFUSED",
            Self::Failed => "FAILED",
        }
    }

    /// From the column's text.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Claimed,
            Self::Submitting,
            Self::Pending,
            Self::Accepted,
            Self::Reverted,
            Self::Refused,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// The status API.md section 5 reports.
    pub const fn api(self) -> &'static str {
        match self {
            Self::Claimed | Self::Submitting | Self::Pending => "PENDING",
            Self::Accepted => "ACCEPTED",
            Self::Reverted => "REVERTED",
            Self::Refused | Self::Failed => "FAILED",
        }
    }

    /// The record will not change by itself (a retry of its request may still reopen a
    /// row where nothing was sent).
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Claimed | Self::Submitting | Self::Pending)
    }

    /// Nothing was sent: the same (wallet, nonce) may be tried again.
    pub const fn retryable(self) -> bool {
        matches!(self, Self::Refused | Self::Failed)
    }
}

/// A nonce handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedNonce {
    /// The wallet.
    pub wallet: Felt,
    /// The OutsideExecution nonce.
    pub nonce: Felt,
    /// The app it was issued to.
    pub app: String,
    /// The user it was issued to.
    pub user_id: String,
    /// Poseidon of the encoded calls.
    pub calls_hash: Felt,
    /// The window's end handed out (chain time).
    pub execute_before: i64,
    /// When this service stops honouring it (its own clock).
    pub expires_at: i64,
    /// When it was issued.
    pub created_at: i64,
}

impl<'r> FromRow<'r, AnyRow> for IssuedNonce {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            wallet: felt(row, "wallet")?,
            nonce: felt(row, "nonce")?,
            app: row.try_get("app")?,
            user_id: row.try_get("user_id")?,
            calls_hash: felt(row, "calls_hash")?,
            execute_before: row.try_get("execute_before")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

/// What a transaction row does (the `kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    /// A wallet's outside execution, relayed.
    Execute,
    /// A wallet's deployment through the UDC.
    Deploy,
}

impl TxKind {
    /// The column's text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Execute => "execute",
            Self::Deploy => "deploy",
        }
    }

    /// From the column's text.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Execute, Self::Deploy]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// What became of one attempt (the `outcome` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded before it left; its fate is the row's.
    Submitting,
    /// The node took it.
    Sent,
    /// The node refused it: it can never land.
    Refused,
}

impl Outcome {
    /// The column's text.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Submitting => "SUBMITTING",
            Self::Sent => "SENT",
            Self::Refused => "REFUSED",
        }
    }

    /// From the column's text.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Submitting, Self::Sent, Self::Refused]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// One transaction a row was about to send, sent, or had refused by the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Attempt id.
    pub id: i64,
    /// The transaction row.
    pub tx_id: i64,
    /// Its hash.
    pub hash: Felt,
    /// The relayer that signed it.
    pub relayer: Felt,
    /// The relayer nonce it used.
    pub relayer_nonce: Felt,
    /// Its fee bound (fri).
    pub max_fee: u128,
    /// What became of it.
    pub outcome: Outcome,
    /// Why it was refused.
    pub reason: Option<String>,
    /// When recorded (unix seconds).
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
}

impl<'r> FromRow<'r, AnyRow> for Attempt {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            tx_id: row.try_get("tx_id")?,
            hash: felt(row, "hash")?,
            relayer: felt(row, "relayer")?,
            relayer_nonce: felt(row, "relayer_nonce")?,
            max_fee: row.try_get::<FriText, _>("max_fee")?.0,
            outcome: row.try_get("outcome")?,
            reason: row.try_get("reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// A transaction record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRecord {
    /// Row id.
    pub id: i64,
    /// `execute` or `deploy`.
    pub kind: TxKind,
    /// The app.
    pub app: String,
    /// The user.
    pub user_id: String,
    /// The wallet.
    pub wallet: Felt,
    /// The OutsideExecution nonce; `None` for a deployment (`kind` is
    /// [`TxKind::Deploy`]; the column holds the text `deploy`).
    pub nonce: Option<Felt>,
    /// A [`TxStatus`] text.
    pub status: TxStatus,
    /// The relayer's transaction hash, once known.
    pub hash: Option<Felt>,
    /// The relayer that sent it.
    pub relayer: Option<Felt>,
    /// The relayer's nonce it used.
    pub relayer_nonce: Option<Felt>,
    /// The fee bound (fri).
    pub max_fee: Option<u128>,
    /// The fee paid (fri), once final.
    pub fee: Option<u128>,
    /// The block, once included.
    pub block_number: Option<i64>,
    /// The protocol code of a refusal.
    pub code: Option<String>,
    /// What happened, when it did not succeed.
    pub reason: Option<String>,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Last changed (unix seconds).
    pub updated_at: i64,
    /// Its SNIP-29 tracking id ([`tracking_id`]); `None` for rows older than it.
    pub tracking_id: Option<Felt>,
}

/// The SNIP-29 tracking id of the request (wallet, nonce): Poseidon of the two, the
/// nonce being the short string `deploy` for a deployment. Stable across restarts and
/// instances, and one per request however many transactions it takes.
pub fn tracking_id(wallet: Felt, nonce: Option<Felt>) -> Felt {
    // 'deploy' as a Cairo short string.
    let deploy = Felt::from_bytes_be_slice(DEPLOY_NONCE.as_bytes());
    starknet_rust_crypto::poseidon_hash_many(&[wallet, nonce.unwrap_or(deploy)])
}

impl<'r> FromRow<'r, AnyRow> for TxRecord {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        let kind: TxKind = row.try_get("kind")?;
        let nonce = match (kind, row.try_get::<&str, _>("nonce")?) {
            (TxKind::Deploy, DEPLOY_NONCE) => None,
            (TxKind::Execute, text) if text != DEPLOY_NONCE => Some(decode_felt(text).map_err(
                |source| sqlx::Error::ColumnDecode {
                    index: "nonce".into(),
                    source,
                },
            )?),
            (kind, text) => {
                return Err(sqlx::Error::ColumnDecode {
                    index: "nonce".into(),
                    source: format!("{text:?} is not the nonce of a {} row", kind.as_str()).into(),
                })
            }
        };
        Ok(Self {
            id: row.try_get("id")?,
            kind,
            app: row.try_get("app")?,
            user_id: row.try_get("user_id")?,
            wallet: felt(row, "wallet")?,
            nonce,
            status: row.try_get("status")?,
            hash: maybe_felt(row, "hash")?,
            relayer: maybe_felt(row, "relayer")?,
            relayer_nonce: maybe_felt(row, "relayer_nonce")?,
            max_fee: maybe_fri(row, "max_fee")?,
            fee: maybe_fri(row, "fee")?,
            block_number: row.try_get("block_number")?,
            code: row.try_get("code")?,
            reason: row.try_get("reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            tracking_id: maybe_felt(row, "tracking_id")?,
        })
    }
}

impl TxRecord {
    /// The parsed status.
    pub fn status(&self) -> TxStatus {
        self.status
    }
}

/// A stored wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletRow {
    /// Record id.
    pub id: String,
    /// The app.
    pub app: String,
    /// The app's user.
    pub external_user_id: String,
    /// The address.
    pub address: Felt,
    /// The owner's public key.
    pub owner_public_key: Felt,
    /// The class deployed.
    pub class_hash: Felt,
    /// The owner key, encrypted by the client (stored, never read).
    pub encrypted_private_key: String,
    /// `CHIPI`.
    pub wallet_type: String,
    /// The deployment transaction.
    pub tx_hash: Option<Felt>,
    /// Whether the deployment is on chain.
    pub is_deployed: bool,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
}

impl<'r> FromRow<'r, AnyRow> for WalletRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            app: row.try_get("app")?,
            external_user_id: row.try_get("external_user_id")?,
            address: felt(row, "address")?,
            owner_public_key: felt(row, "owner_public_key")?,
            class_hash: felt(row, "class_hash")?,
            encrypted_private_key: row.try_get("encrypted_private_key")?,
            wallet_type: row.try_get("wallet_type")?,
            tx_hash: maybe_felt(row, "tx_hash")?,
            is_deployed: row.try_get::<i64, _>("is_deployed")? != 0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// Creates the database file readable by its owner only (0600), in a directory created
/// 0700 when missing: it holds user ids, wallets and the clients' encrypted keys.
fn create_private(path: &std::path::Path) -> Result<(), sqlx::Error> {
    use std::fs::OpenOptions;
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        builder.mode(0o700);
        builder.create(dir)?;
    }
    let mut file = OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    file.mode(0o600);
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// An app's (or a user's) sponsored transactions, as [`Store::usage`] counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Sent (pending, accepted or reverted).
    pub sent: u64,
    /// Sent and not yet final.
    pub pending: u64,
    /// Accepted.
    pub accepted: u64,
    /// Reverted (their fees were paid).
    pub reverted: u64,
    /// Fees paid, in fri.
    pub fees_paid_fri: u128,
    /// Distinct users with a sent transaction.
    pub users: u64,
}

type Transaction<'c> = sqlx::Transaction<'c, Any>;

/// Adds `charge.amount` to its counter, only while the result stays within `cap`.
async fn add(
    tx: &mut Transaction<'_>,
    app: &str,
    charge: &Charge,
    cap: Option<i64>,
) -> Result<bool, sqlx::Error> {
    if cap.is_some_and(|cap| charge.amount > cap) {
        return Ok(false);
    }
    let fitted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO sponsorship_counters (app, subject, knob, window_start, window_end, used)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (app, subject, knob, window_start)
         DO UPDATE SET used = sponsorship_counters.used + excluded.used
         WHERE $7 IS NULL OR sponsorship_counters.used + excluded.used <= $8
         RETURNING used",
    )
    .bind(app)
    .bind(&charge.subject)
    .bind(charge.knob.as_str())
    .bind(charge.window_start)
    .bind(charge.window_end)
    .bind(charge.amount)
    .bind(cap)
    .bind(cap)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(fitted.is_some())
}

async fn move_counter(
    tx: &mut Transaction<'_>,
    app: &str,
    subject: &str,
    knob: Knob,
    window_start: i64,
    delta: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sponsorship_counters SET used = CASE WHEN used + $1 < 0 THEN 0 ELSE used + $1 END
         WHERE app = $2 AND subject = $3 AND knob = $4 AND window_start = $5",
    )
    .bind(delta)
    .bind(app)
    .bind(subject)
    .bind(knob.as_str())
    .bind(window_start)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends what row `id` reserves: with `paid` (fee units), fee counters move to the fee
/// paid; without, everything is given back. In-flight is always given back. `false` when
/// there was nothing left to settle (settled before).
async fn settle_reservations(
    tx: &mut Transaction<'_>,
    id: i64,
    paid: Option<i64>,
) -> Result<bool, sqlx::Error> {
    let held: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        "DELETE FROM sponsorship_reservations WHERE tx_id = $1
         RETURNING app, subject, knob, window_start, amount",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    let settled = !held.is_empty();
    let mut held = held;
    // Counters are locked in one order everywhere (`lock_order`): two instances' database
    // transactions never wait on each other in a cycle.
    held.sort_by(|a, b| (&a.1, &a.2, a.3).cmp(&(&b.1, &b.2, b.3)));
    for (app, subject, knob, window_start, amount) in held {
        let Some(knob) = Knob::parse(&knob) else {
            continue;
        };
        let delta = match (knob, paid) {
            // The fee paid replaces the reservation; an unknown fee keeps it all.
            (Knob::Fees, Some(paid)) if paid != i64::MAX => paid - amount,
            (Knob::Fees, Some(_)) => 0,
            _ => -amount,
        };
        move_counter(tx, &app, &subject, knob, window_start, delta).await?;
    }
    Ok(settled)
}

/// The order in which a database transaction takes `charges`' counters: by (subject,
/// knob, window), the order [`settle_reservations`] settles them in, so that on
/// PostgreSQL two transactions holding counters never wait on each other in a cycle.
/// The wallet's in-flight counter (`wallet:` sorts after `app` and `user:`) stays last,
/// so it is refused only when every other charge fits.
fn lock_order(charges: &[Charge]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..charges.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |c: &Charge| (c.subject.clone(), c.knob.as_str(), c.window_start);
        key(&charges[a]).cmp(&key(&charges[b]))
    });
    order
}

/// How a followed transaction ended ([`Store::finish`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End<'a> {
    /// `ACCEPTED`, `REVERTED`, or `FAILED` when it will never land.
    pub status: TxStatus,
    /// The fee paid (fri).
    pub fee: Option<u128>,
    /// The block it is in.
    pub block_number: Option<u64>,
    /// Why it did not succeed.
    pub reason: Option<&'a str>,
}

/// What [`Store::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the (wallet, nonce): row id.
    Owned(i64),
    /// Another request got there first.
    Taken(Box<TxRecord>),
}

/// A relayer's lease as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The relayer.
    pub relayer: Felt,
    /// The instance holding it, if any (it may have expired).
    pub holder: Option<String>,
    /// The fencing token of the latest lease.
    pub token: i64,
    /// When the lease expires unless renewed, unix milliseconds.
    pub expires_at_ms: i64,
    /// Nobody takes the relayer before this, unix milliseconds (it kept failing).
    pub parked_until_ms: i64,
}

/// A lease this instance just took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakenLease {
    /// Its fencing token: recording a transaction checks it ([`Store::submitting`]).
    pub token: i64,
    /// The nonce its last holder released, if it is known.
    pub nonce: Option<Felt>,
}

/// A transaction about to be sent, as [`Store::submitting`] records it.
#[derive(Debug, Clone, Copy)]
pub struct Sending<'a> {
    /// Its hash.
    pub hash: Felt,
    /// The relayer that signed it.
    pub relayer: Felt,
    /// The relayer nonce it uses.
    pub relayer_nonce: Felt,
    /// Its fee bound (fri).
    pub max_fee: u128,
    /// The signed transaction as broadcast (JSON), for the follower to send again.
    pub request: &'a str,
}

/// What [`Store::submitting`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitting {
    /// The hash is on record: send.
    Recorded,
    /// The row is no longer claimed (given up as abandoned): send nothing.
    GivenUp,
    /// The relayer's lease is no longer this one (it expired and another instance took
    /// it): send nothing with this nonce.
    LeaseLost,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// This process's row in `instances`: its claims carry it.
    instance: String,
}

/// A new instance id: the process and 64 random bits (two instances on one host differ).
fn new_instance_id() -> String {
    format!("{}-{:016x}", std::process::id(), rand::random::<u64>())
}

impl Store {
    /// Opens (creating it when missing) and migrates the database at `url`, with
    /// [`DEFAULT_MAX_CONNECTIONS`].
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        Self::open_with(url, DEFAULT_MAX_CONNECTIONS).await
    }

    /// Opens and migrates the database at `url` with a pool of at most `max_connections`.
    /// A SQLite file is created when missing (0600, in a 0700 directory) and put in WAL
    /// mode; a PostgreSQL database must exist (migrations create the tables, and several
    /// instances migrating at once take turns on PostgreSQL's migration lock).
    pub async fn open_with(url: &str, max_connections: u32) -> Result<Self, sqlx::Error> {
        let pool = Self::pool(url, max_connections).await?;
        let store = Self {
            backend: Backend::of(url).unwrap_or(Backend::Sqlite),
            pool,
            instance: new_instance_id(),
        };
        store.migrate().await?;
        store.heartbeat().await?;
        if store.backend == Backend::Sqlite {
            store.recover().await?;
        }
        Ok(store)
    }

    /// Creates and migrates the database at `url` without serving it (the `migrate`
    /// subcommand): what `open` would do before the first request.
    pub async fn migrate_only(url: &str) -> Result<(), sqlx::Error> {
        let store = Self {
            backend: Backend::of(url).unwrap_or(Backend::Sqlite),
            pool: Self::pool(url, 1).await?,
            instance: new_instance_id(),
        };
        store.migrate().await?;
        store.close().await;
        Ok(())
    }

    async fn pool(url: &str, max_connections: u32) -> Result<AnyPool, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let max_connections = max_connections.max(1);
        match Backend::of(url) {
            Some(Backend::Sqlite) => {
                let memory = url.contains(":memory:");
                if !memory {
                    let options = SqliteConnectOptions::from_str(url)?;
                    create_private(options.get_filename())?;
                    // WAL once, by a connection of its own: switching takes the whole file,
                    // which pooled connections opening at once would contend for.
                    let connection = options
                        .create_if_missing(true)
                        .journal_mode(SqliteJournalMode::Wal)
                        .connect()
                        .await?;
                    connection.close().await?;
                }
                let options = AnyPoolOptions::new()
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            connection
                                .execute("PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL")
                                .await
                                .map(|_| ())
                        })
                    })
                    .min_connections(1);
                if memory {
                    // An in-memory database lives as long as its one connection: keep it.
                    options
                        .max_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .connect(url)
                        .await
                } else {
                    options.max_connections(max_connections).connect(url).await
                }
            }
            Some(Backend::Postgres) => {
                AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .connect(url)
                    .await
            }
            None => Err(sqlx::Error::Configuration(
                "the database URL is neither sqlite: nor postgres(ql)://".into(),
            )),
        }
    }

    async fn migrate(&self) -> Result<(), sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This instance's id (`/health` shows it; its claims carry it).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Tells the other instances this one is alive (its row's `seen_at`, now).
    pub async fn heartbeat(&self) -> Result<(), sqlx::Error> {
        let now = now();
        sqlx::query(
            "INSERT INTO instances (id, started_at, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(&self.instance)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Instances seen at or after `since` (unix seconds), this one included.
    pub async fn live_instances(&self, since: i64) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT id FROM instances WHERE seen_at >= $1 ORDER BY id")
            .bind(since)
            .fetch_all(&self.pool)
            .await
    }

    /// Rows `CLAIMED` by an instance unseen since before `since` (dead: killed, or cut off
    /// from the database), or by none, become `FAILED` with `reason` and give their
    /// reservations back: nothing was sent for them, and their requests, if they ever
    /// wake up, cannot send them ([`Store::submitting`] takes a claimed row only). How many.
    pub async fn abandon_dead_claims(&self, since: i64, reason: &str) -> Result<u64, sqlx::Error> {
        let stuck: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT t.id, COALESCE(t.claimed_by, ''), t.updated_at FROM transactions t
             WHERE t.status = 'CLAIMED' AND (t.claimed_by IS NULL OR (t.claimed_by <> $1
               AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = t.claimed_by AND i.seen_at >= $2)))",
        )
        .bind(&self.instance)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        self.fail_claims(stuck, reason).await
    }

    /// Forgets instances unseen since before `before`.
    pub async fn purge_instances(&self, before: i64) -> Result<u64, sqlx::Error> {
        let result = sqlx::query("DELETE FROM instances WHERE seen_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Makes sure every relayer of `relayers` has a lease row (free, token 0).
    pub async fn add_relayers(&self, relayers: &[Felt]) -> Result<(), sqlx::Error> {
        for relayer in relayers {
            sqlx::query(
                "INSERT INTO relayer_leases (relayer, updated_at) VALUES ($1, $2)
                 ON CONFLICT (relayer) DO NOTHING",
            )
            .bind(FeltText(*relayer))
            .bind(now())
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Every relayer lease, by relayer.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT relayer, holder, token, expires_at_ms, parked_until_ms FROM relayer_leases
             ORDER BY relayer",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LeaseRow {
                    relayer: felt(row, "relayer")?,
                    holder: row.try_get("holder")?,
                    token: row.try_get("token")?,
                    expires_at_ms: row.try_get("expires_at_ms")?,
                    parked_until_ms: row.try_get("parked_until_ms")?,
                })
            })
            .collect()
    }

    /// Takes `relayer`'s lease for this instance until `ttl_ms` from now, if it is free (or
    /// its holder let it expire), not parked, and no live instance (seen at or after
    /// `alive_since`, unix seconds) has a request waiting since before `waiting_since_ms`
    /// (the request this lease is for): first come, first served across instances. The
    /// token grows by one; the nonce is the one its last holder released, none when the
    /// lease is taken over from an expired holder (its last send is unknown).
    pub async fn take_lease(
        &self,
        relayer: Felt,
        ttl_ms: i64,
        waiting_since_ms: i64,
        alive_since: i64,
    ) -> Result<Option<TakenLease>, sqlx::Error> {
        let now_ms = now_ms();
        let row = sqlx::query(
            "UPDATE relayer_leases SET holder = $1, token = token + 1, expires_at_ms = $2,
                 nonce = CASE WHEN holder IS NULL THEN nonce ELSE NULL END, updated_at = $3
             WHERE relayer = $4 AND (holder IS NULL OR expires_at_ms <= $5) AND parked_until_ms <= $5
               AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id <> $1 AND i.seen_at >= $6
                   AND i.waiting_since_ms < $7)
             RETURNING token, nonce",
        )
        .bind(&self.instance)
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(now())
        .bind(FeltText(relayer))
        .bind(now_ms)
        .bind(alive_since)
        .bind(waiting_since_ms)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(TakenLease {
                token: row.try_get("token")?,
                nonce: maybe_felt(&row, "nonce")?,
            })
        })
        .transpose()
    }

    /// Extends every lease this instance holds to `ttl_ms` from now: the (relayer, token)
    /// pairs it still holds. A lease taken by another instance is not among them.
    pub async fn renew_leases(&self, ttl_ms: i64) -> Result<Vec<(Felt, i64)>, sqlx::Error> {
        let rows = sqlx::query(
            "UPDATE relayer_leases SET expires_at_ms = $1 WHERE holder = $2 RETURNING relayer, token",
        )
        .bind(now_ms().saturating_add(ttl_ms))
        .bind(&self.instance)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((felt(row, "relayer")?, row.try_get("token")?)))
            .collect()
    }

    /// Gives `relayer`'s lease back, if this instance still holds it with `token`: the next
    /// holder sends with `nonce` (none: it reads the node), and nobody takes it before
    /// `parked_until_ms`. Whether it was still held.
    pub async fn release_lease(
        &self,
        relayer: Felt,
        token: i64,
        nonce: Option<Felt>,
        parked_until_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let released = sqlx::query(
            "UPDATE relayer_leases SET holder = NULL, expires_at_ms = 0, nonce = $1,
                 parked_until_ms = $2, updated_at = $3
             WHERE relayer = $4 AND holder = $5 AND token = $6",
        )
        .bind(nonce.map(FeltText))
        .bind(parked_until_ms)
        .bind(now())
        .bind(FeltText(relayer))
        .bind(&self.instance)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected() == 1)
    }

    /// Publishes when this instance's oldest request waiting for a relayer arrived (unix
    /// milliseconds; `None`: nobody waits).
    pub async fn set_waiting(&self, since_ms: Option<i64>) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE instances SET waiting_since_ms = $1 WHERE id = $2")
            .bind(since_ms)
            .bind(&self.instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// When the oldest request waiting for a relayer at another live instance (seen at or
    /// after `alive_since`, unix seconds) arrived, unix milliseconds.
    pub async fn oldest_waiting_elsewhere(
        &self,
        alive_since: i64,
    ) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT MIN(waiting_since_ms) FROM instances WHERE id <> $1 AND seen_at >= $2",
        )
        .bind(&self.instance)
        .bind(alive_since)
        .fetch_one(&self.pool)
        .await
    }

    /// A row left `CLAIMED` by a crash was never sent (its hash is recorded before any
    /// send): it becomes `FAILED`, its reservations are given back, and the same request
    /// may be retried. At start on SQLite only, where this process is the only one: on
    /// PostgreSQL a claimed row may be another instance's live request, and the follower
    /// gives up a dead instance's rows once it is unseen for `relaying.instance_ttl_seconds`
    /// ([`Store::abandon_dead_claims`]).
    async fn recover(&self) -> Result<(), sqlx::Error> {
        self.abandon_claims(i64::MAX, "interrupted before it was sent")
            .await?;
        Ok(())
    }

    /// Closes the pool (after in-flight statements finish).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records an issued nonce, unless its user or its wallet already holds `cap` nonces
    /// that are unexpired and unused at `now` (`false` then): nobody fills the table.
    pub async fn issue(
        &self,
        issued: &IssuedNonce,
        cap: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        self.issue_tipped(issued, 0, cap, now).await
    }

    /// [`Store::issue`], its execute to send with `tip` (fri per L2 gas unit): the tip a
    /// SNIP-29 build quoted.
    pub async fn issue_tipped(
        &self,
        issued: &IssuedNonce,
        tip: u64,
        cap: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let tip = i64::try_from(tip).map_err(|_| sqlx::Error::Encode("a tip above i64".into()))?;
        let result = sqlx::query(
            "INSERT INTO issued_nonces (wallet, nonce, app, user_id, calls_hash, execute_before, expires_at, created_at, tip)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
             WHERE (SELECT COUNT(*) FROM issued_nonces i WHERE i.app = $10 AND i.user_id = $11 AND i.expires_at >= $12
                    AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.wallet = i.wallet AND t.nonce = i.nonce)) < $13
               AND (SELECT COUNT(*) FROM issued_nonces i WHERE i.wallet = $14 AND i.expires_at >= $15
                    AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.wallet = i.wallet AND t.nonce = i.nonce)) < $16",
        )
        .bind(FeltText(issued.wallet))
        .bind(FeltText(issued.nonce))
        .bind(&issued.app)
        .bind(&issued.user_id)
        .bind(FeltText(issued.calls_hash))
        .bind(issued.execute_before)
        .bind(issued.expires_at)
        .bind(issued.created_at)
        .bind(tip)
        .bind(&issued.app)
        .bind(&issued.user_id)
        .bind(now)
        .bind(cap)
        .bind(FeltText(issued.wallet))
        .bind(now)
        .bind(cap)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records `issued` like [`Store::issue`] (the same caps), unless its (wallet, nonce)
    /// is on record already, which is kept as it is: `true` when it is on record now
    /// (inserted or kept), `false` when a cap refused it.
    pub async fn issue_or_keep(
        &self,
        issued: &IssuedNonce,
        cap: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        if self.issued(issued.wallet, issued.nonce).await?.is_some() {
            return Ok(true);
        }
        match self.issue(issued, cap, now).await {
            Ok(inserted) => Ok(inserted),
            // A concurrent request recorded it between the two statements.
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => Ok(true),
            Err(error) => Err(error),
        }
    }

    /// Forgets nonces that expired before `before` (a request replaying one after that
    /// is answered from its transaction record, if it was sent).
    pub async fn purge_issued(&self, before: i64) -> Result<u64, sqlx::Error> {
        let result = sqlx::query("DELETE FROM issued_nonces WHERE expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// How many nonces were issued (operators, tests).
    pub async fn issued_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT COUNT(*) FROM issued_nonces")
            .fetch_one(&self.pool)
            .await
    }

    /// The nonce issued for `wallet`, if any.
    pub async fn issued(
        &self,
        wallet: Felt,
        nonce: Felt,
    ) -> Result<Option<IssuedNonce>, sqlx::Error> {
        Ok(self
            .issued_tipped(wallet, nonce)
            .await?
            .map(|(issued, _)| issued))
    }

    /// The nonce issued for `wallet`, if any, with the tip its execute sends with.
    pub async fn issued_tipped(
        &self,
        wallet: Felt,
        nonce: Felt,
    ) -> Result<Option<(IssuedNonce, u64)>, sqlx::Error> {
        let row = sqlx::query("SELECT * FROM issued_nonces WHERE wallet = $1 AND nonce = $2")
            .bind(FeltText(wallet))
            .bind(FeltText(nonce))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let tip = u64::try_from(row.try_get::<i64, _>("tip")?).map_err(|_| {
            sqlx::Error::ColumnDecode {
                index: "tip".into(),
                source: "a negative tip".into(),
            }
        })?;
        Ok(Some((IssuedNonce::from_row(&row)?, tip)))
    }

    /// The transaction of (wallet, nonce), if any; nonce `None`: the wallet's deployment.
    pub async fn transaction(
        &self,
        wallet: Felt,
        nonce: Option<Felt>,
    ) -> Result<Option<TxRecord>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM transactions WHERE wallet = $1 AND nonce = $2")
            .bind(FeltText(wallet))
            .bind(nonce_text(nonce))
            .fetch_optional(&self.pool)
            .await
    }

    /// The transaction with `hash` sent for `app`.
    pub async fn by_hash(&self, app: &str, hash: Felt) -> Result<Option<TxRecord>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM transactions WHERE hash = $1 AND app = $2")
            .bind(FeltText(hash))
            .bind(app)
            .fetch_optional(&self.pool)
            .await
    }

    /// The transaction of SNIP-29 tracking id `id` sent for `app`.
    pub async fn by_tracking_id(
        &self,
        app: &str,
        id: Felt,
    ) -> Result<Option<TxRecord>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM transactions WHERE tracking_id = $1 AND app = $2")
            .bind(FeltText(id))
            .bind(app)
            .fetch_optional(&self.pool)
            .await
    }

    /// Takes (wallet, nonce) for one request: a new row, or a row whose earlier attempt
    /// sent nothing; otherwise the row of the request that has it. Nonce `None` is the
    /// wallet's deployment (a [`TxKind::Deploy`] row), a felt an outside execution.
    pub async fn claim(
        &self,
        app: &str,
        user: &str,
        wallet: Felt,
        nonce: Option<Felt>,
    ) -> Result<Claim, sqlx::Error> {
        let now = now();
        let kind = match nonce {
            Some(_) => TxKind::Execute,
            None => TxKind::Deploy,
        };
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO transactions (kind, app, user_id, wallet, nonce, status, created_at, updated_at, tracking_id, claimed_by)
             VALUES ($1, $2, $3, $4, $5, 'CLAIMED', $6, $7, $8, $9)
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(kind.as_str())
        .bind(app)
        .bind(user)
        .bind(FeltText(wallet))
        .bind(nonce_text(nonce))
        .bind(now)
        .bind(now)
        .bind(FeltText(tracking_id(wallet, nonce)))
        .bind(&self.instance)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(id) = inserted {
            return Ok(Claim::Owned(id));
        }
        // Retry an attempt that sent nothing; exactly one concurrent retry wins.
        let retaken = sqlx::query_scalar::<_, i64>(
            "UPDATE transactions SET status = 'CLAIMED', hash = NULL, relayer = NULL,
                 relayer_nonce = NULL, max_fee = NULL, code = NULL, reason = NULL, updated_at = $1,
                 claimed_by = $4
             WHERE wallet = $2 AND nonce = $3 AND status IN ('REFUSED', 'FAILED')
             RETURNING id",
        )
        .bind(now)
        .bind(FeltText(wallet))
        .bind(nonce_text(nonce))
        .bind(&self.instance)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(id) = retaken {
            return Ok(Claim::Owned(id));
        }
        match self.transaction(wallet, nonce).await? {
            Some(row) => Ok(Claim::Taken(Box::new(row))),
            // Deleted between the two statements: impossible (rows are never deleted).
            None => Err(sqlx::Error::RowNotFound),
        }
    }

    /// The hash is known and the transaction is about to be sent by `relayer` with
    /// `relayer_nonce` under the lease `lease_token`. Recorded only while the row is still
    /// claimed and, in the same statement, while this instance holds that lease unexpired.
    pub async fn submitting(
        &self,
        id: i64,
        sending: Sending<'_>,
        lease_token: i64,
    ) -> Result<Submitting, sqlx::Error> {
        let Sending {
            hash,
            relayer,
            relayer_nonce,
            max_fee,
            request,
        } = sending;
        let now = now();
        let mut tx = self.pool.begin().await?;
        // Only a row still claimed (one given up as abandoned is sent by nobody), and only
        // under a live lease (a holder that stalled past its expiry has lost the nonce).
        let recorded = sqlx::query(
            "UPDATE transactions SET status = 'SUBMITTING', hash = $1, relayer = $2, relayer_nonce = $3,
                 max_fee = $4, updated_at = $5 WHERE id = $6 AND status = 'CLAIMED'
               AND EXISTS (SELECT 1 FROM relayer_leases l WHERE l.relayer = $2 AND l.holder = $7
                   AND l.token = $8 AND l.expires_at_ms > $9)",
        )
        .bind(FeltText(hash))
        .bind(FeltText(relayer))
        .bind(FeltText(relayer_nonce))
        .bind(FriText(max_fee))
        .bind(now)
        .bind(id)
        .bind(&self.instance)
        .bind(lease_token)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !recorded {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM transactions WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            tx.rollback().await?;
            return Ok(match status.as_deref() {
                Some("CLAIMED") => Submitting::LeaseLost,
                _ => Submitting::GivenUp,
            });
        }
        sqlx::query(
            "INSERT INTO attempts (tx_id, hash, relayer, relayer_nonce, max_fee, outcome, created_at, updated_at, request)
             VALUES ($1, $2, $3, $4, $5, 'SUBMITTING', $6, $7, $8)",
        )
        .bind(id)
        .bind(FeltText(hash))
        .bind(FeltText(relayer))
        .bind(FeltText(relayer_nonce))
        .bind(FriText(max_fee))
        .bind(now)
        .bind(now)
        .bind(request)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Submitting::Recorded)
    }

    /// The signed transaction `hash` of row `id` as it was broadcast (JSON), if kept.
    pub async fn signed_request(&self, id: i64, hash: Felt) -> Result<Option<String>, sqlx::Error> {
        let request: Option<Option<String>> = sqlx::query_scalar(
            "SELECT request FROM attempts WHERE tx_id = $1 AND hash = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(id)
        .bind(FeltText(hash))
        .fetch_optional(&self.pool)
        .await?;
        Ok(request.flatten())
    }

    /// Row `id`, still carrying `hash`, was looked after now (its `updated_at`): the
    /// follower sends a lost transaction again at most once per send timeout.
    pub async fn touch(&self, id: i64, hash: Felt) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE transactions SET updated_at = $1 WHERE id = $2 AND hash = $3")
            .bind(now())
            .bind(id)
            .bind(FeltText(hash))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every attempt of row `id`, oldest first.
    pub async fn attempts(&self, id: i64) -> Result<Vec<Attempt>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM attempts WHERE tx_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&self.pool)
            .await
    }

    /// Rows `CLAIMED` and untouched since before `cutoff` (unix seconds) become `FAILED`
    /// with `reason`, their reservations given back: nothing was sent for them (a hash is
    /// recorded before any send, and [`Store::submitting`] refuses a row no longer
    /// claimed). At start every claimed row is (a crash left it); while running, the
    /// follower gives up rows whose request died with a database error mid-way. How many.
    pub async fn abandon_claims(&self, cutoff: i64, reason: &str) -> Result<u64, sqlx::Error> {
        let stuck: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT id, COALESCE(claimed_by, ''), updated_at FROM transactions
             WHERE status = 'CLAIMED' AND updated_at < $1",
        )
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        self.fail_claims(stuck, reason).await
    }

    /// Fails each (row, claimer, last update) still as it was read: a row claimed again
    /// since (by a live instance, or later) is left to its new claimer.
    async fn fail_claims(
        &self,
        stuck: Vec<(i64, String, i64)>,
        reason: &str,
    ) -> Result<u64, sqlx::Error> {
        let mut abandoned = 0;
        for (id, claimer, updated_at) in stuck {
            let mut tx = self.pool.begin().await?;
            let failed = sqlx::query(
                "UPDATE transactions SET status = 'FAILED', reason = $1, updated_at = $2
                 WHERE id = $3 AND status = 'CLAIMED' AND COALESCE(claimed_by, '') = $4
                   AND updated_at = $5",
            )
            .bind(reason)
            .bind(now())
            .bind(id)
            .bind(claimer)
            .bind(updated_at)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if failed {
                settle_reservations(&mut tx, id, None).await?;
                abandoned += 1;
            }
            tx.commit().await?;
        }
        Ok(abandoned)
    }

    /// The node refused the submission for a reason that means it was not taken (a stale
    /// relayer nonce): back to claimed, without the hash.
    pub async fn unsubmit(&self, id: i64, reason: &str) -> Result<(), sqlx::Error> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE attempts SET outcome = 'REFUSED', reason = $1, updated_at = $2
             WHERE tx_id = $3 AND outcome = 'SUBMITTING'",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE transactions SET status = 'CLAIMED', hash = NULL, relayer = NULL,
                 relayer_nonce = NULL, max_fee = NULL, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// Moves row `id` to `status` with an optional code and reason. When nothing was sent
    /// (`REFUSED`, `FAILED`), what the row reserved of the sponsorship counters is given
    /// back in the same database transaction.
    pub async fn set_status(
        &self,
        id: i64,
        status: TxStatus,
        code: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE transactions SET status = $1, code = COALESCE($2, code),
                 reason = COALESCE($3, reason), updated_at = $4 WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(code)
        .bind(reason)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if status.retryable() {
            settle_reservations(&mut tx, id, None).await?;
        }
        tx.commit().await
    }

    /// Transaction `hash` of row `id` reached its end. In the same database transaction
    /// its reservations are settled (fees to the fee paid, in-flight given back; a
    /// transaction that never landed gives back everything), when it reverted every
    /// counter of `reverts` grows by one, and a deployment that landed marks its wallet
    /// deployed. Only an open row still carrying `hash` is finished: `false` when another
    /// pass finished it first or the row has moved on to another transaction.
    pub async fn finish(
        &self,
        id: i64,
        hash: Felt,
        end: End<'_>,
        reverts: &[(String, Charge)],
    ) -> Result<bool, sqlx::Error> {
        let End {
            status,
            fee,
            block_number,
            reason,
        } = end;
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE transactions SET status = $1, fee = $2, block_number = $3, reason = $4, updated_at = $5
             WHERE id = $6 AND hash = $7 AND status IN ('SUBMITTING', 'PENDING')",
        )
        .bind(status.as_str())
        .bind(fee.map(FriText))
        .bind(block_number.map(|b| b as i64))
        .bind(reason)
        .bind(now())
        .bind(id)
        .bind(FeltText(hash))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !changed {
            // Finished by another follower pass already, or the row moved on to another
            // transaction (the one `hash` names was refused and a new one sent): what
            // was seen of `hash` says nothing of the row's current transaction.
            tx.rollback().await?;
            return Ok(false);
        }
        let paid = match status {
            TxStatus::Accepted | TxStatus::Reverted => Some(fee.map(fee_units).unwrap_or(i64::MAX)),
            _ => None,
        };
        let settled = settle_reservations(&mut tx, id, paid).await?;
        if settled && status == TxStatus::Reverted {
            for (app, charge) in reverts {
                add(&mut tx, app, charge, None).await?;
            }
        }
        if status == TxStatus::Accepted {
            // A transaction that landed deployed its wallet or ran in it (a deployment, a
            // SNIP-29 deploy_and_invoke, an outside execution): the wallet is deployed in
            // the same commit, so no reader sees the transaction final and the wallet not
            // yet deployed.
            sqlx::query(
                "UPDATE wallets SET is_deployed = 1, updated_at = $1
                 WHERE address = (SELECT wallet FROM transactions WHERE id = $2) AND is_deployed = 0",
            )
            .bind(iso_now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Takes every charge for transaction `id`, or none: `Some(i)` names the first charge,
    /// in lock order (subject, knob, window; the order settling takes them in, so two
    /// PostgreSQL transactions never wait on each other in a cycle), that does not fit
    /// under its cap. Each counter moves in one statement
    /// (`used + n <= cap`), so concurrent requests never pass a cap together.
    pub async fn reserve(
        &self,
        id: i64,
        app: &str,
        charges: &[Charge],
    ) -> Result<Option<usize>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        for i in lock_order(charges) {
            let charge = &charges[i];
            if !add(&mut tx, app, charge, Some(charge.cap)).await? {
                tx.rollback().await?;
                return Ok(Some(i));
            }
            if charge.reserved() {
                sqlx::query(
                    "INSERT INTO sponsorship_reservations (tx_id, app, subject, knob, window_start, amount)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (tx_id, subject, knob, window_start)
                     DO UPDATE SET amount = sponsorship_reservations.amount + excluded.amount",
                )
                .bind(id)
                .bind(app)
                .bind(&charge.subject)
                .bind(charge.knob.as_str())
                .bind(charge.window_start)
                .bind(charge.amount)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Shrinks (or grows) what transaction `id` reserved of its fee counters to `units`.
    /// Both statements write (no read first), so a concurrent writer makes this wait,
    /// never fail on a stale snapshot.
    pub async fn rereserve_fees(&self, id: i64, units: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE sponsorship_counters
             SET used = CASE WHEN sponsorship_counters.used + $1 - r.amount < 0 THEN 0
                             ELSE sponsorship_counters.used + $1 - r.amount END
             FROM sponsorship_reservations r
             WHERE r.tx_id = $2 AND r.knob = 'fees' AND sponsorship_counters.knob = 'fees'
               AND r.app = sponsorship_counters.app AND r.subject = sponsorship_counters.subject
               AND r.window_start = sponsorship_counters.window_start",
        )
        .bind(units)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE sponsorship_reservations SET amount = $1 WHERE tx_id = $2 AND knob = 'fees'",
        )
        .bind(units)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// The node took the transaction of row `id`: `PENDING`, unless a follower already
    /// saw it final (a fast node can include it before this is written).
    pub async fn sent(&self, id: i64) -> Result<(), sqlx::Error> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE attempts SET outcome = 'SENT', updated_at = $1
             WHERE tx_id = $2 AND outcome = 'SUBMITTING'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE transactions SET status = 'PENDING', updated_at = $1
             WHERE id = $2 AND status = 'SUBMITTING'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    /// The current value of each counter (0 when never taken), in order.
    pub async fn counters(&self, app: &str, charges: &[Charge]) -> Result<Vec<i64>, sqlx::Error> {
        let mut values = Vec::with_capacity(charges.len());
        for charge in charges {
            let used: Option<i64> = sqlx::query_scalar(
                "SELECT used FROM sponsorship_counters
                 WHERE app = $1 AND subject = $2 AND knob = $3 AND window_start = $4",
            )
            .bind(app)
            .bind(&charge.subject)
            .bind(charge.knob.as_str())
            .bind(charge.window_start)
            .fetch_optional(&self.pool)
            .await?;
            values.push(used.unwrap_or(0));
        }
        Ok(values)
    }

    /// What is held in reservations of each counter, in order.
    pub async fn reserved(&self, app: &str, charges: &[Charge]) -> Result<Vec<i64>, sqlx::Error> {
        let mut values = Vec::with_capacity(charges.len());
        for charge in charges {
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(SUM(amount) AS BIGINT) FROM sponsorship_reservations
                 WHERE app = $1 AND subject = $2 AND knob = $3 AND window_start = $4",
            )
            .bind(app)
            .bind(&charge.subject)
            .bind(charge.knob.as_str())
            .bind(charge.window_start)
            .fetch_one(&self.pool)
            .await?;
            values.push(held.unwrap_or(0));
        }
        Ok(values)
    }

    /// Transactions of `app` (and of `user`, when given) by status, with fees paid and
    /// distinct users.
    pub async fn usage(&self, app: &str, user: Option<&str>) -> Result<Usage, sqlx::Error> {
        let rows: Vec<(TxStatus, Option<FriText>, String)> = sqlx::query_as(
            "SELECT status, fee, user_id FROM transactions
             WHERE app = $1 AND ($2 IS NULL OR user_id = $3)",
        )
        .bind(app)
        .bind(user)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let mut usage = Usage::default();
        let mut users = std::collections::HashSet::new();
        for (status, fee, user) in rows {
            match status {
                TxStatus::Submitting | TxStatus::Pending => usage.pending += 1,
                TxStatus::Accepted => usage.accepted += 1,
                TxStatus::Reverted => usage.reverted += 1,
                TxStatus::Refused | TxStatus::Failed | TxStatus::Claimed => {}
            }
            if matches!(status, TxStatus::Accepted | TxStatus::Reverted) {
                usage.fees_paid_fri = usage.fees_paid_fri.saturating_add(fee.map_or(0, |f| f.0));
            }
            if !matches!(
                status,
                TxStatus::Refused | TxStatus::Failed | TxStatus::Claimed
            ) {
                usage.sent += 1;
                users.insert(user);
            }
        }
        usage.users = users.len() as u64;
        Ok(usage)
    }

    /// Transactions sent (or maybe sent) and not yet final: what the follower follows.
    pub async fn open_transactions(&self) -> Result<Vec<TxRecord>, sqlx::Error> {
        sqlx::query_as(
            "SELECT * FROM transactions WHERE status IN ('SUBMITTING', 'PENDING') AND hash IS NOT NULL
             ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Claims for this instance's follower, until `ttl_ms` from now, at most `limit` open
    /// rows (with a hash, not final) that no other instance follows (never claimed, or
    /// its claim expired: a dead instance's rows are taken over); the rows this instance
    /// follows already are renewed. The rows, oldest first.
    /// Two instances never follow one row at once: the claim is one statement, and the
    /// row's own condition is checked again on the row it writes.
    pub async fn claim_follow(
        &self,
        limit: i64,
        ttl_ms: i64,
    ) -> Result<Vec<TxRecord>, sqlx::Error> {
        const FREE: &str = "status IN ('SUBMITTING', 'PENDING') AND hash IS NOT NULL
            AND (followed_by IS NULL OR followed_by = $1 OR follow_until_ms <= $3)";
        let statement = format!(
            "UPDATE transactions SET followed_by = $1, follow_until_ms = $2
             WHERE id IN (SELECT id FROM transactions WHERE {FREE} ORDER BY id LIMIT $4)
               AND {FREE}
             RETURNING *"
        );
        let now_ms = now_ms();
        let mut rows = sqlx::query_as::<_, TxRecord>(&statement)
            .bind(&self.instance)
            .bind(now_ms.saturating_add(ttl_ms))
            .bind(now_ms)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.sort_by_key(|row| row.id);
        Ok(rows)
    }

    /// Lets the other instances follow at once what this one followed (at shutdown).
    pub async fn release_follows(&self) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE transactions SET followed_by = NULL, follow_until_ms = NULL WHERE followed_by = $1",
        )
        .bind(&self.instance)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every transaction record, oldest first (operators, tests).
    pub async fn transactions(&self) -> Result<Vec<TxRecord>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM transactions ORDER BY id")
            .fetch_all(&self.pool)
            .await
    }

    /// The wallet of (app, external user).
    pub async fn wallet_of_user(
        &self,
        app: &str,
        user: &str,
    ) -> Result<Option<WalletRow>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM wallets WHERE app = $1 AND external_user_id = $2")
            .bind(app)
            .bind(user)
            .fetch_optional(&self.pool)
            .await
    }

    /// Stores a wallet; `false` when (app, user) already has one.
    pub async fn insert_wallet(&self, wallet: &WalletRow) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "INSERT INTO wallets (id, app, external_user_id, address, owner_public_key, class_hash,
                 encrypted_private_key, wallet_type, tx_hash, is_deployed, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (app, external_user_id) DO NOTHING",
        )
        .bind(&wallet.id)
        .bind(&wallet.app)
        .bind(&wallet.external_user_id)
        .bind(FeltText(wallet.address))
        .bind(FeltText(wallet.owner_public_key))
        .bind(FeltText(wallet.class_hash))
        .bind(&wallet.encrypted_private_key)
        .bind(&wallet.wallet_type)
        .bind(wallet.tx_hash.map(FeltText))
        .bind(i64::from(wallet.is_deployed))
        .bind(&wallet.created_at)
        .bind(&wallet.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Replaces the wallet row `id` by `candidate`'s address, key and class, only if no
    /// deployment of the row's address was ever sent (or is being sent); `false` otherwise.
    pub async fn replace_unsent_wallet(
        &self,
        id: &str,
        candidate: &WalletRow,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE wallets SET address = $1, owner_public_key = $2, class_hash = $3,
                 encrypted_private_key = $4, wallet_type = $5, updated_at = $6
             WHERE id = $7 AND is_deployed = 0 AND tx_hash IS NULL
               AND NOT EXISTS (SELECT 1 FROM transactions t WHERE t.wallet = wallets.address
                   AND t.nonce = 'deploy' AND t.status NOT IN ('REFUSED', 'FAILED'))",
        )
        .bind(FeltText(candidate.address))
        .bind(FeltText(candidate.owner_public_key))
        .bind(FeltText(candidate.class_hash))
        .bind(&candidate.encrypted_private_key)
        .bind(&candidate.wallet_type)
        .bind(&candidate.updated_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records a wallet's deployment transaction and whether it is on chain. A wallet on
    /// chain stays so: the follower may have seen the deployment land before its request
    /// records that it was sent.
    pub async fn wallet_deployed(
        &self,
        id: &str,
        tx_hash: Option<Felt>,
        deployed: bool,
        updated_at: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE wallets SET tx_hash = COALESCE($1, tx_hash), is_deployed = CASE WHEN $2 = 1 THEN 1 ELSE is_deployed END,
                 updated_at = $3 WHERE id = $4",
        )
        .bind(tx_hash.map(FeltText))
        .bind(i64::from(deployed))
        .bind(updated_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// The environment variable that, when set, names a PostgreSQL server (a URL whose user
/// may create databases): every [`temp_database`] is then a new database on it, so the
/// tests of the service run on PostgreSQL (`.ci/run` sets it for a second pass).
pub const TEST_POSTGRES_ENV: &str = "CHIPI_TEST_POSTGRES_URL";

/// A fresh SQLite file's URL. The file lies in a directory of its own, which the service
/// creates readable by its owner only (0700; the file 0600).
pub fn temp_sqlite() -> String {
    let path = std::env::temp_dir()
        .join(format!("chipi-paymaster-{:032x}", rand::random::<u128>()))
        .join("paymaster.db");
    format!("sqlite://{}", path.display())
}

/// A fresh, empty database's URL: a new database on the PostgreSQL server that
/// [`TEST_POSTGRES_ENV`] names when it is set, a new SQLite file ([`temp_sqlite`])
/// otherwise.
pub async fn temp_database() -> Result<String, sqlx::Error> {
    match std::env::var(TEST_POSTGRES_ENV) {
        Ok(server) if !server.is_empty() => temp_postgres(&server).await,
        _ => Ok(temp_sqlite()),
    }
}

/// A new, empty database of a fresh name on the PostgreSQL server `server` names (its
/// user may create databases); its URL.
pub async fn temp_postgres(server: &str) -> Result<String, sqlx::Error> {
    let mut url = url::Url::parse(server).map_err(|e| sqlx::Error::Configuration(e.into()))?;
    let name = format!("chipi_{:032x}", rand::random::<u128>());
    let mut connection = sqlx::PgConnection::connect(server).await?;
    connection
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    connection.close().await?;
    url.set_path(&name);
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::{Charge, Knob};

    /// A fresh store: SQLite, or PostgreSQL when the tests run on it.
    async fn store() -> Store {
        Store::open(&temp_database().await.unwrap()).await.unwrap()
    }

    /// This store's own relayer (one per instance, so several stores never contend).
    fn relayer_of(store: &Store) -> Felt {
        Felt::from_bytes_be_slice(store.instance().as_bytes())
    }

    /// The lease of [`relayer_of`] `store`, taken if it is free: its token.
    async fn lease(store: &Store) -> i64 {
        let relayer = relayer_of(store);
        store.add_relayers(&[relayer]).await.unwrap();
        if let Some(taken) = store
            .take_lease(relayer, 60_000, i64::MAX, 0)
            .await
            .unwrap()
        {
            return taken.token;
        }
        let row = store.leases().await.unwrap();
        let row = row.iter().find(|l| l.relayer == relayer).unwrap();
        assert_eq!(row.holder.as_deref(), Some(store.instance()));
        row.token
    }

    /// [`Store::submitting`] by `store`'s relayer, under its lease.
    async fn submit(
        store: &Store,
        id: i64,
        hash: Felt,
        relayer_nonce: Felt,
        max_fee: u128,
    ) -> Submitting {
        let token = lease(store).await;
        let sending = Sending {
            hash,
            relayer: relayer_of(store),
            relayer_nonce,
            max_fee,
            request: "{}",
        };
        store.submitting(id, sending, token).await.unwrap()
    }

    #[tokio::test]
    async fn two_instances_never_follow_one_row_at_once() {
        let url = temp_database().await.unwrap();
        let (one, two) = (
            Store::open(&url).await.unwrap(),
            Store::open(&url).await.unwrap(),
        );
        let mut ids = Vec::new();
        for i in 1..=6u8 {
            let Claim::Owned(id) = one
                .claim("app", "u", Felt::from(i), Some(Felt::ONE))
                .await
                .unwrap()
            else {
                panic!("the row is new");
            };
            let sent = submit(&one, id, Felt::from(100 + i), Felt::from(i), 10).await;
            assert_eq!(sent, Submitting::Recorded);
            ids.push(id);
        }
        let ids_of = |rows: Result<Vec<TxRecord>, sqlx::Error>| -> Vec<i64> {
            rows.unwrap().iter().map(|row| row.id).collect()
        };
        let disjoint = |a: &[i64], b: &[i64]| a.iter().all(|id| !b.contains(id));
        // Both at once: never the same row twice.
        let (a, b) = tokio::join!(one.claim_follow(3, 60_000), two.claim_follow(3, 60_000));
        let (a, b) = (ids_of(a), ids_of(b));
        assert!(disjoint(&a, &b), "{a:?} {b:?}");
        // Each renews its own and takes what is free, never the other's: every open row
        // is followed by exactly one of them.
        let a = ids_of(one.claim_follow(6, 60_000).await);
        let b = ids_of(two.claim_follow(6, 60_000).await);
        assert!(disjoint(&a, &b), "{a:?} {b:?}");
        let mut all = [a.clone(), b].concat();
        all.sort();
        assert_eq!(all, ids);
        // The first dies: once its claims expire, the second follows its rows too.
        sqlx::query("UPDATE transactions SET follow_until_ms = 0 WHERE followed_by = $1")
            .bind(one.instance())
            .execute(&two.pool)
            .await
            .unwrap();
        assert_eq!(ids_of(two.claim_follow(6, 60_000).await), ids);
        assert!(ids_of(one.claim_follow(6, 60_000).await).is_empty());
        // Given back at shutdown, they are the first's to take at once.
        two.release_follows().await.unwrap();
        assert_eq!(ids_of(one.claim_follow(6, 60_000).await), ids);
    }

    #[tokio::test]
    async fn only_a_dead_instances_claims_are_given_up() {
        let url = temp_database().await.unwrap();
        let (one, two) = (
            Store::open(&url).await.unwrap(),
            Store::open(&url).await.unwrap(),
        );
        assert_ne!(one.instance(), two.instance());
        let owned = |claim| match claim {
            Claim::Owned(id) => id,
            Claim::Taken(row) => panic!("taken: {row:?}"),
        };
        let first = owned(
            one.claim("app", "u", Felt::ONE, Some(Felt::ONE))
                .await
                .unwrap(),
        );
        let second = owned(
            two.claim("app", "u", Felt::TWO, Some(Felt::ONE))
                .await
                .unwrap(),
        );
        // Both alive: nothing is given up.
        assert_eq!(
            two.abandon_dead_claims(now() - 10, "dead").await.unwrap(),
            0
        );
        let live = two.live_instances(now() - 10).await.unwrap();
        assert!(live.contains(&one.instance().to_string()), "{live:?}");
        // The first falls silent: its claim goes, the second's own claim stays.
        sqlx::query("UPDATE instances SET seen_at = 0 WHERE id = $1")
            .bind(one.instance())
            .execute(&two.pool)
            .await
            .unwrap();
        assert_eq!(
            two.abandon_dead_claims(now() - 10, "dead").await.unwrap(),
            1
        );
        let row = two
            .transaction(Felt::ONE, Some(Felt::ONE))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.status, row.reason.as_deref()),
            (TxStatus::Failed, Some("dead"))
        );
        let kept = two
            .transaction(Felt::TWO, Some(Felt::ONE))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.status, TxStatus::Claimed);
        // The silent instance wakes up: it cannot send what it claimed.
        assert_eq!(
            submit(&one, first, Felt::from(7u8), Felt::ZERO, 10).await,
            Submitting::GivenUp
        );
        assert_eq!(
            submit(&two, second, Felt::from(8u8), Felt::ZERO, 10).await,
            Submitting::Recorded
        );
        // Its heartbeat brings it back; the request, retried anywhere, owns the row again.
        one.heartbeat().await.unwrap();
        assert_eq!(
            two.claim("app", "u", Felt::ONE, Some(Felt::ONE))
                .await
                .unwrap(),
            Claim::Owned(first)
        );
        assert_eq!(
            two.abandon_dead_claims(now() - 10, "dead").await.unwrap(),
            0
        );
    }

    fn in_flight() -> Charge {
        Charge {
            subject: "wallet:0x1".into(),
            knob: Knob::InFlight,
            window_start: 0,
            window_end: i64::MAX,
            amount: 1,
            cap: 1,
            limit: "in_flight_per_wallet".into(),
        }
    }

    #[tokio::test]
    async fn an_abandoned_claim_is_failed_given_back_and_never_sent() {
        let store = store().await;
        let Claim::Owned(id) = store
            .claim("app", "u", Felt::ONE, Some(Felt::TWO))
            .await
            .unwrap()
        else {
            panic!("a fresh (wallet, nonce) is owned");
        };
        assert_eq!(
            store.reserve(id, "app", &[in_flight()]).await.unwrap(),
            None
        );
        // A claim younger than the cutoff stays.
        assert_eq!(store.abandon_claims(now() - 60, "gone").await.unwrap(), 0);
        assert_eq!(store.abandon_claims(now() + 1, "gone").await.unwrap(), 1);
        let row = store
            .transaction(Felt::ONE, Some(Felt::TWO))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status(), TxStatus::Failed);
        assert_eq!(row.reason.as_deref(), Some("gone"));
        // Its in-flight reservation is back: another transaction of the wallet fits.
        assert_eq!(
            store.counters("app", &[in_flight()]).await.unwrap(),
            vec![0]
        );
        // The request that claimed it, if it ever wakes up, cannot send it.
        let sending = submit(&store, id, Felt::from(7u8), Felt::ZERO, 10).await;
        assert_eq!(sending, Submitting::GivenUp);
        assert!(store.attempts(id).await.unwrap().is_empty());
        // The same request, retried, owns the row again.
        assert_eq!(
            store
                .claim("app", "u", Felt::ONE, Some(Felt::TWO))
                .await
                .unwrap(),
            Claim::Owned(id)
        );
    }

    #[tokio::test]
    async fn every_attempt_is_kept_with_its_outcome() {
        let store = store().await;
        let Claim::Owned(id) = store
            .claim("app", "u", Felt::ONE, Some(Felt::TWO))
            .await
            .unwrap()
        else {
            panic!("a fresh (wallet, nonce) is owned");
        };
        assert_eq!(
            submit(&store, id, Felt::from(7u8), Felt::ZERO, 10).await,
            Submitting::Recorded
        );
        store.unsubmit(id, "stale relayer nonce").await.unwrap();
        assert_eq!(
            submit(&store, id, Felt::from(8u8), Felt::ONE, 10).await,
            Submitting::Recorded
        );
        store.sent(id).await.unwrap();
        let attempts = store.attempts(id).await.unwrap();
        let seen: Vec<_> = attempts
            .iter()
            .map(|a| (a.hash, a.relayer_nonce, a.max_fee, a.outcome))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Felt::from(7u8), Felt::ZERO, 10, Outcome::Refused),
                (Felt::from(8u8), Felt::ONE, 10, Outcome::Sent)
            ]
        );
        assert_eq!(attempts[0].reason.as_deref(), Some("stale relayer nonce"));
        let row = store
            .transaction(Felt::ONE, Some(Felt::TWO))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.hash, Some(Felt::from(8u8)));
        assert_eq!(row.relayer, Some(relayer_of(&store)));
        assert_eq!(row.relayer_nonce, Some(Felt::ONE));
        assert_eq!(row.max_fee, Some(10));
        assert_eq!(row.status(), TxStatus::Pending);
    }

    /// The database's text, as written: canonical lower-case hex, decimal fees, `deploy`.
    #[tokio::test]
    async fn felts_are_stored_as_canonical_text_and_read_back_typed() {
        let store = store().await;
        let wallet = Felt::from(0xabcu64);
        let Claim::Owned(id) = store.claim("app", "u", wallet, None).await.unwrap() else {
            panic!("a fresh deployment is owned");
        };
        assert_eq!(
            submit(&store, id, Felt::from(0xdeu64), Felt::TWO, u128::MAX).await,
            Submitting::Recorded
        );
        let text: (String, String, String, String, String, String) = sqlx::query_as(
            "SELECT kind, wallet, nonce, hash, relayer_nonce, max_fee FROM transactions WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            text,
            (
                "deploy".into(),
                "0xabc".into(),
                "deploy".into(),
                "0xde".into(),
                "0x2".into(),
                u128::MAX.to_string()
            )
        );
        let row = store.transaction(wallet, None).await.unwrap().unwrap();
        assert_eq!((row.kind, row.nonce), (TxKind::Deploy, None));
        assert_eq!(row.max_fee, Some(u128::MAX));
        assert_eq!(
            store.by_hash("app", Felt::from(0xdeu64)).await.unwrap(),
            Some(row)
        );
    }

    fn is_decode_error(error: &sqlx::Error, column: &str) -> bool {
        matches!(error, sqlx::Error::ColumnDecode { index, .. } if index.contains(column))
    }

    /// A malformed value in a felt or fee column is a decode error naming the column:
    /// never read as zero, never a panic.
    #[tokio::test]
    async fn a_malformed_column_is_a_decode_error_not_a_zero() {
        let store = store().await;
        let insert = |wallet: &'static str, kind: &'static str, nonce: &'static str| {
            sqlx::query(
                "INSERT INTO transactions (kind, app, user_id, wallet, nonce, status, created_at, updated_at)
                 VALUES ($1, 'app', 'u', $2, $3, 'PENDING', 0, 0)",
            )
            .bind(kind)
            .bind(wallet)
            .bind(nonce)
        };
        for (wallet, kind, nonce, column) in [
            ("not a felt", "execute", "0x2", "wallet"),
            // Not the canonical text: decimal, upper case, leading zeros, too large.
            ("16", "execute", "0x2", "wallet"),
            ("0xABC", "execute", "0x2", "wallet"),
            ("0x0abc", "execute", "0x2", "wallet"),
            (
                "0x800000000000011000000000000000000000000000000000000000000000001",
                "execute",
                "0x2",
                "wallet",
            ),
            ("0x1", "execute", "zero", "nonce"),
            // `deploy` is the nonce of a deployment only, and a deployment's nonce is `deploy`.
            ("0x1", "execute", "deploy", "nonce"),
            ("0x1", "deploy", "0x2", "nonce"),
        ] {
            let store = self::store().await;
            insert(wallet, kind, nonce)
                .execute(&store.pool)
                .await
                .unwrap();
            let error = store.transactions().await.unwrap_err();
            assert!(
                is_decode_error(&error, column),
                "{wallet} {kind} {nonce}: {error:?}"
            );
        }
        // A malformed hash or fee of a row otherwise good.
        insert("0x1", "execute", "0x2")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("UPDATE transactions SET hash = '0xg', status = 'ACCEPTED'")
            .execute(&store.pool)
            .await
            .unwrap();
        let error = store
            .transaction(Felt::ONE, Some(Felt::TWO))
            .await
            .unwrap_err();
        assert!(is_decode_error(&error, "hash"), "{error:?}");
        sqlx::query("UPDATE transactions SET hash = '0x5', fee = '-1'")
            .execute(&store.pool)
            .await
            .unwrap();
        let error = store
            .transaction(Felt::ONE, Some(Felt::TWO))
            .await
            .unwrap_err();
        assert!(is_decode_error(&error, "fee"), "{error:?}");
        // Usage sums fees: a malformed one fails it rather than counting zero.
        let error = store.usage("app", None).await.unwrap_err();
        assert!(is_decode_error(&error, "1"), "{error:?}");
        // An issued nonce and a wallet likewise.
        sqlx::query(
            "INSERT INTO issued_nonces (wallet, nonce, app, user_id, calls_hash, execute_before, expires_at, created_at)
             VALUES ('0x1', '0x2', 'app', 'u', 'poseidon', 0, 0, 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let error = store.issued(Felt::ONE, Felt::TWO).await.unwrap_err();
        assert!(is_decode_error(&error, "calls_hash"), "{error:?}");
        sqlx::query(
            "INSERT INTO wallets (id, app, external_user_id, address, owner_public_key, class_hash,
                 encrypted_private_key, wallet_type, tx_hash, is_deployed, created_at, updated_at)
             VALUES ('w', 'app', 'u', '0x1', '0x2', '0x3', 'c', 'CHIPI', '', 0, '', '')",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let error = store.wallet_of_user("app", "u").await.unwrap_err();
        assert!(is_decode_error(&error, "tx_hash"), "{error:?}");
    }

    #[tokio::test]
    async fn a_landed_deployment_marks_its_wallet_deployed_in_the_same_commit() {
        let store = store().await;
        let wallet = Felt::from(0xa11e7u64);
        let row = WalletRow {
            id: "wal_1".into(),
            app: "app".into(),
            external_user_id: "u".into(),
            address: wallet,
            owner_public_key: Felt::TWO,
            class_hash: Felt::THREE,
            encrypted_private_key: "x".into(),
            wallet_type: "CHIPI".into(),
            tx_hash: None,
            is_deployed: false,
            created_at: iso_now(),
            updated_at: iso_now(),
        };
        assert!(store.insert_wallet(&row).await.unwrap());
        let Claim::Owned(id) = store.claim("app", "u", wallet, None).await.unwrap() else {
            panic!("a new deploy row is owned");
        };
        assert_eq!(
            submit(&store, id, Felt::from(9u8), Felt::ZERO, 10).await,
            Submitting::Recorded
        );
        assert!(store
            .finish(
                id,
                Felt::from(9u8),
                End {
                    status: TxStatus::Accepted,
                    fee: Some(5),
                    block_number: Some(1),
                    reason: None
                },
                &[]
            )
            .await
            .unwrap());
        // No later statement is needed: whoever reads the row final reads the wallet
        // deployed (a reader between two statements once saw a final deployment of a
        // wallet not yet deployed).
        let read = store.wallet_of_user("app", "u").await.unwrap().unwrap();
        assert!(read.is_deployed);
        // Its request, recording the hash it sent after the follower saw it land, leaves
        // it deployed (seen once in tests/wallets.rs on a loaded machine: a wallet read
        // undeployed after its deployment was final).
        store
            .wallet_deployed("wal_1", Some(Felt::from(9u8)), false, &iso_now())
            .await
            .unwrap();
        let read = store.wallet_of_user("app", "u").await.unwrap().unwrap();
        assert!(read.is_deployed);
        assert_eq!(read.tx_hash, Some(Felt::from(9u8)));
        // An execute row that lands ran in its wallet (a SNIP-29 deploy_and_invoke
        // deploys it in that row): a wallet record of that address is deployed too.
        let other = Felt::from(0xb0bu64);
        let record = WalletRow {
            id: "wal_2".into(),
            external_user_id: "v".into(),
            address: other,
            ..row.clone()
        };
        assert!(store.insert_wallet(&record).await.unwrap());
        let Claim::Owned(id) = store
            .claim("app", "v", other, Some(Felt::ONE))
            .await
            .unwrap()
        else {
            panic!("owned");
        };
        assert_eq!(
            submit(&store, id, Felt::from(10u8), Felt::ONE, 10).await,
            Submitting::Recorded
        );
        store
            .finish(
                id,
                Felt::from(10u8),
                End {
                    status: TxStatus::Accepted,
                    fee: Some(5),
                    block_number: Some(1),
                    reason: None,
                },
                &[],
            )
            .await
            .unwrap();
        let read = store.wallet_of_user("app", "v").await.unwrap().unwrap();
        assert!(read.is_deployed);
    }

    #[tokio::test]
    async fn an_issued_nonce_keeps_the_tip_its_build_quoted() {
        let store = store().await;
        let issued = |nonce: Felt| IssuedNonce {
            wallet: Felt::ONE,
            nonce,
            app: "app".into(),
            user_id: "u".into(),
            calls_hash: Felt::THREE,
            execute_before: 10,
            expires_at: 10,
            created_at: 0,
        };
        assert!(store
            .issue_tipped(&issued(Felt::ONE), 7_000_000, 10, 0)
            .await
            .unwrap());
        assert!(store.issue(&issued(Felt::TWO), 10, 0).await.unwrap());
        let (read, tip) = store
            .issued_tipped(Felt::ONE, Felt::ONE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((read, tip), (issued(Felt::ONE), 7_000_000));
        let (_, tip) = store
            .issued_tipped(Felt::ONE, Felt::TWO)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(tip, 0);
        assert_eq!(
            store.issued(Felt::ONE, Felt::ONE).await.unwrap(),
            Some(issued(Felt::ONE))
        );
    }

    #[tokio::test]
    async fn what_was_seen_of_a_refused_attempt_never_finishes_the_next_one() {
        // The follower looked at the row's first transaction (H1, refused by the node for
        // a stale nonce, so never landing) while the request sent a second (H2). Its
        // "dropped" verdict on H1 must not mark the row, which now carries H2, FAILED:
        // a retry would then send it again and pay twice.
        let store = store().await;
        let (h1, h2) = (Felt::from(0x41u8), Felt::from(0x42u8));
        let Claim::Owned(id) = store
            .claim("app", "u", Felt::ONE, Some(Felt::TWO))
            .await
            .unwrap()
        else {
            panic!("owned");
        };
        assert_eq!(
            submit(&store, id, h1, Felt::ONE, 10).await,
            Submitting::Recorded
        );
        store.unsubmit(id, "stale relayer nonce").await.unwrap();
        assert_eq!(
            submit(&store, id, h2, Felt::TWO, 10).await,
            Submitting::Recorded
        );
        let stale = store
            .finish(
                id,
                h1,
                End {
                    status: TxStatus::Failed,
                    fee: None,
                    block_number: None,
                    reason: Some("never reached the node"),
                },
                &[],
            )
            .await
            .unwrap();
        assert!(!stale);
        let row = store
            .transaction(Felt::ONE, Some(Felt::TWO))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.status, row.hash), (TxStatus::Submitting, Some(h2)));
        // What is seen of H2 finishes it.
        assert!(store
            .finish(
                id,
                h2,
                End {
                    status: TxStatus::Accepted,
                    fee: Some(3),
                    block_number: Some(7),
                    reason: None
                },
                &[]
            )
            .await
            .unwrap());
    }
}
