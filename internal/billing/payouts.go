package billing

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/store"
)

// Reconciliation states of a payout.
const (
	Reconciled = "reconciled" // its transactions sum to its amount
	Mismatch   = "mismatch"   // they do not: transactions missing or extra
	NotListed  = "not_listed" // its transactions have not been listed yet
	InFlight   = "in_flight"  // pending or in transit: not final yet
	Manual     = "manual"     // a manual payout: Stripe does not list its transactions
	Failed     = "failed"     // failed or canceled: no money moved
)

// Payout is a payout with its reconciliation.
type Payout struct {
	ID          string
	Created     time.Time
	ArrivalDate time.Time
	Amount      Money
	Status      string
	Automatic   bool
	Method      string
	Description string
	// TxCount and TxNet are the payout's balance transactions (other than
	// the payout's own) as Stripe lists them for it.
	TxCount    int64
	TxNet      Money
	Difference Money // Amount - TxNet
	State      string
	ListedAt   time.Time
}

// Explain says in words what a payout's state means.
func (p Payout) Explain() string {
	switch p.State {
	case Reconciled:
		return fmt.Sprintf("Its %d balance transactions sum to the payout amount.", p.TxCount)
	case Mismatch:
		if p.Difference.Amount > 0 {
			return fmt.Sprintf("Its %d balance transactions sum to %s, %s short of the payout: transactions are missing.",
				p.TxCount, p.TxNet.Display(), p.Difference.Display())
		}
		return fmt.Sprintf("Its %d balance transactions sum to %s, %s more than the payout.", p.TxCount, p.TxNet.Display(),
			Money{-p.Difference.Amount, p.Difference.Currency}.Display())
	case NotListed:
		return "Its balance transactions have not been listed from Stripe yet; they are at the next sync."
	case InFlight:
		return "The payout is " + strings.ReplaceAll(p.Status, "_", " ") + "; it is reconciled once paid."
	case Manual:
		return "A manual payout: Stripe does not say which transactions it paid out, so it cannot be reconciled by transaction."
	case Failed:
		return "The payout " + p.Status + "; no money reached the bank."
	}
	return ""
}

func stateOf(p Payout) string {
	switch {
	case p.Status == "failed" || p.Status == "canceled":
		return Failed
	case !p.Automatic:
		return Manual
	case p.ListedAt.IsZero():
		return NotListed
	case p.Status != "paid":
		return InFlight
	case p.Difference.Amount == 0:
		return Reconciled
	}
	return Mismatch
}

// PayoutStates lists the states in display order.
func PayoutStates() []string {
	return []string{Mismatch, NotListed, Reconciled, InFlight, Manual, Failed}
}

// PayoutFilter selects payouts.
type PayoutFilter struct {
	Month    string // YYYY-MM of the arrival date
	Currency string
	State    string
	Sort     string // arrival, amount, difference; "-" prefix descending (default -arrival)
	Offset   int
	Limit    int
}

const payoutColumns = `id, created, arrival_date, amount, currency, status, automatic, method, description, tx_count, tx_net, transactions_synced_at`

func scanPayout(r interface{ Scan(...any) error }) (Payout, error) {
	var p Payout
	var created, arrival, amount, txNet int64
	var cur, listed string
	var auto int
	if err := r.Scan(&p.ID, &created, &arrival, &amount, &cur, &p.Status, &auto, &p.Method, &p.Description, &p.TxCount, &txNet, &listed); err != nil {
		return p, err
	}
	p.Created, p.ArrivalDate = time.Unix(created, 0).UTC(), time.Unix(arrival, 0).UTC()
	p.Amount, p.TxNet, p.Difference = Money{amount, cur}, Money{txNet, cur}, Money{amount - txNet, cur}
	p.Automatic, p.ListedAt = auto == 1, parseTime(listed)
	p.State = stateOf(p)
	return p, nil
}

