package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/blueprints"
	"portal/internal/guardrails"
	"portal/internal/versions"
	"portal/web/templates"
)

// versionsSvc returns the versions service, or a clear error when the
// portal was assembled without one.
func (s *Server) versionsSvc() (*versions.Service, error) {
	if s.deps.Versions == nil {
		return nil, apperr.New(apperr.Conflict, "blueprint versions are not available in this portal")
	}
	return s.deps.Versions, nil
}

// canEditBlueprints reports whether the signed-in person may save versions
// and record exceptions, as the routes declare.
func (s *Server) canEditBlueprints(c echo.Context) bool {
	u := currentUser(c)
	return u != nil && s.allowed(u, http.MethodPost, "/blueprints/versions")
}

func versionRow(v versions.Version, latestID string, people *actors) templates.VersionRow {
	r := templates.VersionRow{ID: v.ID, Short: v.Short(), Seq: v.Seq, Parent: v.Parent, Author: people.view(v.Author), Message: v.Message,
		CreatedAt: v.CreatedAt, Latest: v.ID == latestID}
	if v.ParentSeq > 0 {
		r.ParentSeq = "#" + strconv.FormatInt(v.ParentSeq, 10)
	}
	return r
}

// fileName is the last element of a version file's path, used in URLs.
func fileName(path string) string { return path[strings.LastIndex(path, "/")+1:] }

// filePath maps a URL file name back to its path in a version.
func filePath(name string) (string, bool) {
	for _, p := range versions.Paths() {
		if fileName(p) == name || p == name {
			return p, true
		}
	}
	return "", false
}

func fileURL(versionID, path string) string {
	return "/blueprints/versions/" + versionID + "/files/" + fileName(path)
}

func reportURL(stack, versionID string) string {
	u := "/blueprints/guardrails/stacks/" + stack
	if versionID != "" {
		u += "?version=" + versionID
	}
	return u
}

func jurisdictionReportURL(j, versionID string) string {
	u := "/blueprints/guardrails/jurisdictions/" + j
	if versionID != "" {
		u += "?version=" + versionID
	}
	return u
}

