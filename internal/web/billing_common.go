package web

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/billing"
	"portal/web/templates"
)

// billingChrome builds what every finance page shows above its content.
func (s *Server) billingChrome(c echo.Context, tab string) (templates.BillingChrome, error) {
	b := s.deps.Billing
	f, err := b.Freshness(c.Request().Context())
	if err != nil {
		return templates.BillingChrome{}, err
	}
	ch := templates.BillingChrome{Tab: tab, AsOf: f.AsOf, LastWebhook: f.LastWebhook, Sandbox: b.Sandbox(),
		Configured: b.Configured(), CanSync: b.Configured()}
	if f.Running != nil {
		ch.Syncing, ch.SyncPhase, ch.SyncObjects = true, f.Running.Phase, f.Running.Objects
	}
	return ch, nil
}

// dateRange reads from/to (UTC days, to inclusive) into [from, to).
func dateRange(q url.Values, v *apperr.Validation) (time.Time, time.Time) {
	parse := func(name string) time.Time {
		s := strings.TrimSpace(q.Get(name))
		if s == "" {
			return time.Time{}
		}
		t, err := time.ParseInLocation("2006-01-02", s, time.UTC)
		if err != nil {
			v.Add(name, "is not a day like 2026-01-31")
		}
		return t
	}
	from, to := parse("from"), parse("to")
	if !to.IsZero() {
		to = to.AddDate(0, 0, 1)
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		v.Add("to", "is before From")
	}
	return from, to
}

func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02")
}

// lastDay turns an exclusive end into the inclusive day people read.
func lastDay(end time.Time) string {
	if end.IsZero() {
		return ""
	}
	return day(end.AddDate(0, 0, -1))
}

func (s *Server) currencyOptions(c echo.Context, selected string, v *apperr.Validation) ([]templates.Option, error) {
	curs, err := s.deps.Billing.Currencies(c.Request().Context())
	if err != nil {
		return nil, err
	}
	if selected != "" && !slices.Contains(curs, selected) {
		v.Add("currency", "has no synced transactions in "+strings.ToUpper(selected))
	}
	opts := []templates.Option{{Value: "", Label: "Every currency"}}
	for _, cur := range curs {
		opts = append(opts, templates.Option{Value: cur, Label: strings.ToUpper(cur), Selected: cur == selected})
	}
	return opts, nil
}

func jurisdictionOptions(selected string, v *apperr.Validation) []templates.Option {
	ids := billing.JurisdictionIDs()
	if selected != "" && !slices.Contains(ids, selected) {
		v.Add("jurisdiction", "must be one of "+strings.Join(ids, ", "))
	}
	opts := []templates.Option{{Value: "", Label: "All jurisdictions"}}
	for _, j := range ids {
		opts = append(opts, templates.Option{Value: j, Label: billing.JurisdictionLabel(j), Selected: j == selected})
	}
	return opts
}

func offsetParam(q url.Values, v *apperr.Validation) int {
	s := q.Get("offset")
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		v.Add("offset", "must be a whole number of rows")
		return 0
	}
	return n
}

// withQuery returns path with q, changing the given keys ("" deletes).
func withQuery(path string, q url.Values, kv ...string) string {
	c := url.Values{}
	for k, vs := range q {
		c[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			c.Del(kv[i])
		} else {
			c.Set(kv[i], kv[i+1])
		}
	}
	for k, vs := range c {
		if len(vs) == 1 && vs[0] == "" {
			c.Del(k)
		}
	}
	if len(c) == 0 {
		return path
	}
	return path + "?" + c.Encode()
}

// sortLinks builds sortable headings: the current key toggles direction.
func sortLinks(path string, q url.Values, current, def string, keys ...string) []templates.SortLink {
	if current == "" {
		current = def
	}
	var out []templates.SortLink
	for _, k := range keys {
		l := templates.SortLink{Label: k, Href: withQuery(path, q, "sort", "-"+k, "offset", "")}
		switch current {
		case k:
			l.Current, l.Href = "asc", withQuery(path, q, "sort", "-"+k, "offset", "")
		case "-" + k:
			l.Current, l.Href = "desc", withQuery(path, q, "sort", k, "offset", "")
		}
		out = append(out, l)
	}
	return out
}

func pageLinks(path string, q url.Values, offset, limit int, more bool) (prev, next string) {
	if offset > 0 {
		p := max(offset-limit, 0)
		prev = withQuery(path, q, "offset", strconv.Itoa(p))
		if p == 0 {
			prev = withQuery(path, q, "offset", "")
		}
	}
	if more {
		next = withQuery(path, q, "offset", strconv.Itoa(offset+limit))
	}
	return prev, next
}

func fig(m billing.Money, href string) templates.Figure {
	return templates.Figure{Text: m.Plain(), Href: href, Negative: m.Amount < 0}
}

func txLine(t billing.TxRow) templates.TxLine {
	l := templates.TxLine{ID: t.ID, Href: "/billing/transactions/" + url.PathEscape(t.ID), Created: t.Created, Type: t.Type,
		Category: t.Category, Status: t.Status, Description: t.Description,
		Amount: templates.Figure{Text: t.Amount.Display(), Negative: t.Amount.Amount < 0}, Fee: t.Fee.Display(),
		Net: templates.Figure{Text: t.Net.Display(), Negative: t.Net.Amount < 0}, Jurisdiction: billing.JurisdictionShort(t.Jurisdiction)}
	l.Source = sourceLink(t)
	if t.CustomerID != "" {
		l.Customer = templates.Link{Text: t.CustomerID, Href: "/billing/customers/" + url.PathEscape(t.CustomerID)}
	}
	if t.PayoutID != "" {
		l.Payout = templates.Link{Text: t.PayoutID, Href: "/billing/payouts/" + url.PathEscape(t.PayoutID)}
	}
	return l
}

func sourceLink(t billing.TxRow) templates.Link {
	if t.SourceID == "" {
		return templates.Link{}
	}
	text := t.SourceID
	switch {
	case t.SourceType == "charge":
		return templates.Link{Text: text, Href: "/billing/charges/" + url.PathEscape(t.SourceID)}
	case (t.SourceType == "refund" || t.SourceType == "dispute") && t.ChargeID != "":
		return templates.Link{Text: text, Href: "/billing/charges/" + url.PathEscape(t.ChargeID) + "#" + url.PathEscape(t.SourceID)}
	case t.SourceType == "payout":
		return templates.Link{Text: text, Href: "/billing/payouts/" + url.PathEscape(t.SourceID)}
	}
	return templates.Link{Text: text}
}

// csvHeaders starts a streamed CSV download.
func (s *Server) csvHeaders(c echo.Context, name string) {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+"-"+s.deps.Now().UTC().Format("20060102-150405")+`.csv"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
}

// statusOfErr is the status handleError would answer err with.
func statusOfErr(err error) int { return statusOf[apperr.KindOf(err)] }