// allPayouts returns every payout matching the month and currency;
// payouts number in the hundreds a year, so state filters, sorting and
// paging happen here.
func (s *Service) allPayouts(ctx context.Context, month, currency string) ([]Payout, error) {
	var where []string
	var args []any
	if month != "" {
		start, err := time.Parse("2006-01", month)
		if err != nil {
			return nil, apperr.New(apperr.Invalid, "month %q is not a month like 2026-01", month)
		}
		where, args = append(where, "arrival_date >= ? AND arrival_date < ?"), append(args, start.Unix(), start.AddDate(0, 1, 0).Unix())
	}
	if currency != "" {
		where, args = append(where, "currency = ?"), append(args, currency)
	}
	if len(where) == 0 {
		where = []string{"1 = 1"}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+payoutColumns+` FROM stripe_payouts WHERE `+strings.Join(where, " AND ")+` ORDER BY arrival_date DESC, id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: payouts: %w", err)
	}
	defer rows.Close()
	var out []Payout
	for rows.Next() {
		p, err := scanPayout(rows)
		if err != nil {
			return nil, fmt.Errorf("billing: payouts: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Payouts returns one page of payouts and whether more follow.
func (s *Service) Payouts(ctx context.Context, f PayoutFilter) ([]Payout, bool, error) {
	all, err := s.allPayouts(ctx, f.Month, f.Currency)
	if err != nil {
		return nil, false, err
	}
	var out []Payout
	for _, p := range all {
		if f.State == "" || p.State == f.State {
			out = append(out, p)
		}
	}
	desc := strings.HasPrefix(f.Sort, "-")
	key := strings.TrimPrefix(f.Sort, "-")
	less := func(a, b Payout) bool { return a.ArrivalDate.Before(b.ArrivalDate) }
	switch key {
	case "amount":
		less = func(a, b Payout) bool { return a.Amount.Amount < b.Amount.Amount }
	case "difference":
		less = func(a, b Payout) bool { return abs(a.Difference.Amount) < abs(b.Difference.Amount) }
	default:
		if f.Sort == "" {
			desc = true
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if desc {
			return less(out[j], out[i])
		}
		return less(out[i], out[j])
	})
	if f.Limit <= 0 || f.Limit > MaxLimit {
		f.Limit = 50
	}
	if f.Offset >= len(out) {
		return nil, false, nil
	}
	out = out[f.Offset:]
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	return out, more, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// Payout returns one payout.
func (s *Service) Payout(ctx context.Context, id string) (Payout, error) {
	p, err := scanPayout(s.db.QueryRowContext(ctx, `SELECT `+payoutColumns+` FROM stripe_payouts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no payout %s has been synced", id)
	}
	if err != nil {
		return p, fmt.Errorf("billing: payout %s: %w", id, err)
	}
	return p, nil
}

// CategoryTotals sums a payout's transactions of one category.
type CategoryTotals struct {
	Category         string
	Count            int64
	Amount, Fee, Net Money
}

