package web

import (
	"fmt"
	"html"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/activity"
	"portal/web/templates"
)

func (s *Server) activityStacks(svc *activity.Service) []string {
	var out []string
	for _, st := range svc.Config().Stacks {
		out = append(out, st.ID)
	}
	return out
}

func (s *Server) activityAlarms(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	v := templates.AlarmsView{Stack: c.QueryParam("stack"), Stacks: s.activityStacks(svc), Counts: map[string]int{}}
	if len(v.Stacks) == 0 {
		v.NotReady = "AWS is not configured: start the portal with the dev, test and prod account ids (see the README)."
		return s.render(c, http.StatusOK, templates.Alarms(s.page(c, "Alarms", "activity"), v))
	}
	alarms, errs := svc.Alarms(c.Request().Context(), v.Stack, 5)
	for _, a := range alarms {
		row := templates.AlarmRow{Stack: a.Stack, Region: a.Region, Name: a.Name, State: a.State, Reason: a.Reason, Metric: a.Metric, Namespace: a.Namespace,
			Threshold: a.ThresholdText(), Updated: a.Updated, HistoryNote: a.HistoryNote}
		for _, h := range a.History {
			row.History = append(row.History, templates.AlarmHistoryRow{At: h.At, Summary: h.Summary})
		}
		v.Alarms = append(v.Alarms, row)
		v.Counts[a.State]++
	}
	for _, e := range errs {
		v.Errors = append(v.Errors, e.Error())
	}
	return s.render(c, http.StatusOK, templates.Alarms(s.page(c, "Alarms", "activity"), v))
}

var metricRanges = []struct {
	key string
	d   time.Duration
}{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}}

func (s *Server) activityMetrics(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	v := templates.MetricsView{Stack: c.QueryParam("stack"), Stacks: s.activityStacks(svc), Range: c.QueryParam("range")}
	for _, r := range metricRanges {
		v.Ranges = append(v.Ranges, r.key)
	}
	if v.Range == "" {
		v.Range = "24h"
	}
	var span time.Duration
	for _, r := range metricRanges {
		if r.key == v.Range {
			span = r.d
		}
	}
	status := http.StatusOK
	if span == 0 {
		v.Errors = append(v.Errors, fmt.Sprintf("Range %q is not one of %s.", v.Range, strings.Join(v.Ranges, ", ")))
		v.Range, span, status = "24h", 24*time.Hour, http.StatusBadRequest
	}
	if len(v.Stacks) == 0 || s.deps.Workflows == nil {
		v.NotReady = "AWS is not configured: start the portal with the dev, test and prod account ids (see the README)."
		return s.render(c, status, templates.Metrics(s.page(c, "Metrics", "activity"), v))
	}
	if v.Stack == "" {
		v.Stack = v.Stacks[0]
	}
	known := false
	for _, st := range v.Stacks {
		known = known || st == v.Stack
	}
	if !known {
		v.Errors = append(v.Errors, fmt.Sprintf("Stack %q is not one of the nine stacks.", v.Stack))
		v.Stack, status = v.Stacks[0], http.StatusBadRequest
	}
	to := s.deps.Now().UTC()
	series, err := svc.Metrics(c.Request().Context(), v.Stack, to.Add(-span), to, s.deps.Workflows.Engine)
	if err != nil {
		v.Errors = append(v.Errors, err.Error())
	}
	for _, se := range series {
		ch := templates.Chart{Title: se.Title, Unit: se.Unit, Points: len(se.Values), Note: se.Missing}
		if len(se.Values) > 0 {
			ch.SVG = lineChart(se, to.Add(-span), to)
			ch.Latest = strconv.FormatFloat(se.Values[len(se.Values)-1], 'g', 4, 64) + " " + se.Unit
		}
		v.Charts = append(v.Charts, ch)
	}
	return s.render(c, status, templates.Metrics(s.page(c, "Metrics", "activity"), v))
}

// lineChart draws a series as an inline SVG line chart with axes; every
// text in it is escaped.
func lineChart(se activity.Series, from, to time.Time) string {
	const w, h, left, right, top, bottom = 520.0, 180.0, 52.0, 12.0, 10.0, 28.0
	lo, hi := 0.0, 0.0
	for _, v := range se.Values {
		hi = math.Max(hi, v)
		lo = math.Min(lo, v)
	}
	if hi == lo {
		hi = lo + 1
	}
	x := func(t time.Time) float64 {
		return left + (w-left-right)*float64(t.Sub(from))/float64(to.Sub(from))
	}
	y := func(v float64) float64 { return top + (h-top-bottom)*(1-(v-lo)/(hi-lo)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" role="img" aria-label="%s">`, w, h, html.EscapeString(se.Title+" over time"))
	for i := 0; i <= 4; i++ {
		v := lo + (hi-lo)*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" class="grid"/>`, left, w-right, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" class="axis" text-anchor="end">%s</text>`, left-6, y(v)+4, html.EscapeString(strconv.FormatFloat(v, 'g', 3, 64)))
	}
	layout := "15:04"
	if to.Sub(from) > 48*time.Hour {
		layout = "Jan 2"
	}
	for i := 0; i <= 4; i++ {
		t := from.Add(time.Duration(float64(to.Sub(from)) * float64(i) / 4))
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" class="axis" text-anchor="middle">%s</text>`, x(t), h-8, html.EscapeString(t.UTC().Format(layout)))
	}
	b.WriteString(`<polyline class="line" points="`)
	for i, t := range se.Times {
		fmt.Fprintf(&b, "%.1f,%.1f ", x(t), y(se.Values[i]))
	}
	b.WriteString(`"/>`)
	if len(se.Times) == 1 {
		fmt.Fprintf(&b, `<circle class="dot" cx="%.1f" cy="%.1f" r="3"/>`, x(se.Times[0]), y(se.Values[0]))
	}
	b.WriteString(`</svg>`)
	return b.String()
}
