package billing

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/csvcell"
	"portal/internal/store"
)

// MaxLimit bounds a page of any list.
const MaxLimit = 500

// Categories lists the balance transaction categories; "revenue" in a
// filter means the four the revenue figures sum.
var Categories = []string{CatCharge, CatRefund, CatDispute, CatFee, CatPayout, CatOther}

// TxFilter selects balance transactions.
type TxFilter struct {
	Currency     string
	Jurisdiction string
	Category     string // one of Categories, "revenue", or ""
	Payout       string
	Charge       string
	From, To     time.Time // UTC days, To exclusive
	Sort         string    // created, amount or net; "-" prefix for descending (default -created)
	Offset       int
	Limit        int
}

// TxRow is one balance transaction.
type TxRow struct {
	ID           string
	Created      time.Time
	AvailableOn  time.Time
	Type         string
	Category     string
	Status       string
	Description  string
	Amount       Money
	Fee          Money
	Net          Money
	SourceID     string
	SourceType   string
	ChargeID     string
	CustomerID   string
	Jurisdiction string
	PayoutID     string
}

// CurrencyTotals sums a selection of balance transactions in one currency.
type CurrencyTotals struct {
	Currency         string
	Count            int64
	Amount, Fee, Net Money
}

var txSorts = map[string]string{
	"created": "b.created ASC, b.id ASC", "-created": "b.created DESC, b.id DESC",
	"amount": "b.amount ASC, b.id ASC", "-amount": "b.amount DESC, b.id DESC",
	"net": "b.net ASC, b.id ASC", "-net": "b.net DESC, b.id DESC",
}

// TxSorts lists the accepted sort keys.
func TxSorts() []string { return []string{"-created", "created", "-amount", "amount", "-net", "net"} }

func (f TxFilter) where() ([]string, []any, error) {
	var where []string
	var args []any
	if f.Currency != "" {
		where, args = append(where, "b.currency = ?"), append(args, f.Currency)
	}
	if f.Jurisdiction != "" {
		w, a := jurisdictionWhere(f.Jurisdiction)
		where, args = append(where, "b."+w), append(args, a...)
	}
	switch {
	case f.Category == "revenue":
		where = append(where, "b.category IN ('charge', 'refund', 'dispute', 'fee')")
	case f.Category != "":
		where, args = append(where, "b.category = ?"), append(args, f.Category)
	}
	if f.Payout != "" {
		where, args = append(where, "b.payout_id = ?"), append(args, f.Payout)
	}
	if f.Charge != "" {
		where, args = append(where, "b.charge_id = ?"), append(args, f.Charge)
	}
	if !f.From.IsZero() {
		where, args = append(where, "b.day >= ?"), append(args, dayOf(f.From.Unix()))
	}
	if !f.To.IsZero() {
		where, args = append(where, "b.day < ?"), append(args, dayOf(f.To.Unix()))
	}
	if len(where) == 0 {
		where = []string{"1 = 1"}
	}
	return where, args, nil
}

const txColumns = `b.id, b.created, b.available_on, b.type, b.category, b.status, b.description, b.amount, b.fee, b.net, b.currency,
	b.source_id, b.source_type, b.charge_id, COALESCE(c.customer_id, ''), b.jurisdiction, b.payout_id`

func scanTx(r interface{ Scan(...any) error }) (TxRow, error) {
	var t TxRow
	var created, avail, amount, fee, net int64
	var cur string
	err := r.Scan(&t.ID, &created, &avail, &t.Type, &t.Category, &t.Status, &t.Description, &amount, &fee, &net, &cur,
		&t.SourceID, &t.SourceType, &t.ChargeID, &t.CustomerID, &t.Jurisdiction, &t.PayoutID)
	t.Created, t.AvailableOn = time.Unix(created, 0).UTC(), time.Unix(avail, 0).UTC()
	t.Amount, t.Fee, t.Net = Money{amount, cur}, Money{fee, cur}, Money{net, cur}
	if t.Jurisdiction == "" {
		t.Jurisdiction = Unattributed
	}
	return t, err
}

