-- SNIP-29 tracking ids (paymaster_trackingIdToLatestHash): Poseidon(wallet, nonce), the
-- nonce being the short string 'deploy' for a deployment. Set when a row is claimed; rows
-- claimed before this migration have none (no tracking id was handed out for them).
ALTER TABLE transactions ADD COLUMN tracking_id TEXT;
CREATE UNIQUE INDEX transactions_by_tracking_id ON transactions (tracking_id);
