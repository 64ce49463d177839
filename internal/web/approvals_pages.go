package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/staff"
	"portal/internal/versions"
	"portal/internal/workflows"
	"portal/web/templates"
)

func policyText(wf *workflows.Service) string {
	if len(wf.Approvals.Slots) == 0 {
		return workflows.DefaultApprovalPolicy().Describe()
	}
	return wf.Approvals.Describe()
}

func approver(u *staff.User) workflows.Approver {
	a := workflows.Approver{ID: u.ID, Label: u.Label()}
	for _, r := range u.Roles {
		a.Roles = append(a.Roles, string(r))
	}
	return a
}

// approvalPanel builds the approval section of plan p for u.
func (s *Server) approvalPanel(ctx context.Context, wf *workflows.Service, p *engine.Plan, u *staff.User, hasRun bool, people *actors) (templates.ApprovalPanel, error) {
	a, err := wf.ApprovalOf(ctx, p)
	if err != nil {
		return templates.ApprovalPanel{}, err
	}
	v := templates.ApprovalPanel{Needed: a.Needed, Satisfied: a.Satisfied, Missing: a.Missing, Policy: a.Policy.Describe(), Filled: a.Filled,
		Hash: p.Hash, SupersededBy: a.SupersededBy, Unsupported: unsupportedPolicy(wf), Blocked: a.Blocked}
	if a.Emergency != nil {
		v.Emergency = emergencyView(*a.Emergency, people)
	}
	if !a.Needed {
		return v, nil
	}
	for _, d := range a.Decisions {
		v.Decisions = append(v.Decisions, templates.DecisionRow{Approver: people.view(d.Approver), Decision: d.Decision, Reason: d.Reason, Void: d.Void,
			Roles: strings.Join(d.Roles, ", "), At: d.At, Expires: d.Expires})
	}
	lower, err := wf.LowerVerifications(ctx, p)
	if err != nil {
		return v, err
	}
	for _, l := range lower {
		v.Lower = append(v.Lower, verificationRow(l, people))
	}
	var decided bool
	for _, d := range a.Decisions {
		if d.ApproverID == u.ID && d.Void == "" {
			decided = true
		}
	}
	roles := slices.Concat(a.Policy.Slots...)
	var mayDecide bool
	for _, r := range roles {
		mayDecide = mayDecide || u.Has(staff.Role(r))
	}
	switch {
	case hasRun:
		v.DecideNote = "This plan has been applied."
	case a.SupersededBy > 0 || a.Rejected != nil || len(p.Blocking()) > 0 || !p.HasChanges():
	case a.Blocked != "":
		v.DecideNote = "Nobody may approve this plan: " + a.Blocked
	case a.AuthorID == u.ID:
		v.DecideNote = "You made this plan, so someone else must approve it."
	case !mayDecide:
		v.DecideNote = "Only people holding " + strings.Join(dedupeStrings(roles), " or ") + " may approve or reject this plan."
	case decided:
		v.DecideNote = "You have decided on this plan."
	default:
		v.CanDecide = true
	}
	return v, nil
}

