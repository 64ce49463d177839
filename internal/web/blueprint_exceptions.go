package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/guardrails"
	"portal/internal/staff"
	"portal/internal/versions"
	"portal/web/templates"
)

// exceptionForm is the record-an-exception form. Expires is a date: the
// exception runs to the end of that day, UTC.
type exceptionForm struct {
	RuleID   string `form:"rule_id"`
	Stack    string `form:"stack"`
	Resource string `form:"resource"`
	Owner    string `form:"owner"`
	Reason   string `form:"reason"`
	Expires  string `form:"expires"`
}

// parseExpiry reads a date (end of that day, UTC) or an RFC 3339 time.
func parseExpiry(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseInLocation("2006-01-02", s, time.UTC); err == nil {
		return d.Add(24*time.Hour - time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, apperr.New(apperr.Invalid, "is not a date like 2026-01-31")
}

// Validate turns the form into an exception to record.
func (f exceptionForm) Validate(now time.Time) (versions.NewException, error) {
	n := versions.NewException{RuleID: strings.TrimSpace(f.RuleID), Stack: strings.TrimSpace(f.Stack), Resource: strings.TrimSpace(f.Resource),
		Owner: f.Owner, Reason: f.Reason}
	exp, err := parseExpiry(f.Expires)
	if err != nil {
		return n, &apperr.Error{Kind: apperr.Invalid, Message: "expires: " + apperr.MessageOf(err), Fields: map[string]string{"expires": apperr.MessageOf(err)}}
	}
	n.Expires = exp
	return n, n.Validate(now)
}

func (s *Server) exceptionsList(c echo.Context) error {
	f := exceptionForm{RuleID: c.QueryParam("rule_id"), Stack: c.QueryParam("stack"), Resource: c.QueryParam("resource")}
	return s.renderExceptions(c, http.StatusOK, f, nil)
}

func (s *Server) renderExceptions(c echo.Context, status int, f exceptionForm, errs map[string]string) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	now := svc.Now()
	all := c.QueryParam("all") != ""
	ctx := c.Request().Context()
	var list []versions.Exception
	if !all {
		// Those waiting for a compliance officer first, then those in force.
		if list, err = svc.ListExceptions(ctx, versions.ExceptionFilter{Awaiting: true}); err != nil {
			return err
		}
	}
	rest, err := svc.ListExceptions(ctx, versions.ExceptionFilter{InForce: !all})
	if err != nil {
		return err
	}
	list = append(list, rest...)
	u := currentUser(c)
	v := templates.ExceptionsView{Form: templates.ExceptionForm(f), Errors: errs, CanEdit: s.canEditBlueprints(c), Stacks: versions.StackIDs(),
		MaxDays: versions.MaxExceptionDays, ShowAll: all,
		MinDate: now.UTC().Format("2006-01-02"), MaxDate: now.UTC().Add(versions.MaxExceptionDays * 24 * time.Hour).Format("2006-01-02")}
	for _, r := range guardrails.Rules() {
		v.Rules = append(v.Rules, templates.RuleOption{ID: r.ID, Title: r.Title, Severity: string(r.Severity)})
	}
	people := s.actors(c)
	for _, e := range list {
		row := exceptionRow(e, now, v.CanEdit, people)
		row.CanApprove = row.State == versions.ExceptionAwaiting && u.Has(staff.Compliance) && authorID(e.CreatedBy) != u.ID
		v.Rows = append(v.Rows, row)
	}
	return s.render(c, status, templates.GuardrailExceptions(s.page(c, "Guardrail exceptions", "blueprints"), v))
}

func (s *Server) exceptionCreate(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	var f exceptionForm
	if err := c.Bind(&f); err != nil {
		return apperr.New(apperr.Invalid, "the form could not be read")
	}
	n, err := f.Validate(svc.Now())
	var e versions.Exception
	if err == nil {
		e, err = svc.CreateException(c.Request().Context(), who(c), n)
	}
	if apperr.KindOf(err) == apperr.Invalid {
		return s.renderExceptions(c, http.StatusBadRequest, f, apperr.FieldsOf(err))
	} else if err != nil {
		return err
	}
	msg := "Recorded exception #" + itoa(e.ID) + " to " + e.RuleID + " for " + e.Stack + ", owned by " + e.Owner + ", until " + e.Expires.UTC().Format("2006-01-02") + "."
	if e.NeedsApproval {
		msg += " It takes effect once a compliance officer other than you approves it."
	}
	s.flash(c, msg)
	return c.Redirect(http.StatusSeeOther, "/blueprints/exceptions")
}

func (s *Server) exceptionRevoke(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	e, err := svc.RevokeException(c.Request().Context(), who(c), id)
	if err != nil {
		return err
	}
	s.flash(c, "Revoked exception #"+itoa(e.ID)+" to "+e.RuleID+" for "+e.Stack+": the rule applies in full again.")
	return c.Redirect(http.StatusSeeOther, "/blueprints/exceptions")
}

func (s *Server) exceptionApprove(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	e, err := svc.ApproveException(c.Request().Context(), who(c), roleNames(currentUser(c)), id)
	if err != nil {
		return err
	}
	s.flash(c, "Approved exception #"+itoa(e.ID)+" to "+e.RuleID+" for "+e.Stack+": it is in force until "+e.Expires.UTC().Format("2006-01-02")+".")
	return c.Redirect(http.StatusSeeOther, "/blueprints/exceptions")
}

// roleNames lists u's roles as strings.
func roleNames(u *staff.User) []string {
	var out []string
	if u != nil {
		for _, r := range u.Roles {
			out = append(out, string(r))
		}
	}
	return out
}

// authorID returns the user id in an audit actor label ("user:3 ..."), or
// 0.
func authorID(actor string) int64 {
	rest, ok := strings.CutPrefix(actor, "user:")
	if !ok {
		return 0
	}
	rest, _, _ = strings.Cut(rest, " ")
	id, _ := strconv.ParseInt(rest, 10, 64)
	return id
}
