-- Sponsorship counters (API.md section 10): one row per (app, subject, knob, window).
-- subject: 'app', 'user:<id>' or 'wallet:<address>'; knob: transactions, fees (in units
-- of 10^9 fri), in_flight (window_start 0) or reverts. A request takes from every counter
-- it falls under in one statement each (`used + n <= cap`), in one database transaction.
CREATE TABLE sponsorship_counters (
    app          TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    knob         TEXT    NOT NULL,
    window_start BIGINT  NOT NULL,
    window_end   BIGINT  NOT NULL,
    used         BIGINT  NOT NULL,
    PRIMARY KEY (app, subject, knob, window_start)
);

-- What a transaction holds of a counter until it is final (fees, in_flight): shrunk to the
-- simulated bound, given back when nothing was sent, settled to the fee paid.
CREATE TABLE sponsorship_reservations (
    tx_id        BIGINT  NOT NULL REFERENCES transactions (id),
    app          TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    knob         TEXT    NOT NULL,
    window_start BIGINT  NOT NULL,
    amount       BIGINT  NOT NULL,
    PRIMARY KEY (tx_id, subject, knob, window_start)
);

-- Issued nonces are purged once expired, and counted per user and per wallet.
CREATE INDEX issued_nonces_by_expiry ON issued_nonces (expires_at);
CREATE INDEX issued_nonces_by_user ON issued_nonces (app, user_id, expires_at);
CREATE INDEX transactions_by_wallet_status ON transactions (wallet, status);
