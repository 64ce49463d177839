package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stripe/stripe-go/v76"

	"portal/internal/store"
)

// Run is one sync, with its progress while it runs.
type Run struct {
	ID         int64
	StartedAt  time.Time
	FinishedAt time.Time
	Trigger    string // schedule or demand
	Status     string // running, ok or failed
	Phase      string
	Objects    int64
	Error      string
}

// kind is one Stripe object kind the sync lists.
type kind struct {
	name  string // cursor key and progress label
	label string
	list  func(sc *stripeLists, lp stripe.ListParams, created *stripe.RangeQueryParams) *stripe.Iter
	store func(s *Service, t *txn, v any) error
	id    func(v any) string
}

// stripeLists adapts the client's list calls to one shape.
type stripeLists struct{ s *Service }

// kinds are listed in this order, so that what a charge references is
// usually stored before the charge.
var kinds = []kind{
	{name: "customers", label: "customers",
		list: func(l *stripeLists, lp stripe.ListParams, c *stripe.RangeQueryParams) *stripe.Iter {
			return l.s.sc.Customers.List(&stripe.CustomerListParams{ListParams: lp, CreatedRange: c}).Iter
		},
		store: func(s *Service, t *txn, v any) error {
			return s.upsertCustomer(t, v.(*stripe.Customer))
		},
		id: func(v any) string { return v.(*stripe.Customer).ID }},
	{name: "payment_intents", label: "payment intents",
		list: func(l *stripeLists, lp stripe.ListParams, c *stripe.RangeQueryParams) *stripe.Iter {
			return l.s.sc.PaymentIntents.List(&stripe.PaymentIntentListParams{ListParams: lp, CreatedRange: c}).Iter
		},
		store: func(s *Service, t *txn, v any) error {
			return s.upsertPaymentIntent(t, v.(*stripe.PaymentIntent))
		},
		id: func(v any) string { return v.(*stripe.PaymentIntent).ID }},
	{name: "charges", label: "charges",
		list: func(l *stripeLists, lp stripe.ListParams, c *stripe.RangeQueryParams) *stripe.Iter {
			return l.s.sc.Charges.List(&stripe.ChargeListParams{ListParams: lp, CreatedRange: c}).Iter
		},
		store: func(s *Service, t *txn, v any) error {
			return s.upsertCharge(t, v.(*stripe.Charge))
		},
		id: func(v any) string { return v.(*stripe.Charge).ID }},
	{name: "refunds", label: "refunds",
		list: func(l *stripeLists, lp stripe.ListParams, c *stripe.RangeQueryParams) *stripe.Iter {
			return l.s.sc.Refunds.List(&stripe.RefundListParams{ListParams: lp, CreatedRange: c}).Iter
		},
		store: func(s *Service, t *txn, v any) error {
			return s.upsertRefund(t, v.(*stripe.Refund))
		},
		id: func(v any) string { return v.(*stripe.Refund).ID }},
	{name: "disputes", label: "disputes",
		list: func(l *stripeLists, lp stripe.ListParams, c *stripe.RangeQueryParams) *stripe.Iter {
			return l.s.sc.Disputes.List(&stripe.DisputeListParams{ListParams: lp, CreatedRange: c}).Iter
		},
		store: func(s *Service, t *txn, v any) error {
			return s.upsertDispute(t, v.(*stripe.Dispute))
		},
		id: func(v any) string { return v.(*stripe.Dispute).ID }},
	{name: "payouts", label: "payouts",
		list: func(l *stripeLists, lp stripe.ListParams, c *stripe.RangeQueryParams) *stripe.Iter {
			return l.s.sc.Payouts.List(&stripe.PayoutListParams{ListParams: lp, CreatedRange: c}).Iter
		},
		store: func(s *Service, t *txn, v any) error {
			return s.upsertPayout(t, v.(*stripe.Payout))
		},
		id: func(v any) string { return v.(*stripe.Payout).ID }},
	{name: "balance_transactions", label: "balance transactions",
		list: func(l *stripeLists, lp stripe.ListParams, c *stripe.RangeQueryParams) *stripe.Iter {
			return l.s.sc.BalanceTransactions.List(&stripe.BalanceTransactionListParams{ListParams: lp, CreatedRange: c}).Iter
		},
		store: func(s *Service, t *txn, v any) error {
			return s.upsertBalanceTransaction(t, v.(*stripe.BalanceTransaction), "")
		},
		id: func(v any) string { return v.(*stripe.BalanceTransaction).ID }},
}

