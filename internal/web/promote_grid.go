package web

import (
	"context"

	"portal/internal/versions"
	"portal/internal/workflows"
	"portal/web/templates"
)

// stackRuns adapts the workflows to the stacks grid's StackRuns.
type stackRuns struct{ wf *workflows.Service }

// StackRunsOf gives the stacks grid the version in force, last run,
// version waiting, drift and verification of every stack (from the runs
// table and the promotion records), and how far recent versions have
// travelled.
func StackRunsOf(wf *workflows.Service) StackRuns { return stackRuns{wf} }

// versionTravels is implemented by StackRuns that know how far versions
// have travelled.
type versionTravels interface {
	Travels(ctx context.Context) ([]templates.VersionTravel, error)
}

func (s stackRuns) StackSummaries(ctx context.Context) (map[string]StackRunSummary, error) {
	sums, err := s.wf.StackSummaries(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]StackRunSummary{}
	for id, x := range sums {
		out[id] = StackRunSummary{VersionInForce: x.VersionInForce, LastRunID: x.LastRunID, LastRunState: x.LastRunState, LastRunAt: x.LastRunAt,
			Promotion: templates.StackPromotion{Stack: id, Waiting: x.Waiting, WaitingPlanID: x.WaitingPlanID, WaitingWhy: x.WaitingWhy,
				Drifted: x.Drifted, DriftCheckID: x.DriftCheckID, Verification: x.Verification, VerificationID: x.VerificationID}}
	}
	return out, nil
}

// Travels returns the five most recently deployed versions and their
// state in every stack, in grid order.
func (s stackRuns) Travels(ctx context.Context) ([]templates.VersionTravel, error) {
	ts, err := s.wf.Travels(ctx, 5)
	if err != nil {
		return nil, err
	}
	var out []templates.VersionTravel
	for _, t := range ts {
		vt := templates.VersionTravel{Version: t.Version}
		for _, id := range versions.StackIDs() {
			vt.Cells = append(vt.Cells, templates.TravelCell{Stack: id, State: t.Stacks[id]})
		}
		out = append(out, vt)
	}
	return out, nil
}
