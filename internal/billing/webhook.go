package billing

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"portal/internal/apperr"
	"portal/internal/store"
)

// ErrWebhookNotConfigured reports that no webhook signing secret is set, so
// no delivery can be trusted.
var ErrWebhookNotConfigured = errors.New("billing: webhook signing secret is not configured")

// ErrBadSignature reports a delivery whose signature does not verify.
var ErrBadSignature = errors.New("billing: webhook signature does not verify")

// Receipt says what became of a delivery.
type Receipt struct {
	EventID   string
	Type      string
	Duplicate bool // the event id was seen before; nothing changed
	Ignored   bool // an event type the portal does not use; acknowledged
}

// handledObjects are the object kinds whose events make the portal
// re-fetch the object.
var handledObjects = map[string]bool{
	"charge": true, "refund": true, "dispute": true, "payout": true, "customer": true, "payment_intent": true,
}

// ReceiveWebhook verifies a delivery's signature on the raw payload (with
// the configured tolerance) before reading anything from it, then records
// the event once by id. The object it names is re-fetched later by
// ProcessEvents. A bad signature returns an error wrapping ErrBadSignature
// whose message carries the reason only, never the payload.
func (s *Service) ReceiveWebhook(ctx context.Context, payload []byte, signature string) (Receipt, error) {
	if !s.cfg.WebhookSecret.IsSet() {
		return Receipt{}, ErrWebhookNotConfigured
	}
	if err := webhook.ValidatePayloadWithTolerance(payload, signature, s.cfg.WebhookSecret.Reveal(), s.cfg.WebhookTolerance); err != nil {
		return Receipt{}, fmt.Errorf("%w: %s", ErrBadSignature, signatureReason(err))
	}
	var ev struct {
		ID       string `json:"id"`
		Object   string `json:"object"`
		Type     string `json:"type"`
		Created  int64  `json:"created"`
		Livemode bool   `json:"livemode"`
		Data     struct {
			Object struct {
				ID     string `json:"id"`
				Object string `json:"object"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil || ev.ID == "" || ev.Object != "event" || ev.Type == "" {
		return Receipt{}, apperr.New(apperr.Invalid, "the body is not a Stripe event")
	}
	r := Receipt{EventID: ev.ID, Type: ev.Type}
	status := "pending"
	if !handledObjects[ev.Data.Object.Object] || ev.Data.Object.ID == "" {
		status, r.Ignored = "ignored", true
	}
	now := store.Time(s.now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO stripe_events (id, type, object_type, object_id, created, livemode, received_at, status, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			ev.ID, ev.Type, ev.Data.Object.Object, ev.Data.Object.ID, ev.Created, b2i(ev.Livemode), now, status, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			r.Duplicate = true
			_, err = tx.ExecContext(ctx, `UPDATE stripe_events SET deliveries = deliveries + 1 WHERE id = ?`, ev.ID)
		}
		return err
	})
	if err != nil {
		return r, fmt.Errorf("billing: record event %s: %w", ev.ID, err)
	}
	if !r.Duplicate && !r.Ignored && s.jobs != nil {
		if _, err := s.jobs.Trigger(ctx, WebhooksJob); err != nil {
			s.log.Warn("stripe webhook: could not wake the processor; the next tick picks it up", slog.String("err", err.Error()))
		}
	}
	return r, nil
}

// signatureReason names why verification failed, in words safe to log.
func signatureReason(err error) string {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return "no Stripe-Signature header"
	case errors.Is(err, webhook.ErrInvalidHeader):
		return "malformed Stripe-Signature header"
	case errors.Is(err, webhook.ErrTooOld):
		return "timestamp outside the tolerance"
	case errors.Is(err, webhook.ErrNoValidSignature):
		return "no signature matches the endpoint secret"
	}
	return "signature does not verify"
}

// maxAttempts is how often processing an event is tried before it is
// marked failed (and shown on the settings page).
const maxAttempts = 8

func backoff(attempts int) time.Duration {
	d := 10 * time.Second << min(attempts, 9)
	return min(d, time.Hour)
}

// ProcessEvents handles every pending event that is due: it re-fetches
// the object the event names and stores Stripe's current state, so the
// order and number of deliveries do not matter. Failures are retried with
// backoff. It returns how many events it handled.
func (s *Service) ProcessEvents(ctx context.Context) (int, error) {
	if !s.Configured() {
		return 0, nil
	}
	handled := 0
	for {
		type due struct {
			id, typ, objType, objID string
			attempts                int
		}
		rows, err := s.db.QueryContext(ctx, `SELECT id, type, object_type, object_id, attempts FROM stripe_events
			WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY created, id LIMIT 50`, store.Time(s.now()))
		if err != nil {
			return handled, fmt.Errorf("billing: due events: %w", err)
		}
		var batch []due
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.id, &d.typ, &d.objType, &d.objID, &d.attempts); err != nil {
				rows.Close()
				return handled, fmt.Errorf("billing: due events: %w", err)
			}
			batch = append(batch, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return handled, fmt.Errorf("billing: due events: %w", err)
		}
		if len(batch) == 0 {
			return handled, nil
		}
		for _, d := range batch {
			if ctx.Err() != nil {
				return handled, ctx.Err()
			}
			perr := s.refetch(ctx, d.objType, d.objID)
			now := s.now()
			var uerr error
			if perr == nil {
				_, uerr = s.db.ExecContext(ctx, `UPDATE stripe_events SET status = 'done', attempts = attempts + 1, processed_at = ?, last_error = '' WHERE id = ?`,
					store.Time(now), d.id)
				handled++
			} else {
				status := "pending"
				if d.attempts+1 >= maxAttempts {
					status = "failed"
				}
				s.log.Warn("stripe webhook: processing failed", slog.String("event", d.id), slog.String("type", d.typ),
					slog.Int("attempt", d.attempts+1), slog.String("err", perr.Error()))
				_, uerr = s.db.ExecContext(ctx, `UPDATE stripe_events SET status = ?, attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?`,
					status, truncate(perr.Error(), 300), store.Time(now.Add(backoff(d.attempts))), d.id)
			}
			if uerr != nil {
				return handled, fmt.Errorf("billing: event %s: %w", d.id, uerr)
			}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// refetch stores the current state of one object (and what hangs off it:
// a charge's refunds and disputes, each one's balance transactions).
func (s *Service) refetch(ctx context.Context, objType, id string) error {
	p := stripe.Params{Context: ctx}
	var writes []func(t *txn) error
	bt := func(b *stripe.BalanceTransaction) error {
		if b == nil || b.ID == "" {
			return nil
		}
		full, err := s.sc.BalanceTransactions.Get(b.ID, &stripe.BalanceTransactionParams{Params: p})
		if err != nil {
			return fmt.Errorf("balance transaction %s: %w", b.ID, err)
		}
		writes = append(writes, func(t *txn) error { return s.upsertBalanceTransaction(t, full, "") })
		return nil
	}
	var charge func(id string) error
	charge = func(id string) error {
		c, err := s.sc.Charges.Get(id, &stripe.ChargeParams{Params: p})
		if err != nil {
			return fmt.Errorf("charge %s: %w", id, err)
		}
		writes = append(writes, func(t *txn) error { return s.upsertCharge(t, c) })
		return bt(c.BalanceTransaction)
	}
	var payoutID string
	var err error
	switch objType {
	case "charge":
		if err = charge(id); err != nil {
			break
		}
		rit := s.sc.Refunds.List(&stripe.RefundListParams{ListParams: stripe.ListParams{Context: ctx}, Charge: stripe.String(id)})
		for err == nil && rit.Next() {
			r := rit.Refund()
			writes = append(writes, func(t *txn) error { return s.upsertRefund(t, r) })
			err = bt(r.BalanceTransaction)
		}
		if err == nil {
			err = rit.Err()
		}
		dit := s.sc.Disputes.List(&stripe.DisputeListParams{ListParams: stripe.ListParams{Context: ctx}, Charge: stripe.String(id)})
		for err == nil && dit.Next() {
			d := dit.Dispute()
			writes = append(writes, func(t *txn) error { return s.upsertDispute(t, d) })
			for _, b := range d.BalanceTransactions {
				if err == nil {
					err = bt(b)
				}
			}
		}
		if err == nil {
			err = dit.Err()
		}
	case "refund":
		var r *stripe.Refund
		if r, err = s.sc.Refunds.Get(id, &stripe.RefundParams{Params: p}); err == nil {
			writes = append(writes, func(t *txn) error { return s.upsertRefund(t, r) })
			if err = bt(r.BalanceTransaction); err == nil && r.Charge != nil && r.Charge.ID != "" {
				err = charge(r.Charge.ID)
			}
		}
	case "dispute":
		var d *stripe.Dispute
		if d, err = s.sc.Disputes.Get(id, &stripe.DisputeParams{Params: p}); err == nil {
			writes = append(writes, func(t *txn) error { return s.upsertDispute(t, d) })
			for _, b := range d.BalanceTransactions {
				if err == nil {
					err = bt(b)
				}
			}
			if err == nil && d.Charge != nil && d.Charge.ID != "" {
				err = charge(d.Charge.ID)
			}
		}
	case "payout":
		var po *stripe.Payout
		if po, err = s.sc.Payouts.Get(id, &stripe.PayoutParams{Params: p}); err == nil {
			writes = append(writes, func(t *txn) error { return s.upsertPayout(t, po) })
			payoutID = po.ID
		}
	case "customer":
		var c *stripe.Customer
		if c, err = s.sc.Customers.Get(id, &stripe.CustomerParams{Params: p}); err == nil {
			writes = append(writes, func(t *txn) error { return s.upsertCustomer(t, c) })
		}
	case "payment_intent":
		var pi *stripe.PaymentIntent
		if pi, err = s.sc.PaymentIntents.Get(id, &stripe.PaymentIntentParams{Params: p}); err == nil {
			writes = append(writes, func(t *txn) error { return s.upsertPaymentIntent(t, pi) })
		}
	default:
		return nil
	}
	if stripeMissing(err) {
		// The object is gone from Stripe: nothing to store.
		return nil
	}
	if err != nil {
		return fmt.Errorf("billing: re-fetch %s %s: %w", strings.ReplaceAll(objType, "_", " "), id, err)
	}
	if err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		t := newTxn(ctx, tx)
		for _, w := range writes {
			if err := w(t); err != nil {
				return err
			}
		}
		return attribute(ctx, tx)
	}); err != nil {
		return err
	}
	if payoutID != "" {
		return s.syncPayoutTransactions(ctx, 0, payoutID)
	}
	return nil
}

// EventStats counts webhook events by status.
type EventStats struct {
	Pending, Done, Ignored, Failed int
	Duplicates                     int // deliveries beyond the first
	LastReceived                   time.Time
	RecentFailures                 []FailedEvent
}

// FailedEvent is an event that could not be processed.
type FailedEvent struct {
	ID, Type, Object, Error string
	Attempts                int
}

// EventStats summarises webhook deliveries for the settings page.
func (s *Service) EventStats(ctx context.Context) (EventStats, error) {
	var st EventStats
	var last string
	err := s.db.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'done'), 0), COALESCE(SUM(status = 'ignored'), 0),
		COALESCE(SUM(status = 'failed'), 0), COALESCE(SUM(deliveries - 1), 0), COALESCE(MAX(received_at), '')
		FROM stripe_events`).Scan(&st.Pending, &st.Done, &st.Ignored, &st.Failed, &st.Duplicates, &last)
	if err != nil {
		return st, fmt.Errorf("billing: event stats: %w", err)
	}
	st.LastReceived = parseTime(last)
	rows, err := s.db.QueryContext(ctx, `SELECT id, type, object_type || ' ' || object_id, last_error, attempts FROM stripe_events
		WHERE status = 'failed' OR (status = 'pending' AND attempts > 0) ORDER BY received_at DESC LIMIT 10`)
	if err != nil {
		return st, fmt.Errorf("billing: event stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var f FailedEvent
		if err := rows.Scan(&f.ID, &f.Type, &f.Object, &f.Error, &f.Attempts); err != nil {
			return st, fmt.Errorf("billing: event stats: %w", err)
		}
		st.RecentFailures = append(st.RecentFailures, f)
	}
	return st, rows.Err()
}