// Sync brings the local copy up to date with Stripe: every kind is listed
// from its cursor to now, payouts get their balance transactions, missing
// references are fetched, and new money is attributed to jurisdictions.
// A sync interrupted by a crash resumes where its last batch committed.
func (s *Service) Sync(ctx context.Context, trigger string) (Run, error) {
	if !s.Configured() {
		return Run{}, ErrNotConfigured
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	start := s.now()
	// Runs left "running" by a process that died: the job lease means no
	// other replica runs a sync now.
	if _, err := s.db.ExecContext(ctx, `UPDATE stripe_sync_runs SET status = 'failed', error = 'interrupted (the portal stopped during the sync); the next sync resumed it', finished_at = ? WHERE status = 'running'`, store.Time(start)); err != nil {
		return Run{}, fmt.Errorf("billing: sync: %w", err)
	}
	var runID int64
	if err := s.db.QueryRowContext(ctx, `INSERT INTO stripe_sync_runs (started_at, trigger, status, phase) VALUES (?, ?, 'running', 'starting') RETURNING id`,
		store.Time(start), trigger).Scan(&runID); err != nil {
		return Run{}, fmt.Errorf("billing: sync: %w", err)
	}
	err := s.syncAll(ctx, runID)
	status, msg := "ok", ""
	if err != nil {
		status, msg = "failed", err.Error()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, uerr := s.db.ExecContext(fctx, `UPDATE stripe_sync_runs SET status = ?, error = ?, finished_at = ?, phase = CASE WHEN ? = 'ok' THEN 'done' ELSE phase END WHERE id = ?`,
		status, msg, store.Time(s.now()), status, runID); uerr != nil && err == nil {
		err = fmt.Errorf("billing: sync: %w", uerr)
	}
	run, rerr := s.RunByID(fctx, runID)
	if rerr != nil && err == nil {
		err = rerr
	}
	if err == nil {
		s.log.Info("stripe sync done", slog.Int64("run", runID), slog.Int64("objects", run.Objects), slog.Duration("took", s.now().Sub(start)))
	}
	return run, err
}

func (s *Service) syncAll(ctx context.Context, runID int64) error {
	l := &stripeLists{s: s}
	for _, k := range kinds {
		if err := s.syncKind(ctx, l, runID, k); err != nil {
			return err
		}
	}
	if err := s.syncReferences(ctx, runID); err != nil {
		return err
	}
	if err := s.refreshOpenPayouts(ctx, runID); err != nil {
		return err
	}
	if err := s.syncPayoutTransactions(ctx, runID, ""); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := setPhase(ctx, tx, runID, "attributing to jurisdictions", 0); err != nil {
			return err
		}
		return attribute(ctx, tx)
	})
}

func setPhase(ctx context.Context, tx *sql.Tx, runID int64, phase string, add int) error {
	if _, err := tx.ExecContext(ctx, `UPDATE stripe_sync_runs SET phase = ?, objects = objects + ? WHERE id = ?`, phase, add, runID); err != nil {
		return fmt.Errorf("billing: sync progress: %w", err)
	}
	return nil
}

type cursor struct {
	since, until int64
	after        string
}

func (s *Service) loadCursor(ctx context.Context, name string) (cursor, error) {
	var c cursor
	err := s.db.QueryRowContext(ctx, `SELECT cursor, window_until, window_after FROM stripe_sync_cursors WHERE object = ?`, name).
		Scan(&c.since, &c.until, &c.after)
	if errors.Is(err, sql.ErrNoRows) {
		return cursor{}, nil
	}
	if err != nil {
		return c, fmt.Errorf("billing: cursor %s: %w", name, err)
	}
	return c, nil
}

