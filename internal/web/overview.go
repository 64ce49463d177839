package web

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/audit"
	"portal/web/templates"
)

var areaSummaries = map[string]string{
	"stacks":     "The nine stacks by environment and jurisdiction: version in force, last run, guardrail status.",
	"blueprints": "Versioned descriptions of each stack, with compliance guardrails.",
	"runs":       "Plans, applies and promotions across dev, test and prod.",
	"promotions": "Versions on their way dev -> test -> prod, drift and post-deploy verification.",
	"approvals":  "What waits for your decision: prod applies, destroys, emergency changes, the organization's policies, exceptions.",
	"inventory":  "What exists in every account and region, and whether it is ours.",
	"activity":   "CloudTrail events, alarms and evidence for auditors.",
	"billing":    "Stripe revenue, refunds, disputes and payout reconciliation.",
	"access":     "Staff, their roles and API tokens.",
	"audit":      "The portal's own tamper-evident record of every change.",
}

func (s *Server) overview(c echo.Context) error {
	u := currentUser(c)
	v := templates.OverviewView{Name: u.DisplayName(), Roles: userView(u).Roles}
	for _, n := range s.navFor(u) {
		if n.Key == "overview" {
			continue
		}
		v.Areas = append(v.Areas, templates.AreaCard{Label: n.Label, Href: n.Href, Summary: areaSummaries[n.Key]})
	}
	if s.allowed(u, http.MethodGet, "/inventory") {
		inv, err := s.inventorySummary(c)
		if err != nil {
			return err
		}
		v.Inventory = inv
	}
	if wf := s.deps.Workflows; wf != nil && wf.DB != nil && s.allowed(u, http.MethodGet, "/promotions") {
		es, err := wf.OutstandingEmergencies(c.Request().Context())
		if err != nil {
			return err
		}
		people := s.actors(c)
		for _, e := range es {
			ev := emergencyView(e.EmergencyChange, people)
			ev.State, ev.RunID, ev.Road = e.State, e.RunID, e.Road
			v.Emergencies = append(v.Emergencies, *ev)
		}
		v.Waiting = s.waitingCount(c.Request().Context(), u)
	}
	if s.allowed(u, http.MethodGet, "/audit") {
		v.CanSeeAudit = true
		recs, _, err := s.deps.Audit.List(c.Request().Context(), audit.Filter{Limit: 8})
		if err != nil {
			return err
		}
		v.Recent = auditRows(recs)
	}
	return s.render(c, http.StatusOK, templates.Overview(s.page(c, "Overview", "overview"), v))
}

func auditRows(recs []audit.Record) []templates.AuditRow {
	rows := make([]templates.AuditRow, len(recs))
	for i, r := range recs {
		details := ""
		if len(r.Details) > 0 {
			b, _ := json.Marshal(r.Details)
			details = string(b)
		}
		rows[i] = templates.AuditRow{Seq: r.Seq, At: r.At, Actor: r.Actor, Action: r.Action, Target: r.Target,
			SourceIP: r.SourceIP, RequestID: r.RequestID, Details: details}
	}
	return rows
}
