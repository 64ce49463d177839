package web

import (
	"context"
	"io"
	"log/slog"

	"github.com/labstack/echo/v4"
)

// maxAuditedFilter bounds the filter text kept in an export's audit record.
const maxAuditedFilter = 2000

// auditedExport streams an export through write and records in the audit
// trail what left the portal: who, which export (action "export.WHAT"), the
// filter (the query string), the format and how many rows went out, counted
// as they were written. header says whether the first line is a header
// row. An export cut short (write failed, or the client went away) is
// recorded too, marked incomplete.
func (s *Server) auditedExport(c echo.Context, what, format string, header bool, write func(w io.Writer) error) error {
	rc := &rowCounter{w: c.Response(), quoted: format == "csv"}
	err := write(rc)
	rows := rc.rows
	if header && rows > 0 {
		rows--
	}
	filter := c.QueryParams().Encode()
	if len(filter) > maxAuditedFilter {
		filter = filter[:maxAuditedFilter] + "…"
	}
	e := who(c)
	e.Action, e.Target = "export."+what, c.Request().URL.Path
	e.Details = map[string]any{"format": format, "filter": filter, "rows": rows}
	if err != nil {
		e.Details["incomplete"] = true
	}
	// The request's context ends with the client; the record must not.
	if _, aerr := s.deps.Audit.Record(context.WithoutCancel(c.Request().Context()), e); aerr != nil {
		s.deps.Logger.Error("export not audited", slog.String("export", what), slog.String("err", aerr.Error()),
			slog.String("request_id", e.RequestID))
		if err == nil {
			err = aerr
		}
	}
	return err
}

// rowCounter counts the lines written through it: CSV records (a newline
// inside a quoted field does not end one; encoding/csv doubles quotes inside
// fields, so toggling on every quote tracks the state) or JSON Lines.
type rowCounter struct {
	w        io.Writer
	quoted   bool
	inQuotes bool
	rows     int
}

func (r *rowCounter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	for _, b := range p[:n] {
		switch {
		case b == '"' && r.quoted:
			r.inQuotes = !r.inQuotes
		case b == '\n' && !r.inQuotes:
			r.rows++
		}
	}
	return n, err
}

// Flush passes a flush on to the response, for exports that stream.
func (r *rowCounter) Flush() {
	if f, ok := r.w.(interface{ Flush() }); ok {
		f.Flush()
	}
}

// recordRefusal logs a 403 with who was refused and, when someone is
// signed in (or uses a token), records it in the audit trail as
// access.denied. Anonymous refusals (a sign-in form with an expired CSRF
// token) are only logged: nothing from an anonymous request enters the
// chain beyond the sign-in records.
func (s *Server) recordRefusal(c echo.Context, msg string) {
	e := who(c)
	route := c.Path()
	if route == "" {
		route = "(no route)"
	}
	s.deps.Logger.Warn("refused", slog.String("who", e.Actor), slog.String("method", methodLabel(c.Request().Method)),
		slog.String("route", route), slog.String("request_id", e.RequestID), slog.String("ip", e.SourceIP))
	if currentUser(c) == nil {
		return
	}
	e.Action, e.Target = "access.denied", "route:"+methodLabel(c.Request().Method)+" "+route
	e.Details = map[string]any{"reason": msg}
	if _, err := s.deps.Audit.Record(context.WithoutCancel(c.Request().Context()), e); err != nil {
		s.deps.Logger.Error("refusal not audited", slog.String("err", err.Error()), slog.String("request_id", e.RequestID))
	}
}
