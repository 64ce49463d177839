package activity

import (
	"context"
	"slices"
	"strings"
	"time"

	"portal/internal/accounts"
	"portal/internal/engine"
)

// RunSource is the part of the engine that finds runs.
type RunSource interface {
	ListRuns(ctx context.Context, f engine.RunFilter) ([]engine.Run, bool, error)
	GetRun(ctx context.Context, id int64) (engine.Run, []engine.Step, error)
}

// RunMatch is a portal run that made an event, and how that is known.
type RunMatch struct {
	Run engine.Run
	How string
}

// runSlack widens a run's window: CloudTrail's eventTime is AWS's clock,
// the run's times are the portal's.
const runSlack = 5 * time.Second

// PortalCall reports whether the portal made e: it assumes each
// environment's deployer role with the session name accounts.SessionName.
func PortalCall(e Event) bool {
	return e.IdentityType == "AssumedRole" && e.Session == accounts.SessionName
}

// RunsFor finds the runs that made e. Only calls made under the portal's
// role session can be a run's. A run whose steps recorded e's AWS request
// id made it for certain; otherwise a run of a stack in e's account that
// was running at e's time (within a few seconds) is named as the likely
// one. Environments (account id -> environment) come from Config.
func (s *Service) RunsFor(ctx context.Context, e Event, src RunSource) ([]RunMatch, error) {
	if src == nil || !PortalCall(e) {
		return nil, nil
	}
	env := s.cfg.Environments[e.Account]
	runs, _, err := src.ListRuns(ctx, engine.RunFilter{Since: e.Time.Add(-24 * time.Hour), Until: e.Time.Add(runSlack), Limit: 200})
	if err != nil {
		return nil, err
	}
	var exact, window []RunMatch
	for _, r := range runs {
		if env != "" && !strings.HasPrefix(r.Stack, env+"-") {
			continue
		}
		start := r.StartedAt
		if start.IsZero() {
			start = r.CreatedAt
		}
		end := r.FinishedAt
		if end.IsZero() {
			end = time.Now()
		}
		if e.Time.Before(start.Add(-runSlack)) || e.Time.After(end.Add(runSlack)) {
			continue
		}
		if e.RequestID != "" {
			_, steps, err := src.GetRun(ctx, r.ID)
			if err != nil {
				return nil, err
			}
			for _, st := range steps {
				if slices.Contains(st.RequestIDs, e.RequestID) {
					exact = append(exact, RunMatch{Run: r, How: "Its AWS request id " + e.RequestID + " is recorded on the run's step " + st.ResourceID + "."})
					break
				}
			}
			if len(exact) > 0 {
				break
			}
		}
		window = append(window, RunMatch{Run: r, How: "Made under the portal's role session while this run of a stack in account " + e.Account + " was running."})
	}
	if len(exact) > 0 {
		return exact, nil
	}
	return window, nil
}
