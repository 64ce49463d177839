package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/access"
	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/staff"
	"portal/web/templates"
)

// awsActor is the signed-in person as the access service sees them.
func awsActor(c echo.Context) access.Actor {
	a := access.Actor{Entry: who(c)}
	if u := currentUser(c); u != nil {
		a.User = *u
	}
	return a
}

func isAdmin(c echo.Context) bool {
	u := currentUser(c)
	return u != nil && u.Has(staff.Admin)
}

func awsRoleInfos(ts *access.Templates) []templates.AWSRoleInfo {
	var out []templates.AWSRoleInfo
	for _, t := range ts.All() {
		standing := "elevation only everywhere"
		if len(t.Standing) > 0 {
			standing = "standing in " + strings.Join(t.Standing, ", ")
		}
		var hours []string
		for _, e := range access.Environments {
			hours = append(hours, fmt.Sprintf("%s %dh", e, t.MaxHours(e)))
		}
		out = append(out, templates.AWSRoleInfo{Name: t.Name, Title: t.Title, Description: t.Description, PortalRoles: strings.Join(t.PortalRoles, ", "),
			Limits: standing + "; elevation at most " + strings.Join(hours, ", ")})
	}
	return out
}

func awsOptions(values []string, selected string, labels func(string) string) []templates.Option {
	out := make([]templates.Option, 0, len(values))
	for _, v := range values {
		l := v
		if labels != nil {
			l = labels(v)
		}
		out = append(out, templates.Option{Value: v, Label: l, Selected: v == selected})
	}
	return out
}

func (s *Server) roleNames() []string {
	var out []string
	for _, t := range s.deps.Access.Templates().All() {
		out = append(out, t.Name)
	}
	return out
}

// awsGrantRows shapes grants for the tables, with what the viewer may do.
func (s *Server) awsGrantRows(c echo.Context, gs []access.Grant) []templates.AWSGrantRow {
	me := currentUser(c)
	admin := isAdmin(c)
	now := s.deps.Now()
	people := s.actors(c)
	unsynced := s.unsynced(c)
	out := make([]templates.AWSGrantRow, 0, len(gs))
	for _, g := range gs {
		row := templates.AWSGrantRow{ID: g.ID, UserID: g.UserID, Email: g.UserEmail, Environment: g.Environment, Role: g.Role, Kind: g.Kind,
			State: g.State, Reason: g.Reason, Minutes: g.Minutes, RequestedBy: people.view(g.RequestedBy), DecidedBy: people.view(g.DecidedBy), RequestedAt: g.RequestedAt,
			ExpiresAt: g.ExpiresAt, EndedAt: g.EndedAt, EndReason: g.EndReason, Now: now,
			CanDecide: admin && g.State == access.Pending && me.ID != g.RequestedByID && me.ID != g.UserID,
			CanRevoke: admin && g.State == access.Active}
		if g.State == access.Active {
			row.IAMPending = unsynced[syncKey(g.UserID, g.Environment, g.Role)]
		}
		out = append(out, row)
	}
	return out
}

// unsynced maps the assignments Identity Center does not reflect yet (by
// syncKey) to the last error of their retried sync: an active grant must
// not look done while AWS lags behind it.
func (s *Server) unsynced(c echo.Context) map[string]string {
	out := map[string]string{}
	ps, err := s.deps.Access.PendingSyncs(c.Request().Context())
	if err != nil {
		return out
	}
	for _, p := range ps {
		why := p.LastError
		if why == "" {
			why = "not tried yet"
		}
		out[syncKey(p.UserID, p.Environment, p.Role)] = why
	}
	return out
}

func syncKey(user int64, env, role string) string { return fmt.Sprintf("%d|%s|%s", user, env, role) }

// grantForm is the admin's standing grant form.
type grantForm struct {
	User        int64  `form:"user"`
	Environment string `form:"environment"`
	Role        string `form:"role"`
	Reason      string `form:"reason"`
}

func (s *Server) awsAccess(c echo.Context) error {
	return s.renderAWSAccess(c, http.StatusOK, grantForm{}, nil)
}

