package billing_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"portal/internal/billing"
	"portal/internal/billing/stripefixture"
	"portal/internal/store"
)

// BenchmarkSyncBalanceTransactions syncs 100,000+ balance transactions
// from the fixture server (1,000 charges a day for 95 days, with their
// refunds, disputes and payouts), page by page as a sync does.
func BenchmarkSyncBalanceTransactions(b *testing.B) {
	end := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	srv, d := fixture(b, stripefixture.Options{Seed: 9, End: end, Start: end.AddDate(0, 0, -95), ChargesPerDay: 1000})
	n := len(d.BalanceTransactions)
	if n < 100000 {
		b.Fatalf("fixture has %d balance transactions, want 100,000+", n)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e := newService(b, srv.URL(), nil)
		b.StartTimer()
		start := time.Now()
		if err := e.svc.SyncKindForBenchmark(context.Background(), "balance_transactions"); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "objects/s")
	}
	b.ReportMetric(float64(n), "objects")
	reportMemory(b)
}

// BenchmarkRevenueQueries runs the revenue pages' queries over 1,000,000
// balance transactions (a year, three currencies, four jurisdiction
// buckets) and reports the p95 latency of each.
func BenchmarkRevenueQueries(b *testing.B) {
	e := newService(b, "http://127.0.0.1:1", nil)
	ctx := context.Background()
	const rows = 1_000_000
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seedTransactions(b, e.db, rows, end)
	if err := e.svc.RefreshDailyForBenchmark(ctx); err != nil {
		b.Fatal(err)
	}
	last := end.AddDate(0, 0, -31)
	queries := []struct {
		name string
		run  func() error
	}{
		{"revenue-month-all", func() error { _, err := e.svc.Revenue(ctx, billing.RevenueFilter{Period: billing.Month}); return err }},
		{"revenue-week-usd", func() error {
			_, err := e.svc.Revenue(ctx, billing.RevenueFilter{Period: billing.Week, Currency: "usd"})
			return err
		}},
		{"revenue-day-31d", func() error {
			_, err := e.svc.Revenue(ctx, billing.RevenueFilter{Period: billing.Day, From: last, To: end})
			return err
		}},
		{"revenue-month-eu", func() error {
			_, err := e.svc.Revenue(ctx, billing.RevenueFilter{Period: billing.Month, Jurisdiction: "eu"})
			return err
		}},
		{"drilldown-page-month", func() error {
			_, _, _, err := e.svc.Transactions(ctx, billing.TxFilter{Currency: "eur", Jurisdiction: "eu", Category: "charge",
				From: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)})
			return err
		}},
		{"transactions-first-page", func() error { _, _, _, err := e.svc.Transactions(ctx, billing.TxFilter{}); return err }},
	}
	b.ResetTimer()
	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			var lat []time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if err := q.run(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[(len(lat)*95+99)/100-1].Microseconds())/1000, "p95-ms")
		})
	}
	reportMemory(b)
}

// seedTransactions writes n balance transactions straight into the
// database: a year up to end, charges with some refunds and disputes.
func seedTransactions(b *testing.B, db *store.DB, n int, end time.Time) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	curs := []string{"usd", "eur", "sgd"}
	juris := []string{"us", "eu", "apac", "unattributed"}
	span := int64(365 * 86400)
	from := end.Unix() - span
	now := store.Time(time.Now())
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		st, err := tx.Prepare(`INSERT INTO stripe_balance_transactions (id, created, day, available_on, type, reporting_category, category,
			status, amount, fee, net, currency, source_id, source_type, charge_id, jurisdiction, synced_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'available', ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			created := from + rng.Int64N(span)
			amount := int64(500 + rng.IntN(40000))
			typ, cat, fee := "charge", "charge", amount*29/1000+30
			switch r := rng.IntN(100); {
			case r < 6:
				typ, cat, amount, fee = "refund", "refund", -amount, 0
			case r < 7:
				typ, cat, amount, fee = "adjustment", "dispute", -amount, 1500
			}
			ch := "ch_" + strconv.Itoa(i)
			if _, err := st.Exec(fmt.Sprintf("txn_%09d", i), created, created/86400, created, typ, cat, cat, amount, fee, amount-fee,
				curs[rng.IntN(3)], ch, "charge", ch, juris[rng.IntN(4)], now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// reportMemory reports the Go heap in use and the process's peak
// resident memory.
func reportMemory(b *testing.B) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(m.HeapInuse)/(1<<20), "heap-MiB")
	if s, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(s), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					b.ReportMetric(kb/1024, "peak-RSS-MiB")
				}
			}
		}
	}
}
