package billing_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"portal/internal/audit"
	"portal/internal/billing"
	"portal/internal/billing/stripefixture"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

const testKey = "sk_test_fixture0000000000001234"

// fixture starts a fixture server over a generated dataset.
func fixture(t testing.TB, o stripefixture.Options) (*stripefixture.Server, *stripefixture.Dataset) {
	t.Helper()
	d := stripefixture.Generate(o)
	srv := stripefixture.New(d)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, d
}

type env struct {
	db  *store.DB
	svc *billing.Service
}

func newService(t testing.TB, apiURL string, mod func(*billing.Config)) env {
	t.Helper()
	db := peertest.StoreForTest(t)
	cfg := billing.Config{SecretKey: billing.NewSecret(testKey), WebhookSecret: billing.NewSecret("whsec_test_secret"), APIURL: apiURL}
	if mod != nil {
		mod(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return env{db: db, svc: billing.New(db, audit.New(db, nil), log, nil, cfg)}
}

func (e env) count(t testing.TB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := e.db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestSyncFromFixture syncs tens of thousands of objects over many pages
// and checks every object arrived once, attributed, with payouts linked.
func TestSyncFromFixture(t *testing.T) {
	srv, d := fixture(t, stripefixture.Options{Seed: 1, ChargesPerDay: 80})
	e := newService(t, srv.URL(), nil)
	ctx := context.Background()
	run, err := e.svc.Sync(ctx, "demand")
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if run.Status != "ok" {
		t.Fatalf("run status %q (%s), want ok", run.Status, run.Error)
	}
	for _, c := range []struct {
		table string
		want  int
	}{
		{"stripe_customers", len(d.Customers)}, {"stripe_payment_intents", len(d.PaymentIntents)},
		{"stripe_charges", len(d.Charges)}, {"stripe_refunds", len(d.Refunds)}, {"stripe_disputes", len(d.Disputes)},
		{"stripe_payouts", len(d.Payouts)}, {"stripe_balance_transactions", len(d.BalanceTransactions)},
	} {
		if got := e.count(t, "SELECT COUNT(*) FROM "+c.table); got != int64(c.want) {
			t.Errorf("%s: got %d rows, want %d", c.table, got, c.want)
		}
	}
	if total := len(d.Customers) + len(d.PaymentIntents) + len(d.Charges) + len(d.Refunds) + len(d.Disputes) + len(d.Payouts) + len(d.BalanceTransactions); total < 20000 {
		t.Errorf("fixture has %d objects, want tens of thousands", total)
	}
	pages := 0
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r, "GET /v1/balance_transactions?") && strings.Contains(r, "starting_after=") && !strings.Contains(r, "payout=") {
			pages++
		}
	}
	if pages < 70 {
		t.Errorf("balance transactions came in %d follow-on pages, want auto-pagination over 70+", pages)
	}
	if n := e.count(t, "SELECT COUNT(*) FROM stripe_balance_transactions WHERE jurisdiction = ''"); n != 0 {
		t.Errorf("%d balance transactions not attributed after sync", n)
	}
	if n := e.count(t, "SELECT COUNT(DISTINCT jurisdiction) FROM stripe_balance_transactions WHERE category = 'charge'"); n != 4 {
		t.Errorf("charges fall in %d jurisdictions, want us, eu, apac and unattributed", n)
	}
	var paid int64
	for _, po := range d.Payouts {
		if po.Automatic {
			paid++
		}
	}
	if n := e.count(t, "SELECT COUNT(*) FROM stripe_payouts WHERE transactions_synced_at != ''"); n != paid {
		t.Errorf("%d payouts have their transactions listed, want %d", n, paid)
	}

	// A second sync is incremental and changes nothing.
	before := len(srv.Requests())
	run2, err := e.svc.Sync(ctx, "schedule")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(srv.Requests()) - before; got > 20 {
		t.Errorf("second sync made %d requests, want only one short page per kind", got)
	}
	if run2.Objects > 100 {
		t.Errorf("second sync stored %d objects, want only the overlap second", run2.Objects)
	}
	if got := e.count(t, "SELECT COUNT(*) FROM stripe_balance_transactions"); got != int64(len(d.BalanceTransactions)) {
		t.Errorf("after a second sync: %d balance transactions, want %d", got, len(d.BalanceTransactions))
	}
}

// TestSyncResumesAfterCrash stops a sync part-way (as a crash would) and
// checks that the next one resumes after the last committed page instead
// of starting over, and ends with every object exactly once.
func TestSyncResumesAfterCrash(t *testing.T) {
	srv, d := fixture(t, stripefixture.Options{Seed: 2, ChargesPerDay: 15})
	e := newService(t, srv.URL(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	var pages atomic.Int32
	srv.OnList = func(kind string, q url.Values) {
		if kind == "balance_transactions" && q.Get("payout") == "" && pages.Add(1) == 5 {
			cancel()
		}
	}
	if _, err := e.svc.Sync(ctx, "schedule"); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted sync: got %v, want context.Canceled", err)
	}
	stored := e.count(t, "SELECT COUNT(*) FROM stripe_balance_transactions")
	if stored == 0 || stored >= int64(len(d.BalanceTransactions)) {
		t.Fatalf("after the interruption %d of %d balance transactions are stored, want some", stored, len(d.BalanceTransactions))
	}
	srv.OnList = nil
	before := len(srv.Requests())
	run, err := e.svc.Sync(context.Background(), "schedule")
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for _, r := range srv.Requests()[before:] {
		if strings.HasPrefix(r, "GET /v1/balance_transactions?") {
			first = r
			break
		}
	}
	if !strings.Contains(first, "starting_after=") {
		t.Errorf("the resumed sync's first balance transaction request is %q, want it to start after the last committed id", first)
	}
	e.rollupMatches(t)
	if got := e.count(t, "SELECT COUNT(*) FROM stripe_balance_transactions"); got != int64(len(d.BalanceTransactions)) {
		t.Errorf("after resuming: %d balance transactions, want %d", got, len(d.BalanceTransactions))
	}
	runs, err := e.svc.RecentRuns(context.Background(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[1].Status != "failed" || run.Status != "ok" {
		t.Errorf("runs: got %+v, want the interrupted one failed and the resumed one ok", runs)
	}
}

func TestFixtureIsDeterministic(t *testing.T) {
	o := stripefixture.Options{Seed: 7, End: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	a, b := stripefixture.Generate(o), stripefixture.Generate(o)
	if len(a.BalanceTransactions) != len(b.BalanceTransactions) || a.Unreconciled != b.Unreconciled || a.Unreconciled == "" {
		t.Errorf("two datasets from the same options differ, or none has an unreconciled payout (%q)", a.Unreconciled)
	}
}

// A key too short to show its end gives no last four characters (the page
// then says so, rather than "ending in" and nothing).
func TestDescribeShortKey(t *testing.T) {
	if got := billing.DescribeKey(billing.NewSecret("sk_test_123")); !got.Set || got.LastFour != "" {
		t.Errorf("DescribeKey(short) = %+v, want set with no last four", got)
	}
	if got := billing.DescribeKey(billing.NewSecret("rk_test_51Hx0000000000000042Zq")); got.LastFour != "42Zq" {
		t.Errorf("DescribeKey(long) = %+v, want last four 42Zq", got)
	}
}

// TestSyncStoresChangedBalanceTransaction re-lists balance transactions
// that Stripe now reports differently (the sandbox's fixture, regenerated
// on restart, gives the same ids new times). Each upsert fires the
// rollup's update trigger, which marks the old and the new day dirty; a
// day already marked in the same sync must not fail the sync with a
// UNIQUE constraint on the dirty days.
func TestSyncStoresChangedBalanceTransaction(t *testing.T) {
	srv, d := fixture(t, stripefixture.Options{Seed: 3, ChargesPerDay: 5})
	e := newService(t, srv.URL(), nil)
	ctx := context.Background()
	if run, err := e.svc.Sync(ctx, "demand"); err != nil || run.Status != "ok" {
		t.Fatalf("first sync: %v (%+v)", err, run)
	}
	moved := []*stripefixture.BalanceTransaction{d.BalanceTransactions[0], d.BalanceTransactions[len(d.BalanceTransactions)/2]}
	now := time.Now().Unix()
	srv.Update(func(*stripefixture.Dataset) {
		for _, bt := range moved {
			bt.Created, bt.Fee, bt.Net = now, bt.Fee+7, bt.Net-7
		}
	})
	run, err := e.svc.Sync(ctx, "demand")
	if err != nil || run.Status != "ok" {
		t.Fatalf("second sync: %v, status %q (%s), want ok", err, run.Status, run.Error)
	}
	for _, bt := range moved {
		if got := e.count(t, "SELECT fee FROM stripe_balance_transactions WHERE id = ?", bt.ID); got != bt.Fee {
			t.Errorf("%s: stored fee %d, want the changed %d", bt.ID, got, bt.Fee)
		}
	}
	e.rollupMatches(t)
}
