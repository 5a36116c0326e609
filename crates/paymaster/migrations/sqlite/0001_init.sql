-- Nonces handed out by prepare-typed-data (and prepare-creation): one per (wallet, nonce).
CREATE TABLE issued_nonces (
    wallet         TEXT    NOT NULL,
    nonce          TEXT    NOT NULL,
    app            TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    calls_hash     TEXT    NOT NULL,
    execute_before INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL, -- this service's clock, unix seconds
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (wallet, nonce)
);

-- Every sponsored transaction. (wallet, nonce) is unique: a duplicate execute finds the
-- first one's row and never pays twice. `nonce` is 'deploy' for a wallet's deployment.
-- status: CLAIMED (being simulated, nothing sent), SUBMITTING (hash known, being sent),
-- PENDING (the node took it), ACCEPTED, REVERTED, REFUSED (simulation reverted, nothing
-- sent), FAILED (nothing sent, or dropped by the node).
CREATE TABLE transactions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    app           TEXT    NOT NULL,
    user_id       TEXT    NOT NULL,
    wallet        TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    hash          TEXT,
    relayer       TEXT,
    relayer_nonce TEXT,
    max_fee       TEXT,
    fee           TEXT,
    block_number  INTEGER,
    code          TEXT,
    reason        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (wallet, nonce)
);
CREATE INDEX transactions_by_hash ON transactions (hash);
CREATE INDEX transactions_open ON transactions (status);

-- Wallets deployed for apps' users: one per (app, external user).
CREATE TABLE wallets (
    id                    TEXT    PRIMARY KEY,
    app                   TEXT    NOT NULL,
    external_user_id      TEXT    NOT NULL,
    address               TEXT    NOT NULL,
    owner_public_key      TEXT    NOT NULL,
    class_hash            TEXT    NOT NULL,
    encrypted_private_key TEXT    NOT NULL,
    wallet_type           TEXT    NOT NULL,
    tx_hash               TEXT,
    is_deployed           INTEGER NOT NULL,
    created_at            TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL,
    UNIQUE (app, external_user_id)
);
CREATE INDEX wallets_by_address ON wallets (app, address);