// stackStatus summarises a report: blocked beats excepted beats warn.
func stackStatus(r guardrails.Report, versionID string) templates.StackStatus {
	st := templates.StackStatus{Stack: r.Stack, ReportURL: reportURL(r.Stack, versionID)}
	for _, res := range r.Results {
		switch {
		case res.Status == guardrails.Excepted:
			st.Excepted++
		case res.Status == guardrails.Fail && res.Severity == guardrails.Blocking:
			st.Failed++
		case res.Status == guardrails.Fail:
			st.Warned++
		}
	}
	switch {
	case st.Failed > 0:
		st.Status, st.Label = "blocked", plural(st.Failed, "blocking failure", "blocking failures")
	case st.Excepted > 0:
		st.Status, st.Label = "excepted", "Pass with "+plural(st.Excepted, "exception", "exceptions")
	case st.Warned > 0:
		st.Status, st.Label = "warn", "Pass with "+plural(st.Warned, "warning", "warnings")
	default:
		st.Status, st.Label = "pass", "Pass"
	}
	return st
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func position(file string, line, col int) string {
	if file == "" {
		return ""
	}
	p := file
	if line > 0 {
		p += ":" + strconv.Itoa(line)
		if col > 0 {
			p += ":" + strconv.Itoa(col)
		}
	}
	return p
}

func exceptionFormURL(stack string, r guardrails.Result) string {
	q := url.Values{"rule_id": {r.RuleID}, "stack": {stack}, "resource": {r.Resource}}
	return "/blueprints/exceptions?" + q.Encode() + "#new-exc-h"
}

func findingView(stack string, r guardrails.Result, now time.Time) templates.FindingView {
	f := templates.FindingView{Stack: stack, RuleID: r.RuleID, Title: r.Title, Severity: string(r.Severity), Status: string(r.Status),
		Resource: r.Resource, Path: r.Path, File: r.File, Line: r.Line, Column: r.Column, Message: r.Message,
		Explanation: r.Explanation, Citation: r.Citation}
	if r.Status != guardrails.Pass {
		f.Position = position(r.File, r.Line, r.Column)
	}
	if r.Status == guardrails.Fail {
		f.ExceptionURL = exceptionFormURL(stack, r)
	}
	if r.Exception != nil {
		row := exceptionRow(versions.Exception{Exception: *r.Exception}, now, false, nil)
		f.Exception = &row
	}
	return f
}

func exceptionRow(e versions.Exception, now time.Time, canRevoke bool, people *actors) templates.ExceptionRow {
	state := e.State(now)
	return templates.ExceptionRow{ID: e.ID, RuleID: e.RuleID, Stack: e.Stack, Resource: e.Resource, Owner: e.Owner, Reason: e.Reason,
		Expires: e.Expires, CreatedAt: e.CreatedAt, RevokedAt: e.RevokedAt, CreatedBy: people.view(e.CreatedBy), RevokedBy: people.view(e.RevokedBy), State: state,
		DaysLeft: int(e.Expires.Sub(now).Hours() / 24), CanRevoke: canRevoke && (state == versions.ExceptionActive || state == versions.ExceptionAwaiting),
		ApprovedBy: people.view(e.ApprovedBy), ApprovedAt: e.ApprovedAt}
}

// sources maps each file's path to its lines, for excerpts.
type sources map[string][]string

func newSources(files []versions.File) sources {
	m := sources{}
	for _, f := range files {
		m[f.Path] = versions.Lines(f.Content)
	}
	return m
}

// excerpt returns line of file (tabs as spaces) and the indent of a caret
// under column; "" when the line is unknown.
func (m sources) excerpt(file string, line, column int) (src, pad string) {
	ls := m[file]
	if line <= 0 || line > len(ls) {
		return "", ""
	}
	src = strings.ReplaceAll(ls[line-1], "\t", " ")
	if column > 1 {
		pad = strings.Repeat(" ", min(column-1, len(src)))
	}
	return src, pad
}

// gutterAnchor links to a line of the editor's gutter when file is the one
// being edited.
func gutterAnchor(file, edited string, line int) string {
	if file != edited || line <= 0 {
		return ""
	}
	return "#g" + strconv.Itoa(line)
}

// diagnosticViews renders diagnostics with the offending line of files.
func diagnosticViews(ds []blueprints.Diagnostic, files []versions.File, edited string) []templates.DiagnosticView {
	src := newSources(files)
	out := make([]templates.DiagnosticView, 0, len(ds))
	for _, d := range ds {
		v := templates.DiagnosticView{File: d.File, Line: d.Line, Column: d.Column, Path: d.Path, Message: d.Message,
			Severity: d.Severity.String(), InEdited: d.File == edited, Position: position(d.File, d.Line, d.Column),
			Anchor: gutterAnchor(d.File, edited, d.Line)}
		v.Source, v.CaretPad = src.excerpt(d.File, d.Line, d.Column)
		out = append(out, v)
	}
	return out
}

// diffRows turns a line diff into side-by-side rows, pairing each run of
// removed lines with the added lines that follow it, and folding unchanged
// runs to context lines around the changes.
func diffRows(ds []versions.DiffLine, context int) (rows []templates.DiffRow, added, removed int) {
	var all []templates.DiffRow
	for i := 0; i < len(ds); {
		if ds[i].Op == versions.Equal {
			all = append(all, templates.DiffRow{Kind: "same", OldN: ds[i].OldLine, NewN: ds[i].NewLine, Old: ds[i].Text, New: ds[i].Text})
			i++
			continue
		}
		var dels, ins []versions.DiffLine
		for i < len(ds) && ds[i].Op == versions.Delete {
			dels = append(dels, ds[i])
			i++
		}
		for i < len(ds) && ds[i].Op == versions.Insert {
			ins = append(ins, ds[i])
			i++
		}
		removed, added = removed+len(dels), added+len(ins)
		for k := range max(len(dels), len(ins)) {
			r := templates.DiffRow{}
			switch {
			case k < len(dels) && k < len(ins):
				r = templates.DiffRow{Kind: "change", OldN: dels[k].OldLine, Old: dels[k].Text, NewN: ins[k].NewLine, New: ins[k].Text}
			case k < len(dels):
				r = templates.DiffRow{Kind: "del", OldN: dels[k].OldLine, Old: dels[k].Text}
			default:
				r = templates.DiffRow{Kind: "ins", NewN: ins[k].NewLine, New: ins[k].Text}
			}
			all = append(all, r)
		}
	}
	// Keep unchanged lines within context of a change.
	keep := make([]bool, len(all))
	for i, r := range all {
		if r.Kind != "same" {
			for j := max(0, i-context); j <= min(len(all)-1, i+context); j++ {
				keep[j] = true
			}
		}
	}
	for i := 0; i < len(all); {
		if keep[i] {
			rows = append(rows, all[i])
			i++
			continue
		}
		j := i
		for j < len(all) && !keep[j] {
			j++
		}
		rows = append(rows, templates.DiffRow{Kind: "skip", Skipped: j - i})
		i = j
	}
	return rows, added, removed
}

// fileDiff compares two versions of one file; nil when they are the same.
func fileDiff(path string, old, new []byte) *templates.FileDiff {
	if string(old) == string(new) {
		return nil
	}
	rows, added, removed := diffRows(versions.Diff(old, new), 3)
	return &templates.FileDiff{Path: path, Rows: rows, Added: added, Removed: removed}
}
