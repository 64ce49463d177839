package web

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/billing"
	"portal/web/templates"
)

var stateLabels = map[string]struct{ label, class string }{
	billing.Reconciled: {"Reconciled", "badge-ok"}, billing.Mismatch: {"Does not reconcile", "badge-bad"},
	billing.NotListed: {"Transactions not listed yet", "badge-warn"}, billing.InFlight: {"In flight", "badge-info"},
	billing.Manual: {"Manual payout", "badge-warn"}, billing.Failed: {"Failed", ""},
}

func payoutLine(p billing.Payout) templates.PayoutLine {
	st := stateLabels[p.State]
	l := templates.PayoutLine{ID: p.ID, Href: "/billing/payouts/" + url.PathEscape(p.ID), Created: p.Created, Arrival: p.ArrivalDate,
		Status: strings.ReplaceAll(p.Status, "_", " "), Amount: p.Amount.Display(), TxCount: p.TxCount, TxNet: p.TxNet.Display(),
		Difference: p.Difference.Display(), State: p.State, StateLabel: st.label, StateClass: st.class, Explanation: p.Explain()}
	if p.State == billing.Manual || p.State == billing.NotListed {
		l.TxNet, l.Difference = "—", "—"
	}
	return l
}

func parsePayoutFilter(q url.Values) (billing.PayoutFilter, apperr.Validation) {
	var v apperr.Validation
	f := billing.PayoutFilter{Month: strings.TrimSpace(q.Get("month")), Currency: strings.ToLower(q.Get("currency")), State: q.Get("state"),
		Sort: q.Get("sort"), Limit: 50}
	if f.Month != "" {
		if _, err := time.Parse("2006-01", f.Month); err != nil {
			v.Add("month", "is not a month like 2026-01")
		}
	}
	if f.State != "" && !slices.Contains(billing.PayoutStates(), f.State) {
		v.Add("state", "must be one of "+strings.Join(billing.PayoutStates(), ", "))
	}
	if f.Sort != "" && !slices.Contains([]string{"arrival", "-arrival", "amount", "-amount", "difference", "-difference"}, f.Sort) {
		v.Add("sort", "must be arrival, amount or difference, with - for descending")
	}
	f.Offset = offsetParam(q, &v)
	return f, v
}

func (s *Server) billingPayouts(c echo.Context) error {
	q := c.QueryParams()
	f, v := parsePayoutFilter(q)
	view := templates.PayoutListView{Month: f.Month, Currency: f.Currency, State: f.State}
	var err error
	if view.Chrome, err = s.billingChrome(c, "payouts"); err != nil {
		return err
	}
	if view.Currencies, err = s.currencyOptions(c, f.Currency, &v); err != nil {
		return err
	}
	view.States = []templates.Option{{Value: "", Label: "Any"}}
	for _, st := range billing.PayoutStates() {
		view.States = append(view.States, templates.Option{Value: st, Label: stateLabels[st].label, Selected: st == f.State})
	}
	view.ExportURL = withQuery("/billing/payouts.csv", q, "offset", "")
	if len(v) > 0 {
		view.Errors = templates.FormErrors(v)
		return s.render(c, http.StatusBadRequest, templates.Payouts(s.page(c, "Payouts", "billing"), view))
	}
	rows, more, err := s.deps.Billing.Payouts(c.Request().Context(), f)
	if err != nil {
		return err
	}
	for _, p := range rows {
		view.Rows = append(view.Rows, payoutLine(p))
	}
	view.Sorts = sortLinks("/billing/payouts", q, f.Sort, "-arrival", "arrival", "amount", "difference")
	view.PrevURL, view.NextURL = pageLinks("/billing/payouts", q, f.Offset, f.Limit, more)
	return s.render(c, http.StatusOK, templates.Payouts(s.page(c, "Payouts", "billing"), view))
}

func (s *Server) billingPayoutsExport(c echo.Context) error {
	f, v := parsePayoutFilter(c.QueryParams())
	if err := v.Err(); err != nil {
		return err
	}
	s.csvHeaders(c, "payouts")
	return s.auditedExport(c, "billing.payouts", "csv", true, func(w io.Writer) error { return s.deps.Billing.ExportPayouts(c.Request().Context(), f, w) })
}

func (s *Server) billingPayout(c echo.Context) error {
	return s.renderPayout(c, http.StatusOK, "", "")
}

// billingPayoutNote adds a note on a payout's reconciliation (POST
// /billing/payouts/:id/notes); a refused one is shown in the form again.
func (s *Server) billingPayoutNote(c echo.Context) error {
	note := c.FormValue("note")
	n, err := s.deps.Billing.AddPayoutNote(c.Request().Context(), who(c), currentUser(c).ID, c.Param("id"), note)
	if apperr.KindOf(err) == apperr.Invalid {
		return s.renderPayout(c, http.StatusBadRequest, apperr.FieldsOf(err)["note"], note)
	} else if err != nil {
		return err
	}
	s.flash(c, "Added your note on the reconciliation of "+n.PayoutID+".")
	return c.Redirect(http.StatusSeeOther, "/billing/payouts/"+url.PathEscape(n.PayoutID)+"#notes-heading")
}

