package web

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/activity"
	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/web/templates"
)

const auditPageSize = 50

// parseAuditFilter reads the audit filter from the query string. Times are
// datetime-local values (taken as UTC) or RFC 3339.
func parseAuditFilter(q url.Values) (audit.Filter, templates.AuditFilter, error) {
	view := templates.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), Query: q.Get("q"), Since: q.Get("since"), Until: q.Get("until")}
	f := audit.Filter{Actor: view.Actor, Action: view.Action, Target: view.Target, Query: view.Query, Limit: auditPageSize}
	var v apperr.Validation
	var err error
	if f.Since, err = parseTimeParam(view.Since); err != nil {
		v.Add("since", err.Error())
	}
	if f.Until, err = parseTimeParam(view.Until); err != nil {
		v.Add("until", err.Error())
	}
	// An end before the start is well formed, only empty: a rule of
	// meaning (422 in the API), not of form.
	var rules apperr.Validation
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		rules.Add("until", "is before From")
	}
	if b := q.Get("before"); b != "" {
		if f.BeforeSeq, err = strconv.ParseInt(b, 10, 64); err != nil || f.BeforeSeq <= 0 {
			v.Add("before", "must be a record number")
		}
	}
	if l := q.Get("limit"); l != "" {
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 || f.Limit > audit.MaxLimit {
			v.Add("limit", "must be between 1 and "+strconv.Itoa(audit.MaxLimit))
		}
	}
	return f, view, v.WithRules(rules)
}

func parseTimeParam(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, apperr.New(apperr.Invalid, "is not a date and time like 2026-01-31T14:00")
}

func (s *Server) auditList(c echo.Context) error {
	ctx := c.Request().Context()
	f, fv, ferr := parseAuditFilter(c.QueryParams())
	v := templates.AuditView{Filter: fv}
	var err error
	if v.Saved, err = s.savedQueries(c, activity.PageAudit, c.QueryParams()); err != nil {
		return err
	}
	if v.Actions, err = s.deps.Audit.Actions(ctx); err != nil {
		return err
	}
	status := http.StatusOK
	if ferr != nil {
		v.Errors, status = apperr.FieldsOf(ferr), http.StatusBadRequest
	} else {
		recs, more, err := s.deps.Audit.List(ctx, f)
		if err != nil {
			return err
		}
		v.Rows = auditRows(recs)
		if more && len(recs) > 0 {
			q := c.QueryParams()
			q.Set("before", strconv.FormatInt(recs[len(recs)-1].Seq, 10))
			v.NextURL = "/audit?" + q.Encode()
		}
	}
	q := c.QueryParams()
	q.Del("before")
	v.ExportURL = "/audit/export.csv?" + q.Encode()
	if v.Integrity, err = s.integrity(c); err != nil {
		return err
	}
	return s.render(c, status, templates.Audit(s.page(c, "Audit trail", "audit"), v))
}

// verifyChain verifies the chain and, when anchoring is on, checks it
// against every anchor in the anchor store.
func (s *Server) verifyChain(c echo.Context) (templates.ChainView, error) {
	ctx := c.Request().Context()
	var anchors []audit.Anchor
	v := templates.ChainView{Unanchored: s.deps.Anchoring == nil}
	if a := s.deps.Anchoring; a != nil {
		var err error
		if anchors, err = a.Store.List(ctx); err != nil {
			s.deps.Logger.Error("audit anchors not read", slog.String("err", err.Error()))
			v.AnchorsError = "the anchors in " + a.Store.Describe() + " could not be read, so the newest records and a re-sealed chain are not checked: " + err.Error()
		}
	}
	res, err := s.deps.Audit.VerifyAgainst(ctx, anchors)
	if err != nil {
		return templates.ChainView{}, err
	}
	v.OK, v.Checked, v.FirstBroken, v.Reason = res.OK, res.Checked, res.FirstBroken, res.Reason
	v.HeadSeq, v.HeadHash, v.CheckedAt, v.KeyID, v.Unkeyed = res.HeadSeq, res.HeadHash, s.deps.Now(), res.KeyID, res.Unkeyed
	v.Anchored = s.deps.Anchoring != nil && v.AnchorsError == "" && res.Anchors > 0
	v.Anchors, v.AnchorSeq, v.AnchorAt = res.Anchors, res.AnchorSeq, res.AnchorAt
	if s.deps.Anchoring != nil && v.AnchorsError == "" && res.Anchors == 0 {
		v.AnchorsError = "no anchor has been written to " + s.deps.Anchoring.Store.Describe() + " yet"
	}
	return v, nil
}

// integrity describes the audit trail's keys and anchoring for the page.
func (s *Server) integrity(c echo.Context) (templates.AuditIntegrityView, error) {
	ring := s.deps.Audit.Keys()
	v := templates.AuditIntegrityView{KeyID: ring.Current().ID, KeyIDs: ring.IDs()}
	a := s.deps.Anchoring
	if a == nil {
		return v, nil
	}
	ctx := c.Request().Context()
	av := &templates.AnchoringView{Location: a.Store.Describe(), Account: a.Account, Interval: a.Interval.String(),
		Retention: retentionText(a.Retention)}
	last, err := s.deps.Audit.LastAnchor(ctx)
	if err != nil {
		return v, err
	}
	av.LastSeq, av.LastAt = last.Seq, last.AnchoredAt
	if a.Status != nil {
		if av.LastRun, av.LastError, err = a.Status(ctx); err != nil {
			return v, err
		}
	}
	v.Anchors = av
	return v, nil
}

// retentionText says a retention in days, or years when whole.
func retentionText(d time.Duration) string {
	days := int(d.Hours() / 24)
	if days >= 365 && days%365 == 0 {
		return strconv.Itoa(days/365) + " years"
	}
	return strconv.Itoa(days) + " days"
}

func (s *Server) auditVerify(c echo.Context) error {
	v, err := s.verifyChain(c)
	if err != nil {
		return err
	}
	if c.Request().Header.Get("HX-Request") == "true" {
		return s.render(c, http.StatusOK, templates.Chain(v))
	}
	return s.render(c, http.StatusOK, templates.ChainPage(s.page(c, "Audit chain verification", "audit"), v))
}

func (s *Server) auditExport(c echo.Context) error {
	f, _, err := parseAuditFilter(c.QueryParams())
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="audit-`+s.deps.Now().UTC().Format("20060102-150405")+`.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	return s.auditedExport(c, "audit", "csv", true, func(w io.Writer) error { return s.deps.Audit.ExportCSV(c.Request().Context(), f, w) })
}
