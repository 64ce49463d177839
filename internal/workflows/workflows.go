// Package workflows is what people do with stacks: plan a blueprint version
// against a stack, apply the reviewed plan, destroy a stack, promote a
// version dev -> test -> prod, approve what reaches prod (four eyes), find
// drift, roll back, and verify a stack after every apply. It joins the
// blueprint versions, the regions catalogue and the provisioning engine.
//
// Promotion order: a version may be applied to test (prod) in a
// jurisdiction only after it applied and verified successfully in dev
// (test) of that jurisdiction. Every apply to prod and every destroy needs
// the approvals of ApprovalPolicy, bound to the plan's hash; a re-plan of
// the stack voids them, and they expire.
package workflows

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/blueprints"
	"portal/internal/engine"
	"portal/internal/guardrails"
	"portal/internal/notify"
	"portal/internal/regions"
	"portal/internal/store"
	"portal/internal/verify"
)

// Blueprints gives the resolved stack of a stored blueprint version and the
// guardrail exceptions in force.
type Blueprints interface {
	// Resolve returns stack stackID resolved from blueprint version
	// versionID ("" for the latest) and the version's id.
	Resolve(ctx context.Context, versionID, stackID string) (*blueprints.Stack, string, error)
	// Exceptions returns the guardrail exceptions recorded for stackID
	// (expired ones included: guardrails ignores them).
	Exceptions(ctx context.Context, stackID string) ([]guardrails.Exception, error)
}

// People is what the workflows need to know of staff (the staff service
// in production).
type People interface {
	// Person returns user id as the portal knows them now.
	Person(ctx context.Context, id int64) (Person, error)
	// WithRoles returns the active people holding any of roles.
	WithRoles(ctx context.Context, roles ...string) ([]Person, error)
}

// Person is a member of staff.
type Person struct {
	ID          int64
	Email, Name string
	Roles       []string
	Active      bool
}

// Verifier verifies a deployed stack (verify.Stacks in production).
type Verifier interface {
	VerifyStack(ctx context.Context, info engine.StackInfo, resources []engine.StateResource) verify.Result
}

// Service runs the stack workflows.
type Service struct {
	Engine     *engine.Engine
	Catalogue  *regions.Catalogue
	Blueprints Blueprints

	// DB and Audit hold promotions, approvals, verifications and drift
	// checks; every change is audited in the same transaction.
	DB    *store.DB
	Audit *audit.Log
	// Notify tells ops what needs them; nil publishes nothing.
	Notify *notify.Service
	// Verifier verifies a stack after every apply and on demand; nil
	// records verification as unavailable.
	Verifier Verifier
	// Approvals is who must approve prod applies and destroys; zero means
	// DefaultApprovalPolicy.
	Approvals ApprovalPolicy
	// People says who holds which roles now: an approval by someone who
	// has since lost the approving role, or whose account is disabled, no
	// longer counts. Nil trusts the roles recorded with each decision.
	People People
	// AcceptUnsupported lets a verification whose only gaps are steps the
	// endpoint cannot serve (Textract on the local emulator) count as
	// proof for promotion. Off by default; the sandbox turns it on and the
	// pages say so.
	AcceptUnsupported bool
	Log               *slog.Logger
	Now               func() time.Time
}

// environmentOf returns the environment of stack id, a jurisdiction stack
// or an environment layer, and whether id is either.
func (s *Service) environmentOf(id string) (string, bool) {
	if l, ok := s.Catalogue.Layer(id); ok {
		return l.Environment.Name, true
	}
	st, ok := s.Catalogue.Stack(id)
	return st.Environment.Name, ok
}

// Info returns where stack id (a jurisdiction stack or an environment
// layer) lives.
func (s *Service) Info(id, version string) (engine.StackInfo, error) {
	if l, ok := s.Catalogue.Layer(id); ok {
		return engine.StackInfo{ID: l.ID, Environment: l.Environment.Name, Region: regions.LayerRegion, Version: version, AccountID: l.Environment.AccountID}, nil
	}
	st, ok := s.Catalogue.Stack(id)
	if !ok {
		return engine.StackInfo{}, apperr.New(apperr.NotFound, "no stack %q (stacks are named like prod-eu)", id)
	}
	return engine.StackInfo{ID: st.ID, Environment: st.Environment.Name, Jurisdiction: st.Jurisdiction.ID, Region: st.Region(), Version: version, AccountID: st.Environment.AccountID}, nil
}

func planError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "engine: ")
	return "the plan could not be made: " + msg
}

// Apply queues a run of stored plan planID. A destroy plan needs the
// stack's name typed as confirm. The plan must be Ready: the normal road
// (or an approved emergency change), guardrails passing with today's
// exceptions, and valid approvals when it needs them.
func (s *Service) Apply(ctx context.Context, by audit.Entry, planID int64, confirm string) (int64, error) {
	p, err := s.Engine.GetPlan(ctx, planID)
	if err != nil {
		return 0, err
	}
	if p.Kind == "destroy" && strings.TrimSpace(confirm) != p.Stack.ID {
		return 0, &apperr.Error{Kind: apperr.Invalid, Unprocessable: true, Message: fmt.Sprintf("type the stack's name, %s, to confirm the destroy", p.Stack.ID),
			Fields: map[string]string{"confirm": fmt.Sprintf("must be %s to confirm", p.Stack.ID)}}
	}
	if s.DB == nil {
		if NeedsApproval(p) {
			return 0, apperr.New(apperr.Conflict, "plan %d needs approval, and approvals are not available in this portal", p.ID)
		}
	} else if why, err := s.Ready(ctx, p); err != nil {
		return 0, err
	} else if why != "" {
		return 0, apperr.New(apperr.Conflict, "%s", why)
	}
	runID, err := s.Engine.Apply(ctx, by, planID)
	if err != nil {
		return 0, err
	}
	if s.DB != nil {
		if _, err := s.DB.ExecContext(ctx, `UPDATE promotion_stacks SET run_id = ? WHERE plan_id = ? AND run_id IS NULL`, runID, planID); err != nil {
			return runID, fmt.Errorf("workflows: link run %d to its promotion: %w", runID, err)
		}
	}
	return runID, nil
}
