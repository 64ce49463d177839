-- The dirty-day triggers of 0603 relied on INSERT OR IGNORE. SQLite lets
-- the statement that fires a trigger override the trigger's conflict
-- policy, and an upsert's DO UPDATE fires its UPDATE triggers under ABORT:
-- a balance transaction re-synced with a new day or amount, on a day
-- already marked, failed the sync with "UNIQUE constraint failed:
-- stripe_bt_dirty". The triggers now skip a marked day by a WHERE NOT
-- EXISTS, which no outer policy changes.
DROP TRIGGER stripe_bt_dirty_insert;
DROP TRIGGER stripe_bt_dirty_update;
DROP TRIGGER stripe_bt_dirty_delete;

CREATE TRIGGER stripe_bt_dirty_insert AFTER INSERT ON stripe_balance_transactions BEGIN
	INSERT INTO stripe_bt_dirty (currency, day) SELECT NEW.currency, NEW.day
	WHERE NOT EXISTS (SELECT 1 FROM stripe_bt_dirty WHERE currency = NEW.currency AND day = NEW.day);
END;

CREATE TRIGGER stripe_bt_dirty_update AFTER UPDATE ON stripe_balance_transactions
WHEN OLD.currency IS NOT NEW.currency OR OLD.day IS NOT NEW.day OR OLD.jurisdiction IS NOT NEW.jurisdiction
	OR OLD.category IS NOT NEW.category OR OLD.amount IS NOT NEW.amount OR OLD.fee IS NOT NEW.fee OR OLD.net IS NOT NEW.net
BEGIN
	INSERT INTO stripe_bt_dirty (currency, day) SELECT OLD.currency, OLD.day
	WHERE NOT EXISTS (SELECT 1 FROM stripe_bt_dirty WHERE currency = OLD.currency AND day = OLD.day);
	INSERT INTO stripe_bt_dirty (currency, day) SELECT NEW.currency, NEW.day
	WHERE NOT EXISTS (SELECT 1 FROM stripe_bt_dirty WHERE currency = NEW.currency AND day = NEW.day);
END;

CREATE TRIGGER stripe_bt_dirty_delete AFTER DELETE ON stripe_balance_transactions BEGIN
	INSERT INTO stripe_bt_dirty (currency, day) SELECT OLD.currency, OLD.day
	WHERE NOT EXISTS (SELECT 1 FROM stripe_bt_dirty WHERE currency = OLD.currency AND day = OLD.day);
END;
