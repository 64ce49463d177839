package web

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/staff"
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
		v.Emergency = emergencyView(*a.Emergency)
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

func (s *Server) approvalsList(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	pending, err := wf.PendingApprovals(c.Request().Context(), 50)
	if err != nil {
		return err
	}
	v := templates.ApprovalsView{Policy: policyText(wf)}
	people := s.actors(c)
	for _, pa := range pending {
		n := 0
		for _, d := range pa.Approval.Decisions {
			if d.Void == "" {
				n++
			}
		}
		v.Rows = append(v.Rows, templates.ApprovalsRow{PlanID: pa.Plan.ID, Stack: pa.Plan.Stack.ID, Kind: pa.Plan.Kind, Version: pa.Plan.BlueprintVersion,
			CreatedBy: people.view(pa.Plan.CreatedBy), CreatedAt: pa.Plan.CreatedAt, Satisfied: pa.Approval.Satisfied, Missing: pa.Approval.Missing, Decisions: n})
	}
	return s.render(c, http.StatusOK, templates.ApprovalsPage(s.page(c, "Approvals", "promotions"), v))
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
	if apperr.KindOf(err) == apperr.Invalid {
		return s.renderPlan(c, http.StatusBadRequest, apperr.FieldsOf(err))
	} else if err != nil {
		return err
	}
	if d.Decision == "approved" {
		s.flash(c, "You approved this plan.")
	} else {
		s.flash(c, "You rejected this plan.")
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

func emergencyView(e workflows.EmergencyChange) *templates.EmergencyView {
	return &templates.EmergencyView{PlanID: e.PlanID, Stack: e.Stack, Version: e.Version, Reason: e.Reason, CreatedBy: e.CreatedBy, CreatedAt: e.CreatedAt}
}
