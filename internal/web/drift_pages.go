package web

import (
	"context"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/engine"
	"portal/internal/staff"
	"portal/internal/workflows"
	"portal/web/templates"
)

func driftRow(d workflows.DriftCheck) templates.DriftRow {
	return templates.DriftRow{ID: d.ID, Stack: d.Stack, Version: d.Version, State: d.State, Drifted: d.Drifted, Error: d.Error, CheckedAt: d.CheckedAt,
		RequestedBy: d.RequestedBy}
}

func (s *Server) driftList(c echo.Context) error {
	v := templates.DriftView{CanAct: currentUser(c).Has(staff.Ops, staff.Admin), Interval: "Stacks are checked on the portal's schedule (-drift-interval)."}
	wf := s.deps.Workflows
	if wf == nil {
		v.AWSNote = "AWS is not configured, so no stack can be checked for drift: start the portal with the dev, test and prod account ids (see the README)."
		return s.render(c, http.StatusOK, templates.DriftPage(s.page(c, "Drift", "promotions"), v))
	}
	ds, err := wf.DriftChecks(c.Request().Context())
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	for _, d := range ds {
		r := driftRow(d)
		if d.State != workflows.DriftClean {
			if r.Reconciling, err = reconciling(ctx, wf.Engine, d); err != nil {
				return err
			}
			v.Live = v.Live || r.Reconciling.ID > 0
		}
		v.Rows = append(v.Rows, r)
	}
	return s.render(c, http.StatusOK, templates.DriftPage(s.page(c, "Drift", "promotions"), v))
}

// reconciling finds the run that followed a stack's drift check, while that
// run is queued or applying, or succeeded and the check it is followed by
// has not landed yet: the drift page then shows it and refreshes itself
// until the stack's state is known again. A run that failed or was
// cancelled ends it: the check stands.
func reconciling(ctx context.Context, e *engine.Engine, d workflows.DriftCheck) (templates.RunLink, error) {
	runs, _, err := e.ListRuns(ctx, engine.RunFilter{Stack: d.Stack, Limit: 1})
	if err != nil || len(runs) == 0 {
		return templates.RunLink{}, err
	}
	r := runs[0]
	if !r.CreatedAt.After(d.CheckedAt) {
		return templates.RunLink{}, nil
	}
	switch r.State {
	case engine.RunQueued, engine.RunRunning, engine.RunSucceeded:
		return templates.RunLink{ID: r.ID, Stack: r.Stack, State: r.State}, nil
	}
	return templates.RunLink{}, nil
}

func (s *Server) driftCheckNow(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	checked, drifted, err := wf.CheckAllDrift(c.Request().Context(), who(c))
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Checked %s: %d drifted.", plural(checked, "deployed stack", "deployed stacks"), drifted)
	if drifted > 0 {
		s.flashWarning(c, msg)
	} else {
		s.flash(c, msg)
	}
	return c.Redirect(http.StatusSeeOther, "/drift")
}

func (s *Server) driftShow(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := wf.GetDrift(ctx, id)
	if err != nil {
		return err
	}
	v := templates.DriftDetailView{Row: driftRow(d), PlanID: d.PlanID, CanAct: currentUser(c).Has(staff.Ops, staff.Admin)}
	if latest, err := wf.LatestDrift(ctx, d.Stack); err == nil {
		v.Latest = latest.ID == d.ID
	}
	if d.PlanID > 0 {
		p, err := wf.Engine.GetPlan(ctx, d.PlanID)
		if err != nil {
			return err
		}
		v.NeedsApproval = p.Stack.Environment == "prod"
		pv := planView(&engine.Plan{Changes: workflows.Drifted(p)}, s.actors(c))
		for _, g := range pv.Groups {
			v.Changes = append(v.Changes, g.Changes...)
		}
	}
	return s.render(c, http.StatusOK, templates.DriftDetail(s.page(c, "Drift in "+d.Stack, "promotions"), v))
}

func (s *Server) driftReconcile(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := wf.GetDrift(ctx, id)
	if err != nil {
		return err
	}
	pr, err := wf.Reconcile(ctx, who(c), d.Stack)
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/promotions/"+itoa(pr.ID))
}