func (s *Server) renderAWSAccess(c echo.Context, status int, f grantForm, errs map[string]string) error {
	p := s.page(c, "AWS access", "access")
	if s.deps.Access == nil {
		return s.render(c, status, templates.AWSAccess(p, templates.AWSAccessView{}))
	}
	ctx := c.Request().Context()
	svc := s.deps.Access
	users, err := s.deps.Staff.List(ctx)
	if err != nil {
		return err
	}
	active, err := svc.List(ctx, access.Filter{States: []string{access.Active, access.Pending}, Limit: 10000})
	if err != nil {
		return err
	}
	v := templates.AWSAccessView{Configured: true, IsAdmin: isAdmin(c), Environments: access.Environments, Accounts: map[string]string{},
		Roles: awsRoleInfos(svc.Templates()), Reason: f.Reason, Errors: errs}
	for _, e := range access.Environments {
		v.Accounts[e] = svc.Account(e)
	}
	cells := map[int64]map[string][]templates.AWSHolding{}
	unsynced := s.unsynced(c)
	var pending, elevations []access.Grant
	for _, g := range active {
		st := "standing"
		switch {
		case g.State == access.Pending:
			st = "pending"
			pending = append(pending, g)
		case g.Kind == access.Elevation:
			st = "elevated"
			elevations = append(elevations, g)
		}
		if cells[g.UserID] == nil {
			cells[g.UserID] = map[string][]templates.AWSHolding{}
		}
		hold := templates.AWSHolding{Role: g.Role, State: st, GrantID: g.ID, ExpiresAt: g.ExpiresAt}
		if g.State == access.Active {
			hold.IAMPending = unsynced[syncKey(g.UserID, g.Environment, g.Role)]
		}
		cells[g.UserID][g.Environment] = append(cells[g.UserID][g.Environment], hold)
	}
	v.Pending = s.awsGrantRows(c, pending)
	v.Elevations = s.awsGrantRows(c, elevations)
	for _, u := range users {
		var roles []string
		for _, r := range u.Roles {
			roles = append(roles, string(r))
		}
		row := templates.AWSMatrixRow{UserID: u.ID, Email: u.Email, PortalRoles: strings.Join(roles, ", "), Disabled: u.Disabled}
		for _, e := range access.Environments {
			row.Cells = append(row.Cells, templates.AWSMatrixCell{Environment: e, Holds: cells[u.ID][e]})
		}
		v.Rows = append(v.Rows, row)
		if !u.Disabled {
			v.StaffOptions = append(v.StaffOptions, templates.Option{Value: strconv.FormatInt(u.ID, 10), Label: u.Email + " (" + strings.Join(roles, ", ") + ")", Selected: u.ID == f.User})
		}
	}
	v.EnvOptions = awsOptions(access.Environments, f.Environment, nil)
	v.RoleOptions = awsOptions(s.roleNames(), f.Role, nil)
	if ps, err := svc.PendingSyncs(ctx); err == nil {
		v.Problems = len(ps)
	}
	return s.render(c, status, templates.AWSAccess(p, v))
}

func (s *Server) awsGrantCreate(c echo.Context) error {
	if s.deps.Access == nil {
		return apperr.New(apperr.Conflict, "no AWS accounts are configured")
	}
	var f grantForm
	if err := c.Bind(&f); err != nil {
		return apperr.New(apperr.Invalid, "the form could not be read")
	}
	g, err := s.deps.Access.RequestGrant(c.Request().Context(), awsActor(c),
		access.Request{UserID: f.User, Environment: f.Environment, Role: f.Role, Kind: access.Standing, Reason: f.Reason})
	if apperr.KindOf(err) == apperr.Invalid || (apperr.KindOf(err) == apperr.Conflict && g.ID == 0) {
		return s.renderAWSAccess(c, statusOf[apperr.KindOf(err)], f, awsErrors(err))
	} else if err != nil && g.ID == 0 {
		return err
	}
	msg := fmt.Sprintf("%s granted %s in %s.", g.UserEmail, g.Role, g.Environment)
	if g.State == access.Pending {
		msg = fmt.Sprintf("Grant of %s in %s to %s recorded: another admin must approve it.", g.Role, g.Environment, g.UserEmail)
	}
	kind := templates.FlashSuccess
	if err != nil {
		msg += " " + apperr.MessageOf(err)
		kind = templates.FlashWarning
	}
	s.flashAs(c, kind, msg)
	return c.Redirect(http.StatusSeeOther, "/access/aws")
}

// awsErrors are the field errors of err, or its message under "form".
func awsErrors(err error) map[string]string {
	if f := apperr.FieldsOf(err); len(f) > 0 {
		return f
	}
	return map[string]string{"reason": apperr.MessageOf(err)}
}

