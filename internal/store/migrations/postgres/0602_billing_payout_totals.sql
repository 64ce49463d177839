-- A payout's balance transactions as its own listing names them, summed
-- when listed, so reconciliation never re-reads every transaction: the
-- count and net of those that are not the payout itself.
ALTER TABLE stripe_payouts ADD COLUMN tx_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE stripe_payouts ADD COLUMN tx_net BIGINT NOT NULL DEFAULT 0;
