package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/staff"
	"portal/internal/workflows"
	"portal/web/templates"
)

var runStates = []string{engine.RunQueued, engine.RunRunning, engine.RunSucceeded, engine.RunFailed, engine.RunCancelled, engine.RunInterrupted}

// workflows returns the stack workflows, or a clear error when AWS is not
// configured.
func (s *Server) workflows() (*workflows.Service, error) {
	if s.deps.Workflows == nil {
		return nil, apperr.New(apperr.Conflict, "AWS is not configured: start the portal with -dev-account-id, -test-account-id and -prod-account-id (see the README)")
	}
	return s.deps.Workflows, nil
}

// runRow shapes run r for the pages; details (from
// workflows.RunDetails) add its blueprint version, approvers and
// verification when given.
func runRow(r engine.Run, people *actors, details map[int64]workflows.RunDetail) templates.RunRow {
	row := templates.RunRow{ID: r.ID, PlanID: r.PlanID, Stack: r.Stack, Kind: r.Kind, Version: r.Version, State: r.State, CreatedBy: people.view(r.CreatedBy),
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Error: r.Error, Calls: r.Calls}
	if d, ok := details[r.ID]; ok {
		row.BlueprintVersion, row.VerifyID, row.VerifyState = d.BlueprintVersion, d.VerificationID, d.VerificationState
		for _, a := range d.Approvers {
			row.Approvers = append(row.Approvers, people.view(a))
		}
	}
	return row
}

// runRows shapes runs with their details, looked up in one go.
func (s *Server) runRows(c echo.Context, runs []engine.Run) ([]templates.RunRow, error) {
	people := s.actors(c)
	ids := make(map[int64]int64, len(runs))
	for _, r := range runs {
		ids[r.ID] = r.PlanID
	}
	var details map[int64]workflows.RunDetail
	if s.deps.Workflows != nil {
		var err error
		if details, err = s.deps.Workflows.RunDetails(c.Request().Context(), ids); err != nil {
			return nil, err
		}
	}
	out := make([]templates.RunRow, 0, len(runs))
	for _, r := range runs {
		out = append(out, runRow(r, people, details))
	}
	return out, nil
}

func parseRunFilter(q url.Values) (engine.RunFilter, templates.RunsFilter, error) {
	view := templates.RunsFilter{Stack: q.Get("stack"), State: q.Get("state"), User: q.Get("user"), Since: q.Get("since"), Until: q.Get("until"), Show: q.Get("show")}
	f := engine.RunFilter{Stack: view.Stack, State: view.State, User: view.User}
	var v apperr.Validation
	var err error
	if f.Since, err = parseTimeParam(view.Since); err != nil {
		v.Add("since", err.Error())
	}
	if f.Until, err = parseTimeParam(view.Until); err != nil {
		v.Add("until", err.Error())
	}
	if f.State != "" && !slices.Contains(runStates, f.State) {
		v.Add("state", "must be one of "+strings.Join(runStates, ", "))
	}
	if view.Show != "" && view.Show != "plans" {
		v.Add("show", `must be "plans" (plans never applied) or empty (runs)`)
	}
	if view.Show == "plans" && f.State != "" {
		v.Add("state", "plans that were never applied have no run state")
	}
	if b := q.Get("before"); b != "" {
		if f.BeforeID, err = strconv.ParseInt(b, 10, 64); err != nil || f.BeforeID <= 0 {
			v.Add("before", "must be a run number")
		}
	}
	return f, view, v.Err()
}

func (s *Server) runsList(c echo.Context) error {
	return s.renderRuns(c, http.StatusOK, templates.PlanForm{})
}

