-- Notes on a payout's reconciliation: what finance found out about a
-- payout that does not reconcile (a transfer Stripe made by hand, a
-- transaction booked elsewhere), kept with who wrote them and when.
CREATE TABLE billing_payout_notes (
	id INTEGER PRIMARY KEY,
	payout_id TEXT NOT NULL,
	note TEXT NOT NULL,
	author_id INTEGER NOT NULL,
	author TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE INDEX billing_payout_notes_payout_idx ON billing_payout_notes(payout_id, id);
