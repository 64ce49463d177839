package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/guardrails"
	"portal/internal/regions"
	"portal/internal/versions"
)

// APIBlueprintFile is one file of a blueprint version.
type APIBlueprintFile struct {
	Path    string `json:"path"`
	Content string `json:"content"`
}

// APIVersion is a blueprint version in API responses.
type APIVersion struct {
	ID          string             `json:"id"`
	Seq         int64              `json:"seq"`
	Parent      string             `json:"parent,omitempty"`
	Author      string             `json:"author"`
	AuthorActor *APIActor          `json:"author_actor,omitempty"`
	Message     string             `json:"message"`
	CreatedAt   time.Time          `json:"created_at"`
	Files       []APIBlueprintFile `json:"files,omitempty"`
}

func apiVersion(v versions.Version, files []versions.File) APIVersion {
	out := APIVersion{ID: v.ID, Seq: v.Seq, Parent: v.Parent, Author: v.Author, AuthorActor: apiActor(v.Author), Message: v.Message, CreatedAt: v.CreatedAt}
	for _, f := range files {
		out.Files = append(out.Files, APIBlueprintFile{Path: f.Path, Content: string(f.Content)})
	}
	return out
}

// APIVersionCreate is the body of POST /api/v1/blueprints/versions: files
// replace those of the parent version (the latest when parent is empty).
type APIVersionCreate struct {
	Parent  string             `json:"parent"`
	Message string             `json:"message"`
	Files   []APIBlueprintFile `json:"files"`
}

