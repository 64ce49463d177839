package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/guardrails"
	"portal/internal/regions"
	"portal/web/templates"
)

// StackRuns is what the stacks grid needs from the provisioning engine.
// The engine implements it; Deps.StackRuns is nil until it is wired.
type StackRuns interface {
	// StackSummaries returns, by stack id ("prod-eu"), what was last done
	// to each stack. A stack that was never planned or applied is absent.
	StackSummaries(ctx context.Context) (map[string]StackRunSummary, error)
}

// StackRunSummary is the state of one stack as the engine knows it.
type StackRunSummary struct {
	// VersionInForce is the blueprint version (versions.Version.ID, the
	// whole-set digest) of the last run that succeeded in applying; ""
	// when nothing was applied yet.
	VersionInForce string
	// LastRunID is the newest run of the stack, whatever its state; 0
	// when there is none.
	LastRunID int64
	// LastRunState is that run's state: queued, running, succeeded,
	// failed, cancelled or interrupted.
	LastRunState string
	// LastRunAt is when that run was created.
	LastRunAt time.Time
	// Promotion is the version waiting, drift and verification.
	Promotion templates.StackPromotion
}

func (s *Server) stacksGrid(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	v := templates.StacksView{}
	reports := map[string]guardrails.Report{}
	latest, err := latestID(c, svc)
	if err != nil {
		return err
	}
	if latest != "" {
		ver, err := svc.Get(ctx, latest)
		if err != nil {
			return err
		}
		row := versionRow(ver, latest, s.actors(c))
		v.Version = &row
		rs, _, err := svc.Reports(ctx, latest)
		if err != nil {
			return err
		}
		for _, r := range rs {
			reports[r.Stack] = r
		}
	}
	var runs map[string]StackRunSummary
	if s.deps.StackRuns == nil {
		v.EngineNote = "The provisioning engine is not connected, so no stack shows a version in force or a last run."
	} else if runs, err = s.deps.StackRuns.StackSummaries(ctx); err != nil {
		return err
	} else if tr, ok := s.deps.StackRuns.(versionTravels); ok {
		if v.Travel, err = tr.Travels(ctx); err != nil {
			return err
		}
	}
	if s.deps.Catalogue == nil {
		v.AccountsNote = "No AWS accounts are configured: start the portal with -dev-account-id, -test-account-id and -prod-account-id (see the README)."
	}
	for _, j := range regions.Jurisdictions() {
		v.Jurisdictions = append(v.Jurisdictions, templates.JurisdictionHead{ID: j.ID, Name: j.Name, Regime: j.Regime,
			ReportURL: jurisdictionReportURL(j.ID, "")})
	}
	v.Rows = gridRows(reports, runs, s.deps.Catalogue)
	return s.render(c, http.StatusOK, templates.Stacks(s.page(c, "Stacks", "stacks"), v))
}

// gridRows builds the grid: environments in promotion order, each with the
// stacks of the three jurisdictions. runs and cat may be nil.
func gridRows(reports map[string]guardrails.Report, runs map[string]StackRunSummary, cat *regions.Catalogue) []templates.StackGridRow {
	var rows []templates.StackGridRow
	for _, env := range regions.EnvironmentNames() {
		row := templates.StackGridRow{Environment: env}
		for _, j := range regions.Jurisdictions() {
			id := regions.StackID(env, j.ID)
			cell := templates.StackCell{ID: id, Environment: env, Jurisdiction: j.ID, Region: j.HomeRegion}
			if cat != nil {
				if st, ok := cat.Stack(id); ok {
					cell.Account, cell.Region = st.Environment.AccountID, st.Region()
				}
			}
			if r, ok := reports[id]; ok {
				cell.Guardrail = stackStatus(r, "")
			} else {
				cell.Guardrail = templates.StackStatus{Stack: id, Status: "invalid", Label: "No blueprint", ReportURL: reportURL(id, "")}
			}
			if sum, ok := runs[id]; ok {
				cell.Deployed = sum.VersionInForce != ""
				cell.InForce, cell.LastRunID, cell.LastRunState, cell.LastRunAt = sum.VersionInForce, sum.LastRunID, sum.LastRunState, sum.LastRunAt
				cell.Promotion = sum.Promotion
				if sum.VersionInForce != "" {
					cell.InForceShort = shortID(sum.VersionInForce)
					cell.InForceURL = "/blueprints/versions/" + sum.VersionInForce
				}
			}
			row.Cells = append(row.Cells, cell)
		}
		rows = append(rows, row)
	}
	return rows
}

func shortID(id string) string {
	id = strings.TrimSpace(id)
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