// renderRuns shows the runs list with the plan form as form says.
func (s *Server) renderRuns(c echo.Context, status int, form templates.PlanForm) error {
	u := currentUser(c)
	f, fv, ferr := parseRunFilter(c.QueryParams())
	v := templates.RunsView{Filter: fv, Stacks: s.deps.Stacks, States: runStates, CanPlan: u.Has(staff.Ops, staff.Admin), AWSReady: s.deps.Workflows != nil,
		Plan: form, MinEmergency: workflows.MinEmergencyReason}
	if !v.AWSReady {
		v.AWSNote = "AWS is not configured, so stacks cannot be planned: start the portal with the dev, test and prod account ids (see the README)."
	}
	if ferr != nil {
		v.Errors, status = apperr.FieldsOf(ferr), http.StatusBadRequest
	} else if s.deps.Workflows != nil && fv.Show == "plans" {
		plans, more, err := s.deps.Workflows.UnappliedPlans(c.Request().Context(), workflows.PlanFilter{Stack: f.Stack, User: f.User, Since: f.Since,
			Until: f.Until, BeforeID: f.BeforeID})
		if err != nil {
			return err
		}
		people := s.actors(c)
		for _, p := range plans {
			v.Plans = append(v.Plans, templates.UnappliedPlanRow{ID: p.ID, Stack: p.Stack, Kind: p.Kind, BlueprintVersion: p.BlueprintVersion, Hash: p.Hash,
				Blocking: p.Blocking, DriftCheck: p.DriftCheck, CreatedBy: people.view(p.CreatedBy), CreatedAt: p.CreatedAt})
		}
		if more && len(plans) > 0 {
			q := c.QueryParams()
			q.Set("before", strconv.FormatInt(plans[len(plans)-1].ID, 10))
			v.NextURL = "/runs?" + q.Encode()
		}
	} else if s.deps.Workflows != nil {
		runs, more, err := s.deps.Workflows.Engine.ListRuns(c.Request().Context(), f)
		if err != nil {
			return err
		}
		if v.Rows, err = s.runRows(c, runs); err != nil {
			return err
		}
		if more && len(runs) > 0 {
			q := c.QueryParams()
			q.Set("before", strconv.FormatInt(runs[len(runs)-1].ID, 10))
			v.NextURL = "/runs?" + q.Encode()
		}
	}
	return s.render(c, status, templates.Runs(s.page(c, "Runs", "runs"), v))
}