// APIDiagnostic is a validation problem.
type APIDiagnostic struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Path     string `json:"path,omitempty"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

// APIException is a guardrail exception.
type APIException struct {
	ID             int64     `json:"id,omitempty"`
	RuleID         string    `json:"rule_id"`
	Stack          string    `json:"stack"`
	Resource       string    `json:"resource"`
	Owner          string    `json:"owner"`
	Reason         string    `json:"reason"`
	Expires        time.Time `json:"expires"`
	State          string    `json:"state,omitempty"`
	CreatedBy      string    `json:"created_by,omitempty"`
	CreatedByActor *APIActor `json:"created_by_actor,omitempty"`
	CreatedAt      time.Time `json:"created_at,omitzero"`
	RevokedBy      string    `json:"revoked_by,omitempty"`
	RevokedByActor *APIActor `json:"revoked_by_actor,omitempty"`
	RevokedAt      time.Time `json:"revoked_at,omitzero"`
	// NeedsApproval marks an exception to a residency or encryption rule
	// in prod: in force only once a compliance officer approved it.
	NeedsApproval   bool      `json:"needs_approval,omitempty"`
	ApprovedBy      string    `json:"approved_by,omitempty"`
	ApprovedByActor *APIActor `json:"approved_by_actor,omitempty"`
	ApprovedAt      time.Time `json:"approved_at,omitzero"`
}

func apiException(e versions.Exception, now time.Time) APIException {
	out := APIException{ID: e.ID, RuleID: e.RuleID, Stack: e.Stack, Resource: e.Resource, Owner: e.Owner, Reason: e.Reason, Expires: e.Expires,
		CreatedBy: e.CreatedBy, CreatedByActor: apiActor(e.CreatedBy), CreatedAt: e.CreatedAt, RevokedBy: e.RevokedBy, RevokedByActor: apiActor(e.RevokedBy), RevokedAt: e.RevokedAt, NeedsApproval: e.NeedsApproval,
		ApprovedBy: e.ApprovedBy, ApprovedByActor: apiActor(e.ApprovedBy), ApprovedAt: e.ApprovedAt}
	if e.ID != 0 {
		out.State = e.State(now)
	}
	return out
}

// APIFinding is the outcome of one guardrail rule for one resource.
type APIFinding struct {
	Stack       string        `json:"stack"`
	RuleID      string        `json:"rule_id"`
	Title       string        `json:"title"`
	Severity    string        `json:"severity"`
	Status      string        `json:"status"`
	Resource    string        `json:"resource,omitempty"`
	Path        string        `json:"path,omitempty"`
	File        string        `json:"file,omitempty"`
	Line        int           `json:"line,omitempty"`
	Column      int           `json:"column,omitempty"`
	Message     string        `json:"message,omitempty"`
	Explanation string        `json:"explanation"`
	Citation    string        `json:"citation"`
	Exception   *APIException `json:"exception,omitempty"`
}

func apiFinding(stack string, r guardrails.Result, now time.Time) APIFinding {
	f := APIFinding{Stack: stack, RuleID: r.RuleID, Title: r.Title, Severity: string(r.Severity), Status: string(r.Status), Resource: r.Resource,
		Path: r.Path, File: r.File, Line: r.Line, Column: r.Column, Message: r.Message, Explanation: r.Explanation, Citation: r.Citation}
	if r.Exception != nil {
		e := apiException(versions.Exception{Exception: *r.Exception}, now)
		f.Exception = &e
	}
	return f
}

// APIRejection is the 422 body when a version is refused: every error
// diagnostic and every blocking guardrail failure.
type APIRejection struct {
	Error struct {
		APIErrorBody
		Diagnostics []APIDiagnostic `json:"diagnostics"`
		Guardrails  []APIFinding    `json:"guardrails"`
	} `json:"error"`
}

func (s *Server) apiVersionsList(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	f := versions.ListFilter{Limit: 50}
	var v apperr.Validation
	if b := c.QueryParam("before"); b != "" {
		if f.BeforeSeq, err = strconv.ParseInt(b, 10, 64); err != nil || f.BeforeSeq <= 0 {
			v.Add("before", "must be a version number (seq)")
		}
	}
	if l := c.QueryParam("limit"); l != "" {
		if f.Limit, err = strconv.Atoi(l); err != nil || f.Limit < 1 || f.Limit > versions.MaxLimit {
			v.Add("limit", "must be between 1 and "+strconv.Itoa(versions.MaxLimit))
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	list, more, err := svc.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Items      []APIVersion `json:"items"`
		NextBefore int64        `json:"next_before,omitempty"`
	}{Items: []APIVersion{}}
	for _, x := range list {
		out.Items = append(out.Items, apiVersion(x, nil))
	}
	if more && len(list) > 0 {
		out.NextBefore = list[len(list)-1].Seq
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiVersionShow(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ver, err := svc.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	files, err := svc.Files(c.Request().Context(), ver.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiVersion(ver, files))
}

func (s *Server) apiVersionCreate(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	var body APIVersionCreate
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	d := versions.Draft{Base: body.Parent, Message: body.Message}
	for _, f := range body.Files {
		d.Files = append(d.Files, versions.File{Path: f.Path, Content: []byte(f.Content)})
	}
	ver, created, err := svc.Save(c.Request().Context(), who(c), d)
	var rej *versions.Rejection
	if errors.As(err, &rej) {
		var out APIRejection
		out.Error.APIErrorBody = APIErrorBody{Code: string(apperr.Invalid), Message: apperr.MessageOf(err), RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
		out.Error.Diagnostics, out.Error.Guardrails = []APIDiagnostic{}, []APIFinding{}
		for _, dg := range rej.Diagnostics {
			out.Error.Diagnostics = append(out.Error.Diagnostics, APIDiagnostic{File: dg.File, Line: dg.Line, Column: dg.Column, Path: dg.Path,
				Message: dg.Message, Severity: dg.Severity.String()})
		}
		for _, f := range rej.Blocking {
			out.Error.Guardrails = append(out.Error.Guardrails, apiFinding(f.Stack, f.Result, svc.Now()))
		}
		return c.JSON(http.StatusUnprocessableEntity, out)
	} else if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	return c.JSON(status, struct {
		Version APIVersion `json:"version"`
		Created bool       `json:"created"`
	}{apiVersion(ver, nil), created})
}

// APIStackReport is the guardrail report of one stack.
type APIStackReport struct {
	Stack        string       `json:"stack"`
	Jurisdiction string       `json:"jurisdiction"`
	Status       string       `json:"status"`
	Results      []APIFinding `json:"results"`
}

func (s *Server) apiVersionGuardrails(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ver, err := svc.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	reports, _, err := svc.Reports(ctx, ver.ID)
	if err != nil {
		return err
	}
	now := svc.Now()
	out := struct {
		Version    string           `json:"version"`
		Stacks     []APIStackReport `json:"stacks"`
		Exceptions []APIException   `json:"exceptions_in_force"`
	}{Version: ver.ID, Stacks: []APIStackReport{}, Exceptions: []APIException{}}
	for _, r := range reports {
		sr := APIStackReport{Stack: r.Stack, Jurisdiction: r.Jurisdiction, Status: reportStatus(r), Results: []APIFinding{}}
		for _, res := range r.Results {
			sr.Results = append(sr.Results, apiFinding(r.Stack, res, now))
		}
		out.Stacks = append(out.Stacks, sr)
	}
	list, err := svc.ListExceptions(ctx, versions.ExceptionFilter{InForce: true})
	if err != nil {
		return err
	}
	for _, e := range list {
		out.Exceptions = append(out.Exceptions, apiException(e, now))
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) apiExceptionsList(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	list, err := svc.ListExceptions(c.Request().Context(), versions.ExceptionFilter{Stack: c.QueryParam("stack"), InForce: c.QueryParam("all") == ""})
	if err != nil {
		return err
	}
	out := struct {
		Items []APIException `json:"items"`
	}{Items: []APIException{}}
	for _, e := range list {
		out.Items = append(out.Items, apiException(e, svc.Now()))
	}
	return c.JSON(http.StatusOK, out)
}

// APIExceptionCreate is the body of POST /api/v1/blueprints/exceptions.
type APIExceptionCreate struct {
	RuleID   string    `json:"rule_id"`
	Stack    string    `json:"stack"`
	Resource string    `json:"resource"`
	Owner    string    `json:"owner"`
	Reason   string    `json:"reason"`
	Expires  time.Time `json:"expires"`
}

func (s *Server) apiExceptionCreate(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	var body APIExceptionCreate
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	e, err := svc.CreateException(c.Request().Context(), who(c), versions.NewException(body))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, apiException(e, svc.Now()))
}

func (s *Server) apiExceptionRevoke(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	e, err := svc.RevokeException(c.Request().Context(), who(c), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiException(e, svc.Now()))
}

func (s *Server) apiExceptionApprove(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	e, err := svc.ApproveException(c.Request().Context(), who(c), roleNames(currentUser(c)), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, apiException(e, svc.Now()))
}

// APIStack is one stack of the grid.
type APIStack struct {
	ID              string    `json:"id"`
	Environment     string    `json:"environment"`
	Jurisdiction    string    `json:"jurisdiction"`
	Account         string    `json:"account,omitempty"`
	Region          string    `json:"region"`
	GuardrailStatus string    `json:"guardrail_status"`
	VersionInForce  string    `json:"version_in_force,omitempty"`
	LastRunID       int64     `json:"last_run_id,omitempty"`
	LastRunState    string    `json:"last_run_state,omitempty"`
	LastRunAt       time.Time `json:"last_run_at,omitzero"`
}

func (s *Server) apiStacks(c echo.Context) error {
	svc, err := s.versionsSvc()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	status := map[string]string{}
	if latest, err := latestID(c, svc); err != nil {
		return err
	} else if latest != "" {
		reports, _, err := svc.Reports(ctx, latest)
		if err != nil {
			return err
		}
		for _, r := range reports {
			status[r.Stack] = reportStatus(r)
		}
	}
	var runs map[string]StackRunSummary
	if s.deps.StackRuns != nil {
		if runs, err = s.deps.StackRuns.StackSummaries(ctx); err != nil {
			return err
		}
	}
	out := struct {
		Items []APIStack `json:"items"`
	}{Items: []APIStack{}}
	for _, env := range regions.EnvironmentNames() {
		for _, j := range regions.Jurisdictions() {
			id := regions.StackID(env, j.ID)
			st := APIStack{ID: id, Environment: env, Jurisdiction: j.ID, Region: j.HomeRegion, GuardrailStatus: status[id]}
			if s.deps.Catalogue != nil {
				if cs, ok := s.deps.Catalogue.Stack(id); ok {
					st.Account = cs.Environment.AccountID
				}
			}
			if r, ok := runs[id]; ok {
				st.VersionInForce, st.LastRunID, st.LastRunState, st.LastRunAt = r.VersionInForce, r.LastRunID, r.LastRunState, r.LastRunAt
			}
			out.Items = append(out.Items, st)
		}
	}
	return c.JSON(http.StatusOK, out)
}
