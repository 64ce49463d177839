package web_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"portal/internal/audit"
	"portal/internal/billing"
	"portal/internal/billing/stripefixture"
	"portal/internal/staff"
)

const (
	billingKey     = "rk_test_billingfixture0000000042Zq"
	billingWebhook = "whsec_billing_pages_test"
)

// billingHarness starts the portal with Stripe pointed at a fixture
// server, the secrets in files, and one sync done.
func billingHarness(t *testing.T) (*harness, *stripefixture.Dataset) {
	t.Helper()
	d := stripefixture.Generate(stripefixture.Options{Seed: 11, ChargesPerDay: 6})
	srv := stripefixture.New(d)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	dir := t.TempDir()
	keyFile, hookFile := filepath.Join(dir, "stripe.key"), filepath.Join(dir, "stripe.whsec")
	if err := os.WriteFile(keyFile, []byte(billingKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hookFile, []byte(billingWebhook), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "-stripe-api-url", srv.URL(), "-stripe-secret-key-file", keyFile, "-stripe-webhook-secret-file", hookFile)
	if _, err := h.app.Billing.Sync(context.Background(), "demand"); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return h, d
}

func TestBillingPages(t *testing.T) {
	h, d := billingHarness(t)
	fin, _ := h.signedIn(t, staff.Finance)

	// Revenue by month: one section per currency, each with its
	// jurisdictions, and a "data as of" line.
	res := fin.get(t, "/billing")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /billing: %d\n%s", res.StatusCode, res.Body)
	}
	doc := res.Doc(t)
	for _, cur := range []string{"usd", "eur", "sgd"} {
		if doc.Find(`[data-testid="currency-`+cur+`"]`).Length() != 1 {
			t.Errorf("the revenue page has no %s section", cur)
		}
		if doc.Find(`[data-testid="fig-`+cur+`-unattributed-gross"]`).Length() != 1 {
			t.Errorf("%s has no unattributed bucket", cur)
		}
	}
	// Each month's net against the month before: none for the first.
	changes := doc.Find(`[data-testid="periods-eur"] [data-testid="net-change"]`)
	if changes.Length() < 2 || strings.TrimSpace(changes.First().Text()) != "—" || !strings.Contains(changes.Eq(1).Text(), "EUR") {
		t.Errorf("month on month in EUR: %d cells, first %q, second %q", changes.Length(), changes.First().Text(), changes.Eq(1).Text())
	}
	if asOf, _ := res.TestID(t, "data-as-of"); !strings.Contains(asOf, "Data as of") {
		t.Errorf("data-as-of reads %q", asOf)
	}

	// Drill into EU's gross volume in euros: the transactions behind it
	// sum to the figure.
	a := doc.Find(`[data-testid="fig-eur-eu-gross"]`)
	figText, href := strings.TrimSpace(a.Text()), a.AttrOr("href", "")
	if href == "" {
		t.Fatal("EU gross volume in EUR links nowhere")
	}
	res = fin.get(t, href)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", href, res.StatusCode)
	}
	if got, _ := res.TestID(t, "tx-totals"); !strings.Contains(got, "amount "+figText) {
		t.Errorf("drill-down totals %q do not show the figure %s", got, figText)
	}
	txDoc := res.Doc(t)
	if n := txDoc.Find(`[data-testid="tx-row"]`).Length(); n == 0 || n > 50 {
		t.Errorf("drill-down shows %d rows, want one page of at most 50", n)
	}
	// ... and from a transaction to its charge and customer.
	charge := txDoc.Find(`[data-testid="tx-source"] a`).First().AttrOr("href", "")
	if !strings.HasPrefix(charge, "/billing/charges/ch_") {
		t.Fatalf("a charge's transaction links to %q, want its charge", charge)
	}
	res = fin.get(t, charge)
	customer := res.Doc(t).Find(`[data-testid="charge-customer"] a`).AttrOr("href", "")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(customer, "/billing/customers/cus_") {
		t.Fatalf("charge page: %d, customer link %q", res.StatusCode, customer)
	}
	// Each object opens in Stripe's dashboard, in test mode with a test key.
	chargeID := strings.TrimPrefix(charge, "/billing/charges/")
	if href := res.Doc(t).Find(`[data-testid="open-in-stripe"]`).AttrOr("href", ""); href != "https://dashboard.stripe.com/test/payments/"+chargeID {
		t.Errorf("charge: Open in Stripe goes to %q", href)
	}
	if res = fin.get(t, customer); res.StatusCode != http.StatusOK {
		t.Errorf("customer page: %d", res.StatusCode)
	}
	if href := res.Doc(t).Find(`[data-testid="open-in-stripe"]`).AttrOr("href", ""); href != "https://dashboard.stripe.com/test/customers/"+strings.TrimPrefix(customer, "/billing/customers/") {
		t.Errorf("customer: Open in Stripe goes to %q", href)
	}

	// Payouts: the one that does not reconcile is flagged, with the
	// missing amount.
	res = fin.get(t, "/billing/payouts?state=mismatch")
	rows := res.Doc(t).Find(`[data-testid="payout-rows"] tbody tr`)
	if rows.Length() != 1 || rows.AttrOr("data-testid", "") != "payout-"+d.Unreconciled {
		t.Fatalf("mismatched payouts: got %d rows (%s), want %s", rows.Length(), rows.AttrOr("data-testid", ""), d.Unreconciled)
	}
	res = fin.get(t, "/billing/payouts/"+d.Unreconciled)
	if a := res.Doc(t).Find(`[data-testid="open-in-stripe"]`); a.AttrOr("href", "") != "https://dashboard.stripe.com/test/payouts/"+d.Unreconciled || a.AttrOr("rel", "") != "noopener noreferrer" {
		t.Errorf("payout: Open in Stripe goes to %q (rel %q)", a.AttrOr("href", ""), a.AttrOr("rel", ""))
	}
	if _, ok := res.TestID(t, "notes-empty"); !ok {
		t.Error("the payout page does not say it has no notes")
	}
	// A note on what finance found out: refused empty, kept with its author.
	payoutPage := "/billing/payouts/" + d.Unreconciled
	if r := fin.submit(t, payoutPage, payoutPage+"/notes", url.Values{"note": {"   "}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("an empty note: got %d, want 400", r.StatusCode)
	} else if msg, _ := r.TestID(t, "error-note"); !strings.Contains(msg, "required") {
		t.Errorf("an empty note: error %q", msg)
	}
	r := fin.submit(t, payoutPage, payoutPage+"/notes", url.Values{"note": {"Stripe support: 40 EUR moved by hand on 3 Nov, ticket 1234."}})
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("add a note: got %d\n%s", r.StatusCode, r.Body)
	}
	notes := fin.get(t, payoutPage).Doc(t).Find(`[data-testid="payout-note"]`)
	if notes.Length() != 1 || !strings.Contains(notes.Text(), "ticket 1234") || !strings.Contains(notes.Find(`[data-testid="actor"]`).Text(), "@") {
		t.Errorf("the payout's notes: %d, %q", notes.Length(), notes.Text())
	}
	if recs := h.records(t, audit.Filter{Action: "billing.payout_note"}); len(recs) != 1 || recs[0].Target != "payout:"+d.Unreconciled {
		t.Errorf("audit of the note: %+v", recs)
	}
	missing := billing.Money{Amount: d.Missing.Net, Currency: d.Missing.Currency}.Display()
	if got, _ := res.TestID(t, "reconciliation-text"); !strings.Contains(got, missing+" short") {
		t.Errorf("the unreconciled payout says %q, want it %s short", got, missing)
	}
	if n := res.Doc(t).Find(`[data-testid="payout-tx"] [data-testid="tx-row"]`).Length(); n == 0 {
		t.Errorf("the payout page lists none of its balance transactions")
	}

	// The monthly reconciliation flags the month, and a month exports.
	res = fin.get(t, "/billing/reconciliation")
	mdoc := res.Doc(t)
	if mdoc.Find(`[data-testid="month-mismatch"]`).Length() != 1 {
		t.Errorf("the reconciliation flags %d months, want 1", mdoc.Find(`[data-testid="month-mismatch"]`).Length())
	}
	export := mdoc.Find(`[data-testid="month-tx-export"]`).First().AttrOr("href", "")
	res = fin.get(t, export)
	if ct := res.Header.Get("Content-Type"); res.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("GET %s: %d %s", export, res.StatusCode, ct)
	}
	recs, err := csv.NewReader(strings.NewReader(res.Body)).ReadAll()
	if err != nil || len(recs) < 2 || recs[0][0] != "id" {
		t.Errorf("month export: %d records, %v", len(recs), err)
	}
	for _, path := range []string{"/billing/revenue.csv?period=week", "/billing/payouts.csv", "/billing/reconciliation.csv", "/billing/transactions.csv?payout=" + d.Unreconciled} {
		if res := fin.get(t, path); res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
			t.Errorf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}

	// Bad filters name the field.
	res = fin.get(t, "/billing?from=yesterday&period=year")
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("bad filter: %d, want 400", res.StatusCode)
	}
	for _, f := range []string{"from", "period"} {
		if _, ok := res.TestID(t, "error-"+f); !ok {
			t.Errorf("bad filter: no message for %s", f)
		}
	}
}