func (s *Server) renderPayout(c echo.Context, status int, noteErr, note string) error {
	ctx := c.Request().Context()
	p, err := s.deps.Billing.Payout(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	view := templates.PayoutView{Payout: payoutLine(p), StripeURL: stripeDashboardURL(s.deps.Billing, "payouts", p.ID),
		CanNote: true, NoteError: noteErr, Note: note}
	notes, err := s.deps.Billing.PayoutNotes(ctx, p.ID)
	if err != nil {
		return err
	}
	a := s.actors(c)
	for _, n := range notes {
		view.Notes = append(view.Notes, templates.PayoutNoteLine{Text: n.Note, Author: a.view(n.Author), At: n.CreatedAt})
	}
	if view.Chrome, err = s.billingChrome(c, "payouts"); err != nil {
		return err
	}
	listed := "not yet"
	if !p.ListedAt.IsZero() {
		listed = p.ListedAt.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	view.Facts = []templates.Fact{
		{Label: "Amount", Value: p.Amount.Display(), TestID: "payout-amount"},
		{Label: "Its transactions' net", Value: view.Payout.TxNet, TestID: "payout-tx-net"},
		{Label: "Difference", Value: view.Payout.Difference, TestID: "payout-difference"},
		{Label: "Status", Value: view.Payout.Status},
		{Label: "Created", Value: p.Created.Format("2006-01-02 15:04:05 UTC")},
		{Label: "Arrival date", Value: p.ArrivalDate.Format("2006-01-02")},
		{Label: "Kind", Value: map[bool]string{true: "automatic", false: "manual"}[p.Automatic] + ", " + orDash(p.Method)},
		{Label: "Transactions listed from Stripe", Value: listed},
	}
	breakdown, unlinked, err := s.deps.Billing.PayoutBreakdown(ctx, p)
	if err != nil {
		return err
	}
	view.Unlinked = unlinked
	for _, b := range breakdown {
		view.Breakdown = append(view.Breakdown, templates.CategoryLine{Category: categoryLabels[b.Category], Count: b.Count,
			Href:   "/billing/transactions?payout=" + url.QueryEscape(p.ID) + "&category=" + b.Category,
			Amount: b.Amount.Display(), Fee: b.Fee.Display(), Net: b.Net.Display()})
	}
	const shown = 100
	rows, more, _, err := s.deps.Billing.Transactions(ctx, billing.TxFilter{Payout: p.ID, Sort: "created", Limit: shown})
	if err != nil {
		return err
	}
	for _, r := range rows {
		view.Transactions = append(view.Transactions, txLine(r))
	}
	view.TxCountText = fmt.Sprintf("(%d, and the payout's own)", p.TxCount)
	if more {
		view.MoreURL = "/billing/transactions?payout=" + url.QueryEscape(p.ID) + "&sort=created"
		view.TxCountText = fmt.Sprintf("(first %d of %d, and the payout's own)", shown, p.TxCount)
	}
	view.ExportURL = "/billing/transactions.csv?payout=" + url.QueryEscape(p.ID)
	page := s.page(c, "Payout "+p.ID, "billing")
	view.CSRF = page.CSRF
	return s.render(c, status, templates.PayoutDetail(page, view))
}

func (s *Server) billingReconciliation(c echo.Context) error {
	q := c.QueryParams()
	var v apperr.Validation
	cur := strings.ToLower(q.Get("currency"))
	view := templates.ReconciliationView{Currency: cur}
	var err error
	if view.Chrome, err = s.billingChrome(c, "reconciliation"); err != nil {
		return err
	}
	if view.Currencies, err = s.currencyOptions(c, cur, &v); err != nil {
		return err
	}
	if err := v.Err(); err != nil {
		return err
	}
	months, err := s.deps.Billing.Reconciliation(c.Request().Context(), cur)
	if err != nil {
		return err
	}
	for _, m := range months {
		start, _ := time.Parse("2006-01", m.Month)
		mq := url.Values{"month": {m.Month}, "currency": {m.Currency}}
		tq := url.Values{"currency": {m.Currency}, "from": {day(start)}, "to": {lastDay(start.AddDate(0, 1, 0))}}
		var parts []string
		for _, st := range billing.PayoutStates() {
			if n := m.States[st]; n > 0 && st != billing.Mismatch {
				parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(stateLabels[st].label)))
			}
		}
		view.Months = append(view.Months, templates.MonthLine{Month: m.Month, Currency: strings.ToUpper(m.Currency), Payouts: m.Payouts,
			Amount: m.Amount.Display(), TxNet: m.TxNet.Display(), Difference: m.Difference.Display(), Reconciled: m.Reconciled(),
			Mismatched: m.States[billing.Mismatch], Summary: strings.Join(parts, ", "),
			PayoutsHref:         "/billing/payouts?" + mq.Encode(),
			MismatchHref:        "/billing/payouts?" + mq.Encode() + "&state=" + billing.Mismatch,
			ExportHref:          "/billing/payouts.csv?" + mq.Encode(),
			TransactionsCSVHref: "/billing/transactions.csv?" + tq.Encode()})
	}
	view.ExportURL = withQuery("/billing/reconciliation.csv", q)
	return s.render(c, http.StatusOK, templates.Reconciliation(s.page(c, "Reconciliation", "billing"), view))
}

func (s *Server) billingReconciliationExport(c echo.Context) error {
	s.csvHeaders(c, "reconciliation")
	return s.auditedExport(c, "billing.reconciliation", "csv", true, func(w io.Writer) error {
		return s.deps.Billing.ExportReconciliation(c.Request().Context(), strings.ToLower(c.QueryParam("currency")), w)
	})
}
