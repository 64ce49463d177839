package billing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"portal/internal/billing"
	"portal/internal/billing/stripefixture"
	"portal/internal/peers/peertest"
)

const whsec = "whsec_test_secret"

// event is a Stripe event payload naming obj; the object's fields in the
// payload are whatever the sender says (possibly stale).
func event(id, typ string, created int64, obj map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "created": created, "livemode": false,
		"api_version": "2023-10-16", "data": map[string]any{"object": obj}})
	return b
}

func sign(payload []byte, secret string, at time.Time) string {
	return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
}

// snapshot dumps every billing table, so a test can tell whether
// anything changed (the delivery counter aside).
func (e env) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"stripe_customers", "stripe_payment_intents", "stripe_charges", "stripe_refunds", "stripe_disputes",
		"stripe_payouts", "stripe_balance_transactions"} {
		rows, err := e.db.Query("SELECT * FROM " + table + " ORDER BY id")
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, table, vals)
		}
		rows.Close()
	}
	rows, err := e.db.Query("SELECT id, status, attempts, processed_at FROM stripe_events ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, st, at string
		var n int
		_ = rows.Scan(&id, &st, &n, &at)
		fmt.Fprintln(&b, "event", id, st, n, at)
	}
	return b.String()
}

func TestWebhooks(t *testing.T) {
	srv, d := fixture(t, stripefixture.Options{Seed: 4, ChargesPerDay: 5})
	e := newService(t, srv.URL(), nil)
	ctx := context.Background()
	po := d.Payouts[len(d.Payouts)-1]
	now := time.Now()

	t.Run("bad signature", func(t *testing.T) {
		p := event("evt_bad", "payout.paid", now.Unix(), map[string]any{"id": po.ID, "object": "payout"})
		for name, header := range map[string]string{
			"wrong secret":  sign(p, "whsec_other", now),
			"no header":     "",
			"garbage":       "t=abc,v1=zz",
			"expired":       sign(p, whsec, now.Add(-6*time.Minute)),
			"body modified": sign(append([]byte(" "), p...), whsec, now),
		} {
			_, err := e.svc.ReceiveWebhook(ctx, p, header)
			if !errors.Is(err, billing.ErrBadSignature) {
				t.Errorf("%s: got %v, want ErrBadSignature", name, err)
			}
			if err != nil && strings.Contains(err.Error(), po.ID) {
				t.Errorf("%s: the error quotes the payload: %v", name, err)
			}
		}
		if n := e.count(t, "SELECT COUNT(*) FROM stripe_events"); n != 0 {
			t.Errorf("%d events stored from bad deliveries, want 0", n)
		}
	})

	t.Run("within tolerance", func(t *testing.T) {
		p := event("evt_late", "customer.updated", now.Unix(), map[string]any{"id": d.Customers[0].ID, "object": "customer"})
		if _, err := e.svc.ReceiveWebhook(ctx, p, sign(p, whsec, now.Add(-4*time.Minute))); err != nil {
			t.Errorf("a delivery signed four minutes ago: %v", err)
		}
	})

	t.Run("unknown type is acknowledged and ignored", func(t *testing.T) {
		p := event("evt_invoice", "invoice.paid", now.Unix(), map[string]any{"id": "in_1", "object": "invoice"})
		before := len(srv.Requests())
		r, err := e.svc.ReceiveWebhook(ctx, p, sign(p, whsec, now))
		if err != nil || !r.Ignored {
			t.Fatalf("got %+v, %v; want ignored", r, err)
		}
		if _, err := e.svc.ProcessEvents(ctx); err != nil {
			t.Fatal(err)
		}
		for _, req := range srv.Requests()[before:] {
			if strings.Contains(req, "in_1") {
				t.Errorf("an ignored event made the portal fetch %s", req)
			}
		}
	})

	t.Run("out of order cannot roll back", func(t *testing.T) {
		// Stripe holds the payout as paid. The newer event arrives first;
		// the older one, whose payload still says pending, arrives last.
		newer := event("evt_paid", "payout.paid", now.Unix(), map[string]any{"id": po.ID, "object": "payout", "status": "paid"})
		older := event("evt_created", "payout.created", now.Add(-time.Hour).Unix(), map[string]any{"id": po.ID, "object": "payout", "status": "pending"})
		srv.Update(func(d *stripefixture.Dataset) { d.Payouts[len(d.Payouts)-1].Status = "paid" })
		for _, p := range [][]byte{newer, older} {
			if _, err := e.svc.ReceiveWebhook(ctx, p, sign(p, whsec, now)); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := e.svc.ProcessEvents(ctx); err != nil || n != 2 {
			t.Fatalf("processed %d events (%v), want the two payout events", n, err)
		}
		got, err := e.svc.Payout(ctx, po.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "paid" {
			t.Errorf("after an older event arrived last the payout is %q, want paid", got.Status)
		}
		if got.ListedAt.IsZero() {
			t.Errorf("a paid payout's transactions were not listed after its event")
		}
	})

	t.Run("duplicate changes nothing", func(t *testing.T) {
		p := event("evt_charge", "charge.refunded", now.Unix(), map[string]any{"id": d.Charges[0].ID, "object": "charge"})
		if _, err := e.svc.ReceiveWebhook(ctx, p, sign(p, whsec, now)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ProcessEvents(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count(t, "SELECT COUNT(*) FROM stripe_charges WHERE id = ?", d.Charges[0].ID); n != 1 {
			t.Fatalf("the charge named by the event was not stored")
		}
		before := e.snapshot(t)
		requests := len(srv.Requests())
		for i := 0; i < 3; i++ {
			r, err := e.svc.ReceiveWebhook(ctx, p, sign(p, whsec, time.Now()))
			if err != nil || !r.Duplicate {
				t.Fatalf("replay %d: got %+v, %v; want a duplicate", i, r, err)
			}
		}
		if _, err := e.svc.ProcessEvents(ctx); err != nil {
			t.Fatal(err)
		}
		if after := e.snapshot(t); after != before {
			t.Errorf("a replayed event changed stored state")
		}
		if got := len(srv.Requests()) - requests; got != 0 {
			t.Errorf("a replayed event made %d Stripe requests, want 0", got)
		}
		if n := e.count(t, "SELECT deliveries FROM stripe_events WHERE id = 'evt_charge'"); n != 4 {
			t.Errorf("deliveries of evt_charge: got %d, want 4", n)
		}
		e.rollupMatches(t)
	})

	t.Run("failures are retried", func(t *testing.T) {
		p := event("evt_gone", "charge.updated", now.Unix(), map[string]any{"id": "ch_not_in_stripe", "object": "charge"})
		if _, err := e.svc.ReceiveWebhook(ctx, p, sign(p, whsec, now)); err != nil {
			t.Fatal(err)
		}
		// A missing object is not a failure: there is nothing to store.
		if _, err := e.svc.ProcessEvents(ctx); err != nil {
			t.Fatal(err)
		}
		if n := e.count(t, "SELECT COUNT(*) FROM stripe_events WHERE id = 'evt_gone' AND status = 'done'"); n != 1 {
			t.Errorf("an event for an object Stripe no longer has is not done")
		}
		srv.Close() // Stripe unreachable: the event stays pending with a retry time.
		p = event("evt_retry", "charge.updated", now.Unix(), map[string]any{"id": d.Charges[1].ID, "object": "charge"})
		if _, err := e.svc.ReceiveWebhook(ctx, p, sign(p, whsec, now)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.ProcessEvents(ctx); err != nil {
			t.Fatal(err)
		}
		var status, next string
		var attempts int
		if err := e.db.QueryRow("SELECT status, attempts, next_attempt_at FROM stripe_events WHERE id = 'evt_retry'").Scan(&status, &attempts, &next); err != nil {
			t.Fatal(err)
		}
		if status != "pending" || attempts != 1 || next == "" {
			t.Errorf("after a failed attempt: status %s, attempts %d, next %q; want pending, 1, a retry time", status, attempts, next)
		}
	})
}

// rollupMatches checks that the daily rollup sums exactly what the
// balance transactions hold, per day, currency, jurisdiction and kind.
func (e env) rollupMatches(t *testing.T) {
	t.Helper()
	q := `SELECT COUNT(*) FROM (
		SELECT currency, day, jurisdiction, category, SUM(amount) a, SUM(fee) f, SUM(net) n, COUNT(*) c FROM stripe_balance_transactions GROUP BY 1, 2, 3, 4
		EXCEPT SELECT currency, day, jurisdiction, category, amount, fee, net, n FROM stripe_bt_daily) AS diff`
	if n := e.count(t, q); n != 0 {
		t.Errorf("the daily rollup differs from the balance transactions in %d groups", n)
	}
	if a, b := e.count(t, "SELECT COUNT(*) FROM stripe_bt_daily"), e.count(t, "SELECT COUNT(*) FROM (SELECT 1 FROM stripe_balance_transactions GROUP BY currency, day, jurisdiction, category)"); a != b {
		t.Errorf("the daily rollup has %d groups, the transactions %d", a, b)
	}
}

func TestWebhookWithoutSecretRefuses(t *testing.T) {
	e := newService(t, "http://127.0.0.1:1", func(c *billing.Config) { c.WebhookSecret = billing.Secret{} })
	p := event("evt_1", "charge.updated", time.Now().Unix(), map[string]any{"id": "ch_1", "object": "charge"})
	if _, err := e.svc.ReceiveWebhook(context.Background(), p, sign(p, "", time.Now())); !errors.Is(err, billing.ErrWebhookNotConfigured) {
		t.Errorf("got %v, want ErrWebhookNotConfigured", err)
	}
}

// TestStripeMockContract makes every call the portal makes against
// stripe-mock with strict version checking: a full sync and a re-fetch
// of every object kind an event can name.
func TestStripeMockContract(t *testing.T) {
	sm := peertest.StripeMockForTest(t)
	e := newService(t, sm.URL(), nil)
	ctx := context.Background()
	run, err := e.svc.Sync(ctx, "demand")
	if err != nil {
		t.Fatalf("sync against stripe-mock: %v", err)
	}
	if run.Objects == 0 {
		t.Errorf("sync against stripe-mock stored nothing")
	}
	for i, obj := range []struct{ typ, object, id string }{
		{"charge.updated", "charge", "ch_123"}, {"charge.refund.updated", "refund", "re_123"},
		{"charge.dispute.created", "dispute", "dp_123"}, {"payout.paid", "payout", "po_123"},
		{"customer.updated", "customer", "cus_123"}, {"payment_intent.succeeded", "payment_intent", "pi_123"},
	} {
		p := event(fmt.Sprintf("evt_mock_%d", i), obj.typ, time.Now().Unix(), map[string]any{"id": obj.id, "object": obj.object})
		if _, err := e.svc.ReceiveWebhook(ctx, p, sign(p, whsec, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.ProcessEvents(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := e.db.Query("SELECT id, status, last_error FROM stripe_events WHERE status != 'done'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, st, msg string
		_ = rows.Scan(&id, &st, &msg)
		t.Errorf("event %s against stripe-mock: %s: %s", id, st, msg)
	}
}
