package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/workflows"
)

// APIPromotionCreate is the body of POST /api/v1/promotions.
type APIPromotionCreate struct {
	Version       string   `json:"version"`
	Environment   string   `json:"environment"`
	Jurisdictions []string `json:"jurisdictions"`
	Purpose       string   `json:"purpose"`
}

// APIPromotion is a promotion with the state of each stack.
type APIPromotion struct {
	ID             int64               `json:"id"`
	Version        string              `json:"version"`
	Environment    string              `json:"environment"`
	Purpose        string              `json:"purpose"`
	CreatedBy      string              `json:"created_by"`
	CreatedByActor *APIActor           `json:"created_by_actor,omitempty"`
	CreatedAt      time.Time           `json:"created_at"`
	Stacks         []APIPromotionStack `json:"stacks"`
}

// APIPromotionStack is one stack of a promotion.
type APIPromotionStack struct {
	Stack   string `json:"stack"`
	PlanID  int64  `json:"plan_id,omitempty"`
	RunID   int64  `json:"run_id,omitempty"`
	Refused string `json:"refused,omitempty"`
	// Approval is needed, approved, rejected or replaced ("" when the
	// plan needs none).
	Approval     string `json:"approval,omitempty"`
	RunState     string `json:"run_state,omitempty"`
	Verification string `json:"verification,omitempty"`
	// VerificationID is the verification of the run, once it started.
	VerificationID int64 `json:"verification_id,omitempty"`
}

func (s *Server) apiPromotion(ctx context.Context, wf *workflows.Service, pr workflows.Promotion) (APIPromotion, error) {
	out := APIPromotion{ID: pr.ID, Version: pr.Version, Environment: pr.Environment, Purpose: pr.Purpose, CreatedBy: pr.CreatedBy, CreatedByActor: apiActor(pr.CreatedBy), CreatedAt: pr.CreatedAt,
		Stacks: []APIPromotionStack{}}
	for _, st := range pr.Stacks {
		row := APIPromotionStack{Stack: st.Stack, PlanID: st.PlanID, RunID: st.RunID, Refused: st.Refused}
		if st.PlanID > 0 {
			p, err := wf.Engine.GetPlan(ctx, st.PlanID)
			if err != nil {
				return out, err
			}
			a, err := wf.ApprovalOf(ctx, p)
			if err != nil {
				return out, err
			}
			row.Approval = approvalWord(a)
		}
		if st.RunID > 0 {
			r, _, err := wf.Engine.GetRun(ctx, st.RunID)
			if err != nil {
				return out, err
			}
			row.RunState = r.State
			vs, err := wf.Verifications(ctx, st.Stack, 20)
			if err != nil {
				return out, err
			}
			for _, v := range vs {
				if v.RunID == r.ID {
					row.Verification, row.VerificationID = v.State, v.ID
					break
				}
			}
		}
		out.Stacks = append(out.Stacks, row)
	}
	return out, nil
}

func approvalWord(a workflows.Approval) string {
	switch {
	case !a.Needed:
		return ""
	case a.SupersededBy > 0:
		return "replaced"
	case a.Rejected != nil:
		return "rejected"
	case a.Blocked != "":
		return "blocked"
	case a.Satisfied:
		return "approved"
	}
	return "needed"
}

// apiBefore reads the before query parameter (a previous page's
// next_before).
func apiBefore(c echo.Context) (int64, error) {
	v := c.QueryParam("before")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, &apperr.Error{Kind: apperr.Invalid, Message: "before: must be a promotion id from next_before", Fields: map[string]string{"before": "must be a positive whole number"}}
	}
	return n, nil
}