func TestBillingSettingsNeverShowSecrets(t *testing.T) {
	h, _ := billingHarness(t)
	adm, _ := h.signedIn(t, staff.Admin)
	res := adm.get(t, "/billing/settings")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("settings: %d", res.StatusCode)
	}
	key, _ := res.TestID(t, "key-status")
	for _, want := range []string{"set", "test mode", "restricted", "42Zq"} {
		if !strings.Contains(key, want) {
			t.Errorf("key status %q lacks %q", key, want)
		}
	}
	if strings.Contains(res.Body, billingKey) || strings.Contains(res.Body, billingKey[:12]) || strings.Contains(res.Body, billingWebhook) {
		t.Errorf("the settings page shows a secret")
	}
	// Nothing in the database holds a secret either.
	var n int
	if err := h.app.DB.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE details LIKE ? OR details LIKE ?`, "%"+billingKey+"%", "%"+billingWebhook+"%").Scan(&n); err != nil || n != 0 {
		t.Errorf("audit details mention a secret (%d, %v)", n, err)
	}

	// Syncing on demand is audited.
	res = adm.submit(t, "/billing/settings", "/billing/sync", url.Values{})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sync now: %d\n%s", res.StatusCode, res.Body)
	}
	if recs := h.records(t, auditFilterAction("billing.sync_requested")); len(recs) != 1 {
		t.Errorf("got %d billing.sync_requested records, want 1", len(recs))
	}
}

func TestBillingClosedToOthers(t *testing.T) {
	h, _ := billingHarness(t)
	for _, role := range []staff.Role{staff.Ops, staff.Compliance} {
		c, _ := h.signedIn(t, role)
		for _, path := range []string{"/billing", "/billing/payouts", "/billing/reconciliation", "/billing/transactions.csv", "/billing/settings"} {
			if res := c.get(t, path); res.StatusCode != http.StatusForbidden {
				t.Errorf("%s GET %s: %d, want 403", role, path, res.StatusCode)
			}
		}
		if res := c.get(t, "/"); strings.Contains(res.Body, `data-testid="nav-billing"`) {
			t.Errorf("%s sees Billing in the navigation", role)
		}
	}
}

func TestStripeWebhookEndpoint(t *testing.T) {
	h, d := billingHarness(t)
	c := h.client()
	payload, _ := json.Marshal(map[string]any{"id": "evt_web_1", "object": "event", "type": "payout.paid", "created": time.Now().Unix(),
		"data": map[string]any{"object": map[string]any{"id": d.Payouts[0].ID, "object": "payout"}}})
	post := func(sig string) *response {
		return c.do(t, http.MethodPost, "/webhooks/stripe", strings.NewReader(string(payload)),
			http.Header{"Stripe-Signature": {sig}, "Content-Type": {"application/json"}})
	}
	sign := func(secret string, at time.Time) string {
		return webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at}).Header
	}

	// No session, no CSRF token: the signature is what counts.
	res := post(sign(billingWebhook, time.Now()))
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `"duplicate":false`) {
		t.Fatalf("valid delivery: %d %s", res.StatusCode, res.Body)
	}
	if sc := res.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("the webhook answer sets cookies: %v", sc)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("the webhook skipped the security headers")
	}
	res = post(sign(billingWebhook, time.Now()))
	if res.StatusCode != http.StatusOK || !strings.Contains(res.Body, `"duplicate":true`) {
		t.Errorf("replayed delivery: %d %s", res.StatusCode, res.Body)
	}
	for name, sig := range map[string]string{"bad": sign("whsec_wrong", time.Now()), "expired": sign(billingWebhook, time.Now().Add(-10*time.Minute)), "missing": ""} {
		res := post(sig)
		if res.StatusCode != http.StatusBadRequest || strings.Contains(res.Body, d.Payouts[0].ID) {
			t.Errorf("%s signature: %d %s, want 400 without the payload", name, res.StatusCode, res.Body)
		}
	}
	n, err := h.app.Billing.ProcessEvents(context.Background())
	if err != nil || n != 1 {
		t.Errorf("processed %d events (%v), want the one valid event once", n, err)
	}
}
