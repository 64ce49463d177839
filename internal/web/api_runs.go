package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/engine"
	"portal/internal/workflows"
)

// APIPlanCreate is the body of POST /api/v1/plans.
type APIPlanCreate struct {
	Stack   string `json:"stack"`
	Version string `json:"version"`
	Kind    string `json:"kind"`
	// EmergencyReason makes the plan an emergency change (see
	// workflows.PlanRequest).
	EmergencyReason string `json:"emergency_reason"`
}

// APIPlan is a plan in API responses.
type APIPlan struct {
	ID               int64                    `json:"id"`
	Stack            string                   `json:"stack"`
	Kind             string                   `json:"kind"`
	Version          string                   `json:"version"`
	BlueprintVersion string                   `json:"blueprint_version"`
	Hash             string                   `json:"hash"`
	Counts           map[string]int           `json:"counts"`
	Changes          []engine.Change          `json:"changes"`
	Guardrails       []engine.GuardrailResult `json:"guardrails"`
	Blocking         []string                 `json:"blocking"`
	Calls            int                      `json:"calls"`
	CreatedBy        string                   `json:"created_by"`
	CreatedByActor   *APIActor                `json:"created_by_actor,omitempty"`
	CreatedAt        time.Time                `json:"created_at"`
}

func apiPlan(p *engine.Plan) APIPlan {
	out := APIPlan{ID: p.ID, Stack: p.Stack.ID, Kind: p.Kind, Version: p.Stack.Version, BlueprintVersion: p.BlueprintVersion, Hash: p.Hash,
		Counts: map[string]int{}, Changes: p.Changes, Guardrails: p.Guardrails, Blocking: p.Blocking(), Calls: p.Calls, CreatedBy: p.CreatedBy, CreatedByActor: apiActor(p.CreatedBy), CreatedAt: p.CreatedAt}
	for a, n := range p.Counts() {
		out.Counts[string(a)] = n
	}
	if out.Blocking == nil {
		out.Blocking = []string{}
	}
	return out
}

func (s *Server) apiPlanCreate(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	var body APIPlanCreate
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	p, err := wf.Plan(c.Request().Context(), who(c), workflows.PlanRequest{Stack: body.Stack, Version: body.Version, Kind: body.Kind, Emergency: body.EmergencyReason})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, apiPlan(p))
}

func (s *Server) apiPlanShow(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	p, err := wf.Engine.GetPlan(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiPlan(p))
}

// APIApply is the body of POST /api/v1/plans/:id/apply.
type APIApply struct {
	Confirm string `json:"confirm"`
}

func (s *Server) apiPlanApply(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	var body APIApply
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &body); err != nil {
			return err
		}
	}
	runID, err := wf.Apply(c.Request().Context(), who(c), id, body.Confirm)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]int64{"run_id": runID})
}

// APIRun is a run in API responses.
type APIRun struct {
	ID             int64      `json:"id"`
	PlanID         int64      `json:"plan_id"`
	Stack          string     `json:"stack"`
	Kind           string     `json:"kind"`
	Version        string     `json:"version"`
	State          string     `json:"state"`
	CreatedBy      string     `json:"created_by"`
	CreatedByActor *APIActor  `json:"created_by_actor,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	StartedAt      *time.Time `json:"started_at,omitempty"`
	FinishedAt     *time.Time `json:"finished_at,omitempty"`
	Error          string     `json:"error,omitempty"`
	Calls          int        `json:"calls"`
	Done           int        `json:"done,omitempty"`
	Total          int        `json:"total,omitempty"`
	Steps          []APIStep  `json:"steps,omitempty"`
}

// APIStep is one step of a run.
type APIStep struct {
	Resource   string   `json:"resource"`
	Type       string   `json:"type"`
	Region     string   `json:"region"`
	Action     string   `json:"action"`
	State      string   `json:"state"`
	Error      string   `json:"error,omitempty"`
	Calls      int      `json:"calls"`
	RequestIDs []string `json:"request_ids,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func apiRun(r engine.Run) APIRun {
	return APIRun{ID: r.ID, PlanID: r.PlanID, Stack: r.Stack, Kind: r.Kind, Version: r.Version, State: r.State, CreatedBy: r.CreatedBy, CreatedByActor: apiActor(r.CreatedBy),
		CreatedAt: r.CreatedAt, StartedAt: timePtr(r.StartedAt), FinishedAt: timePtr(r.FinishedAt), Error: r.Error, Calls: r.Calls}
}

func (s *Server) apiRunsList(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	f, _, err := parseRunFilter(c.QueryParams())
	if err != nil {
		return err
	}
	runs, more, err := wf.Engine.ListRuns(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Items      []APIRun `json:"items"`
		NextBefore int64    `json:"next_before,omitempty"`
	}{Items: []APIRun{}}
	for _, r := range runs {
		out.Items = append(out.Items, apiRun(r))
	}
	if more && len(runs) > 0 {
		out.NextBefore = runs[len(runs)-1].ID
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiRunShow(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	r, steps, err := wf.Engine.GetRun(c.Request().Context(), id)
	if err != nil {
		return err
	}
	out := apiRun(r)
	out.Total = len(steps)
	for _, st := range steps {
		if st.State == engine.StepDone {
			out.Done++
		}
		out.Steps = append(out.Steps, APIStep{Resource: st.ResourceID, Type: st.Type, Region: st.Region, Action: string(st.Action), State: st.State,
			Error: st.Error, Calls: st.Calls, RequestIDs: st.RequestIDs})
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiRunCancel(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if err := wf.Engine.Cancel(c.Request().Context(), who(c), id); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"status": "cancel requested"})
}

func (s *Server) apiRunResume(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if err := wf.Engine.Resume(c.Request().Context(), who(c), id); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"status": "queued"})
}
