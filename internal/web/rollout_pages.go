package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/regions"
	"portal/internal/staff"
	"portal/internal/workflows"
	"portal/web/templates"
)

func rollOutRow(r workflows.RollOut) templates.RollOutRow {
	row := templates.RollOutRow{ID: r.ID, Version: r.Version, Environment: r.Environment, State: r.State, Message: r.Message,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt}
	for _, round := range r.Rounds() {
		var steps []templates.RollOutStepRow
		for _, s := range round {
			steps = append(steps, templates.RollOutStepRow{Stack: s.Stack, State: s.State, Message: s.Message, PlanID: s.PlanID, RunID: s.RunID})
		}
		row.Rounds = append(row.Rounds, steps)
	}
	return row
}

func (s *Server) rollOutsList(c echo.Context) error {
	env := "dev"
	if e := c.QueryParam("environment"); slices.Contains(regions.EnvironmentNames(), e) {
		env = e // a link from the promotion form's layer note
	}
	return s.renderRollOuts(c, http.StatusOK, templates.RollOutForm{Environment: env})
}

func (s *Server) renderRollOuts(c echo.Context, status int, form templates.RollOutForm) error {
	form.Environments = regions.EnvironmentNames()
	if form.Errors == nil {
		form.Errors = templates.FormErrors{}
	}
	v := templates.RollOutsView{Form: form, CanRoll: currentUser(c).Has(staff.Ops, staff.Admin)}
	page := s.page(c, "Roll-outs", "promotions")
	wf := s.deps.Workflows
	if wf == nil {
		v.AWSNote = "AWS is not configured, so nothing can be rolled out: start the portal with the dev, test and prod account ids (see the README)."
		return s.render(c, status, templates.RollOuts(page, v))
	}
	rs, err := wf.ListRollOuts(c.Request().Context(), 25)
	if err != nil {
		return err
	}
	for _, r := range rs {
		v.Rows = append(v.Rows, rollOutRow(r))
	}
	return s.render(c, status, templates.RollOuts(page, v))
}

func (s *Server) rollOutCreate(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return apperr.New(apperr.Invalid, "the form could not be read")
	}
	in := templates.RollOutForm{Version: strings.TrimSpace(form.Get("version")), Environment: form.Get("environment")}
	r, err := wf.StartRollOut(c.Request().Context(), who(c), in.Environment, in.Version)
	if err != nil {
		switch apperr.KindOf(err) {
		case apperr.Invalid:
			in.Errors = apperr.FieldsOf(err)
			in.Message = "The roll-out was not started: correct the fields below."
			return s.renderRollOuts(c, http.StatusBadRequest, in)
		case apperr.Conflict, apperr.NotFound:
			in.Message = apperr.MessageOf(err)
			if apperr.KindOf(err) == apperr.NotFound {
				in.Errors = templates.FormErrors{"version": "does not name a saved blueprint version"}
			}
			return s.renderRollOuts(c, http.StatusConflict, in)
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/rollouts/"+itoa(r.ID))
}

func (s *Server) rollOut(c echo.Context) (templates.RollOutRow, error) {
	wf, err := s.workflows()
	if err != nil {
		return templates.RollOutRow{}, err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return templates.RollOutRow{}, err
	}
	r, err := wf.GetRollOut(c.Request().Context(), id)
	if err != nil {
		return templates.RollOutRow{}, err
	}
	return rollOutRow(r), nil
}

func (s *Server) rollOutShow(c echo.Context) error {
	r, err := s.rollOut(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.RollOutPage(s.page(c, fmt.Sprintf("Roll-out #%d", r.ID), "promotions"), r))
}

func (s *Server) rollOutProgress(c echo.Context) error {
	r, err := s.rollOut(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.RollOutProgress(r))
}
