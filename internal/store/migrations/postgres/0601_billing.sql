-- Stripe objects synced for finance. Money is integer minor units next to
-- its ISO currency (lower case, as Stripe writes it); times are Stripe's
-- Unix seconds. The portal stores no card data and no customer names or
-- emails: a customer is its id and its region metadata.

CREATE TABLE stripe_customers (
	id TEXT PRIMARY KEY,
	created BIGINT NOT NULL,
	region TEXT NOT NULL DEFAULT '',      -- metadata.region as written in Stripe
	deleted BIGINT NOT NULL DEFAULT 0,
	livemode BIGINT NOT NULL DEFAULT 0,
	synced_at TEXT NOT NULL
);

CREATE TABLE stripe_payment_intents (
	id TEXT PRIMARY KEY,
	created BIGINT NOT NULL,
	amount BIGINT NOT NULL,
	currency TEXT NOT NULL,
	status TEXT NOT NULL,
	customer_id TEXT NOT NULL DEFAULT '',
	region TEXT NOT NULL DEFAULT '',      -- metadata.region
	livemode BIGINT NOT NULL DEFAULT 0,
	synced_at TEXT NOT NULL
);

CREATE TABLE stripe_charges (
	id TEXT PRIMARY KEY,
	created BIGINT NOT NULL,
	amount BIGINT NOT NULL,
	amount_refunded BIGINT NOT NULL,
	currency TEXT NOT NULL,
	status TEXT NOT NULL,
	paid BIGINT NOT NULL,
	refunded BIGINT NOT NULL,
	disputed BIGINT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	customer_id TEXT NOT NULL DEFAULT '',
	payment_intent_id TEXT NOT NULL DEFAULT '',
	balance_transaction_id TEXT NOT NULL DEFAULT '',
	meta_region TEXT NOT NULL DEFAULT '', -- the charge's own metadata.region
	-- The jurisdiction the charge is attributed to (us, eu, apac,
	-- unattributed), or '' until attribution has run.
	jurisdiction TEXT NOT NULL DEFAULT '',
	region_source TEXT NOT NULL DEFAULT '', -- charge, payment_intent, customer or ''
	livemode BIGINT NOT NULL DEFAULT 0,
	synced_at TEXT NOT NULL
);
CREATE INDEX stripe_charges_customer ON stripe_charges (customer_id, created);
CREATE INDEX stripe_charges_pi ON stripe_charges (payment_intent_id);
CREATE INDEX stripe_charges_unattributed ON stripe_charges (jurisdiction) WHERE jurisdiction = '';

CREATE TABLE stripe_refunds (
	id TEXT PRIMARY KEY,
	created BIGINT NOT NULL,
	amount BIGINT NOT NULL,
	currency TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	charge_id TEXT NOT NULL DEFAULT '',
	balance_transaction_id TEXT NOT NULL DEFAULT '',
	synced_at TEXT NOT NULL
);
CREATE INDEX stripe_refunds_charge ON stripe_refunds (charge_id);

CREATE TABLE stripe_disputes (
	id TEXT PRIMARY KEY,
	created BIGINT NOT NULL,
	amount BIGINT NOT NULL,
	currency TEXT NOT NULL,
	status TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	charge_id TEXT NOT NULL DEFAULT '',
	balance_transaction_ids TEXT NOT NULL DEFAULT '', -- space-separated
	livemode BIGINT NOT NULL DEFAULT 0,
	synced_at TEXT NOT NULL
);
CREATE INDEX stripe_disputes_charge ON stripe_disputes (charge_id);

CREATE TABLE stripe_payouts (
	id TEXT PRIMARY KEY,
	created BIGINT NOT NULL,
	arrival_date BIGINT NOT NULL,
	amount BIGINT NOT NULL,
	currency TEXT NOT NULL,
	status TEXT NOT NULL,
	automatic BIGINT NOT NULL,
	method TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	balance_transaction_id TEXT NOT NULL DEFAULT '',
	-- When the payout's balance transactions were last listed from Stripe
	-- ('' = never); reset when the payout changes.
	transactions_synced_at TEXT NOT NULL DEFAULT '',
	livemode BIGINT NOT NULL DEFAULT 0,
	synced_at TEXT NOT NULL
);
CREATE INDEX stripe_payouts_arrival ON stripe_payouts (arrival_date);

