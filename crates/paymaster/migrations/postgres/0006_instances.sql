-- Paymaster instances sharing this database (API.md section 11). Each writes `seen_at`
-- while it runs; one unseen for `relaying.instance_ttl_seconds` is dead, and the rows it
-- claimed but never sent are given up by any other (a claim is never sent by anyone else:
-- a row is sent only by the request that claimed it, and only while still claimed).
CREATE TABLE instances (
    id         TEXT    PRIMARY KEY,
    started_at BIGINT  NOT NULL,
    seen_at    BIGINT  NOT NULL
);
-- The instance whose request claimed the row; NULL for rows claimed before this migration.
ALTER TABLE transactions ADD COLUMN claimed_by TEXT;
