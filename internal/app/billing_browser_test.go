package app_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"portal/internal/app"
	"portal/internal/billing/stripefixture"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
)

// TestFinanceInBrowser is what a finance person does: sign in, read
// revenue by month, currency and jurisdiction, drill into a figure down to
// the charge and customer, open the payout that does not reconcile, and
// find the month flagged in the reconciliation.
func TestFinanceInBrowser(t *testing.T) {
	end := time.Now().UTC().Truncate(time.Second)
	d := stripefixture.Generate(stripefixture.Options{Seed: 5, End: end, Start: end.AddDate(0, -4, 0), ChargesPerDay: 10})
	fx := stripefixture.New(d)
	if err := fx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.Close() })
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "stripe.key")
	if err := os.WriteFile(keyFile, []byte("rk_test_browserfixture0000000000A1b2"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := app.ParseServe([]string{"-addr", "127.0.0.1:0", "-data-dir", dir, "-stripe-api-url", fx.URL(), "-stripe-secret-key-file", keyFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	if _, err := a.Billing.Sync(ctx, "demand"); err != nil {
		t.Fatalf("sync: %v", err)
	}
	// Finance uses two-factor too (every role does by default).
	clk := &wallClock{}
	password, secret := staffUser(t, a, clk, "fiona.finance@example.com", "Fiona Finance", staff.Finance)

	bctx := peertest.Chromium(t)
	bctx, bcancel := context.WithTimeout(bctx, 90*time.Second)
	defer bcancel()
	shot := func(name string) { peertest.KeepScreenshot(t, bctx, "finance-"+name+".png") }
	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	do("sign in", signInSteps(t, a.URL(), "fiona.finance@example.com", password, secret, clk), chromedp.WaitVisible(`[data-testid=nav-billing]`))
	do("open billing", chromedp.Click(`[data-testid=nav-billing]`), chromedp.WaitVisible(`[data-testid=currency-usd]`))
	shot("01-revenue-by-month")
	if got := text(`[data-testid=data-as-of]`); !strings.Contains(got, "Data as of") {
		t.Errorf("the revenue page says %q, want a data-as-of time", got)
	}
	juris := text(`[data-testid=jurisdictions-eur]`)
	for _, want := range []string{"EU (European Union)", "US (United States)", "APAC (Singapore)", "Unattributed"} {
		if !strings.Contains(juris, want) {
			t.Errorf("EUR by jurisdiction lacks %q", want)
		}
	}

	figure := text(`[data-testid=fig-eur-eu-gross]`)
	do("drill into EU gross volume in EUR", chromedp.Click(`[data-testid=fig-eur-eu-gross]`), chromedp.WaitVisible(`[data-testid=tx-totals]`))
	shot("02-drill-down")
	if got := text(`[data-testid=tx-totals]`); !strings.Contains(got, "amount "+figure) {
		t.Errorf("the transactions behind %s sum to %q", figure, got)
	}
	do("open the charge", chromedp.Click(`[data-testid=tx-rows] [data-testid=tx-source] a`), chromedp.WaitVisible(`[data-testid=charge-amount]`))
	shot("03-charge")
	if got := text(`[data-testid=charge-jurisdiction]`); !strings.HasPrefix(got, "EU") {
		t.Errorf("the charge behind EU revenue is attributed to %q", got)
	}
	do("open the customer", chromedp.Click(`[data-testid=charge-customer] a`), chromedp.WaitVisible(`[data-testid=customer-region]`))

	do("find the payout that does not reconcile", chromedp.Click(`[data-testid=tab-payouts]`), chromedp.WaitVisible(`[data-testid=payout-filter]`),
		chromedp.SetValue(`#f-state`, "mismatch"), chromedp.Submit(`[data-testid=payout-filter]`), chromedp.WaitVisible(`[data-testid=payout-rows]`))
	shot("04-payouts-mismatch")
	do("open it", chromedp.Click(`[data-testid=payout-link]`), chromedp.WaitVisible(`[data-testid=reconciliation]`))
	shot("05-payout-reconciliation")
	if got := text(`[data-testid=reconciliation]`); !strings.Contains(got, "short of the payout") {
		t.Errorf("the payout's reconciliation reads %q", got)
	}
	if got := text(`[data-testid=payout-amount]`); got == "" {
		t.Errorf("the payout page shows no amount")
	}

	do("open the monthly reconciliation", chromedp.Click(`[data-testid=tab-reconciliation]`), chromedp.WaitVisible(`[data-testid=recon-months]`))
	shot("06-reconciliation")
	if got := text(`[data-testid=month-mismatch]`); !strings.Contains(got, "1 not reconciled") {
		t.Errorf("the flagged month reads %q", got)
	}
	do("per week", chromedp.Navigate(a.URL()+"/billing?period=week&currency=usd"), chromedp.WaitVisible(`[data-testid=currency-usd]`))
	shot("07-revenue-by-week-usd")
	do("settings", chromedp.Click(`[data-testid=tab-settings]`), chromedp.WaitVisible(`[data-testid=key-status]`))
	shot("08-settings")
	if got := text(`[data-testid=key-status]`); !strings.Contains(got, "A1b2") || strings.Contains(got, "browserfixture") {
		t.Errorf("the key status reads %q, want the last four only", got)
	}
}
