package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/activity"
	"portal/internal/apperr"
	"portal/web/templates"
)

// activityService returns the activity service, or a clear error.
func (s *Server) activityService() (*activity.Service, error) {
	if s.deps.Activity == nil {
		return nil, apperr.New(apperr.Conflict, "the activity service is not running")
	}
	return s.deps.Activity, nil
}

// parseActivityFilter reads the explorer's filter from the query string.
// Times are datetime-local values (UTC) or RFC 3339.
func parseActivityFilter(q url.Values) (activity.Filter, templates.ActivityFilter, error) {
	view := templates.ActivityFilter{Since: q.Get("since"), Until: q.Get("until"), Account: q.Get("account"), Region: q.Get("region"), User: q.Get("user"),
		Source: q.Get("source"), Name: q.Get("name"), Resource: q.Get("resource"), SourceIP: q.Get("ip"), Error: q.Get("error"), Access: q.Get("access"),
		Text: q.Get("q"), Sensitive: q.Get("sensitive") == "1", MadeBy: q.Get("made_by")}
	f := activity.Filter{Account: view.Account, Region: view.Region, User: view.User, Source: view.Source, Name: view.Name, Resource: view.Resource,
		SourceIP: view.SourceIP, ErrorCode: view.Error, Access: view.Access, Text: view.Text, Sensitive: view.Sensitive, MadeBy: view.MadeBy}
	var v, rules apperr.Validation
	var err error
	if f.Since, err = parseTimeParam(view.Since); err != nil {
		v.Add("since", err.Error())
	}
	if f.Until, err = parseTimeParam(view.Until); err != nil {
		v.Add("until", err.Error())
	}
	// An end before the start is well formed, only empty: a rule of
	// meaning (422 in the API), not of form.
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		rules.Add("until", "is before From")
	}
	if f.Text != "" {
		if err := activity.CheckText(f.Text); err != nil {
			v.Add("q", apperr.MessageOf(err))
		}
	}
	if f.Access != "" && f.Access != activity.AccessRead && f.Access != activity.AccessWrite {
		v.Add("access", "must be read or write")
	}
	for _, h := range []struct {
		param string
		list  *[]string
		view  *string
	}{{"hide_user", &f.HideUsers, &view.HideUsers}, {"hide_source", &f.HideSources, &view.HideSources}, {"hide_name", &f.HideNames, &view.HideNames}} {
		*h.list = hiddenValues(q[h.param])
		*h.view = strings.Join(*h.list, ", ")
		if len(*h.list) > activity.MaxHidden {
			rules.Add(h.param, fmt.Sprintf("hides %d values; at most %d", len(*h.list), activity.MaxHidden))
		}
	}
	if f.MadeBy != "" && f.MadeBy != activity.MadeByPeople && f.MadeBy != activity.MadeByPortal {
		v.Add("made_by", `must be "people" (the portal's own deploys hidden) or "portal" (only those)`)
	}
	if b := q.Get("before"); b != "" {
		if f.Before, err = activity.ParseCursor(b); err != nil {
			v.Add("before", "is not a page position: start again from the newest events")
		}
	}
	if l := q.Get("limit"); l != "" {
		// Strictly a whole number: "5abc" is refused, not read as 5.
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > activity.MaxLimit {
			v.Add("limit", fmt.Sprintf("must be a whole number between 1 and %d, not %q", activity.MaxLimit, l))
		} else {
			f.Limit = n
		}
	}
	return f, view, v.WithRules(rules)
}