func saveCursor(ctx context.Context, tx *sql.Tx, name string, c cursor, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO stripe_sync_cursors (object, cursor, window_until, window_after, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (object) DO UPDATE SET cursor = excluded.cursor, window_until = excluded.window_until,
			window_after = excluded.window_after, updated_at = excluded.updated_at`, name, c.since, c.until, c.after, store.Time(now))
	if err != nil {
		return fmt.Errorf("billing: cursor %s: %w", name, err)
	}
	return nil
}

// syncKind lists k created in the window [cursor, until], newest first as
// Stripe lists, committing each batch with the id to resume after. When
// the window is done the cursor moves to its end; the window's last second
// is listed again next time, which the idempotent upserts make harmless.
func (s *Service) syncKind(ctx context.Context, l *stripeLists, runID int64, k kind) error {
	c, err := s.loadCursor(ctx, k.name)
	if err != nil {
		return err
	}
	if c.until == 0 {
		c.until, c.after = s.now().Unix(), ""
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return saveCursor(ctx, tx, k.name, c, s.now()) }); err != nil {
			return err
		}
	}
	phase := "listing " + k.label
	lp := stripe.ListParams{Context: ctx, Limit: stripe.Int64(s.cfg.PageSize)}
	if c.after != "" {
		lp.StartingAfter = stripe.String(c.after)
		phase = "listing " + k.label + " (resumed)"
	}
	it := k.list(l, lp, &stripe.RangeQueryParams{GreaterThanOrEqual: c.since, LesserThanOrEqual: c.until})
	batch := make([]any, 0, s.cfg.PageSize)
	flush := func() error {
		if len(batch) == 0 {
			return s.db.Tx(ctx, func(tx *sql.Tx) error { return setPhase(ctx, tx, runID, phase, 0) })
		}
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			t := newTxn(ctx, tx)
			for _, v := range batch {
				if err := k.store(s, t, v); err != nil {
					return err
				}
			}
			c.after = k.id(batch[len(batch)-1])
			if err := saveCursor(ctx, tx, k.name, c, s.now()); err != nil {
				return err
			}
			return setPhase(ctx, tx, runID, phase, len(batch))
		})
		batch = batch[:0]
		return err
	}
	for it.Next() {
		batch = append(batch, it.Current())
		if int64(len(batch)) >= s.cfg.PageSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("billing: list %s: %w", k.label, err)
	}
	if err := flush(); err != nil {
		return err
	}
	done := cursor{since: c.until}
	return s.db.Tx(ctx, func(tx *sql.Tx) error { return saveCursor(ctx, tx, k.name, done, s.now()) })
}

// maxReferenceFetches bounds how many missing references one sync fetches
// one by one; the rest wait for the next sync.
const maxReferenceFetches = 500

// syncReferences fetches customers, payment intents and charges that
// stored objects reference but the lists did not bring (created before
// the cursor, or deleted since).
func (s *Service) syncReferences(ctx context.Context, runID int64) error {
	type ref struct {
		label string
		query string
		fetch func(id string) (any, error)
		store func(t *txn, v any) error
	}
	refs := []ref{
		{"customers", `SELECT DISTINCT customer_id FROM stripe_charges x WHERE customer_id != '' AND NOT EXISTS (SELECT 1 FROM stripe_customers c WHERE c.id = x.customer_id) LIMIT ?`,
			func(id string) (any, error) {
				return s.sc.Customers.Get(id, &stripe.CustomerParams{Params: stripe.Params{Context: ctx}})
			},
			func(t *txn, v any) error {
				return s.upsertCustomer(t, v.(*stripe.Customer))
			}},
		{"payment intents", `SELECT DISTINCT payment_intent_id FROM stripe_charges x WHERE payment_intent_id != '' AND NOT EXISTS (SELECT 1 FROM stripe_payment_intents p WHERE p.id = x.payment_intent_id) LIMIT ?`,
			func(id string) (any, error) {
				return s.sc.PaymentIntents.Get(id, &stripe.PaymentIntentParams{Params: stripe.Params{Context: ctx}})
			},
			func(t *txn, v any) error {
				return s.upsertPaymentIntent(t, v.(*stripe.PaymentIntent))
			}},
		{"charges", `SELECT id FROM (
				SELECT charge_id AS id FROM stripe_refunds WHERE charge_id != ''
				UNION SELECT charge_id FROM stripe_disputes WHERE charge_id != ''
				UNION SELECT source_id FROM stripe_balance_transactions WHERE source_type = 'charge' AND jurisdiction = '') x
			WHERE NOT EXISTS (SELECT 1 FROM stripe_charges c WHERE c.id = x.id) LIMIT ?`,
			func(id string) (any, error) {
				return s.sc.Charges.Get(id, &stripe.ChargeParams{Params: stripe.Params{Context: ctx}})
			},
			func(t *txn, v any) error { return s.upsertCharge(t, v.(*stripe.Charge)) }},
	}
	for _, r := range refs {
		ids, err := s.queryIDs(ctx, r.query, maxReferenceFetches)
		if err != nil {
			return err
		}
		for _, id := range ids {
			v, err := r.fetch(id)
			if stripeMissing(err) {
				continue
			} else if err != nil {
				return fmt.Errorf("billing: fetch %s %s: %w", r.label, id, err)
			}
			if err := s.db.Tx(ctx, func(tx *sql.Tx) error {
				if err := r.store(newTxn(ctx, tx), v); err != nil {
					return err
				}
				return setPhase(ctx, tx, runID, "fetching referenced "+r.label, 1)
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// refreshOpenPayouts re-fetches payouts that were pending or in transit:
// the creation-time cursor never lists them again, and a missed webhook
// must not leave a paid payout looking in flight.
func (s *Service) refreshOpenPayouts(ctx context.Context, runID int64) error {
	ids, err := s.queryIDs(ctx, `SELECT id FROM stripe_payouts WHERE status IN ('pending', 'in_transit') ORDER BY created LIMIT ?`, maxReferenceFetches)
	if err != nil {
		return err
	}
	for _, id := range ids {
		po, err := s.sc.Payouts.Get(id, &stripe.PayoutParams{Params: stripe.Params{Context: ctx}})
		if stripeMissing(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("billing: refresh payout %s: %w", id, err)
		}
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			if err := s.upsertPayout(newTxn(ctx, tx), po); err != nil {
				return err
			}
			return setPhase(ctx, tx, runID, "refreshing payouts in flight", 1)
		}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) queryIDs(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: query ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("billing: query ids: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// syncPayoutTransactions lists the balance transactions of automatic
// payouts whose transactions are not yet listed (only = one payout).
func (s *Service) syncPayoutTransactions(ctx context.Context, runID int64, only string) error {
	q, args := `SELECT id FROM stripe_payouts WHERE transactions_synced_at = '' AND automatic = 1 ORDER BY created`, []any{}
	if only != "" {
		q, args = `SELECT id FROM stripe_payouts WHERE id = ? AND automatic = 1`, []any{only}
	}
	ids, err := s.queryIDs(ctx, q, args...)
	if err != nil {
		return err
	}
	for _, id := range ids {
		params := &stripe.BalanceTransactionListParams{ListParams: stripe.ListParams{Context: ctx, Limit: stripe.Int64(s.cfg.PageSize)}, Payout: stripe.String(id)}
		it := s.sc.BalanceTransactions.List(params)
		var bts []*stripe.BalanceTransaction
		for it.Next() {
			bts = append(bts, it.BalanceTransaction())
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("billing: list balance transactions of payout %s: %w", id, err)
		}
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			// What the payout's listing no longer names is not its own.
			if _, err := tx.ExecContext(ctx, `UPDATE stripe_balance_transactions SET payout_id = '' WHERE payout_id = ?`, id); err != nil {
				return fmt.Errorf("billing: payout %s: %w", id, err)
			}
			t := newTxn(ctx, tx)
			for _, bt := range bts {
				if err := s.upsertBalanceTransaction(t, bt, id); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE stripe_payouts SET transactions_synced_at = ?1,
				tx_count = (SELECT COUNT(*) FROM stripe_balance_transactions WHERE payout_id = ?2 AND category != 'payout'),
				tx_net = (SELECT COALESCE(SUM(net), 0) FROM stripe_balance_transactions WHERE payout_id = ?2 AND category != 'payout')
				WHERE id = ?2`, store.Time(s.now()), id); err != nil {
				return fmt.Errorf("billing: payout %s: %w", id, err)
			}
			if err := refreshDaily(ctx, tx); err != nil {
				return err
			}
			if runID == 0 {
				return nil
			}
			return setPhase(ctx, tx, runID, "listing each payout's balance transactions", len(bts))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// RunByID returns one sync run.
func (s *Service) RunByID(ctx context.Context, id int64) (Run, error) {
	runs, err := s.runs(ctx, `WHERE id = ?`, id)
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, fmt.Errorf("billing: sync run %d: %w", id, store.ErrNotFound)
	}
	return runs[0], nil
}

