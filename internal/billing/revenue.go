package billing

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"portal/internal/store"
)

// Periods a revenue table can be grouped by.
const (
	Day   = "day"
	Week  = "week" // ISO weeks, starting Monday
	Month = "month"
)

// RevenueFilter selects what the revenue page sums. Times are UTC days;
// To is exclusive.
type RevenueFilter struct {
	Period       string
	From, To     time.Time
	Currency     string // "" for every currency, each summed on its own
	Jurisdiction string // "" for all; us, eu, apac or unattributed
}

// Figures are the sums of one currency's balance transactions. They add
// up: Net = Gross + Refunds + Disputes - Fees.
type Figures struct {
	Gross    int64 // charges
	Refunds  int64 // negative
	Disputes int64 // negative (withdrawals) or positive (won back)
	Fees     int64 // Stripe fees, positive
	Net      int64
	Count    int64 // balance transactions summed
}

func (f *Figures) add(cat string, amount, fee, net, n int64) {
	switch cat {
	case CatCharge:
		f.Gross += amount
	case CatRefund:
		f.Refunds += amount
	case CatDispute:
		f.Disputes += amount
	case CatFee:
		f.Fees -= amount
	}
	f.Fees += fee
	f.Net += net
	f.Count += n
}

func (f *Figures) plus(o Figures) {
	f.Gross += o.Gross
	f.Refunds += o.Refunds
	f.Disputes += o.Disputes
	f.Fees += o.Fees
	f.Net += o.Net
	f.Count += o.Count
}

// RevenueRow is one period of one currency.
type RevenueRow struct {
	Start, End time.Time // End exclusive
	Figures
}

// JurisdictionFigures is one jurisdiction's share of a currency.
type JurisdictionFigures struct {
	Jurisdiction string
	Figures
}

// CurrencyRevenue is everything the page shows for one currency.
type CurrencyRevenue struct {
	Currency       string
	Rows           []RevenueRow // oldest first, only periods with money
	Total          Figures
	ByJurisdiction []JurisdictionFigures // every bucket, in display order
}

// Revenue sums revenue per period, currency and jurisdiction, from the
// balance transactions that are charges, refunds, disputes and fees.
func (s *Service) Revenue(ctx context.Context, f RevenueFilter) ([]CurrencyRevenue, error) {
	where := []string{"category IN ('charge', 'refund', 'dispute', 'fee')"}
	var args []any
	if !f.From.IsZero() {
		where, args = append(where, "day >= ?"), append(args, dayOf(f.From.Unix()))
	}
	if !f.To.IsZero() {
		where, args = append(where, "day < ?"), append(args, dayOf(f.To.Unix()))
	}
	if f.Currency != "" {
		where, args = append(where, "currency = ?"), append(args, f.Currency)
	}
	if f.Jurisdiction != "" {
		w, a := jurisdictionWhere(f.Jurisdiction)
		where, args = append(where, w), append(args, a...)
	}
	// The daily rollup holds the same sums as the transactions (see
	// refreshDaily), at a fraction of the rows; the database sums its
	// days into the periods shown, so a monthly table of years of
	// revenue reads a row per month, not one per day.
	start := s.periodStart(f.Period)
	rows, err := s.db.QueryContext(ctx, `SELECT currency, `+start+`, jurisdiction, category, SUM(amount), SUM(fee), SUM(net), SUM(n)
		FROM stripe_bt_daily WHERE `+strings.Join(where, " AND ")+`
		GROUP BY currency, `+start+`, jurisdiction, category`, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: revenue: %w", err)
	}
	defer rows.Close()
	type key struct {
		currency string
		start    int64
	}
	byCur := map[string]*CurrencyRevenue{}
	periods := map[key]*RevenueRow{}
	juris := map[string]map[string]*Figures{}
	for rows.Next() {
		var cur, j, cat string
		var day, amount, fee, net, n int64
		if err := rows.Scan(&cur, &day, &j, &cat, &amount, &fee, &net, &n); err != nil {
			return nil, fmt.Errorf("billing: revenue: %w", err)
		}
		if j == "" {
			j = Unattributed
		}
		cr := byCur[cur]
		if cr == nil {
			cr = &CurrencyRevenue{Currency: cur}
			byCur[cur], juris[cur] = cr, map[string]*Figures{}
		}
		start, end := PeriodOf(f.Period, day)
		k := key{cur, start.Unix()}
		row := periods[k]
		if row == nil {
			row = &RevenueRow{Start: start, End: end}
			periods[k] = row
		}
		row.add(cat, amount, fee, net, n)
		cr.Total.add(cat, amount, fee, net, n)
		jf := juris[cur][j]
		if jf == nil {
			jf = &Figures{}
			juris[cur][j] = jf
		}
		jf.add(cat, amount, fee, net, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: revenue: %w", err)
	}
	for k, row := range periods {
		byCur[k.currency].Rows = append(byCur[k.currency].Rows, *row)
	}
	out := make([]CurrencyRevenue, 0, len(byCur))
	for cur, cr := range byCur {
		sort.Slice(cr.Rows, func(i, j int) bool { return cr.Rows[i].Start.Before(cr.Rows[j].Start) })
		for _, j := range JurisdictionIDs() {
			jf := JurisdictionFigures{Jurisdiction: j}
			if v := juris[cur][j]; v != nil {
				jf.Figures = *v
			}
			cr.ByJurisdiction = append(cr.ByJurisdiction, jf)
		}
		out = append(out, *cr)
	}
	// The currency with the most activity first.
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total.Count != out[j].Total.Count {
			return out[i].Total.Count > out[j].Total.Count
		}
		return out[i].Currency < out[j].Currency
	})
	return out, nil
}