// hiddenValues reads an exclusion parameter: given once or more, each a
// comma-separated list; spaces around values and empty values are dropped,
// and each value is kept once.
func hiddenValues(params []string) []string {
	var out []string
	for _, p := range params {
		for _, v := range strings.Split(p, ",") {
			if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// timePresets are one-click time ranges for the explorer, keeping the
// rest of the filter: the last hour, day, week and 30 days, and last
// calendar month.
func timePresets(base string, q url.Values, now time.Time) []templates.Link {
	const layout = "2006-01-02T15:04"
	now = now.UTC().Truncate(time.Minute)
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	var out []templates.Link
	for _, p := range []struct {
		label    string
		from, to time.Time
	}{
		{"last hour", now.Add(-time.Hour), time.Time{}},
		{"last 24 hours", now.Add(-24 * time.Hour), time.Time{}},
		{"last 7 days", now.Add(-7 * 24 * time.Hour), time.Time{}},
		{"last 30 days", now.Add(-30 * 24 * time.Hour), time.Time{}},
		{"last month (" + month.AddDate(0, -1, 0).Format("January 2006") + ")", month.AddDate(0, -1, 0), month},
	} {
		pq := url.Values{}
		for k, vs := range q {
			if k != "since" && k != "until" && k != "before" && k != "sensitive" {
				pq[k] = vs
			}
		}
		pq.Set("since", p.from.Format(layout))
		if !p.to.IsZero() {
			pq.Set("until", p.to.Format(layout))
		}
		out = append(out, templates.Link{Text: p.label, Href: base + "?" + pq.Encode()})
	}
	return out
}

func eventRow(e activity.Event) templates.EventRow {
	return templates.EventRow{Seq: e.Seq, Time: e.Time, Account: e.Account, Region: e.Region, Source: e.Source, Name: e.Name, User: e.UserName,
		UserType: e.IdentityType, SourceIP: e.SourceIP, Error: e.ErrorCode, Sensitive: e.Sensitive, ReadOnly: e.ReadOnly, Sandbox: e.Sandbox, Resources: e.Resources,
		Portal: activity.PortalCall(e)}
}

func (s *Server) activityList(c echo.Context) error { return s.renderActivity(c, false) }

func (s *Server) activitySensitive(c echo.Context) error { return s.renderActivity(c, true) }

func (s *Server) renderActivity(c echo.Context, sensitive bool) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	q := c.QueryParams()
	if sensitive {
		q.Set("sensitive", "1")
	}
	f, fv, ferr := parseActivityFilter(q)
	v := templates.ActivityView{Filter: fv, Sensitive: sensitive, Configured: svc.HasSources(), Categories: activity.SensitiveCategories(),
		TimePresets: timePresets(c.Request().URL.Path, c.QueryParams(), s.deps.Now())}
	page := activity.PageExplorer
	if sensitive {
		page = activity.PageSensitive
	}
	if v.Saved, err = s.savedQueries(c, page, c.QueryParams()); err != nil {
		return err
	}
	facets, err := svc.Facets(ctx)
	if err != nil {
		return err
	}
	v.Accounts, v.Regions, v.Sources = facets.Accounts, facets.Regions, facets.Sources
	v.Stored, v.SandboxEvents, v.Oldest, v.Newest = facets.Total, facets.Sandbox, facets.Oldest, facets.Newest
	cfg := svc.Config()
	for _, b := range cfg.Buckets {
		note := "s3://" + b.Bucket + " (" + b.Environment + ", " + b.Region + ")"
		if b.Sandbox {
			note += " — sandbox data"
		}
		v.SourcesNote = append(v.SourcesNote, note)
	}
	for _, l := range cfg.Lookups {
		for _, r := range l.Regions {
			v.SourcesNote = append(v.SourcesNote, "LookupEvents "+l.Environment+" "+r)
		}
	}
	if st, err := svc.JobStatus(ctx, activity.JobIngest); err == nil {
		v.LastIngest = templates.IngestStatus{LastFinished: st.LastFinished, LastError: st.LastError, NextRun: st.NextRun, Running: st.Running}
	}
	status := http.StatusOK
	base := "/activity"
	if sensitive {
		base = "/activity/sensitive"
	}
	if ferr != nil {
		v.Errors, status = apperr.FieldsOf(ferr), http.StatusBadRequest
	} else {
		start := time.Now()
		events, more, err := svc.Search(ctx, f)
		if err != nil {
			return err
		}
		v.Took = time.Since(start).Round(100 * time.Microsecond).String()
		for _, e := range events {
			v.Rows = append(v.Rows, eventRow(e))
		}
		pq := c.QueryParams()
		pq.Del("before")
		if more && len(events) > 0 {
			last := events[len(events)-1]
			nq := c.QueryParams()
			nq.Set("before", activity.Cursor{At: last.Time, Seq: last.Seq}.String())
			v.NextURL = base + "?" + nq.Encode()
		}
		if !f.Before.IsZero() {
			v.FirstURL = base + "?" + pq.Encode()
		}
		if sensitive {
			pq.Set("sensitive", "1")
		}
		v.ExportCSV = "/activity/export.csv?" + pq.Encode()
		v.ExportJSONL = "/activity/export.jsonl?" + pq.Encode()
	}
	title := "Activity"
	if sensitive {
		title = "Sensitive events"
	}
	return s.render(c, status, templates.Activity(s.page(c, title, "activity"), v))
}

func (s *Server) activityEvent(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	e, err := svc.Get(ctx, id)
	if err != nil {
		return err
	}
	v := templates.EventView{Row: eventRow(e), ID: e.ID, PrincipalARN: e.PrincipalARN, AccessKey: e.AccessKey, Session: e.Session, RequestID: e.RequestID,
		Origin: e.Origin, PortalCall: activity.PortalCall(e)}
	var pretty bytes.Buffer
	if json.Indent(&pretty, e.Raw, "", "  ") == nil {
		v.Raw = pretty.String()
	} else {
		v.Raw = string(e.Raw)
	}
	related, err := svc.Related(ctx, e, 20)
	if err != nil {
		return err
	}
	for _, r := range related {
		v.Related = append(v.Related, eventRow(r))
	}
	rq := url.Values{}
	rq.Set("since", e.Time.Add(-time.Hour).Format(time.RFC3339))
	rq.Set("until", e.Time.Add(time.Hour).Format(time.RFC3339))
	rq.Set("account", e.Account)
	v.RelatedURL = "/activity?" + rq.Encode()
	if s.deps.Workflows != nil {
		matches, err := svc.RunsFor(ctx, e, s.deps.Workflows.Engine)
		if err != nil {
			return err
		}
		people := s.actors(c)
		for _, m := range matches {
			v.Runs = append(v.Runs, templates.RunLink{ID: m.Run.ID, Stack: m.Run.Stack, State: m.Run.State, By: people.view(m.Run.CreatedBy), How: m.How})
		}
	}
	return s.render(c, http.StatusOK, templates.EventPage(s.page(c, e.Name+" event", "activity"), v))
}

func (s *Server) activityExportCSV(c echo.Context) error { return s.activityExport(c, "csv") }

func (s *Server) activityExportJSONL(c echo.Context) error { return s.activityExport(c, "jsonl") }

// activityExport streams every event matching the filter; nothing is held
// in memory beyond one row.
func (s *Server) activityExport(c echo.Context, format string) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	f, _, err := parseActivityFilter(c.QueryParams())
	if err != nil {
		return err
	}
	h := c.Response().Header()
	name := "activity-" + s.deps.Now().UTC().Format("20060102-150405")
	if format == "csv" {
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`.csv"`)
	} else {
		h.Set(echo.HeaderContentType, "application/jsonl; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`.jsonl"`)
	}
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	return s.auditedExport(c, "activity", format, format == "csv", func(w io.Writer) error {
		if format == "csv" {
			return svc.ExportCSV(c.Request().Context(), f, w)
		}
		return svc.ExportJSONL(c.Request().Context(), f, w)
	})
}

func (s *Server) activityIngest(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	if !svc.HasSources() {
		return apperr.New(apperr.Conflict, "no trail bucket or LookupEvents account is configured")
	}
	res, ran, err := svc.IngestNow(c.Request().Context())
	switch {
	case !ran:
		s.flash(c, "Ingestion is already running elsewhere; new events will appear when it finishes.")
	case err != nil:
		s.flashError(c, fmt.Sprintf("Ingested %s from %s; some sources failed: %s", plural(res.New, "new event", "new events"), plural(res.Files, "file", "files"), err.Error()))
	default:
		s.flash(c, fmt.Sprintf("Ingested %s (%d sensitive) from %s.", plural(res.New, "new event", "new events"), res.Sensitive, plural(res.Files, "file", "files")))
	}
	return c.Redirect(http.StatusSeeOther, "/activity")
}
