-- Revenue per UTC day, currency, jurisdiction and category: the revenue
-- pages read this (thousands of rows) instead of every balance
-- transaction (millions). Triggers mark the (currency, day) pairs whose
-- transactions changed; the billing service recomputes those days from
-- the transactions themselves, in the transaction that attributes them,
-- so the rollup never drifts from the rows it sums.
CREATE TABLE stripe_bt_daily (
	currency TEXT NOT NULL,
	day INTEGER NOT NULL,
	jurisdiction TEXT NOT NULL,
	category TEXT NOT NULL,
	amount INTEGER NOT NULL,
	fee INTEGER NOT NULL,
	net INTEGER NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (currency, day, jurisdiction, category)
) WITHOUT ROWID;

CREATE TABLE stripe_bt_dirty (
	currency TEXT NOT NULL,
	day INTEGER NOT NULL,
	PRIMARY KEY (currency, day)
) WITHOUT ROWID;

CREATE TRIGGER stripe_bt_dirty_insert AFTER INSERT ON stripe_balance_transactions BEGIN
	INSERT OR IGNORE INTO stripe_bt_dirty (currency, day) VALUES (NEW.currency, NEW.day);
END;

CREATE TRIGGER stripe_bt_dirty_update AFTER UPDATE ON stripe_balance_transactions
WHEN OLD.currency IS NOT NEW.currency OR OLD.day IS NOT NEW.day OR OLD.jurisdiction IS NOT NEW.jurisdiction
	OR OLD.category IS NOT NEW.category OR OLD.amount IS NOT NEW.amount OR OLD.fee IS NOT NEW.fee OR OLD.net IS NOT NEW.net
BEGIN
	INSERT OR IGNORE INTO stripe_bt_dirty (currency, day) VALUES (OLD.currency, OLD.day);
	INSERT OR IGNORE INTO stripe_bt_dirty (currency, day) VALUES (NEW.currency, NEW.day);
END;

CREATE TRIGGER stripe_bt_dirty_delete AFTER DELETE ON stripe_balance_transactions BEGIN
	INSERT OR IGNORE INTO stripe_bt_dirty (currency, day) VALUES (OLD.currency, OLD.day);
END;

INSERT OR IGNORE INTO stripe_bt_dirty (currency, day) SELECT DISTINCT currency, day FROM stripe_balance_transactions;
