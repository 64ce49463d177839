package billing

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"portal/internal/store"
)

// The upserts below write the latest state Stripe reported. They are
// idempotent: writing the same object twice leaves the same row. Derived
// columns (attribution, payout link) are kept, or reset so attribution
// runs again when their inputs may have changed.

// txn is a transaction that prepares each statement once, so a batch of
// upserts parses its SQL once rather than per row.
type txn struct {
	*sql.Tx
	ctx   context.Context
	stmts map[string]*sql.Stmt
}

func newTxn(ctx context.Context, tx *sql.Tx) *txn {
	return &txn{Tx: tx, ctx: ctx, stmts: map[string]*sql.Stmt{}}
}

func (t *txn) exec(q string, args ...any) (sql.Result, error) {
	st, ok := t.stmts[q]
	if !ok {
		var err error
		if st, err = t.PrepareContext(t.ctx, q); err != nil {
			return nil, err
		}
		t.stmts[q] = st
	}
	return st.ExecContext(t.ctx, args...)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func idOf[T interface {
	*stripe.Customer | *stripe.PaymentIntent | *stripe.Charge | *stripe.BalanceTransaction
}](v T) string {
	if v == nil {
		return ""
	}
	switch x := any(v).(type) {
	case *stripe.Customer:
		return x.ID
	case *stripe.PaymentIntent:
		return x.ID
	case *stripe.Charge:
		return x.ID
	case *stripe.BalanceTransaction:
		return x.ID
	}
	return ""
}

func (s *Service) upsertCustomer(t *txn, c *stripe.Customer) error {
	_, err := t.exec(`INSERT INTO stripe_customers (id, created, region, deleted, livemode, synced_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET region = CASE WHEN excluded.deleted = 1 THEN stripe_customers.region ELSE excluded.region END,
			created = CASE WHEN excluded.created = 0 THEN stripe_customers.created ELSE excluded.created END,
			deleted = excluded.deleted, livemode = excluded.livemode, synced_at = excluded.synced_at`,
		c.ID, c.Created, Jurisdiction(c.Metadata["region"]), b2i(c.Deleted), b2i(c.Livemode), store.Time(s.now()))
	if err != nil {
		return fmt.Errorf("billing: store customer %s: %w", c.ID, err)
	}
	// The customer's region may have changed: attribute its charges again.
	if _, err := t.exec(`UPDATE stripe_charges SET jurisdiction = '' WHERE customer_id = ? AND jurisdiction != ''`, c.ID); err != nil {
		return fmt.Errorf("billing: store customer %s: %w", c.ID, err)
	}
	return nil
}

func (s *Service) upsertPaymentIntent(t *txn, p *stripe.PaymentIntent) error {
	_, err := t.exec(`INSERT INTO stripe_payment_intents (id, created, amount, currency, status, customer_id, region, livemode, synced_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, amount = excluded.amount, currency = excluded.currency,
			status = excluded.status, customer_id = excluded.customer_id, region = excluded.region,
			livemode = excluded.livemode, synced_at = excluded.synced_at`,
		p.ID, p.Created, p.Amount, string(p.Currency), string(p.Status), idOf(p.Customer), Jurisdiction(p.Metadata["region"]), b2i(p.Livemode), store.Time(s.now()))
	if err != nil {
		return fmt.Errorf("billing: store payment intent %s: %w", p.ID, err)
	}
	if _, err := t.exec(`UPDATE stripe_charges SET jurisdiction = '' WHERE payment_intent_id = ? AND jurisdiction != ''`, p.ID); err != nil {
		return fmt.Errorf("billing: store payment intent %s: %w", p.ID, err)
	}
	return nil
}

func (s *Service) upsertCharge(t *txn, c *stripe.Charge) error {
	_, err := t.exec(`INSERT INTO stripe_charges (id, created, amount, amount_refunded, currency, status, paid, refunded, disputed,
			description, customer_id, payment_intent_id, balance_transaction_id, meta_region, jurisdiction, livemode, synced_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, amount = excluded.amount, amount_refunded = excluded.amount_refunded,
			currency = excluded.currency, status = excluded.status, paid = excluded.paid, refunded = excluded.refunded,
			disputed = excluded.disputed, description = excluded.description, customer_id = excluded.customer_id,
			payment_intent_id = excluded.payment_intent_id, balance_transaction_id = excluded.balance_transaction_id,
			meta_region = excluded.meta_region, jurisdiction = '', livemode = excluded.livemode, synced_at = excluded.synced_at`,
		c.ID, c.Created, c.Amount, c.AmountRefunded, string(c.Currency), string(c.Status), b2i(c.Paid), b2i(c.Refunded), b2i(c.Disputed),
		c.Description, idOf(c.Customer), idOf(c.PaymentIntent), idOf(c.BalanceTransaction), Jurisdiction(c.Metadata["region"]),
		b2i(c.Livemode), store.Time(s.now()))
	if err != nil {
		return fmt.Errorf("billing: store charge %s: %w", c.ID, err)
	}
	return nil
}

func (s *Service) upsertRefund(t *txn, r *stripe.Refund) error {
	_, err := t.exec(`INSERT INTO stripe_refunds (id, created, amount, currency, status, reason, charge_id, balance_transaction_id, synced_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, amount = excluded.amount, currency = excluded.currency,
			status = excluded.status, reason = excluded.reason, charge_id = excluded.charge_id,
			balance_transaction_id = excluded.balance_transaction_id, synced_at = excluded.synced_at`,
		r.ID, r.Created, r.Amount, string(r.Currency), string(r.Status), string(r.Reason), idOf(r.Charge), idOf(r.BalanceTransaction), store.Time(s.now()))
	if err != nil {
		return fmt.Errorf("billing: store refund %s: %w", r.ID, err)
	}
	return nil
}

func (s *Service) upsertDispute(t *txn, d *stripe.Dispute) error {
	var bts []string
	for _, bt := range d.BalanceTransactions {
		if bt != nil {
			bts = append(bts, bt.ID)
		}
	}
	_, err := t.exec(`INSERT INTO stripe_disputes (id, created, amount, currency, status, reason, charge_id, balance_transaction_ids, livemode, synced_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, amount = excluded.amount, currency = excluded.currency,
			status = excluded.status, reason = excluded.reason, charge_id = excluded.charge_id,
			balance_transaction_ids = excluded.balance_transaction_ids, livemode = excluded.livemode, synced_at = excluded.synced_at`,
		d.ID, d.Created, d.Amount, string(d.Currency), string(d.Status), string(d.Reason), idOf(d.Charge), strings.Join(bts, " "), b2i(d.Livemode), store.Time(s.now()))
	if err != nil {
		return fmt.Errorf("billing: store dispute %s: %w", d.ID, err)
	}
	return nil
}

func (s *Service) upsertPayout(t *txn, p *stripe.Payout) error {
	// A payout whose amount or status changed has its transactions listed
	// again at the next sync.
	_, err := t.exec(`INSERT INTO stripe_payouts (id, created, arrival_date, amount, currency, status, automatic, method, description,
			balance_transaction_id, livemode, synced_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, arrival_date = excluded.arrival_date, amount = excluded.amount,
			currency = excluded.currency, status = excluded.status, automatic = excluded.automatic, method = excluded.method,
			description = excluded.description, balance_transaction_id = excluded.balance_transaction_id, livemode = excluded.livemode,
			transactions_synced_at = CASE WHEN stripe_payouts.status = excluded.status AND stripe_payouts.amount = excluded.amount
				THEN stripe_payouts.transactions_synced_at ELSE '' END,
			synced_at = excluded.synced_at`,
		p.ID, p.Created, p.ArrivalDate, p.Amount, string(p.Currency), string(p.Status), b2i(p.Automatic), string(p.Method), p.Description,
		idOf(p.BalanceTransaction), b2i(p.Livemode), store.Time(s.now()))
	if err != nil {
		return fmt.Errorf("billing: store payout %s: %w", p.ID, err)
	}
	return nil
}

// Category is how the revenue pages count a balance transaction.
const (
	CatCharge  = "charge"
	CatRefund  = "refund"
	CatDispute = "dispute"
	CatFee     = "fee"
	CatPayout  = "payout"
	CatOther   = "other"
)

// categoryOf classifies a balance transaction by its type and reporting
// category.
func categoryOf(typ, reporting string) string {
	switch {
	case typ == "charge" || typ == "payment":
		return CatCharge
	case typ == "refund" || typ == "payment_refund" || typ == "payment_failure_refund" || typ == "refund_failure":
		return CatRefund
	case reporting == "dispute" || reporting == "dispute_reversal":
		return CatDispute
	case typ == "stripe_fee" || typ == "stripe_fx_fee" || typ == "tax_fee" || reporting == "fee":
		return CatFee
	case typ == "payout" || typ == "payout_cancel" || typ == "payout_failure":
		return CatPayout
	}
	return CatOther
}

// sourceType names the kind of a balance transaction's source, from the
// expanded object or else from the id's prefix.
func sourceType(src *stripe.BalanceTransactionSource) string {
	if src == nil {
		return ""
	}
	if src.Type != "" {
		return string(src.Type)
	}
	for prefix, t := range map[string]string{"ch_": "charge", "py_": "charge", "re_": "refund", "pyr_": "refund",
		"dp_": "dispute", "du_": "dispute", "po_": "payout", "tr_": "transfer", "adj_": "adjustment"} {
		if strings.HasPrefix(src.ID, prefix) {
			return t
		}
	}
	return ""
}

// upsertBalanceTransaction stores bt. payout, when not "", records that bt
// was paid out by that payout (a payout's own listing says so).
func (s *Service) upsertBalanceTransaction(t *txn, bt *stripe.BalanceTransaction, payout string) error {
	srcID, srcType := "", sourceType(bt.Source)
	if bt.Source != nil {
		srcID = bt.Source.ID
	}
	_, err := t.exec(`INSERT INTO stripe_balance_transactions (id, created, day, available_on, type, reporting_category, category,
			status, amount, fee, net, currency, description, source_id, source_type, payout_id, synced_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET created = excluded.created, day = excluded.day, available_on = excluded.available_on,
			type = excluded.type, reporting_category = excluded.reporting_category, category = excluded.category,
			status = excluded.status, amount = excluded.amount, fee = excluded.fee, net = excluded.net,
			currency = excluded.currency, description = excluded.description, source_id = excluded.source_id,
			source_type = excluded.source_type,
			payout_id = CASE WHEN excluded.payout_id != '' THEN excluded.payout_id ELSE stripe_balance_transactions.payout_id END,
			synced_at = excluded.synced_at`,
		bt.ID, bt.Created, dayOf(bt.Created), bt.AvailableOn, string(bt.Type), string(bt.ReportingCategory),
		categoryOf(string(bt.Type), string(bt.ReportingCategory)), string(bt.Status), bt.Amount, bt.Fee, bt.Net,
		string(bt.Currency), bt.Description, srcID, srcType, payout, store.Time(s.now()))
	if err != nil {
		return fmt.Errorf("billing: store balance transaction %s: %w", bt.ID, err)
	}
	return nil
}

// dayOf is the UTC day number of a Unix time.
func dayOf(unix int64) int64 {
	if unix < 0 {
		return (unix - 86399) / 86400
	}
	return unix / 86400
}

// attribute links balance transactions to their charges and both to a
// jurisdiction, for everything not yet attributed. It is set-based, so one
// call after a batch covers the batch.
func attribute(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{
		// A charge to be attributed afresh takes its balance transactions along.
		`UPDATE stripe_balance_transactions SET jurisdiction = ''
		WHERE jurisdiction != '' AND charge_id IN (SELECT id FROM stripe_charges WHERE jurisdiction = '')`,
		`UPDATE stripe_charges SET
			jurisdiction = COALESCE(NULLIF(meta_region, ''),
				NULLIF((SELECT p.region FROM stripe_payment_intents p WHERE p.id = stripe_charges.payment_intent_id), ''),
				NULLIF((SELECT c.region FROM stripe_customers c WHERE c.id = stripe_charges.customer_id), ''),
				'unattributed'),
			region_source = CASE
				WHEN meta_region != '' THEN 'charge'
				WHEN COALESCE((SELECT p.region FROM stripe_payment_intents p WHERE p.id = stripe_charges.payment_intent_id), '') != '' THEN 'payment_intent'
				WHEN COALESCE((SELECT c.region FROM stripe_customers c WHERE c.id = stripe_charges.customer_id), '') != '' THEN 'customer'
				ELSE '' END
		WHERE jurisdiction = ''`,
		`UPDATE stripe_balance_transactions SET charge_id = CASE source_type
				WHEN 'charge' THEN source_id
				WHEN 'refund' THEN COALESCE((SELECT r.charge_id FROM stripe_refunds r WHERE r.id = stripe_balance_transactions.source_id), '')
				WHEN 'dispute' THEN COALESCE((SELECT d.charge_id FROM stripe_disputes d WHERE d.id = stripe_balance_transactions.source_id), '')
				ELSE '' END
		WHERE jurisdiction = '' AND charge_id = ''`,
		`UPDATE stripe_balance_transactions SET jurisdiction = COALESCE(
				(SELECT c.jurisdiction FROM stripe_charges c WHERE c.id = stripe_balance_transactions.charge_id AND c.jurisdiction != ''),
				CASE WHEN source_type IN ('charge', 'refund', 'dispute') THEN '' ELSE 'unattributed' END)
		WHERE jurisdiction = ''`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("billing: attribute: %w", err)
		}
	}
	return refreshDaily(ctx, tx)
}

// refreshDaily recomputes the daily rollup for every (currency, day)
// whose balance transactions changed since the last refresh.
func refreshDaily(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{
		`DELETE FROM stripe_bt_daily WHERE (currency, day) IN (SELECT currency, day FROM stripe_bt_dirty)`,
		`INSERT INTO stripe_bt_daily (currency, day, jurisdiction, category, amount, fee, net, n)
		SELECT b.currency, b.day, b.jurisdiction, b.category, SUM(b.amount), SUM(b.fee), SUM(b.net), COUNT(*)
		FROM stripe_bt_dirty d JOIN stripe_balance_transactions b ON b.currency = d.currency AND b.day = d.day
		GROUP BY b.currency, b.day, b.jurisdiction, b.category`,
		`DELETE FROM stripe_bt_dirty`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("billing: refresh daily revenue: %w", err)
		}
	}
	return nil
}
