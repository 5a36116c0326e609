//! Persistence through `sqlx`: SQLite by default (WAL, migrations embedded). Issued
//! nonces, transactions and wallets; `(wallet, nonce)` is unique, which is what makes a
//! duplicate execute find the first one's transaction instead of paying again.

use std::str::FromStr;
use std::time::Duration;

use chipi_core::Felt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

/// Unix seconds of this service's clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The canonical text of a felt in the database: lower-case `0x` hex.
pub fn felt_text(felt: Felt) -> String {
    format!("{felt:#x}")
}

/// A transaction's state (the `status` column).
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

    /// Nothing was sent: the same (wallet, nonce) may be tried again.
    pub const fn retryable(self) -> bool {
        matches!(self, Self::Refused | Self::Failed)
    }
}

/// A nonce handed out.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct IssuedNonce {
    /// The wallet.
    pub wallet: String,
    /// The OutsideExecution nonce.
    pub nonce: String,
    /// The app it was issued to.
    pub app: String,
    /// The user it was issued to.
    pub user_id: String,
    /// Poseidon of the encoded calls.
    pub calls_hash: String,
    /// The window's end handed out (chain time).
    pub execute_before: i64,
    /// When this service stops honouring it (its own clock).
    pub expires_at: i64,
    /// When it was issued.
    pub created_at: i64,
}

/// A transaction record.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct TxRecord {
    /// Row id.
    pub id: i64,
    /// `execute` or `deploy`.
    pub kind: String,
    /// The app.
    pub app: String,
    /// The user.
    pub user_id: String,
    /// The wallet.
    pub wallet: String,
    /// The OutsideExecution nonce, or `deploy`.
    pub nonce: String,
    /// A [`TxStatus`] text.
    pub status: String,
    /// The relayer's transaction hash, once known.
    pub hash: Option<String>,
    /// The relayer that sent it.
    pub relayer: Option<String>,
    /// The relayer's nonce it used.
    pub relayer_nonce: Option<String>,
    /// The fee bound (fri).
    pub max_fee: Option<String>,
    /// The fee paid (fri), once final.
    pub fee: Option<String>,
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
}

impl TxRecord {
    /// The parsed status.
    pub fn status(&self) -> TxStatus {
        TxStatus::parse(&self.status).unwrap_or(TxStatus::Failed)
    }
}

/// A stored wallet.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct WalletRow {
    /// Record id.
    pub id: String,
    /// The app.
    pub app: String,
    /// The app's user.
    pub external_user_id: String,
    /// The address.
    pub address: String,
    /// The owner's public key.
    pub owner_public_key: String,
    /// The class deployed.
    pub class_hash: String,
    /// The owner key, encrypted by the client (stored, never read).
    pub encrypted_private_key: String,
    /// `CHIPI`.
    pub wallet_type: String,
    /// The deployment transaction.
    pub tx_hash: Option<String>,
    /// Whether the deployment is on chain.
    pub is_deployed: bool,
    /// ISO 8601.
    pub created_at: String,
    /// ISO 8601.
    pub updated_at: String,
}

