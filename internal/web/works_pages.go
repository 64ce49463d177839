package web

import (
	"portal/internal/engine"
	"portal/web/templates"
)

// worksView turns a plan's "will it work?" section into its view; failures
// block the apply in prod (the guardrails say so too).
func worksView(p *engine.Plan, w *engine.WorksSection) *templates.WorksView {
	if w == nil {
		return nil
	}
	v := &templates.WorksView{Live: w.Source == "live", Missing: w.Missing, Note: w.Note, Failed: w.Failed(),
		Blocking: w.Source != "live" && p.Stack.Environment == "prod"}
	for _, c := range w.Checks {
		wc := templates.WorksCheck{Rule: c.Rule, Title: c.Title, OK: c.OK()}
		for _, h := range c.Hops {
			wc.Hops = append(wc.Hops, templates.WorksHop{From: h.From, To: h.To, Via: h.Via, Problem: h.Problem, Fix: h.Fix, Resource: h.Resource, Stack: h.Stack, OK: h.OK})
		}
		v.Checks = append(v.Checks, wc)
	}
	return v
}
