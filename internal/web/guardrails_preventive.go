package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/regions"
	"portal/internal/workflows"
	"portal/web/templates"
)

// preventiveView reads the organization's policies that matter to j: its
// residency policy and the audit policy.
func (s *Server) preventiveView(c echo.Context, j regions.Jurisdiction) templates.PreventiveView {
	g := s.deps.OrgGuard
	if !g.Configured() {
		return templates.PreventiveView{}
	}
	v := templates.PreventiveView{Configured: true, CanPlan: isAdmin(c), Jurisdiction: j.ID}
	st, err := g.Status(c.Request().Context())
	if err != nil {
		v.Error = apperr.MessageOf(err)
		return v
	}
	for _, p := range st {
		if p.Jurisdiction != "" && p.Jurisdiction != j.ID {
			continue
		}
		v.Policies = append(v.Policies, templates.PreventivePolicy{Name: p.Name, Description: p.Description, ID: p.ID, Attached: p.AttachedToRoot, Current: p.Current})
	}
	if id, err := strconv.ParseInt(c.QueryParam("org_plan"), 10, 64); err == nil && v.CanPlan {
		if p, err := s.deps.Workflows.Engine.GetPlan(c.Request().Context(), id); err == nil && p.Stack.ID == workflows.OrganizationStack {
			n := p.Counts()
			v.PlanID, v.PlanSummary = id, fmt.Sprintf("%d to create, %d to update, %d to delete", n[engine.Create], n[engine.Update], n[engine.Delete])
			if a, err := s.deps.Workflows.ApprovalOf(c.Request().Context(), p); err == nil {
				v.Approved, v.Missing = a.Satisfied, a.Missing
			} else {
				v.Missing = "its approval could not be read: " + apperr.MessageOf(err)
			}
		}
	}
	return v
}

// orgGuardPlan plans the organization's policies and shows the plan on the
// guardrail report it came from.
func (s *Server) orgGuardPlan(c echo.Context) error {
	g := s.deps.OrgGuard
	if !g.Configured() {
		return apperr.New(apperr.Conflict, "no management account is configured (-management-account-id)")
	}
	p, err := g.Plan(c.Request().Context(), who(c))
	if err != nil {
		return apperr.Wrap(apperr.Conflict, err, "could not plan the organization's policies: %s", engine.Explain(err))
	}
	back := "/blueprints/guardrails/jurisdictions/" + regions.Jurisdictions()[0].ID
	if j := c.FormValue("jurisdiction"); j != "" {
		if _, ok := regions.JurisdictionByID(j); ok {
			back = "/blueprints/guardrails/jurisdictions/" + j
		}
	}
	if !p.HasChanges() {
		s.flash(c, "The organization's policies are as the portal wants them: nothing to apply.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	s.flash(c, fmt.Sprintf("Planned the organization's policies: plan #%d.", p.ID))
	return c.Redirect(http.StatusSeeOther, back+"?org_plan="+itoa(p.ID))
}

// orgGuardApply applies a stored plan of the organization's policies.
func (s *Server) orgGuardApply(c echo.Context) error {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		return apperr.New(apperr.NotFound, "no plan %q", c.Param("id"))
	}
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	p, err := wf.Engine.GetPlan(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if p.Stack.ID != workflows.OrganizationStack {
		return apperr.New(apperr.Invalid, "plan %d is not of the organization's policies", id)
	}
	// The policies bind every account at once: another admin approves
	// the plan first (its page), as for prod.
	runID, err := wf.Apply(c.Request().Context(), who(c), id, "")
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/runs/"+itoa(runID))
}