/// What [`Store::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the (wallet, nonce): row id.
    Owned(i64),
    /// Another request got there first.
    Taken(Box<TxRecord>),
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating it when missing) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // An in-memory database exists per connection: keep exactly one.
        let connections = if url.contains(":memory:") { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .min_connections(1)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Closes the pool (after in-flight statements finish).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Records an issued nonce.
    pub async fn issue(&self, issued: &IssuedNonce) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO issued_nonces (wallet, nonce, app, user_id, calls_hash, execute_before, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&issued.wallet)
        .bind(&issued.nonce)
        .bind(&issued.app)
        .bind(&issued.user_id)
        .bind(&issued.calls_hash)
        .bind(issued.execute_before)
        .bind(issued.expires_at)
        .bind(issued.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
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
        wallet: &str,
        nonce: &str,
    ) -> Result<Option<IssuedNonce>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM issued_nonces WHERE wallet = ? AND nonce = ?")
            .bind(wallet)
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await
    }

    /// The transaction of (wallet, nonce), if any.
    pub async fn transaction(
        &self,
        wallet: &str,
        nonce: &str,
    ) -> Result<Option<TxRecord>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM transactions WHERE wallet = ? AND nonce = ?")
            .bind(wallet)
            .bind(nonce)
            .fetch_optional(&self.pool)
            .await
    }

    /// The transaction with `hash` sent for `app`.
    pub async fn by_hash(&self, app: &str, hash: &str) -> Result<Option<TxRecord>, sqlx::Error> {
        sqlx::query_as("SELECT * FROM transactions WHERE hash = ? AND app = ?")
            .bind(hash)
            .bind(app)
            .fetch_optional(&self.pool)
            .await
    }

    /// Takes (wallet, nonce) for one request: a new row, or a row whose earlier attempt
    /// sent nothing; otherwise the row of the request that has it.
    pub async fn claim(
        &self,
        kind: &str,
        app: &str,
        user: &str,
        wallet: &str,
        nonce: &str,
    ) -> Result<Claim, sqlx::Error> {
        let now = now();
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO transactions (kind, app, user_id, wallet, nonce, status, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, 'CLAIMED', ?, ?)
             ON CONFLICT (wallet, nonce) DO NOTHING RETURNING id",
        )
        .bind(kind)
        .bind(app)
        .bind(user)
        .bind(wallet)
        .bind(nonce)
        .bind(now)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(id) = inserted {
            return Ok(Claim::Owned(id));
        }
        // Retry an attempt that sent nothing; exactly one concurrent retry wins.
        let retaken = sqlx::query_scalar::<_, i64>(
            "UPDATE transactions SET status = 'CLAIMED', hash = NULL, relayer = NULL,
                 relayer_nonce = NULL, max_fee = NULL, code = NULL, reason = NULL, updated_at = ?
             WHERE wallet = ? AND nonce = ? AND status IN ('REFUSED', 'FAILED')
             RETURNING id",
        )
        .bind(now)
        .bind(wallet)
        .bind(nonce)
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

    /// The hash is known and the transaction is about to be sent.
    pub async fn submitting(
        &self,
        id: i64,
        hash: Felt,
        relayer: Felt,
        relayer_nonce: Felt,
        max_fee: u128,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE transactions SET status = 'SUBMITTING', hash = ?, relayer = ?, relayer_nonce = ?,
                 max_fee = ?, updated_at = ? WHERE id = ?",
        )
        .bind(felt_text(hash))
        .bind(felt_text(relayer))
        .bind(felt_text(relayer_nonce))
        .bind(max_fee.to_string())
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The node refused the submission for a reason that means it was not taken (a stale
    /// relayer nonce): back to claimed, without the hash.
    pub async fn unsubmit(&self, id: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE transactions SET status = 'CLAIMED', hash = NULL, relayer = NULL,
                 relayer_nonce = NULL, max_fee = NULL, updated_at = ? WHERE id = ?",
        )
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves row `id` to `status` with an optional code and reason.
    pub async fn set_status(
        &self,
        id: i64,
        status: TxStatus,
        code: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE transactions SET status = ?, code = COALESCE(?, code),
                 reason = COALESCE(?, reason), updated_at = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(code)
        .bind(reason)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A followed transaction reached its end: status, fee paid, block.
    pub async fn finish(
        &self,
        id: i64,
        status: TxStatus,
        fee: Option<u128>,
        block_number: Option<u64>,
        reason: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE transactions SET status = ?, fee = ?, block_number = ?, reason = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(fee.map(|f| f.to_string()))
        .bind(block_number.map(|b| b as i64))
        .bind(reason)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
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
        sqlx::query_as("SELECT * FROM wallets WHERE app = ? AND external_user_id = ?")
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (app, external_user_id) DO NOTHING",
        )
        .bind(&wallet.id)
        .bind(&wallet.app)
        .bind(&wallet.external_user_id)
        .bind(&wallet.address)
        .bind(&wallet.owner_public_key)
        .bind(&wallet.class_hash)
        .bind(&wallet.encrypted_private_key)
        .bind(&wallet.wallet_type)
        .bind(&wallet.tx_hash)
        .bind(wallet.is_deployed)
        .bind(&wallet.created_at)
        .bind(&wallet.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records a wallet's deployment transaction and whether it is on chain.
    pub async fn wallet_deployed(
        &self,
        id: &str,
        tx_hash: Option<&str>,
        deployed: bool,
        updated_at: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE wallets SET tx_hash = COALESCE(?, tx_hash), is_deployed = ?, updated_at = ? WHERE id = ?",
        )
        .bind(tx_hash)
        .bind(deployed)
        .bind(updated_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Marks every wallet at `address` deployed (the follower saw its deployment accepted).
    pub async fn wallet_address_deployed(
        &self,
        address: &str,
        updated_at: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE wallets SET is_deployed = 1, updated_at = ? WHERE address = ?")
            .bind(updated_at)
            .bind(address)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
