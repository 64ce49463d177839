package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/analysis"
	"portal/internal/apperr"
	"portal/internal/regions"
	"portal/web/templates"
)

// routingStacks returns the environment's layer and jurisdiction stacks
// from the latest blueprint version.
func (s *Server) routingStacks(c echo.Context, env string) ([]analysis.Stack, string, error) {
	if s.deps.Versions == nil {
		return nil, "", apperr.New(apperr.Conflict, "no blueprint versions are stored")
	}
	layer, version, err := s.deps.Versions.Resolve(c.Request().Context(), "", regions.LayerID(env))
	if err != nil {
		return nil, "", err
	}
	var out []analysis.Stack
	for _, st := range layer.EnvironmentStacks() {
		out = append(out, st)
	}
	return out, version, nil
}

func routeView(where string, r analysis.Resolution, checks []analysis.HealthCheck, down map[string]bool) *templates.RouteResult {
	res := &templates.RouteResult{Where: where, Region: r.Region, Stack: r.Stack, Maintenance: r.Maintenance, Summary: r.Summary}
	for _, s := range r.Chain {
		res.Chain = append(res.Chain, templates.RouteStep{Name: s.Name, Routing: s.Routing, Choice: s.Choice, Target: s.Target, Resource: s.Resource, Stack: s.Stack})
	}
	for _, h := range checks {
		if down[h.Key] {
			res.Down = append(res.Down, healthLabel(h))
		}
	}
	return res
}

func healthLabel(h analysis.HealthCheck) string {
	role := "home"
	if j, ok := regions.JurisdictionByID(strings.TrimPrefix(h.Stack, strings.SplitN(h.Stack, "-", 2)[0]+"-")); ok && h.Region != j.HomeRegion {
		role = "standby"
	}
	return fmt.Sprintf("%s (%s %s, %s)", h.Region, h.Stack, role, h.Host)
}

func (s *Server) routingExplorer(c echo.Context) error {
	env := c.QueryParam("env")
	if env == "" {
		env = "prod"
	}
	if !slices.Contains(regions.EnvironmentNames(), env) {
		return &apperr.Error{Kind: apperr.Invalid, Message: "env must be dev, test or prod", Fields: map[string]string{"env": "must be dev, test or prod"}}
	}
	v := templates.RoutingView{Environments: regions.EnvironmentNames(), Environment: env, Country: c.QueryParam("country"), State: c.QueryParam("state")}
	page := s.page(c, "Routing explorer", "routing")
	stacks, version, err := s.routingStacks(c, env)
	if err != nil {
		if k := apperr.KindOf(err); k == apperr.NotFound || k == apperr.Conflict {
			v.Message = "Nothing to explore yet: " + apperr.MessageOf(err) + "."
			return s.render(c, http.StatusOK, templates.Routing(page, v))
		}
		return err
	}
	v.Version = version
	for _, ct := range analysis.Countries() {
		v.Countries = append(v.Countries, templates.CountryOption{Code: ct.Code, Name: ct.Name, Group: analysis.ContinentName(ct.Continent)})
	}
	for _, st := range analysis.USStates() {
		v.States = append(v.States, templates.CountryOption{Code: st[0], Name: st[1]})
	}
	checks := analysis.HealthChecks(env, stacks)
	down := map[string]bool{}
	for _, k := range c.QueryParams()["down"] {
		if !slices.ContainsFunc(checks, func(h analysis.HealthCheck) bool { return h.Key == k }) {
			return &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("%q is not a health check of %s", k, env), Fields: map[string]string{"down": "choose among the listed health checks"}}
		}
		down[k] = true
	}
	for _, h := range checks {
		v.Checks = append(v.Checks, templates.HealthCheckOption{Key: h.Key, Region: h.Region, Host: h.Host, Label: healthLabel(h), Down: down[h.Key]})
	}
	if v.Country != "" {
		loc, ok := analysis.LocationOf(v.Country, v.State)
		if !ok {
			return &apperr.Error{Kind: apperr.Invalid, Message: fmt.Sprintf("%q is not a country the explorer knows", v.Country), Fields: map[string]string{"country": "choose a listed country"}}
		}
		if v.State != "" && v.Country != "US" {
			return &apperr.Error{Kind: apperr.Invalid, Message: "a US state goes with the United States only", Fields: map[string]string{"state": "leave empty outside the United States"}}
		}
		v.Result = routeView(loc.Describe(), analysis.Route(env, stacks, loc, down), checks, down)
	}
	// At a glance: a patient of each jurisdiction, and one nobody's.
	for _, g := range []struct{ country, state string }{{"US", "TX"}, {"DE", ""}, {"SG", ""}, {"BR", ""}} {
		loc, _ := analysis.LocationOf(g.country, g.state)
		healthy := analysis.Route(env, stacks, loc, nil)
		row := templates.GlanceRow{Where: loc.Describe(), Healthy: answer(healthy)}
		if st := healthy.Stack; st != "" {
			_, jid, _ := strings.Cut(st, "-")
			j, _ := regions.JurisdictionByID(jid)
			row.Jurisdiction = j.Name
			homeDown := map[string]bool{}
			q := url.Values{"env": {env}, "country": {g.country}}
			if g.state != "" {
				q.Set("state", g.state)
			}
			for _, h := range checks {
				if h.Stack == st && h.Region == j.HomeRegion {
					homeDown[h.Key] = true
					q.Add("down", h.Key)
				}
			}
			row.HomeDown = answer(analysis.Route(env, stacks, loc, homeDown))
			row.HomeDownURL = "/routing?" + q.Encode()
		}
		v.Glance = append(v.Glance, row)
	}
	return s.render(c, http.StatusOK, templates.Routing(page, v))
}

func answer(r analysis.Resolution) string {
	switch {
	case r.Maintenance:
		return "maintenance page"
	case r.Region != "":
		return r.Region + " (" + r.Stack + ")"
	}
	return "no answer"
}
