-- Revenue per UTC day, currency, jurisdiction and category: the revenue
-- pages read this (thousands of rows) instead of every balance
-- transaction (millions). Triggers mark the (currency, day) pairs whose
-- transactions changed; the billing service recomputes those days from
-- the transactions themselves, in the transaction that attributes them,
-- so the rollup never drifts from the rows it sums.
CREATE TABLE stripe_bt_daily (
	currency TEXT NOT NULL,
	day BIGINT NOT NULL,
	jurisdiction TEXT NOT NULL,
	category TEXT NOT NULL,
	amount BIGINT NOT NULL,
	fee BIGINT NOT NULL,
	net BIGINT NOT NULL,
	n BIGINT NOT NULL,
	PRIMARY KEY (currency, day, jurisdiction, category)
);

CREATE TABLE stripe_bt_dirty (
	currency TEXT NOT NULL,
	day BIGINT NOT NULL,
	PRIMARY KEY (currency, day)
);

CREATE FUNCTION stripe_bt_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		INSERT INTO stripe_bt_dirty (currency, day) VALUES (OLD.currency, OLD.day) ON CONFLICT DO NOTHING;
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		INSERT INTO stripe_bt_dirty (currency, day) VALUES (NEW.currency, NEW.day) ON CONFLICT DO NOTHING;
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER stripe_bt_dirty_insert AFTER INSERT ON stripe_balance_transactions
	FOR EACH ROW EXECUTE FUNCTION stripe_bt_mark_dirty();

CREATE TRIGGER stripe_bt_dirty_update AFTER UPDATE ON stripe_balance_transactions
	FOR EACH ROW WHEN (OLD.currency IS DISTINCT FROM NEW.currency OR OLD.day IS DISTINCT FROM NEW.day
		OR OLD.jurisdiction IS DISTINCT FROM NEW.jurisdiction OR OLD.category IS DISTINCT FROM NEW.category
		OR OLD.amount IS DISTINCT FROM NEW.amount OR OLD.fee IS DISTINCT FROM NEW.fee OR OLD.net IS DISTINCT FROM NEW.net)
	EXECUTE FUNCTION stripe_bt_mark_dirty();

CREATE TRIGGER stripe_bt_dirty_delete AFTER DELETE ON stripe_balance_transactions
	FOR EACH ROW EXECUTE FUNCTION stripe_bt_mark_dirty();

INSERT INTO stripe_bt_dirty (currency, day) SELECT DISTINCT currency, day FROM stripe_balance_transactions ON CONFLICT DO NOTHING;
