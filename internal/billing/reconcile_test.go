package billing_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"testing"
	"time"

	"portal/internal/billing"
	"portal/internal/billing/stripefixture"
)

// TestReconciliationAndRevenue checks against the fixture's own numbers:
// every paid payout reconciles except the one whose listing leaves a
// charge out, which is flagged short by exactly that charge's net; and
// revenue figures add up per currency, never across currencies.
func TestReconciliationAndRevenue(t *testing.T) {
	srv, d := fixture(t, stripefixture.Options{Seed: 3, ChargesPerDay: 15})
	e := newService(t, srv.URL(), nil)
	ctx := context.Background()
	if _, err := e.svc.Sync(ctx, "demand"); err != nil {
		t.Fatal(err)
	}
	payouts, _, err := e.svc.Payouts(ctx, billing.PayoutFilter{Limit: billing.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(payouts) != len(d.Payouts) {
		t.Fatalf("got %d payouts, want %d", len(payouts), len(d.Payouts))
	}
	for _, p := range payouts {
		want := billing.Reconciled
		switch {
		case p.ID == d.Unreconciled:
			want = billing.Mismatch
			if p.Difference.Amount != d.Missing.Net {
				t.Errorf("payout %s: difference %d, want the missing transaction's net %d", p.ID, p.Difference.Amount, d.Missing.Net)
			}
		case p.Status != "paid":
			want = billing.InFlight
		}
		if p.State != want {
			t.Errorf("payout %s (%s): state %s, want %s: %s", p.ID, p.Status, p.State, want, p.Explain())
		}
	}
	mismatched, _, err := e.svc.Payouts(ctx, billing.PayoutFilter{State: billing.Mismatch})
	if err != nil {
		t.Fatal(err)
	}
	if len(mismatched) != 1 || mismatched[0].ID != d.Unreconciled {
		t.Errorf("mismatch filter: got %v, want only %s", mismatched, d.Unreconciled)
	}

	months, err := e.svc.Reconciliation(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	flagged := 0
	for _, m := range months {
		if m.States[billing.Mismatch] > 0 {
			flagged++
			if m.Difference.Amount != d.Missing.Net {
				t.Errorf("%s %s: difference %d, want %d", m.Month, m.Currency, m.Difference.Amount, d.Missing.Net)
			}
		}
	}
	if flagged != 1 {
		t.Errorf("%d months flagged with a mismatch, want 1", flagged)
	}

	// Revenue: expected sums straight from the fixture, per currency.
	want := map[string]*billing.Figures{}
	fig := func(cur string) *billing.Figures {
		if want[cur] == nil {
			want[cur] = &billing.Figures{}
		}
		return want[cur]
	}
	for _, bt := range d.BalanceTransactions {
		f := fig(bt.Currency)
		switch bt.Type {
		case "charge":
			f.Gross += bt.Amount
		case "refund":
			f.Refunds += bt.Amount
		case "adjustment":
			f.Disputes += bt.Amount
		default:
			continue
		}
		f.Fees += bt.Fee
		f.Net += bt.Net
		f.Count++
	}
	for _, period := range []string{billing.Day, billing.Week, billing.Month} {
		revs, err := e.svc.Revenue(ctx, billing.RevenueFilter{Period: period})
		if err != nil {
			t.Fatal(err)
		}
		if len(revs) != 3 {
			t.Fatalf("%s: %d currencies, want 3 (usd, eur, sgd), each on its own", period, len(revs))
		}
		for _, cr := range revs {
			var sum billing.Figures
			for _, r := range cr.Rows {
				sum.Gross += r.Gross
				sum.Refunds += r.Refunds
				sum.Disputes += r.Disputes
				sum.Fees += r.Fees
				sum.Net += r.Net
				sum.Count += r.Count
				if r.Net != r.Gross+r.Refunds+r.Disputes-r.Fees {
					t.Errorf("%s %s %s: net %d != gross+refunds+disputes-fees", period, cr.Currency, r.Start, r.Net)
				}
			}
			if w := *want[cr.Currency]; sum != w || cr.Total != w {
				t.Errorf("%s %s: periods sum to %+v, total %+v, want %+v", period, cr.Currency, sum, cr.Total, w)
			}
			// Each period holds exactly its days' transactions.
			gross, count := map[time.Time]int64{}, map[time.Time]int64{}
			for _, bt := range d.BalanceTransactions {
				if bt.Currency != cr.Currency || !slices.Contains([]string{"charge", "refund", "adjustment"}, bt.Type) {
					continue
				}
				start, _ := billing.PeriodOf(period, bt.Created/86400)
				count[start]++
				if bt.Type == "charge" {
					gross[start] += bt.Amount
				}
			}
			if len(cr.Rows) != len(count) {
				t.Errorf("%s %s: %d periods, want %d", period, cr.Currency, len(cr.Rows), len(count))
			}
			for _, r := range cr.Rows {
				if wantStart, wantEnd := billing.PeriodOf(period, r.Start.Unix()/86400); !r.Start.Equal(wantStart) || !r.End.Equal(wantEnd) {
					t.Errorf("%s %s: period %s to %s, want %s to %s", period, cr.Currency, r.Start, r.End, wantStart, wantEnd)
				}
				if r.Gross != gross[r.Start] || r.Count != count[r.Start] {
					t.Errorf("%s %s %s: gross %d over %d transactions, want %d over %d", period, cr.Currency, r.Start.Format("2006-01-02"), r.Gross, r.Count, gross[r.Start], count[r.Start])
				}
			}
			var byJ billing.Figures
			for _, j := range cr.ByJurisdiction {
				byJ.Net += j.Net
				byJ.Count += j.Count
			}
			if byJ.Net != cr.Total.Net || byJ.Count != cr.Total.Count {
				t.Errorf("%s: jurisdictions sum to net %d over %d, want %d over %d", cr.Currency, byJ.Net, byJ.Count, cr.Total.Net, cr.Total.Count)
			}
		}
	}

	// Drill-down: the transactions behind a figure sum to it.
	revs, _ := e.svc.Revenue(ctx, billing.RevenueFilter{Period: billing.Month, Currency: "eur", Jurisdiction: "eu"})
	row := revs[0].Rows[0]
	_, _, totals, err := e.svc.Transactions(ctx, billing.TxFilter{Currency: "eur", Jurisdiction: "eu", Category: billing.CatCharge, From: row.Start, To: row.End})
	if err != nil {
		t.Fatal(err)
	}
	if len(totals) != 1 || totals[0].Amount.Amount != row.Gross {
		t.Errorf("drill-down into EU gross %s: transactions sum to %+v, want %d", row.Start.Format("2006-01"), totals, row.Gross)
	}

	// Export: one CSV row per transaction of the month, plus the header.
	var buf bytes.Buffer
	if err := e.svc.ExportTransactions(ctx, billing.TxFilter{From: row.Start, To: row.End}, &buf); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	_, _, all, _ := e.svc.Transactions(ctx, billing.TxFilter{From: row.Start, To: row.End})
	var n int64
	for _, c := range all {
		n += c.Count
	}
	if int64(len(recs)-1) != n {
		t.Errorf("export of %s: %d rows, want %d", row.Start.Format("2006-01"), len(recs)-1, n)
	}
}

// TestPayoutInFlightBecomesPaid: a payout in transit at one sync and paid
// by the next is refreshed and reconciled without any webhook.
func TestPayoutInFlightBecomesPaid(t *testing.T) {
	srv, d := fixture(t, stripefixture.Options{Seed: 6, ChargesPerDay: 5})
	var open *stripefixture.Payout
	for _, p := range d.Payouts {
		if p.Status == "paid" && p.ID != d.Unreconciled {
			open = p
		}
	}
	srv.Update(func(*stripefixture.Dataset) { open.Status = "in_transit" })
	e := newService(t, srv.URL(), nil)
	ctx := context.Background()
	if _, err := e.svc.Sync(ctx, "schedule"); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.svc.Payout(ctx, open.ID); p.State != billing.InFlight {
		t.Fatalf("payout in transit: state %s, want %s", p.State, billing.InFlight)
	}
	srv.Update(func(*stripefixture.Dataset) { open.Status = "paid" })
	if _, err := e.svc.Sync(ctx, "schedule"); err != nil {
		t.Fatal(err)
	}
	if p, _ := e.svc.Payout(ctx, open.ID); p.Status != "paid" || p.State != billing.Reconciled {
		t.Errorf("after it was paid: status %s, state %s; want paid and reconciled", p.Status, p.State)
	}
}

func TestMoney(t *testing.T) {
	for _, c := range []struct {
		m             billing.Money
		display, decs string
	}{
		{billing.Money{123456, "usd"}, "1,234.56 USD", "1234.56"},
		{billing.Money{-5, "eur"}, "-0.05 EUR", "-0.05"},
		{billing.Money{1234567, "jpy"}, "1,234,567 JPY", "1234567"},
		{billing.Money{1000, "kwd"}, "1.000 KWD", "1.000"},
		{billing.Money{0, "sgd"}, "0.00 SGD", "0.00"},
	} {
		if got := c.m.Display(); got != c.display {
			t.Errorf("Display(%v): got %q, want %q", c.m, got, c.display)
		}
		if got := c.m.Decimal(); got != c.decs {
			t.Errorf("Decimal(%v): got %q, want %q", c.m, got, c.decs)
		}
	}
}

func TestKeyIsNeverShown(t *testing.T) {
	key := billing.NewSecret("rk_live_abcdefghijklmnopqrstWXYZ")
	info := billing.DescribeKey(key)
	if info.Mode != "live" || !info.Restricted || info.LastFour != "WXYZ" {
		t.Errorf("DescribeKey: got %+v, want live, restricted, WXYZ", info)
	}
	for _, s := range []string{key.String(), key.GoString()} {
		if s == key.Reveal() || len(s) > 30 && s[len(s)-4:] == "WXYZ" {
			t.Errorf("formatting the key shows it: %q", s)
		}
	}
}
