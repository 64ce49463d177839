package app

import (
	"context"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"portal/internal/evidence"
	"portal/internal/inventory"
)

// buildEvidence assembles the evidence packs: they read the engine's runs
// and state, the workflows' approvals, verifications and drift, the
// exceptions, CloudTrail activity, staff, the audit chain, the inventory
// and (live) AWS; the monthly job makes last month's pack of every
// jurisdiction.
func (a *App) buildEvidence(baseURL string, inv *inventory.Service, opts Options) *evidence.Service {
	svc := evidence.New(a.DB, a.Audit, a.log, opts.Now)
	svc.BaseURL, svc.Sandbox = baseURL, a.cfg.SandboxNotice
	src := evidence.Sources{Exceptions: a.Versions, Staff: a.Staff, Audit: a.Audit, Inventory: inv, People: a.person}
	if a.Activity != nil {
		src.Activity = a.Activity
	}
	if e := a.Estate; e != nil {
		src.AWS = func(env, region string) (aws.Config, error) { return e.Accounts.Config(env, region) }
		src.State, src.Runs, src.Workflows = e.Engine, e.Engine, e.Workflows
		// Without a management account the pack still lists the
		// preventive controls, saying AWS enforces nothing beyond the
		// portal's own rules.
		src.Preventive = e.OrgGuard.Controls
		for _, st := range e.Catalogue.Stacks() {
			src.Stacks = append(src.Stacks, evidence.Stack{ID: st.ID, Environment: st.Environment.Name, Jurisdiction: st.Jurisdiction.ID,
				Region: st.Region(), AccountID: st.Environment.AccountID})
		}
	}
	svc.Sources = src
	svc.Register(a.Jobs)
	return svc
}

// person writes an actor label ("user:2 olga@example.com via
// api-token:5") as people read it: "Olga Ops (olga@example.com) via API
// token #5". Labels that name nobody ("system") are kept.
func (a *App) person(ctx context.Context, label string) string {
	rest, ok := strings.CutPrefix(label, "user:")
	if !ok {
		return label
	}
	rest, tok, hasTok := strings.Cut(rest, " via api-token:")
	idText, email, _ := strings.Cut(rest, " ")
	out := email
	if id, err := strconv.ParseInt(idText, 10, 64); err == nil {
		if u, err := a.Staff.Get(ctx, id); err == nil {
			out = u.DisplayName()
			if out != u.Email {
				out += " (" + u.Email + ")"
			}
		}
	}
	if out == "" {
		out = label
	}
	if hasTok {
		out += " via API token #" + tok
	}
	return out
}
