package billing_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"portal/internal/apperr"
	"portal/internal/billing"
)

// FuzzReceiveWebhook feeds arbitrary bodies, correctly signed, and
// arbitrary Stripe-Signature headers to the webhook receiver: it never
// panics; a refusal is a bad signature or an Invalid error with a message,
// never an internal error; and an accepted event delivered again is a
// duplicate that changes nothing.
func FuzzReceiveWebhook(f *testing.F) {
	now := time.Now().Unix()
	for _, p := range [][]byte{
		event("evt_1", "payout.paid", now, map[string]any{"id": "po_1", "object": "payout"}),
		event("evt_2", "charge.refunded", now, map[string]any{"id": "ch_1", "object": "charge"}),
		event("evt_3", "invoice.created", now, map[string]any{"id": "in_1", "object": "invoice"}),
		event("evt_4", "customer.updated", now, map[string]any{"object": "customer"}),
		[]byte(`{"id":"evt_5","object":"event","type":"charge.dispute.created","data":{"object":{"id":"dp_1","object":"dispute"}}}`),
		[]byte(`{"id":"","object":"event","type":"x"}`),
		[]byte(`{"id":"evt_6","object":"charge","type":"x"}`),
		[]byte(`{"id":"evt_7","object":"event","type":"x","data":{"object":"not an object"}}`),
		[]byte(`[]`),
		[]byte(`null`),
		[]byte(``),
		[]byte("\xff\xfe"),
	} {
		f.Add(p, "")
		f.Add(p, "t=1,v1=deadbeef")
	}
	f.Add([]byte(`{}`), "garbage")
	f.Add([]byte(`{}`), "t=,v1=")
	e := newService(f, "http://127.0.0.1:1", nil)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, payload []byte, header string) {
		sig := header
		if sig == "" {
			sig = sign(payload, whsec, time.Now())
		}
		r, err := e.svc.ReceiveWebhook(ctx, payload, sig)
		if err != nil {
			if errors.Is(err, billing.ErrBadSignature) {
				return
			}
			if k := apperr.KindOf(err); k != apperr.Invalid || apperr.MessageOf(err) == "" {
				t.Fatalf("payload %q, signature %q: got %v (kind %s), want a bad signature or an invalid body with a message", payload, header, err, k)
			}
			return
		}
		if r.EventID == "" || r.Type == "" {
			t.Fatalf("payload %q: accepted with event id %q and type %q, want both set", payload, r.EventID, r.Type)
		}
		again, err := e.svc.ReceiveWebhook(ctx, payload, sign(payload, whsec, time.Now()))
		if err != nil {
			t.Fatalf("payload %q: second delivery: %v", payload, err)
		}
		if !again.Duplicate || again.EventID != r.EventID {
			t.Fatalf("payload %q: second delivery got %+v, want a duplicate of %s", payload, again, r.EventID)
		}
	})
}
