-- Relayer leases (API.md section 11): an instance sends with a relayer only while it holds
-- the relayer's lease. `token` grows with every lease, and recording a transaction checks
-- it in the same statement (a holder whose lease expired and was taken cannot record, so
-- cannot send). `nonce` is the next nonce as the last holder released it; a lease taken
-- over from an expired holder forgets it (read from the node then). A relayer that kept
-- failing rests until `parked_until_ms` (unix milliseconds) for every instance.
CREATE TABLE relayer_leases (
    relayer         TEXT    PRIMARY KEY,
    holder          TEXT,
    token           BIGINT  NOT NULL DEFAULT 0,
    expires_at_ms   BIGINT  NOT NULL DEFAULT 0,
    nonce           TEXT,
    parked_until_ms BIGINT  NOT NULL DEFAULT 0,
    updated_at      BIGINT  NOT NULL DEFAULT 0
);
-- When this instance's oldest request waiting for a relayer arrived (unix milliseconds),
-- NULL when none waits: an instance yields its relayers to an older waiter elsewhere.
ALTER TABLE instances ADD COLUMN waiting_since_ms BIGINT;
-- The follower's work, claimed per row: the instance following the row and until when
-- (unix milliseconds). Two instances never follow one row at once; a dead instance's
-- rows are taken over once its claim expires.
ALTER TABLE transactions ADD COLUMN followed_by TEXT;
ALTER TABLE transactions ADD COLUMN follow_until_ms BIGINT;
-- The signed transaction of an attempt, as broadcast (JSON): the follower sends it again,
-- byte for byte (same hash), when the node does not know it and its relayer nonce is
-- still unused (its send failed or timed out, or the node forgot it).
ALTER TABLE attempts ADD COLUMN request TEXT;