func (s *Server) awsGrantDecide(approve bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := paramID(c, "id")
		if err != nil {
			return err
		}
		if s.deps.Access == nil {
			return apperr.New(apperr.Conflict, "no AWS accounts are configured")
		}
		g, err := s.deps.Access.Decide(c.Request().Context(), awsActor(c), id, approve, c.FormValue("note"))
		if err != nil && g.ID == 0 {
			return err
		}
		msg := fmt.Sprintf("Rejected %s in %s for %s.", g.Role, g.Environment, g.UserEmail)
		if approve {
			msg = fmt.Sprintf("Approved: %s holds %s in %s", g.UserEmail, g.Role, g.Environment)
			if !g.ExpiresAt.IsZero() {
				msg += " until " + g.ExpiresAt.UTC().Format("15:04 UTC")
			}
			msg += "."
		}
		kind := templates.FlashSuccess
		if err != nil {
			msg += " " + apperr.MessageOf(err)
			kind = templates.FlashWarning
		}
		s.flashAs(c, kind, msg)
		return c.Redirect(http.StatusSeeOther, "/access/aws")
	}
}

func (s *Server) awsGrantRevoke(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if s.deps.Access == nil {
		return apperr.New(apperr.Conflict, "no AWS accounts are configured")
	}
	g, err := s.deps.Access.Revoke(c.Request().Context(), awsActor(c), id, strings.TrimSpace(c.FormValue("reason")))
	if err != nil && g.ID == 0 {
		return err
	}
	msg := fmt.Sprintf("Revoked %s in %s from %s.", g.Role, g.Environment, g.UserEmail)
	kind := templates.FlashSuccess
	if err != nil {
		msg += " " + apperr.MessageOf(err)
		kind = templates.FlashWarning
	}
	s.flashAs(c, kind, msg)
	return c.Redirect(http.StatusSeeOther, "/access/aws")
}

// elevateForm is a person's elevation request.
type elevateForm struct {
	Environment string `form:"environment"`
	Role        string `form:"role"`
	Minutes     int    `form:"minutes"`
	Reason      string `form:"reason"`
}

var elevationMinutes = []int{15, 30, 60, 120, 240, 480}

func (s *Server) awsElevate(c echo.Context) error {
	return s.renderAWSElevate(c, http.StatusOK, elevateForm{Minutes: 60}, nil)
}

func (s *Server) renderAWSElevate(c echo.Context, status int, f elevateForm, errs map[string]string) error {
	p := s.page(c, "Request elevation", "access")
	if s.deps.Access == nil {
		return s.render(c, status, templates.AWSElevate(p, templates.AWSElevateView{}))
	}
	mine, err := s.deps.Access.List(c.Request().Context(), access.Filter{UserID: currentUser(c).ID, Kind: access.Elevation, Limit: 20})
	if err != nil {
		return err
	}
	v := templates.AWSElevateView{Configured: true, Reason: f.Reason, Errors: errs, Mine: s.awsGrantRows(c, mine), Roles: awsRoleInfos(s.deps.Access.Templates()),
		EnvOptions: awsOptions(access.Environments, f.Environment, nil), RoleOptions: awsOptions(s.roleNames(), f.Role, nil)}
	for _, m := range elevationMinutes {
		label := fmt.Sprintf("%d minutes", m)
		if m >= 60 {
			label = fmt.Sprintf("%d hour(s)", m/60)
		}
		v.MinuteOptions = append(v.MinuteOptions, templates.Option{Value: strconv.Itoa(m), Label: label, Selected: m == f.Minutes})
	}
	return s.render(c, status, templates.AWSElevate(p, v))
}

func (s *Server) awsElevateCreate(c echo.Context) error {
	if s.deps.Access == nil {
		return apperr.New(apperr.Conflict, "no AWS accounts are configured")
	}
	var f elevateForm
	if err := c.Bind(&f); err != nil {
		return s.renderAWSElevate(c, http.StatusBadRequest, f, map[string]string{"minutes": "choose a duration"})
	}
	me := currentUser(c)
	g, err := s.deps.Access.RequestGrant(c.Request().Context(), awsActor(c),
		access.Request{UserID: me.ID, Environment: f.Environment, Role: f.Role, Kind: access.Elevation, Minutes: f.Minutes, Reason: f.Reason})
	if k := apperr.KindOf(err); k == apperr.Invalid || k == apperr.Conflict {
		return s.renderAWSElevate(c, statusOf[k], f, awsErrors(err))
	} else if err != nil {
		return err
	}
	s.flash(c, fmt.Sprintf("Requested %s in %s for %d minutes: another admin must approve.", g.Role, g.Environment, g.Minutes))
	return c.Redirect(http.StatusSeeOther, "/access/aws/elevate")
}