CREATE TABLE stripe_balance_transactions (
	id TEXT PRIMARY KEY,
	created BIGINT NOT NULL,
	day BIGINT NOT NULL,                 -- created / 86400: the UTC day
	available_on BIGINT NOT NULL,
	type TEXT NOT NULL,
	reporting_category TEXT NOT NULL DEFAULT '',
	-- What the revenue pages count it as: charge, refund, dispute, fee,
	-- payout or other.
	category TEXT NOT NULL,
	status TEXT NOT NULL,
	amount BIGINT NOT NULL,
	fee BIGINT NOT NULL,
	net BIGINT NOT NULL,
	currency TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	source_id TEXT NOT NULL DEFAULT '',
	source_type TEXT NOT NULL DEFAULT '',
	charge_id TEXT NOT NULL DEFAULT '',   -- the charge behind a charge, refund or dispute
	jurisdiction TEXT NOT NULL DEFAULT '',-- as the charge's, or unattributed; '' until attributed
	payout_id TEXT NOT NULL DEFAULT '',   -- the payout that paid it out, when known
	synced_at TEXT NOT NULL
);
-- Covers the revenue aggregation: one index range scan per currency.
CREATE INDEX stripe_bt_revenue ON stripe_balance_transactions (currency, day, jurisdiction, category, amount, fee, net);
CREATE INDEX stripe_bt_created ON stripe_balance_transactions (created, id);
CREATE INDEX stripe_bt_payout ON stripe_balance_transactions (payout_id) WHERE payout_id != '';
CREATE INDEX stripe_bt_charge ON stripe_balance_transactions (charge_id) WHERE charge_id != '';
CREATE INDEX stripe_bt_source ON stripe_balance_transactions (source_id);
CREATE INDEX stripe_bt_unattributed ON stripe_balance_transactions (jurisdiction) WHERE jurisdiction = '';

-- Incremental sync: per object kind, everything created up to cursor is
-- stored. A window (cursor .. window_until) in progress resumes after
-- window_after, the last id committed, so a crash repeats at most one page.
CREATE TABLE stripe_sync_cursors (
	object TEXT PRIMARY KEY,
	cursor BIGINT NOT NULL DEFAULT 0,
	window_until BIGINT NOT NULL DEFAULT 0,
	window_after TEXT NOT NULL DEFAULT '',
	updated_at TEXT NOT NULL
);

-- One row per sync, with its progress while it runs.
CREATE TABLE stripe_sync_runs (
	id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	started_at TEXT NOT NULL,
	finished_at TEXT NOT NULL DEFAULT '',
	trigger TEXT NOT NULL,                -- schedule or demand
	status TEXT NOT NULL,                 -- running, ok or failed
	phase TEXT NOT NULL DEFAULT '',
	objects BIGINT NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX stripe_sync_runs_status ON stripe_sync_runs (status, id);

-- Webhook events, de-duplicated on Stripe's event id. Only what is needed
-- to re-fetch the object is kept, never the payload.
CREATE TABLE stripe_events (
	id TEXT PRIMARY KEY,
	type TEXT NOT NULL,
	object_type TEXT NOT NULL DEFAULT '',
	object_id TEXT NOT NULL DEFAULT '',
	created BIGINT NOT NULL,
	livemode BIGINT NOT NULL DEFAULT 0,
	received_at TEXT NOT NULL,
	status TEXT NOT NULL,                 -- pending, done, ignored or failed
	attempts BIGINT NOT NULL DEFAULT 0,
	next_attempt_at TEXT NOT NULL DEFAULT '',
	last_error TEXT NOT NULL DEFAULT '',
	processed_at TEXT NOT NULL DEFAULT '',
	deliveries BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX stripe_events_due ON stripe_events (status, next_attempt_at) WHERE status = 'pending';
