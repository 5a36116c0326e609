-- Every transaction a row was about to send, sent, or had refused: the row keeps the
-- latest hash; these keep them all (relayer, nonce, bound) with what became of each.
-- SUBMITTING: recorded before it left; SENT: the node took it; REFUSED: the node refused
-- it (a stale nonce, the relayer's own fault), so it can never land.
CREATE TABLE attempts (
    id            BIGSERIAL PRIMARY KEY,
    tx_id         BIGINT  NOT NULL REFERENCES transactions (id),
    hash          TEXT    NOT NULL,
    relayer       TEXT    NOT NULL,
    relayer_nonce TEXT    NOT NULL,
    max_fee       TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    reason        TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX attempts_by_tx ON attempts (tx_id);