// jurisdictionWhere filters on a jurisdiction bucket; transactions still
// waiting for their charge count as unattributed.
func jurisdictionWhere(j string) (string, []any) {
	if j == Unattributed {
		return "jurisdiction IN ('unattributed', '')", nil
	}
	return "jurisdiction = ?", []any{j}
}

// periodStart is the SQL for the first day of the period (day, ISO week
// or month) holding the rollup's day, as a UTC day number: PeriodOf gives
// that day's period the same bounds. Months need each database's date
// functions.
func (s *Service) periodStart(period string) string {
	switch period {
	case Day:
		return "day"
	case Week:
		// As PeriodOf: 1970-01-01 was a Thursday.
		return "(day - ((day % 7 + 7 + 3) % 7))"
	}
	if s.db.Dialect() == store.Postgres {
		return "(date_trunc('month', DATE '1970-01-01' + day::integer)::date - DATE '1970-01-01')"
	}
	return "CAST(julianday(date(day * 86400, 'unixepoch', 'start of month')) - 2440587.5 AS INTEGER)"
}

// PeriodOf returns the period (day, ISO week or month) holding UTC day
// number d, as [start, end).
func PeriodOf(period string, d int64) (time.Time, time.Time) {
	t := time.Unix(d*86400, 0).UTC()
	switch period {
	case Day:
		return t, t.AddDate(0, 0, 1)
	case Week:
		// 1970-01-01 was a Thursday: Monday is three days earlier.
		monday := d - ((d%7 + 7 + 3) % 7)
		start := time.Unix(monday*86400, 0).UTC()
		return start, start.AddDate(0, 0, 7)
	}
	start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// Currencies lists the currencies with stored balance transactions. Every
// billing page asks: rather than reading every transaction (DISTINCT),
// it walks the revenue index from one currency to the next, a lookup per
// currency.
func (s *Service) Currencies(ctx context.Context) ([]string, error) {
	return s.queryIDs(ctx, `WITH RECURSIVE c(currency) AS (
			SELECT MIN(currency) FROM stripe_balance_transactions
			UNION ALL
			SELECT (SELECT MIN(b.currency) FROM stripe_balance_transactions b WHERE b.currency > c.currency) FROM c WHERE c.currency IS NOT NULL
		)
		SELECT currency FROM c WHERE currency IS NOT NULL ORDER BY currency`)
}

// Span returns the first and last day with stored balance transactions
// (zero times when there are none).
func (s *Service) Span(ctx context.Context) (time.Time, time.Time, error) {
	var lo, hi *int64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(created), MAX(created) FROM stripe_balance_transactions`).Scan(&lo, &hi); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("billing: span: %w", err)
	}
	if lo == nil || hi == nil {
		return time.Time{}, time.Time{}, nil
	}
	return time.Unix(*lo, 0).UTC(), time.Unix(*hi, 0).UTC(), nil
}