// approvalsList is the approvals inbox: the plans the viewer may decide
// on now, with approve and reject at hand; the exceptions waiting for a
// compliance officer; and what waits for others.
func (s *Server) approvalsList(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u := currentUser(c)
	pending, err := wf.PendingApprovals(ctx, 100)
	if err != nil {
		return err
	}
	v := templates.ApprovalsView{Policy: policyText(wf), Emergency: workflows.EmergencyPolicy(wf.Approvals.Expiry).Describe()}
	me := approver(u)
	people := s.actors(c)
	for _, pa := range pending {
		n := 0
		for _, d := range pa.Approval.Decisions {
			if d.Void == "" {
				n++
			}
		}
		row := templates.ApprovalsRow{PlanID: pa.Plan.ID, Stack: pa.Plan.Stack.ID, Kind: pa.Plan.Kind, Version: pa.Plan.BlueprintVersion,
			CreatedBy: people.view(pa.Plan.CreatedBy), CreatedAt: pa.Plan.CreatedAt, Satisfied: pa.Approval.Satisfied, Missing: pa.Approval.Missing, Decisions: n,
			Hash: pa.Plan.Hash, Policy: pa.Approval.Policy.Describe(), Blocked: pa.Approval.Blocked}
		for a, k := range pa.Plan.Counts() {
			if a != engine.NoOp && a != engine.Read && k > 0 {
				row.Changes += k
			}
		}
		if e := pa.Approval.Emergency; e != nil {
			row.Emergency = e.Reason
		}
		lower, err := wf.LowerVerifications(ctx, pa.Plan)
		if err != nil {
			return err
		}
		for _, l := range lower {
			row.Lower = append(row.Lower, verificationRow(l, people))
		}
		ok, why := pa.CanDecide(me)
		row.CanDecide, row.Why = ok, why
		if ok {
			v.Mine = append(v.Mine, row)
		} else {
			v.Others = append(v.Others, row)
		}
	}
	if s.deps.Versions != nil {
		list, err := s.deps.Versions.ListExceptions(ctx, versions.ExceptionFilter{Awaiting: true})
		if err != nil {
			return err
		}
		now := s.deps.Versions.Now()
		for _, e := range list {
			row := exceptionRow(e, now, false, people)
			row.CanApprove = u.Has(staff.Compliance) && authorID(e.CreatedBy) != u.ID
			v.Exceptions = append(v.Exceptions, row)
		}
	}
	return s.render(c, http.StatusOK, templates.ApprovalsPage(s.page(c, "Approvals", "approvals"), v))
}

// waitingCount is how many decisions wait for u: plans u may approve or
// reject now and, for a compliance officer, exceptions to approve. The
// navigation shows it.
func (s *Server) waitingCount(ctx context.Context, u *staff.User) int {
	n := 0
	if wf := s.deps.Workflows; wf != nil && wf.DB != nil && u.Has(staff.Ops, staff.Admin, staff.Compliance) {
		if w, err := wf.WaitingFor(ctx, approver(u)); err == nil {
			n += len(w)
		} else {
			s.deps.Logger.Warn("approvals waiting", slog.String("err", err.Error()))
		}
	}
	if u.Has(staff.Compliance) && s.deps.Versions != nil {
		if list, err := s.deps.Versions.ListExceptions(ctx, versions.ExceptionFilter{Awaiting: true}); err == nil {
			for _, e := range list {
				if authorID(e.CreatedBy) != u.ID {
					n++
				}
			}
		}
	}
	return n
}

// decideInput is the approve/reject form.
type decideInput struct {
	Decision, Reason, Hash string
}

func (s *Server) planDecide(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	in := decideInput{Decision: c.FormValue("decision"), Reason: c.FormValue("reason"), Hash: c.FormValue("hash")}
	u := currentUser(c)
	d, err := wf.Decide(c.Request().Context(), who(c), approver(u), id, in.Hash, in.Decision, in.Reason)
	if apperr.KindOf(err) == apperr.Invalid && c.FormValue("return") == "/approvals" {
		s.flashError(c, fmt.Sprintf("Plan #%d: %s", id, apperr.MessageOf(err)))
		return c.Redirect(http.StatusSeeOther, "/approvals")
	} else if apperr.KindOf(err) == apperr.Invalid {
		return s.renderPlan(c, http.StatusBadRequest, apperr.FieldsOf(err))
	} else if err != nil {
		return err
	}
	if d.Decision == "approved" {
		s.flash(c, fmt.Sprintf("You approved plan #%d.", id))
	} else {
		s.flash(c, fmt.Sprintf("You rejected plan #%d.", id))
	}
	if c.FormValue("return") == "/approvals" {
		return c.Redirect(http.StatusSeeOther, "/approvals")
	}
	return c.Redirect(http.StatusSeeOther, "/plans/"+itoa(id))
}

func dedupeStrings(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func emergencyView(e workflows.EmergencyChange, people *actors) *templates.EmergencyView {
	return &templates.EmergencyView{PlanID: e.PlanID, Stack: e.Stack, Version: e.Version, Reason: e.Reason, CreatedBy: people.view(e.CreatedBy), CreatedAt: e.CreatedAt}
}
