package web

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/billing"
	"portal/web/templates"
)

var categoryLabels = map[string]string{
	"revenue": "Revenue (charges, refunds, disputes and fees)", billing.CatCharge: "Charges", billing.CatRefund: "Refunds",
	billing.CatDispute: "Disputes", billing.CatFee: "Stripe fees", billing.CatPayout: "Payouts", billing.CatOther: "Other",
}

func parseTxFilter(q url.Values) (billing.TxFilter, apperr.Validation) {
	var v apperr.Validation
	f := billing.TxFilter{Currency: strings.ToLower(q.Get("currency")), Jurisdiction: q.Get("jurisdiction"), Category: q.Get("category"),
		Payout: strings.TrimSpace(q.Get("payout")), Charge: strings.TrimSpace(q.Get("charge")), Sort: q.Get("sort"), Limit: 50}
	f.From, f.To = dateRange(q, &v)
	if f.Category != "" && f.Category != "revenue" && !slices.Contains(billing.Categories, f.Category) {
		v.Add("category", "must be one of revenue, "+strings.Join(billing.Categories, ", "))
	}
	if f.Sort != "" && !slices.Contains(billing.TxSorts(), f.Sort) {
		v.Add("sort", "must be one of "+strings.Join(billing.TxSorts(), ", "))
	}
	if f.Jurisdiction != "" && !slices.Contains(billing.JurisdictionIDs(), f.Jurisdiction) {
		v.Add("jurisdiction", "must be one of "+strings.Join(billing.JurisdictionIDs(), ", "))
	}
	f.Offset = offsetParam(q, &v)
	return f, v
}

func txHeading(f billing.TxFilter) string {
	parts := []string{"Balance transactions"}
	if f.Category != "" {
		parts[0] = categoryLabels[f.Category]
	}
	if f.Currency != "" {
		parts = append(parts, strings.ToUpper(f.Currency))
	}
	if f.Jurisdiction != "" {
		parts = append(parts, billing.JurisdictionLabel(f.Jurisdiction))
	}
	switch {
	case !f.From.IsZero() && !f.To.IsZero():
		parts = append(parts, day(f.From)+" to "+lastDay(f.To))
	case !f.From.IsZero():
		parts = append(parts, "from "+day(f.From))
	case !f.To.IsZero():
		parts = append(parts, "up to "+lastDay(f.To))
	}
	if f.Payout != "" {
		parts = append(parts, "paid out by "+f.Payout)
	}
	if f.Charge != "" {
		parts = append(parts, "of charge "+f.Charge)
	}
	return strings.Join(parts, " · ")
}

func (s *Server) billingTransactions(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.QueryParams()
	f, v := parseTxFilter(q)
	view := templates.TxListView{Heading: txHeading(f), Currency: f.Currency, Jurisdiction: f.Jurisdiction, Category: f.Category,
		Payout: f.Payout, Charge: f.Charge, From: q.Get("from"), To: q.Get("to")}
	var err error
	if view.Chrome, err = s.billingChrome(c, "transactions"); err != nil {
		return err
	}
	if view.Currencies, err = s.currencyOptions(c, f.Currency, &v); err != nil {
		return err
	}
	view.Jurisdictions = jurisdictionOptions(f.Jurisdiction, &v)
	view.Categories = []templates.Option{{Value: "", Label: "Every kind"}}
	for _, k := range append([]string{"revenue"}, billing.Categories...) {
		view.Categories = append(view.Categories, templates.Option{Value: k, Label: categoryLabels[k], Selected: k == f.Category})
	}
	view.ExportURL = withQuery("/billing/transactions.csv", q, "offset", "")
	if len(v) > 0 {
		view.Errors = templates.FormErrors(v)
		return s.render(c, http.StatusBadRequest, templates.Transactions(s.page(c, "Balance transactions", "billing"), view))
	}
	rows, more, totals, err := s.deps.Billing.Transactions(ctx, f)
	if err != nil {
		return err
	}
	for _, r := range rows {
		view.Rows = append(view.Rows, txLine(r))
	}
	for _, t := range totals {
		view.Totals = append(view.Totals, templates.TotalLine{Currency: strings.ToUpper(t.Currency), Count: t.Count,
			Amount: t.Amount.Display(), Fee: t.Fee.Display(), Net: t.Net.Display(), NetNegative: t.Net.Amount < 0, AmtNegat: t.Amount.Amount < 0})
	}
	view.Sorts = sortLinks("/billing/transactions", q, f.Sort, "-created", "created", "amount", "net")
	view.PrevURL, view.NextURL = pageLinks("/billing/transactions", q, f.Offset, f.Limit, more)
	if len(rows) > 0 {
		view.PageText = fmt.Sprintf("Rows %d to %d.", f.Offset+1, f.Offset+len(rows))
	}
	return s.render(c, http.StatusOK, templates.Transactions(s.page(c, "Balance transactions", "billing"), view))
}

func (s *Server) billingTransactionsExport(c echo.Context) error {
	f, v := parseTxFilter(c.QueryParams())
	if err := v.Err(); err != nil {
		return err
	}
	f.Offset = 0
	s.csvHeaders(c, "balance-transactions")
	return s.auditedExport(c, "billing.transactions", "csv", true, func(w io.Writer) error {
		return s.deps.Billing.ExportTransactions(c.Request().Context(), f, w)
	})
}

func (s *Server) billingTransaction(c echo.Context) error {
	t, err := s.deps.Billing.Transaction(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	view := templates.TxDetailView{ID: t.ID}
	if view.Chrome, err = s.billingChrome(c, "transactions"); err != nil {
		return err
	}
	l := txLine(t)
	view.Facts = []templates.Fact{
		{Label: "Type", Value: t.Type + " (counted as " + t.Category + ")"},
		{Label: "Created", Value: t.Created.Format("2006-01-02 15:04:05 UTC")},
		{Label: "Available on", Value: t.AvailableOn.Format("2006-01-02 15:04:05 UTC")},
		{Label: "Status", Value: t.Status},
		{Label: "Amount", Value: t.Amount.Display(), TestID: "tx-amount"},
		{Label: "Stripe fee", Value: t.Fee.Display()},
		{Label: "Net", Value: t.Net.Display(), TestID: "tx-net"},
		{Label: "Source", Value: l.Source.Text, Href: l.Source.Href, TestID: "tx-source"},
		{Label: "Customer", Value: l.Customer.Text, Href: l.Customer.Href},
		{Label: "Jurisdiction", Value: l.Jurisdiction},
		{Label: "Paid out by", Value: l.Payout.Text, Href: l.Payout.Href, TestID: "tx-payout"},
		{Label: "Description", Value: t.Description},
	}
	for i := range view.Facts {
		if view.Facts[i].Value == "" {
			view.Facts[i].Value = "—"
		}
	}
	return s.render(c, http.StatusOK, templates.TransactionDetail(s.page(c, "Balance transaction", "billing"), view))
}
