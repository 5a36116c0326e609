-- PostgreSQL: the SQLite migration of the same name, with 64-bit integers (BIGINT) and
-- BIGSERIAL ids; the queries are the same for both backends.
-- Nonces handed out by prepare-typed-data (and prepare-creation): one per (wallet, nonce).
CREATE TABLE issued_nonces (
    wallet         TEXT    NOT NULL,
    nonce          TEXT    NOT NULL,
    app            TEXT    NOT NULL,
    user_id        TEXT    NOT NULL,
    calls_hash     TEXT    NOT NULL,
    execute_before BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL, -- this service's clock, unix seconds
    created_at     BIGINT  NOT NULL,
    PRIMARY KEY (wallet, nonce)
);

-- Every sponsored transaction. (wallet, nonce) is unique: a duplicate execute finds the
-- first one's row and never pays twice. `nonce` is 'deploy' for a wallet's deployment.
-- status: CLAIMED (being simulated, nothing sent), SUBMITTING (hash known, being sent),
-- PENDING (the node took it), ACCEPTED, REVERTED, REFUSED (simulation reverted, nothing
-- sent), FAILED (nothing sent, or dropped by the node).
CREATE TABLE transactions (
    id            BIGSERIAL PRIMARY KEY,
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
    block_number  BIGINT,
    code          TEXT,
    reason        TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
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
    is_deployed           BIGINT  NOT NULL,
    created_at            TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL,
    UNIQUE (app, external_user_id)
);
CREATE INDEX wallets_by_address ON wallets (app, address);