// planCreate plans a stack from the Runs page's form. A refusal (the
// version has not gone the normal road, a bad field) shows the form again
// with the reason.
func (s *Server) planCreate(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	req := workflows.PlanRequest{Stack: c.FormValue("stack"), Version: strings.TrimSpace(c.FormValue("version")), Kind: c.FormValue("kind"),
		Emergency: c.FormValue("emergency_reason")}
	p, err := wf.Plan(c.Request().Context(), who(c), req)
	if err != nil {
		form := templates.PlanForm{Stack: req.Stack, Version: req.Version, Emergency: req.Emergency, Errors: apperr.FieldsOf(err)}
		switch apperr.KindOf(err) {
		case apperr.Invalid:
			form.Message = apperr.MessageOf(err)
			return s.renderRuns(c, http.StatusBadRequest, form)
		case apperr.Conflict, apperr.NotFound:
			form.Message = apperr.MessageOf(err)
			if apperr.KindOf(err) == apperr.NotFound && form.Errors["stack"] == "" {
				form.Errors = map[string]string{"version": "does not name a saved blueprint version"}
			}
			return s.renderRuns(c, http.StatusConflict, form)
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/plans/"+itoa(p.ID))
}

// serviceOf groups resource types by the AWS service they belong to.
func serviceOf(typ string) string {
	switch {
	case typ == "kms_key":
		return "KMS"
	case typ == "acm_certificate":
		return "ACM"
	case strings.HasPrefix(typ, "s3_"):
		return "S3"
	case typ == "dynamodb_table":
		return "DynamoDB"
	case strings.HasPrefix(typ, "rds_"), typ == "db_subnet_group":
		return "RDS"
	case strings.HasPrefix(typ, "sns_"):
		return "SNS"
	case typ == "log_group", typ == "metric_alarm":
		return "CloudWatch"
	case typ == "cloudtrail":
		return "CloudTrail"
	case typ == "vpc", typ == "security_group", typ == "ami", typ == "launch_template":
		return "EC2 and VPC"
	case typ == "alb", typ == "target_group", typ == "listener":
		return "Load balancing"
	case typ == "autoscaling_group", typ == "scaling_policy":
		return "Auto Scaling"
	case strings.HasPrefix(typ, "route53_"):
		return "Route 53"
	case strings.HasPrefix(typ, "cloudfront_"):
		return "CloudFront"
	case strings.HasPrefix(typ, "iam_"), typ == "instance_profile":
		return "IAM"
	case strings.HasPrefix(typ, "textract"):
		return "Textract"
	}
	return "Other"
}

func planView(p *engine.Plan, people *actors) templates.PlanView {
	v := templates.PlanView{ID: p.ID, Stack: p.Stack.ID, Kind: p.Kind, Version: p.Stack.Version, BlueprintVersion: p.BlueprintVersion, Hash: p.Hash,
		CreatedBy: people.view(p.CreatedBy), CreatedAt: p.CreatedAt, Took: p.Took.Round(1e6).String(), Calls: p.Calls, Blocking: p.Blocking(), HasChanges: p.HasChanges()}
	v.Works, v.WorksLive = worksView(p, p.Works), worksView(p, p.WorksLive)
	counts := p.Counts()
	for _, a := range []engine.Action{engine.Create, engine.Update, engine.Replace, engine.Delete, engine.NoOp, engine.Read} {
		if counts[a] > 0 {
			v.Counts = append(v.Counts, templates.ActionCount{Action: string(a), N: counts[a]})
		}
	}
	groups := map[string]*templates.ServiceGroup{}
	var order []string
	for _, ch := range p.Changes {
		svc := serviceOf(ch.Type)
		g, ok := groups[svc]
		if !ok {
			g = &templates.ServiceGroup{Service: svc}
			groups[svc] = g
			order = append(order, svc)
		}
		row := templates.ChangeRow{ID: ch.ID, Type: ch.Type, Region: ch.Region, Action: string(ch.Action), PhysicalID: ch.PhysicalID,
			PatientData: ch.PatientData(), Problem: ch.Problem, Note: ch.Note, File: ch.File, Line: ch.Line}
		for _, f := range ch.Fields {
			before := engine.Display(f.Before)
			if ch.Action == engine.Create {
				before = "—"
			}
			row.Fields = append(row.Fields, templates.FieldRow{Path: f.Path, Before: before, After: engine.Display(f.After), Replace: f.Replace})
		}
		if ch.PatientData() && ch.Action != engine.NoOp && ch.Action != engine.Read {
			v.PatientChanges++
		}
		if ch.Action == engine.Delete || ch.Action == engine.Replace {
			v.Deletions++
		}
		g.Changes = append(g.Changes, row)
	}
	// Services with changes first, then the unchanged ones.
	changed := func(g *templates.ServiceGroup) bool {
		for _, c := range g.Changes {
			if c.Action != string(engine.NoOp) && c.Action != string(engine.Read) {
				return true
			}
		}
		return false
	}
	for _, pass := range []bool{true, false} {
		for _, svc := range order {
			if changed(groups[svc]) == pass {
				v.Groups = append(v.Groups, *groups[svc])
			}
		}
	}
	for _, g := range p.Guardrails {
		v.Guardrails = append(v.Guardrails, templates.GuardrailRow{Rule: g.Rule, Severity: g.Severity, Status: g.Status, Resource: g.Resource,
			Message: g.Message, Citation: g.Citation, File: g.File, Line: g.Line})
	}
	return v
}

func (s *Server) planShow(c echo.Context) error {
	return s.renderPlan(c, http.StatusOK, nil)
}

func (s *Server) renderPlan(c echo.Context, status int, errs map[string]string) error {
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
	people := s.actors(c)
	v := planView(p, people)
	v.CanApply = currentUser(c).Has(staff.Ops, staff.Admin)
	v.Errors = errs
	runs, _, err := wf.Engine.ListRuns(ctx, engine.RunFilter{Stack: p.Stack.ID, Limit: 200})
	if err != nil {
		return err
	}
	var mine []engine.Run
	for _, r := range runs {
		if r.PlanID == p.ID {
			mine = append(mine, r)
		}
	}
	if v.Runs, err = s.runRows(c, mine); err != nil {
		return err
	}
	if wf.DB != nil {
		a, err := s.approvalPanel(ctx, wf, p, currentUser(c), len(v.Runs) > 0, people)
		if err != nil {
			return err
		}
		if a.Needed {
			v.Approval = &a
		}
		v.Emergency = a.Emergency
		why, err := wf.Ready(ctx, p)
		if err != nil {
			return err
		}
		switch {
		case a.Blocked != "":
			v.Gate = a.Blocked
			v.ApplyBlocked = "Apply is refused: " + a.Blocked
		case a.Needed && !a.Satisfied:
			v.ApplyBlocked = "Apply is withheld until the plan is approved: " + a.Missing
		case why != "":
			v.ApplyBlocked = "Apply is refused: " + why
		}
		l, err := wf.LockOf(ctx, p.Stack.ID)
		if err != nil {
			return err
		}
		v.Lock = lockView(l, people)
	}
	title := fmt.Sprintf("Plan #%d for %s", p.ID, p.Stack.ID)
	return s.render(c, status, templates.PlanPage(s.page(c, title, "runs"), v))
}

func (s *Server) planApply(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	runID, err := wf.Apply(c.Request().Context(), who(c), id, c.FormValue("confirm"))
	if apperr.KindOf(err) == apperr.Invalid {
		return s.renderPlan(c, http.StatusBadRequest, apperr.FieldsOf(err))
	} else if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/runs/"+itoa(runID))
}

func (s *Server) runView(c echo.Context) (templates.RunView, error) {
	wf, err := s.workflows()
	if err != nil {
		return templates.RunView{}, err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return templates.RunView{}, err
	}
	ctx := c.Request().Context()
	r, steps, err := wf.Engine.GetRun(ctx, id)
	if err != nil {
		return templates.RunView{}, err
	}
	rows, err := s.runRows(c, []engine.Run{r})
	if err != nil {
		return templates.RunView{}, err
	}
	v := templates.RunView{Run: rows[0], Total: len(steps), Finished: r.Finished(), StartedAt: r.StartedAt}
	v.CSRF, _ = c.Get("csrf").(string)
	canAct := currentUser(c).Has(staff.Ops, staff.Admin)
	v.CanCancel = canAct && (r.State == engine.RunQueued || r.State == engine.RunRunning || r.State == engine.RunInterrupted) && !r.CancelRequested
	v.CanResume = canAct && r.State == engine.RunInterrupted
	for _, st := range steps {
		switch st.State {
		case engine.StepDone:
			v.Done++
		case engine.StepFailed:
			v.Failed++
		}
		v.Steps = append(v.Steps, templates.StepRow{ResourceID: st.ResourceID, Type: st.Type, Region: st.Region, Action: string(st.Action), State: st.State,
			Error: st.Error, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, Calls: st.Calls, RequestIDs: st.RequestIDs})
	}
	if r.State == engine.RunQueued && wf.DB != nil {
		l, err := wf.LockOf(ctx, r.Stack)
		if err != nil {
			return v, err
		}
		lv := lockView(l, s.actors(c))
		v.Lock = &lv
	}
	logs, err := wf.Engine.Logs(ctx, id, 0, 2000)
	if err != nil {
		return v, err
	}
	for _, l := range logs {
		v.Logs = append(v.Logs, templates.LogRow{At: l.At, ResourceID: l.ResourceID, Line: l.Line})
	}
	return v, nil
}

func (s *Server) runShow(c echo.Context) error {
	v, err := s.runView(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.RunPage(s.page(c, fmt.Sprintf("Run #%d", v.Run.ID), "runs"), v))
}

// runProgress is the htmx fragment the run page polls.
func (s *Server) runProgress(c echo.Context) error {
	v, err := s.runView(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.RunProgress(v))
}

func (s *Server) runCancel(c echo.Context) error {
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
	s.flash(c, "Cancel requested: no new step starts; running steps finish.")
	return c.Redirect(http.StatusSeeOther, "/runs/"+itoa(id))
}

func (s *Server) runResume(c echo.Context) error {
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
	s.flash(c, "Run queued again: finished steps stay finished; the rest read AWS before acting.")
	return c.Redirect(http.StatusSeeOther, "/runs/"+itoa(id))
}