// PayoutBreakdown sums a payout's balance transactions per category, and
// counts those whose charge is not stored (so their customer and
// jurisdiction are unknown).
func (s *Service) PayoutBreakdown(ctx context.Context, p Payout) ([]CategoryTotals, int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT category, COUNT(*), SUM(amount), SUM(fee), SUM(net), SUM(jurisdiction = '' AND category IN ('charge', 'refund', 'dispute'))
		FROM stripe_balance_transactions WHERE payout_id = ? GROUP BY category ORDER BY category`, p.ID)
	if err != nil {
		return nil, 0, fmt.Errorf("billing: payout %s breakdown: %w", p.ID, err)
	}
	defer rows.Close()
	var out []CategoryTotals
	var unlinked int64
	cur := p.Amount.Currency
	for rows.Next() {
		var c CategoryTotals
		var a, f, n, u int64
		if err := rows.Scan(&c.Category, &c.Count, &a, &f, &n, &u); err != nil {
			return nil, 0, fmt.Errorf("billing: payout %s breakdown: %w", p.ID, err)
		}
		c.Amount, c.Fee, c.Net = Money{a, cur}, Money{f, cur}, Money{n, cur}
		unlinked += u
		out = append(out, c)
	}
	return out, unlinked, rows.Err()
}

// MonthReconciliation sums one month's payouts (by arrival date) in one
// currency.
type MonthReconciliation struct {
	Month      string // YYYY-MM
	Currency   string
	Payouts    int
	Amount     Money // all payouts that moved money
	TxNet      Money // their listed transactions
	Difference Money
	States     map[string]int
}

// Reconciled reports whether every payout of the month reconciles.
func (m MonthReconciliation) Reconciled() bool {
	return m.States[Mismatch] == 0 && m.States[NotListed] == 0 && m.States[InFlight] == 0
}

// Reconciliation returns the monthly view, newest month first.
func (s *Service) Reconciliation(ctx context.Context, currency string) ([]MonthReconciliation, error) {
	all, err := s.allPayouts(ctx, "", currency)
	if err != nil {
		return nil, err
	}
	type key struct{ month, cur string }
	by := map[key]*MonthReconciliation{}
	var keys []key
	for _, p := range all {
		k := key{p.ArrivalDate.Format("2006-01"), p.Amount.Currency}
		m := by[k]
		if m == nil {
			m = &MonthReconciliation{Month: k.month, Currency: k.cur, Amount: Money{0, k.cur}, TxNet: Money{0, k.cur}, Difference: Money{0, k.cur}, States: map[string]int{}}
			by[k] = m
			keys = append(keys, k)
		}
		m.Payouts++
		m.States[p.State]++
		if p.State != Failed {
			m.Amount.Amount += p.Amount.Amount
			m.TxNet.Amount += p.TxNet.Amount
			if p.State != Manual {
				m.Difference.Amount += p.Difference.Amount
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].month != keys[j].month {
			return keys[i].month > keys[j].month
		}
		return keys[i].cur < keys[j].cur
	})
	out := make([]MonthReconciliation, len(keys))
	for i, k := range keys {
		out[i] = *by[k]
	}
	return out, nil
}

// ExportPayouts writes the selected payouts with their reconciliation as CSV.
func (s *Service) ExportPayouts(ctx context.Context, f PayoutFilter, w io.Writer) error {
	f.Offset, f.Limit = 0, 0
	all, err := s.allPayouts(ctx, f.Month, f.Currency)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "created_utc", "arrival_date_utc", "status", "currency", "amount", "transactions", "transactions_net",
		"difference", "amount_minor", "transactions_net_minor", "difference_minor", "reconciliation", "explanation"})
	for _, p := range all {
		if f.State != "" && p.State != f.State {
			continue
		}
		_ = cw.Write([]string{p.ID, p.Created.Format(time.RFC3339), p.ArrivalDate.Format(time.RFC3339), p.Status,
			strings.ToUpper(p.Amount.Currency), p.Amount.Decimal(), i64(p.TxCount), p.TxNet.Decimal(), p.Difference.Decimal(),
			i64(p.Amount.Amount), i64(p.TxNet.Amount), i64(p.Difference.Amount), p.State, p.Explain()})
	}
	cw.Flush()
	return cw.Error()
}

// ExportReconciliation writes the monthly reconciliation as CSV.
func (s *Service) ExportReconciliation(ctx context.Context, currency string, w io.Writer) error {
	months, err := s.Reconciliation(ctx, currency)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	header := []string{"month", "currency", "payouts", "payout_total", "transactions_net", "difference", "payout_total_minor", "transactions_net_minor", "difference_minor"}
	header = append(header, PayoutStates()...)
	_ = cw.Write(header)
	for _, m := range months {
		rec := []string{m.Month, strings.ToUpper(m.Currency), fmt.Sprint(m.Payouts), m.Amount.Decimal(), m.TxNet.Decimal(), m.Difference.Decimal(),
			i64(m.Amount.Amount), i64(m.TxNet.Amount), i64(m.Difference.Amount)}
		for _, st := range PayoutStates() {
			rec = append(rec, fmt.Sprint(m.States[st]))
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

// ExportRevenue writes the revenue table as CSV: one row per period,
// currency and jurisdiction, and a row per period and currency for all
// jurisdictions together.
func (s *Service) ExportRevenue(ctx context.Context, f RevenueFilter, w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"period_start", "period_end_exclusive", "currency", "jurisdiction", "gross", "refunds", "disputes", "fees", "net",
		"gross_minor", "refunds_minor", "disputes_minor", "fees_minor", "net_minor", "transactions"})
	js := []string{""}
	if f.Jurisdiction == "" {
		js = append(js, JurisdictionIDs()...)
	} else {
		js = []string{f.Jurisdiction}
	}
	type rowKey struct {
		start    time.Time
		cur, jur string
	}
	rows := map[rowKey]RevenueRow{}
	var keys []rowKey
	for _, j := range js {
		jf := f
		if j != "" {
			jf.Jurisdiction = j
		}
		revs, err := s.Revenue(ctx, jf)
		if err != nil {
			return err
		}
		label := j
		if label == "" {
			label = "all"
		}
		for _, cr := range revs {
			for _, r := range cr.Rows {
				k := rowKey{r.Start, cr.Currency, label}
				rows[k] = r
				keys = append(keys, k)
			}
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		if !keys[i].start.Equal(keys[j].start) {
			return keys[i].start.Before(keys[j].start)
		}
		return keys[i].cur < keys[j].cur
	})
	for _, k := range keys {
		r := rows[k]
		m := func(n int64) Money { return Money{n, k.cur} }
		_ = cw.Write([]string{r.Start.Format("2006-01-02"), r.End.Format("2006-01-02"), strings.ToUpper(k.cur), k.jur,
			m(r.Gross).Decimal(), m(r.Refunds).Decimal(), m(r.Disputes).Decimal(), m(r.Fees).Decimal(), m(r.Net).Decimal(),
			i64(r.Gross), i64(r.Refunds), i64(r.Disputes), i64(r.Fees), i64(r.Net), i64(r.Count)})
	}
	cw.Flush()
	return cw.Error()
}
