-- SNIP-29 tips: the tip (fri per L2 gas unit) a build quoted; its execute sends with it.
-- Nonces issued before this migration, and every Chipi one, carry no tip.
ALTER TABLE issued_nonces ADD COLUMN tip BIGINT NOT NULL DEFAULT 0;
-- A transaction that landed marks the wallet at its address deployed (a SNIP-29
-- deploy_and_invoke deploys in an outside execution's row): looked up by address alone.
CREATE INDEX wallets_by_address_alone ON wallets (address);