// Transactions returns one page of balance transactions, whether more
// follow, and the totals of the whole selection per currency.
func (s *Service) Transactions(ctx context.Context, f TxFilter) ([]TxRow, bool, []CurrencyTotals, error) {
	where, args, err := f.where()
	if err != nil {
		return nil, false, nil, err
	}
	order, ok := txSorts[f.Sort]
	if !ok {
		order = txSorts["-created"]
	}
	if f.Limit <= 0 || f.Limit > MaxLimit {
		f.Limit = 50
	}
	q := `SELECT ` + txColumns + ` FROM stripe_balance_transactions b LEFT JOIN stripe_charges c ON c.id = b.charge_id
		WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ? OFFSET ?`
	rows, err := s.db.QueryContext(ctx, q, append(args, f.Limit+1, f.Offset)...)
	if err != nil {
		return nil, false, nil, fmt.Errorf("billing: transactions: %w", err)
	}
	defer rows.Close()
	var out []TxRow
	for rows.Next() {
		t, err := scanTx(rows)
		if err != nil {
			return nil, false, nil, fmt.Errorf("billing: transactions: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, false, nil, fmt.Errorf("billing: transactions: %w", err)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	// Filters on payout or charge need the transactions themselves; the
	// others are all columns of the daily rollup, which sums the same.
	from, count := "stripe_balance_transactions", "COUNT(*)"
	if f.Payout == "" && f.Charge == "" {
		from, count = "stripe_bt_daily", "SUM(b.n)"
	}
	totals, err := s.txTotals(ctx, from, count, where, args)
	return out, more, totals, err
}

func (s *Service) txTotals(ctx context.Context, from, count string, where []string, args []any) ([]CurrencyTotals, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT b.currency, `+count+`, SUM(b.amount), SUM(b.fee), SUM(b.net)
		FROM `+from+` b WHERE `+strings.Join(where, " AND ")+` GROUP BY b.currency ORDER BY 2 DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: transaction totals: %w", err)
	}
	defer rows.Close()
	var out []CurrencyTotals
	for rows.Next() {
		var t CurrencyTotals
		var a, f, n int64
		if err := rows.Scan(&t.Currency, &t.Count, &a, &f, &n); err != nil {
			return nil, fmt.Errorf("billing: transaction totals: %w", err)
		}
		t.Amount, t.Fee, t.Net = Money{a, t.Currency}, Money{f, t.Currency}, Money{n, t.Currency}
		out = append(out, t)
	}
	return out, rows.Err()
}

// ExportTransactions writes the selection as CSV to w, row by row.
func (s *Service) ExportTransactions(ctx context.Context, f TxFilter, w io.Writer) error {
	where, args, err := f.where()
	if err != nil {
		return err
	}
	order, ok := txSorts[f.Sort]
	if !ok {
		order = txSorts["created"]
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+txColumns+` FROM stripe_balance_transactions b LEFT JOIN stripe_charges c ON c.id = b.charge_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY `+order, args...)
	if err != nil {
		return fmt.Errorf("billing: export transactions: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "created_utc", "available_on_utc", "type", "category", "status", "currency", "amount", "fee", "net",
		"amount_minor", "fee_minor", "net_minor", "source_id", "source_type", "charge_id", "customer_id", "jurisdiction", "payout_id", "description"})
	n := 0
	for rows.Next() {
		t, err := scanTx(rows)
		if err != nil {
			return fmt.Errorf("billing: export transactions: %w", err)
		}
		_ = cw.Write([]string{t.ID, t.Created.Format(time.RFC3339), t.AvailableOn.Format(time.RFC3339), t.Type, t.Category, t.Status,
			strings.ToUpper(t.Amount.Currency), t.Amount.Decimal(), t.Fee.Decimal(), t.Net.Decimal(),
			i64(t.Amount.Amount), i64(t.Fee.Amount), i64(t.Net.Amount), t.SourceID, t.SourceType, t.ChargeID, t.CustomerID,
			t.Jurisdiction, t.PayoutID, csvcell.Text(t.Description)})
		if n++; n%1000 == 0 {
			if cw.Flush(); cw.Error() != nil {
				return cw.Error()
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("billing: export transactions: %w", err)
	}
	cw.Flush()
	return cw.Error()
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// Transaction returns one balance transaction.
func (s *Service) Transaction(ctx context.Context, id string) (TxRow, error) {
	t, err := scanTx(s.db.QueryRowContext(ctx, `SELECT `+txColumns+` FROM stripe_balance_transactions b LEFT JOIN stripe_charges c ON c.id = b.charge_id WHERE b.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no balance transaction %s has been synced", id)
	}
	if err != nil {
		return t, fmt.Errorf("billing: transaction %s: %w", id, err)
	}
	return t, nil
}

// Charge is a stored charge with what hangs off it.
type Charge struct {
	ID                   string
	Created              time.Time
	Amount, Refunded     Money
	Status               string
	Paid, Disputed       bool
	Description          string
	CustomerID           string
	PaymentIntentID      string
	BalanceTransactionID string
	Jurisdiction         string
	RegionSource         string // where the jurisdiction came from
	Refunds              []Refund
	Disputes             []Dispute
	Transactions         []TxRow
}

// Refund is a stored refund.
type Refund struct {
	ID, Status, Reason, ChargeID, BalanceTransactionID string
	Created                                            time.Time
	Amount                                             Money
}

// Dispute is a stored dispute.
type Dispute struct {
	ID, Status, Reason, ChargeID string
	Created                      time.Time
	Amount                       Money
}

// Charge returns a charge with its refunds, disputes and balance
// transactions.
func (s *Service) Charge(ctx context.Context, id string) (Charge, error) {
	var c Charge
	var created, amount, refunded int64
	var cur string
	var paid, disputed int
	err := s.db.QueryRowContext(ctx, `SELECT id, created, amount, amount_refunded, currency, status, paid, disputed, description,
		customer_id, payment_intent_id, balance_transaction_id, jurisdiction, region_source FROM stripe_charges WHERE id = ?`, id).
		Scan(&c.ID, &created, &amount, &refunded, &cur, &c.Status, &paid, &disputed, &c.Description, &c.CustomerID, &c.PaymentIntentID,
			&c.BalanceTransactionID, &c.Jurisdiction, &c.RegionSource)
	if errors.Is(err, sql.ErrNoRows) {
		return c, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no charge %s has been synced", id)
	}
	if err != nil {
		return c, fmt.Errorf("billing: charge %s: %w", id, err)
	}
	c.Created, c.Amount, c.Refunded, c.Paid, c.Disputed = time.Unix(created, 0).UTC(), Money{amount, cur}, Money{refunded, cur}, paid == 1, disputed == 1
	if c.Jurisdiction == "" {
		c.Jurisdiction = Unattributed
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, created, amount, currency, status, reason, balance_transaction_id FROM stripe_refunds WHERE charge_id = ? ORDER BY created`, id)
	if err != nil {
		return c, fmt.Errorf("billing: charge %s refunds: %w", id, err)
	}
	for rows.Next() {
		var r Refund
		var created, amount int64
		var cur string
		if err := rows.Scan(&r.ID, &created, &amount, &cur, &r.Status, &r.Reason, &r.BalanceTransactionID); err != nil {
			rows.Close()
			return c, fmt.Errorf("billing: charge %s refunds: %w", id, err)
		}
		r.Created, r.Amount, r.ChargeID = time.Unix(created, 0).UTC(), Money{amount, cur}, id
		c.Refunds = append(c.Refunds, r)
	}
	rows.Close()
	rows, err = s.db.QueryContext(ctx, `SELECT id, created, amount, currency, status, reason FROM stripe_disputes WHERE charge_id = ? ORDER BY created`, id)
	if err != nil {
		return c, fmt.Errorf("billing: charge %s disputes: %w", id, err)
	}
	for rows.Next() {
		var d Dispute
		var created, amount int64
		var cur string
		if err := rows.Scan(&d.ID, &created, &amount, &cur, &d.Status, &d.Reason); err != nil {
			rows.Close()
			return c, fmt.Errorf("billing: charge %s disputes: %w", id, err)
		}
		d.Created, d.Amount, d.ChargeID = time.Unix(created, 0).UTC(), Money{amount, cur}, id
		c.Disputes = append(c.Disputes, d)
	}
	rows.Close()
	c.Transactions, _, _, err = s.Transactions(ctx, TxFilter{Charge: id, Sort: "created", Limit: MaxLimit})
	return c, err
}

// ChargeForSource returns the charge behind a refund or dispute id.
func (s *Service) ChargeForSource(ctx context.Context, id string) (string, error) {
	var charge string
	err := s.db.QueryRowContext(ctx, `SELECT charge_id FROM stripe_refunds WHERE id = ?1 UNION ALL SELECT charge_id FROM stripe_disputes WHERE id = ?1 LIMIT 1`, id).Scan(&charge)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && charge == "") {
		return "", apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no refund or dispute %s has been synced", id)
	}
	if err != nil {
		return "", fmt.Errorf("billing: source %s: %w", id, err)
	}
	return charge, nil
}

// Customer is a stored customer: an id and a region, nothing personal.
type Customer struct {
	ID           string
	Created      time.Time
	Jurisdiction string // from its region metadata, "" when it has none
	Deleted      bool
	Totals       []ChargeTotals // its charges, per currency
	Charges      []Charge       // newest first, without their children
	MoreCharges  bool
}

// ChargeTotals sums charges in one currency.
type ChargeTotals struct {
	Currency         string
	Count            int64
	Amount, Refunded Money
}

// Customer returns a customer with its charges.
func (s *Service) Customer(ctx context.Context, id string, offset int) (Customer, error) {
	var c Customer
	var created int64
	var deleted int
	err := s.db.QueryRowContext(ctx, `SELECT id, created, region, deleted FROM stripe_customers WHERE id = ?`, id).Scan(&c.ID, &created, &c.Jurisdiction, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return c, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no customer %s has been synced", id)
	}
	if err != nil {
		return c, fmt.Errorf("billing: customer %s: %w", id, err)
	}
	c.Created, c.Deleted = time.Unix(created, 0).UTC(), deleted == 1
	rows, err := s.db.QueryContext(ctx, `SELECT currency, COUNT(*), SUM(amount), SUM(amount_refunded) FROM stripe_charges WHERE customer_id = ? GROUP BY currency ORDER BY currency`, id)
	if err != nil {
		return c, fmt.Errorf("billing: customer %s: %w", id, err)
	}
	for rows.Next() {
		var t ChargeTotals
		var a, r int64
		if err := rows.Scan(&t.Currency, &t.Count, &a, &r); err != nil {
			rows.Close()
			return c, fmt.Errorf("billing: customer %s: %w", id, err)
		}
		t.Amount, t.Refunded = Money{a, t.Currency}, Money{r, t.Currency}
		c.Totals = append(c.Totals, t)
	}
	rows.Close()
	const page = 50
	rows, err = s.db.QueryContext(ctx, `SELECT id, created, amount, amount_refunded, currency, status, disputed, jurisdiction FROM stripe_charges
		WHERE customer_id = ? ORDER BY created DESC, id DESC LIMIT ? OFFSET ?`, id, page+1, offset)
	if err != nil {
		return c, fmt.Errorf("billing: customer %s charges: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var ch Charge
		var created, amount, refunded int64
		var cur string
		var disputed int
		if err := rows.Scan(&ch.ID, &created, &amount, &refunded, &cur, &ch.Status, &disputed, &ch.Jurisdiction); err != nil {
			return c, fmt.Errorf("billing: customer %s charges: %w", id, err)
		}
		ch.Created, ch.Amount, ch.Refunded, ch.Disputed = time.Unix(created, 0).UTC(), Money{amount, cur}, Money{refunded, cur}, disputed == 1
		ch.CustomerID = id
		c.Charges = append(c.Charges, ch)
	}
	if len(c.Charges) > page {
		c.Charges, c.MoreCharges = c.Charges[:page], true
	}
	return c, rows.Err()
}
