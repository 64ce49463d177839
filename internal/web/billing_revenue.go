package web

import (
	"fmt"
	"io"
	"math"
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

// revenueForm is the revenue page's filter.
type revenueForm struct {
	f    billing.RevenueFilter
	view templates.RevenueView
}

func parseRevenueForm(q url.Values) (revenueForm, apperr.Validation) {
	var v apperr.Validation
	rf := revenueForm{}
	rf.f.Period = q.Get("period")
	if rf.f.Period == "" {
		rf.f.Period = billing.Month
	}
	if !slices.Contains([]string{billing.Day, billing.Week, billing.Month}, rf.f.Period) {
		v.Add("period", "must be day, week or month")
		rf.f.Period = billing.Month
	}
	rf.f.From, rf.f.To = dateRange(q, &v)
	rf.f.Currency = strings.ToLower(q.Get("currency"))
	rf.f.Jurisdiction = q.Get("jurisdiction")
	rf.view = templates.RevenueView{Period: rf.f.Period, From: q.Get("from"), To: q.Get("to"), Currency: rf.f.Currency, Jurisdiction: rf.f.Jurisdiction}
	for _, p := range []struct{ v, l string }{{billing.Month, "Month"}, {billing.Week, "Week (Monday to Sunday)"}, {billing.Day, "Day"}} {
		rf.view.Periods = append(rf.view.Periods, templates.Option{Value: p.v, Label: p.l, Selected: p.v == rf.f.Period})
	}
	return rf, v
}

func (s *Server) billingRevenue(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.QueryParams()
	rf, v := parseRevenueForm(q)
	var err error
	if rf.view.Chrome, err = s.billingChrome(c, "revenue"); err != nil {
		return err
	}
	if rf.view.Currencies, err = s.currencyOptions(c, rf.f.Currency, &v); err != nil {
		return err
	}
	rf.view.Jurisdictions = jurisdictionOptions(rf.f.Jurisdiction, &v)
	status := http.StatusOK
	if len(v) > 0 {
		rf.view.Errors, status = templates.FormErrors(v), http.StatusBadRequest
		return s.render(c, status, templates.Revenue(s.page(c, "Revenue", "billing"), rf.view))
	}
	f := rf.f
	// A day-by-day table of everything would be endless: without dates it
	// shows the last 31 days of data.
	if f.Period == billing.Day && f.From.IsZero() && f.To.IsZero() {
		if _, last, err := s.deps.Billing.Span(ctx); err == nil && !last.IsZero() {
			f.To = last.Truncate(24*time.Hour).AddDate(0, 0, 1)
			f.From = f.To.AddDate(0, 0, -31)
		}
	}
	revs, err := s.deps.Billing.Revenue(ctx, f)
	if err != nil {
		return err
	}
	rf.view.RangeText = rangeText(f)
	for _, cr := range revs {
		rf.view.Sections = append(rf.view.Sections, currencySection(cr, f))
	}
	rf.view.ExportURL = withQuery("/billing/revenue.csv", q, "from", day(f.From), "to", lastDay(f.To))
	return s.render(c, status, templates.Revenue(s.page(c, "Revenue", "billing"), rf.view))
}

func rangeText(f billing.RevenueFilter) string {
	switch {
	case f.From.IsZero() && f.To.IsZero():
		return "All synced data."
	case f.To.IsZero():
		return "From " + day(f.From) + "."
	case f.From.IsZero():
		return "Up to " + lastDay(f.To) + "."
	}
	return "From " + day(f.From) + " to " + lastDay(f.To) + "."
}

// drill links a figure to the transactions behind it: the figure's
// currency, category, jurisdiction and days (the period cut to the
// filter's range, so the transactions sum to the figure).
func drill(cur, category, jurisdiction string, from, to time.Time) string {
	q := url.Values{}
	q.Set("currency", cur)
	q.Set("category", category)
	if jurisdiction != "" {
		q.Set("jurisdiction", jurisdiction)
	}
	if !from.IsZero() {
		q.Set("from", day(from))
	}
	if !to.IsZero() {
		q.Set("to", lastDay(to))
	}
	return "/billing/transactions?" + q.Encode()
}

func clamp(start, end time.Time, f billing.RevenueFilter) (time.Time, time.Time) {
	if !f.From.IsZero() && start.Before(f.From) {
		start = f.From
	}
	if !f.To.IsZero() && end.After(f.To) {
		end = f.To
	}
	return start, end
}

func revenueLine(label, cur, jurisdiction string, fs billing.Figures, from, to time.Time, testPrefix string) templates.RevenueLine {
	m := func(n int64) billing.Money { return billing.Money{Amount: n, Currency: cur} }
	all := drill(cur, "revenue", jurisdiction, from, to)
	l := templates.RevenueLine{Label: label, Count: fs.Count,
		Gross:    fig(m(fs.Gross), drill(cur, billing.CatCharge, jurisdiction, from, to)),
		Refunds:  fig(m(fs.Refunds), drill(cur, billing.CatRefund, jurisdiction, from, to)),
		Disputes: fig(m(fs.Disputes), drill(cur, billing.CatDispute, jurisdiction, from, to)),
		Fees:     fig(m(fs.Fees), all),
		Net:      fig(m(fs.Net), all),
		Href:     all}
	if testPrefix != "" {
		l.Gross.TestID, l.Net.TestID = testPrefix+"-gross", testPrefix+"-net"
		l.Refunds.TestID, l.Fees.TestID = testPrefix+"-refunds", testPrefix+"-fees"
	}
	return l
}

func periodLabel(period string, start time.Time) string {
	switch period {
	case billing.Day:
		return start.Format("Mon 2 Jan 2006")
	case billing.Week:
		y, w := start.ISOWeek()
		return fmt.Sprintf("%d-W%02d (from %s)", y, w, start.Format("2 Jan"))
	}
	return start.Format("January 2006")
}

func currencySection(cr billing.CurrencyRevenue, f billing.RevenueFilter) templates.CurrencyRevenueView {
	cur := cr.Currency
	sec := templates.CurrencyRevenueView{Currency: strings.ToUpper(cur), Code: cur}
	for i, r := range cr.Rows {
		from, to := clamp(r.Start, r.End, f)
		line := revenueLine(periodLabel(f.Period, r.Start), cur, f.Jurisdiction, r.Figures, from, to,
			"fig-"+cur+"-"+r.Start.Format("2006-01-02"))
		line.Change = "—"
		if i > 0 && cr.Rows[i-1].End.Equal(r.Start) {
			line.Change = change(cr.Rows[i-1].Figures.Net, r.Figures.Net, cur)
		}
		sec.Rows = append(sec.Rows, line)
	}
	var from, to time.Time
	if len(cr.Rows) > 0 {
		from, to = clamp(cr.Rows[0].Start, cr.Rows[len(cr.Rows)-1].End, f)
	}
	sec.Total = revenueLine("Total", cur, f.Jurisdiction, cr.Total, from, to, "fig-"+cur+"-total")
	for _, j := range cr.ByJurisdiction {
		if f.Jurisdiction != "" && j.Jurisdiction != f.Jurisdiction {
			continue
		}
		sec.ByJurisdiction = append(sec.ByJurisdiction, revenueLine(billing.JurisdictionLabel(j.Jurisdiction), cur, j.Jurisdiction, j.Figures, from, to,
			"fig-"+cur+"-"+j.Jurisdiction))
	}
	sec.Chart = chart(cr, f)
	return sec
}

// chart lays out gross and net bars per period.
func chart(cr billing.CurrencyRevenue, f billing.RevenueFilter) templates.RevenueChart {
	const width, height, top, bottom = 800, 190, 18, 16
	c := templates.RevenueChart{Width: width, Height: height, BaseY: height - bottom}
	n := len(cr.Rows)
	if n == 0 {
		return c
	}
	var peak int64 = 1
	for _, r := range cr.Rows {
		peak = max(peak, r.Gross, r.Net)
	}
	c.MaxLabel = billing.Money{Amount: peak, Currency: cr.Currency}.Display()
	slot := width / n
	w := max(slot*4/5, 1)
	every := max(1, (n+11)/12)
	span := float64(c.BaseY - top)
	for i, r := range cr.Rows {
		gh := int(float64(max(r.Gross, 0)) / float64(peak) * span)
		nh := int(float64(max(r.Net, 0)) / float64(peak) * span)
		from, to := clamp(r.Start, r.End, f)
		m := func(x int64) string { return billing.Money{Amount: x, Currency: cr.Currency}.Display() }
		b := templates.ChartBar{X: i*slot + (slot-w)/2, W: w, GrossY: c.BaseY - gh, GrossH: gh, NetY: c.BaseY - nh, NetH: nh,
			Title: periodLabel(f.Period, r.Start) + ": gross " + m(r.Gross) + ", net " + m(r.Net),
			Href:  drill(cr.Currency, "revenue", f.Jurisdiction, from, to)}
		if i%every == 0 {
			switch f.Period {
			case billing.Month:
				b.Label = r.Start.Format("Jan 2006")
			default:
				b.Label = r.Start.Format("2 Jan")
			}
		}
		c.Bars = append(c.Bars, b)
	}
	return c
}

func (s *Server) billingRevenueExport(c echo.Context) error {
	rf, v := parseRevenueForm(c.QueryParams())
	if err := v.Err(); err != nil {
		return err
	}
	s.csvHeaders(c, "revenue-"+rf.f.Period)
	return s.auditedExport(c, "billing.revenue", "csv", true, func(w io.Writer) error { return s.deps.Billing.ExportRevenue(c.Request().Context(), rf.f, w) })
}

// change is a period's net against the one before it: the difference and,
// when the one before was not zero, as a share of it.
func change(before, now int64, cur string) string {
	d := billing.Money{Amount: now - before, Currency: cur}.Display()
	if now-before > 0 {
		d = "+" + d
	}
	if before == 0 {
		return d
	}
	pct := float64(now-before) / math.Abs(float64(before)) * 100
	return fmt.Sprintf("%+.1f%% (%s)", pct, d)
}
