package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/guardrails"
	"portal/internal/regions"
	"portal/web/templates"
)

// stackReport is the guardrail report of one stack (?version=, else the
// latest version).
func (s *Server) stackReport(c echo.Context) error {
	id := c.Param("stack")
	env, jid, _ := strings.Cut(id, "-")
	j, ok := regions.JurisdictionByID(jid)
	if !ok || regions.StackID(env, jid) != id || !isEnvironment(env) {
		return apperr.New(apperr.NotFound, "there is no stack %q (stacks are named like prod-eu)", id)
	}
	return s.renderReport(c, j, []string{id}, "Guardrail report: "+id)
}

// jurisdictionReport is the guardrail report of the three stacks of one
// jurisdiction.
func (s *Server) jurisdictionReport(c echo.Context) error {
	j, ok := regions.JurisdictionByID(c.Param("jurisdiction"))
	if !ok {
		return apperr.New(apperr.NotFound, "there is no jurisdiction %q (us, eu or apac)", c.Param("jurisdiction"))
	}
	var ids []string
	for _, env := range regions.EnvironmentNames() {
		ids = append(ids, regions.StackID(env, j.ID))
	}
	return s.renderReport(c, j, ids, "Guardrail report: "+j.Name)
}

func isEnvironment(name string) bool {
	for _, e := range regions.EnvironmentNames() {
		if e == name {
			return true
		}
	}
	return false
}

func (s *Server) renderReport(c echo.Context, j regions.Jurisdiction, stacks []string, heading string) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ver, err := s.versionParam(c, svc, "version")
	if err != nil {
		return err
	}
	latest, err := latestID(c, svc)
	if err != nil {
		return err
	}
	now := svc.Now()
	v := templates.ReportView{Heading: heading, Jurisdiction: j.Name, Regime: j.Regime, Version: versionRow(ver, latest, s.actors(c)), CanEdit: s.canEditBlueprints(c)}
	for _, id := range stacks {
		rep, _, err := svc.Report(ctx, ver.ID, id)
		if err != nil {
			return err
		}
		sr := templates.StackReport{Stack: id, Environment: strings.SplitN(id, "-", 2)[0], Region: j.HomeRegion, Status: stackStatus(rep, ver.ID)}
		for _, r := range rep.Results {
			sr.Results = append(sr.Results, findingView(id, r, now))
		}
		v.Stacks = append(v.Stacks, sr)
	}
	if v.Exceptions, err = s.exceptionsInForce(c, svc, stacks...); err != nil {
		return err
	}
	q := ""
	if ver.ID != latest {
		q = ver.ID
	}
	if len(stacks) == 1 {
		v.Links = append(v.Links, templates.NavItem{Label: "All of " + j.Name, Href: jurisdictionReportURL(j.ID, q)})
	}
	for _, env := range regions.EnvironmentNames() {
		if id := regions.StackID(env, j.ID); len(stacks) != 1 || id != stacks[0] {
			v.Links = append(v.Links, templates.NavItem{Label: id, Href: reportURL(id, q)})
		}
	}
	v.Links = append(v.Links, templates.NavItem{Label: "Version #" + itoa(ver.Seq), Href: "/blueprints/versions/" + ver.ID})
	v.Preventive = s.preventiveView(c, j)
	return s.render(c, http.StatusOK, templates.GuardrailReport(s.page(c, heading, "stacks"), v))
}

// reportStatus is a report's outcome in one word, for the API.
func reportStatus(r guardrails.Report) string {
	return stackStatus(r, "").Status
}