func (s *Server) awsRoles(c echo.Context) error {
	p := s.page(c, "Roles in AWS", "access")
	if s.deps.Access == nil {
		return s.render(c, http.StatusOK, templates.AWSRoles(p, templates.AWSRolesView{}))
	}
	ctx := c.Request().Context()
	svc := s.deps.Access
	me := currentUser(c)
	v := templates.AWSRolesView{Configured: true, IsAdmin: isAdmin(c), Roles: awsRoleInfos(svc.Templates())}
	people := s.actors(c)
	for _, env := range access.Environments {
		row := templates.AWSRolePlanRow{Environment: env, Account: svc.Account(env), Stack: access.StackID(env)}
		plans, err := svc.RolePlans(ctx, env, 1)
		if err != nil {
			return err
		}
		if len(plans) == 1 {
			rp := plans[0]
			row.PlanID, row.CreatedBy, row.CreatedAt, row.ApprovedBy, row.RunID = rp.PlanID, people.view(rp.CreatedBy), rp.CreatedAt, people.view(rp.ApprovedBy), rp.RunID
			row.NeedsApproval = rp.NeedsApproval()
			row.CanApprove = row.NeedsApproval && isAdmin(c) && me.ID != rp.CreatedByID
			if pl, err := svc.GetPlan(ctx, rp.PlanID); err == nil {
				row.HasChanges = pl.HasChanges()
				row.Blocking = pl.Blocking()
				counts := pl.Counts()
				var parts []string
				for _, a := range []engine.Action{engine.Create, engine.Update, engine.Replace, engine.Delete} {
					if counts[a] > 0 {
						parts = append(parts, fmt.Sprintf("%d to %s", counts[a], a))
					}
				}
				row.Changes = "no changes"
				if len(parts) > 0 {
					row.Changes = strings.Join(parts, ", ")
				}
			}
		}
		v.Envs = append(v.Envs, row)
	}
	return s.render(c, http.StatusOK, templates.AWSRoles(p, v))
}

func (s *Server) awsRolesPlan(c echo.Context) error {
	if s.deps.Access == nil {
		return apperr.New(apperr.Conflict, "no AWS accounts are configured")
	}
	p, err := s.deps.Access.PlanRoles(c.Request().Context(), awsActor(c), c.Param("env"))
	if err != nil {
		return err
	}
	s.flash(c, fmt.Sprintf("Planned %s: plan #%d.", access.StackID(c.Param("env")), p.ID))
	return c.Redirect(http.StatusSeeOther, "/access/aws/roles")
}

func (s *Server) awsRolesApprove(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if s.deps.Access == nil {
		return apperr.New(apperr.Conflict, "no AWS accounts are configured")
	}
	if err := s.deps.Access.ApproveRoles(c.Request().Context(), awsActor(c), id); err != nil {
		return err
	}
	s.flash(c, fmt.Sprintf("Approved plan #%d.", id))
	return c.Redirect(http.StatusSeeOther, "/access/aws/roles")
}

func (s *Server) awsRolesApply(c echo.Context) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if s.deps.Access == nil {
		return apperr.New(apperr.Conflict, "no AWS accounts are configured")
	}
	runID, err := s.deps.Access.ApplyRoles(c.Request().Context(), awsActor(c), id)
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/runs/"+itoa(runID))
}

func (s *Server) awsConsistency(c echo.Context) error {
	p := s.page(c, "Portal roles and AWS access", "access")
	if s.deps.Access == nil {
		return s.render(c, http.StatusOK, templates.AWSConsistency(p, templates.AWSConsistencyView{}))
	}
	v := templates.AWSConsistencyView{Configured: true}
	fs, err := s.deps.Access.Consistency(c.Request().Context())
	if err != nil {
		v.Error = "Could not compare: " + apperr.MessageOf(err)
	}
	for _, f := range fs {
		v.Findings = append(v.Findings, templates.AWSFindingRow{UserID: f.UserID, Email: f.UserEmail, Environment: f.Environment, Role: f.Role, GrantID: f.GrantID, Problem: f.Problem})
	}
	if acct := s.deps.Access.ManagementAccount(); acct != "" {
		v.IdentityCenter = fmt.Sprintf("account %s, %s", acct, s.deps.Access.IdentityCenterRegion())
		for _, env := range access.Environments {
			if s.deps.Access.Account(env) == "" {
				continue
			}
			as, err := s.deps.Access.Assignments(c.Request().Context(), env)
			if err != nil {
				v.AssignmentError = apperr.MessageOf(err)
				break
			}
			for _, a := range as {
				v.Assignments = append(v.Assignments, templates.AWSAssignmentRow{Environment: env, Account: s.deps.Access.Account(env),
					PermissionSet: a.PermissionSet, PrincipalType: a.PrincipalType, Principal: a.Principal})
			}
		}
	}
	return s.render(c, http.StatusOK, templates.AWSConsistency(p, v))
}