// RecentRuns returns the latest n sync runs, newest first.
func (s *Service) RecentRuns(ctx context.Context, n int) ([]Run, error) {
	return s.runs(ctx, `ORDER BY id DESC LIMIT ?`, n)
}

func (s *Service) runs(ctx context.Context, tail string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, started_at, finished_at, trigger, status, phase, objects, error FROM stripe_sync_runs `+tail, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: sync runs: %w", err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		var r Run
		var started, finished string
		if err := rows.Scan(&r.ID, &started, &finished, &r.Trigger, &r.Status, &r.Phase, &r.Objects, &r.Error); err != nil {
			return nil, fmt.Errorf("billing: sync runs: %w", err)
		}
		r.StartedAt, r.FinishedAt = parseTime(started), parseTime(finished)
		out = append(out, r)
	}
	return out, rows.Err()
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := store.ParseTime(s)
	return t
}

// Freshness is how current the local copy is.
type Freshness struct {
	// AsOf is when the last successful sync started listing: everything
	// Stripe held then is here. Zero before the first sync.
	AsOf        time.Time
	LastWebhook time.Time // last event processed, zero if none
	Running     *Run      // the sync in progress, if any
}

// Freshness reports the "data as of" time every page shows.
func (s *Service) Freshness(ctx context.Context) (Freshness, error) {
	var f Freshness
	var asOf, hook string
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE((SELECT started_at FROM stripe_sync_runs WHERE status = 'ok' ORDER BY id DESC LIMIT 1), ''),
		COALESCE((SELECT MAX(processed_at) FROM stripe_events WHERE status = 'done'), '')`).Scan(&asOf, &hook); err != nil {
		return f, fmt.Errorf("billing: freshness: %w", err)
	}
	f.AsOf, f.LastWebhook = parseTime(asOf), parseTime(hook)
	runs, err := s.runs(ctx, `WHERE status = 'running' ORDER BY id DESC LIMIT 1`)
	if err != nil {
		return f, err
	}
	if len(runs) == 1 {
		f.Running = &runs[0]
	}
	return f, nil
}