func (s *Server) apiPromotionsList(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	limit, err := apiLimit(c.QueryParams(), 25, 100)
	if err != nil {
		return err
	}
	before, err := apiBefore(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	prs, more, err := wf.ListPromotions(ctx, before, limit)
	if err != nil {
		return err
	}
	out := struct {
		Items      []APIPromotion `json:"items"`
		NextBefore int64          `json:"next_before,omitempty"`
	}{Items: []APIPromotion{}}
	for _, pr := range prs {
		p, err := s.apiPromotion(ctx, wf, pr)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, p)
	}
	if more && len(prs) > 0 {
		out.NextBefore = prs[len(prs)-1].ID
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiPromotionCreate(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	var body APIPromotionCreate
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	ctx := c.Request().Context()
	pr, err := wf.Promote(ctx, who(c), workflows.PromoteRequest{Version: body.Version, Environment: body.Environment, Jurisdictions: body.Jurisdictions, Purpose: body.Purpose})
	if err != nil {
		return err
	}
	out, err := s.apiPromotion(ctx, wf, pr)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) apiPromotionShow(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	pr, err := wf.GetPromotion(ctx, id)
	if err != nil {
		return err
	}
	out, err := s.apiPromotion(ctx, wf, pr)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// APIApproval is the approval state of a plan.
type APIApproval struct {
	PlanID         int64     `json:"plan_id"`
	Stack          string    `json:"stack"`
	Kind           string    `json:"kind"`
	Version        string    `json:"version"`
	Hash           string    `json:"hash"`
	CreatedBy      string    `json:"created_by"`
	CreatedByActor *APIActor `json:"created_by_actor,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	// State is needed, approved, rejected, replaced or blocked.
	State string `json:"state"`
	// Policy is who must approve, in words.
	Policy    string `json:"policy"`
	Missing   string `json:"missing,omitempty"`
	Blocked   string `json:"blocked,omitempty"`
	Emergency string `json:"emergency_reason,omitempty"`
	// CanDecide says whether the caller may approve or reject now, Why
	// why not.
	CanDecide bool                `json:"can_decide"`
	Why       string              `json:"why,omitempty"`
	Decisions []APIDecision       `json:"decisions"`
	Lower     []APIVerificationOf `json:"lower_verifications"`
}

// APIDecision is one approval or rejection.
type APIDecision struct {
	ID            int64     `json:"id"`
	Approver      string    `json:"approver"`
	ApproverActor *APIActor `json:"approver_actor,omitempty"`
	Decision      string    `json:"decision"`
	Roles         []string  `json:"roles"`
	Reason        string    `json:"reason,omitempty"`
	At            time.Time `json:"at"`
	Expires       time.Time `json:"expires"`
	// Void says why the decision no longer counts.
	Void string `json:"void,omitempty"`
}

// APIVerificationOf is the latest verification of a version in a stack.
type APIVerificationOf struct {
	Stack   string `json:"stack"`
	ID      int64  `json:"id,omitempty"`
	State   string `json:"state"`
	Summary string `json:"summary,omitempty"`
}

func (s *Server) apiApproval(ctx context.Context, wf *workflows.Service, pa workflows.PendingApproval, me workflows.Approver) (APIApproval, error) {
	p, a := pa.Plan, pa.Approval
	out := APIApproval{PlanID: p.ID, Stack: p.Stack.ID, Kind: p.Kind, Version: p.BlueprintVersion, Hash: p.Hash, CreatedBy: p.CreatedBy, CreatedByActor: apiActor(p.CreatedBy), CreatedAt: p.CreatedAt,
		State: approvalWord(a), Policy: a.Policy.Describe(), Blocked: a.Blocked, Decisions: []APIDecision{}, Lower: []APIVerificationOf{}}
	if !a.Satisfied {
		out.Missing = a.Missing
	}
	if a.Emergency != nil {
		out.Emergency = a.Emergency.Reason
	}
	out.CanDecide, out.Why = pa.CanDecide(me)
	for _, d := range a.Decisions {
		out.Decisions = append(out.Decisions, APIDecision{ID: d.ID, Approver: d.Approver, ApproverActor: apiActor(d.Approver), Decision: d.Decision, Roles: d.Roles, Reason: d.Reason,
			At: d.At, Expires: d.Expires, Void: d.Void})
	}
	lower, err := wf.LowerVerifications(ctx, p)
	if err != nil {
		return out, err
	}
	for _, l := range lower {
		v := APIVerificationOf{Stack: l.Stack, ID: l.ID, State: l.State}
		if l.ID == 0 {
			v.State = "not verified"
		} else {
			v.Summary = l.Result.Summary()
		}
		out.Lower = append(out.Lower, v)
	}
	return out, nil
}

func (s *Server) apiApprovalsList(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	pending, err := wf.PendingApprovals(ctx, 100)
	if err != nil {
		return err
	}
	me := approver(currentUser(c))
	var mine bool
	switch c.QueryParam("mine") {
	case "", "false":
	case "true":
		mine = true
	default:
		return &apperr.Error{Kind: apperr.Invalid, Message: "mine: must be true or false", Fields: map[string]string{"mine": "must be true or false"}}
	}
	out := struct {
		Items []APIApproval `json:"items"`
	}{Items: []APIApproval{}}
	for _, pa := range pending {
		a, err := s.apiApproval(ctx, wf, pa, me)
		if err != nil {
			return err
		}
		if mine && !a.CanDecide {
			continue
		}
		out.Items = append(out.Items, a)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiPlanApproval(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := wf.Engine.GetPlan(ctx, id)
	if err != nil {
		return err
	}
	a, err := wf.ApprovalOf(ctx, p)
	if err != nil {
		return err
	}
	out, err := s.apiApproval(ctx, wf, workflows.PendingApproval{Plan: p, Approval: a}, approver(currentUser(c)))
	if err != nil {
		return err
	}
	if !a.Needed {
		out.State, out.Policy = "not needed", "no approval: only applies to prod, destroys, emergency changes and the organization's policies need one"
		out.CanDecide, out.Why = false, "the plan needs no approval"
	}
	return c.JSON(http.StatusOK, out)
}

// APIDecide is the body of POST /api/v1/plans/:id/decide.
type APIDecide struct {
	// Decision is approved or rejected.
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	// Hash is the hash of the plan reviewed (from GET /plans/{id}).
	Hash string `json:"hash"`
}

func (s *Server) apiPlanDecide(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	var body APIDecide
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	d, err := wf.Decide(c.Request().Context(), who(c), approver(currentUser(c)), id, body.Hash, body.Decision, body.Reason)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, APIDecision{ID: d.ID, Approver: d.Approver, ApproverActor: apiActor(d.Approver), Decision: d.Decision, Roles: d.Roles, Reason: d.Reason, At: d.At, Expires: d.Expires})
}

// APIDriftCheck is one drift check of a stack.
type APIDriftCheck struct {
	ID               int64           `json:"id"`
	Stack            string          `json:"stack"`
	Version          string          `json:"version"`
	State            string          `json:"state"`
	Drifted          int             `json:"drifted"`
	Error            string          `json:"error,omitempty"`
	PlanID           int64           `json:"plan_id,omitempty"`
	RequestedBy      string          `json:"requested_by"`
	RequestedByActor *APIActor       `json:"requested_by_actor,omitempty"`
	CheckedAt        time.Time       `json:"checked_at"`
	Changes          []engine.Change `json:"changes,omitempty"`
}

func apiDrift(d workflows.DriftCheck) APIDriftCheck {
	return APIDriftCheck{ID: d.ID, Stack: d.Stack, Version: d.Version, State: d.State, Drifted: d.Drifted, Error: d.Error, PlanID: d.PlanID,
		RequestedBy: d.RequestedBy, RequestedByActor: apiActor(d.RequestedBy), CheckedAt: d.CheckedAt}
}

func (s *Server) apiDriftList(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	ds, err := wf.DriftChecks(c.Request().Context())
	if err != nil {
		return err
	}
	out := struct {
		Items []APIDriftCheck `json:"items"`
	}{Items: []APIDriftCheck{}}
	for _, d := range ds {
		out.Items = append(out.Items, apiDrift(d))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiDriftCheck(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	checked, drifted, err := wf.CheckAllDrift(ctx, who(c))
	if err != nil {
		return err
	}
	ds, err := wf.DriftChecks(ctx)
	if err != nil {
		return err
	}
	out := struct {
		Checked int             `json:"checked"`
		Drifted int             `json:"drifted"`
		Items   []APIDriftCheck `json:"items"`
	}{Checked: checked, Drifted: drifted, Items: []APIDriftCheck{}}
	for _, d := range ds {
		out.Items = append(out.Items, apiDrift(d))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiDriftShow(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := wf.GetDrift(ctx, id)
	if err != nil {
		return err
	}
	out := apiDrift(d)
	if d.PlanID > 0 {
		p, err := wf.Engine.GetPlan(ctx, d.PlanID)
		if err != nil {
			return err
		}
		out.Changes = workflows.Drifted(p)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiDriftReconcile(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	d, err := wf.GetDrift(ctx, id)
	if err != nil {
		return err
	}
	pr, err := wf.Reconcile(ctx, who(c), d.Stack)
	if err != nil {
		return err
	}
	out, err := s.apiPromotion(ctx, wf, pr)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

// APIEmergency is an emergency change not yet through the normal road.
type APIEmergency struct {
	PlanID         int64     `json:"plan_id"`
	Stack          string    `json:"stack"`
	Version        string    `json:"version"`
	Reason         string    `json:"reason"`
	CreatedBy      string    `json:"created_by"`
	CreatedByActor *APIActor `json:"created_by_actor,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	State          string    `json:"state"`
	RunID          int64     `json:"run_id,omitempty"`
	Missing        string    `json:"missing"`
}

func (s *Server) apiEmergencies(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	es, err := wf.OutstandingEmergencies(c.Request().Context())
	if err != nil {
		return err
	}
	out := struct {
		Items []APIEmergency `json:"items"`
	}{Items: []APIEmergency{}}
	for _, e := range es {
		out.Items = append(out.Items, APIEmergency{PlanID: e.PlanID, Stack: e.Stack, Version: e.Version, Reason: e.Reason, CreatedBy: e.CreatedBy, CreatedByActor: apiActor(e.CreatedBy),
			CreatedAt: e.CreatedAt, State: e.State, RunID: e.RunID, Missing: e.Road})
	}
	return c.JSON(http.StatusOK, out)
}
