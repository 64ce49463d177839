package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/engine"
	"portal/internal/regions"
	"portal/internal/staff"
	"portal/internal/store"
	"portal/internal/verify"
	"portal/internal/workflows"
	"portal/web/templates"
)

// unsupportedPolicy says how verification steps the endpoint cannot serve
// are treated by promotion.
func unsupportedPolicy(wf *workflows.Service) string {
	if wf.AcceptUnsupported {
		return "This portal accepts a verification whose only gap is Textract text detection, which the local emulator cannot serve (and the step storing what it found, which then has nothing to store): such a verification shows as incomplete, never as passed, but still lets the version be promoted. Any other step the endpoint cannot serve fails the verification. In production (-verify-accept-unsupported off) an incomplete verification blocks promotion."
	}
	return "A verification with a step the AWS endpoint cannot serve is incomplete or failed, and does not let the version be promoted."
}

func promoteForm(env string, js []string) templates.PromoteForm {
	f := templates.PromoteForm{Environment: env, Jurisdictions: js, Environments: regions.EnvironmentNames(), Errors: templates.FormErrors{}}
	for _, j := range regions.Jurisdictions() {
		f.AllJuris = append(f.AllJuris, templates.JurisOption{ID: j.ID, Name: j.Name})
	}
	return f
}

func (s *Server) promotionsList(c echo.Context) error {
	return s.renderPromotions(c, http.StatusOK, promoteForm("dev", []string{"us", "eu", "apac"}))
}

func (s *Server) renderPromotions(c echo.Context, status int, form templates.PromoteForm) error {
	v := templates.PromotionsView{Form: form, CanPromote: currentUser(c).Has(staff.Ops, staff.Admin)}
	wf := s.deps.Workflows
	if wf == nil {
		v.AWSNote = "AWS is not configured, so nothing can be promoted: start the portal with the dev, test and prod account ids (see the README)."
		v.Policy = "approval"
		return s.render(c, status, templates.Promotions(s.page(c, "Promotions", "promotions"), v))
	}
	v.Policy = wf.Approvals.Describe()
	if len(wf.Approvals.Slots) == 0 {
		v.Policy = workflows.DefaultApprovalPolicy().Describe()
	}
	v.Unsupported = unsupportedPolicy(wf)
	var err error
	if v.Layers, err = s.unappliedLayers(c.Request().Context(), wf); err != nil {
		return err
	}
	var before int64
	if b := c.QueryParam("before"); b != "" {
		before, _ = strconv.ParseInt(b, 10, 64)
	}
	prs, more, err := wf.ListPromotions(c.Request().Context(), before, 25)
	if err != nil {
		return err
	}
	people := s.actors(c)
	for _, pr := range prs {
		v.Rows = append(v.Rows, promotionRow(pr, people))
	}
	if more && len(prs) > 0 {
		v.NextURL = "/promotions?before=" + itoa(prs[len(prs)-1].ID)
	}
	return s.render(c, status, templates.Promotions(s.page(c, "Promotions", "promotions"), v))
}

// unappliedLayers lists the environments whose layer (the patient hostname,
// its zone, certificates and routing records: <env>-global) the latest
// blueprint version holds but no run has applied yet: a promotion into such
// an environment plans its stacks, whose certificates and origin records
// then wait for the layer's zone, and their verification fails. The
// promotion form says so before anyone promotes.
func (s *Server) unappliedLayers(ctx context.Context, wf *workflows.Service) ([]templates.LayerNote, error) {
	if s.deps.Versions == nil {
		return nil, nil
	}
	latest, err := s.deps.Versions.Latest(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // no version yet: the form's own refusal says so
	} else if err != nil {
		return nil, err
	}
	checked, err := s.deps.Versions.Checked(ctx, latest.ID)
	if err != nil {
		return nil, err
	}
	var out []templates.LayerNote
	for _, env := range regions.EnvironmentNames() {
		id := regions.LayerID(env)
		if _, ok := checked.Stacks[id]; !ok {
			continue
		}
		runs, _, err := wf.Engine.ListRuns(ctx, engine.RunFilter{Stack: id, State: engine.RunSucceeded, Limit: 1})
		if err != nil {
			return nil, err
		}
		if len(runs) == 0 {
			out = append(out, templates.LayerNote{Environment: env, Layer: id})
		}
	}
	return out, nil
}

func promotionRow(pr workflows.Promotion, people *actors) templates.PromotionRow {
	r := templates.PromotionRow{ID: pr.ID, Version: pr.Version, Environment: pr.Environment, Purpose: pr.Purpose, CreatedBy: people.view(pr.CreatedBy), CreatedAt: pr.CreatedAt}
	for _, st := range pr.Stacks {
		r.Stacks = append(r.Stacks, st.Stack)
	}
	return r
}

// promoteInput is the promotion form.
type promoteInput struct {
	Version       string
	Environment   string
	Jurisdictions []string
	Purpose       string
}

func parsePromote(c echo.Context) (promoteInput, error) {
	form, err := c.FormParams()
	if err != nil {
		return promoteInput{}, apperr.New(apperr.Invalid, "the form could not be read")
	}
	return promoteInput{Version: strings.TrimSpace(form.Get("version")), Environment: form.Get("environment"),
		Jurisdictions: form["jurisdictions"], Purpose: form.Get("purpose")}, nil
}

func (s *Server) promotionCreate(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	in, err := parsePromote(c)
	if err != nil {
		return err
	}
	pr, err := wf.Promote(c.Request().Context(), who(c), workflows.PromoteRequest{Version: in.Version, Environment: in.Environment,
		Jurisdictions: in.Jurisdictions, Purpose: in.Purpose})
	if err != nil {
		form := promoteForm(in.Environment, in.Jurisdictions)
		form.Version = in.Version
		switch apperr.KindOf(err) {
		case apperr.Invalid:
			form.Errors = apperr.FieldsOf(err)
			form.Message = "The promotion was not started: correct the fields below."
			return s.renderPromotions(c, http.StatusBadRequest, form)
		case apperr.Conflict, apperr.NotFound:
			form.Message = apperr.MessageOf(err)
			if apperr.KindOf(err) == apperr.NotFound {
				form.Errors["version"] = "does not name a saved blueprint version"
			}
			return s.renderPromotions(c, http.StatusConflict, form)
		}
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/promotions/"+itoa(pr.ID))
}

func (s *Server) promotionView(c echo.Context) (templates.PromotionView, error) {
	wf, err := s.workflows()
	if err != nil {
		return templates.PromotionView{}, err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return templates.PromotionView{}, err
	}
	ctx := c.Request().Context()
	pr, err := wf.GetPromotion(ctx, id)
	if err != nil {
		return templates.PromotionView{}, err
	}
	people := s.actors(c)
	v := templates.PromotionView{Row: promotionRow(pr, people), Finished: true}
	for _, st := range pr.Stacks {
		row := templates.PromotionStackRow{Stack: st.Stack, PlanID: st.PlanID, RunID: st.RunID, Refused: st.Refused}
		if st.PlanID > 0 {
			p, err := wf.Engine.GetPlan(ctx, st.PlanID)
			if err != nil {
				return v, err
			}
			a, err := wf.ApprovalOf(ctx, p)
			if err != nil {
				return v, err
			}
			if a.Needed {
				switch {
				case a.SupersededBy > 0:
					row.Approval, row.ApprovalNote = "replaced", fmt.Sprintf("by plan #%d", a.SupersededBy)
				case a.Rejected != nil:
					row.Approval, row.ApprovalNote = "rejected", a.Rejected.Reason
				case a.Satisfied:
					row.Approval = "approved"
				default:
					row.Approval, row.ApprovalNote = "needed", a.Missing
					if st.RunID == 0 {
						v.Finished = false
					}
				}
			}
		}
		if st.RunID > 0 {
			r, _, err := wf.Engine.GetRun(ctx, st.RunID)
			if err != nil {
				return v, err
			}
			row.RunState, row.RunError = r.State, r.Error
			if r.State == engine.RunQueued {
				if l, err := wf.LockOf(ctx, st.Stack); err == nil && l.Held && l.Run.ID != r.ID {
					row.LockNote = fmt.Sprintf("waiting for run #%d by %s (since %s)", l.Run.ID, people.view(l.Run.CreatedBy).Plain(), l.Since.UTC().Format("15:04 UTC"))
				}
			}
			vs, err := wf.Verifications(ctx, st.Stack, 20)
			if err != nil {
				return v, err
			}
			for _, ver := range vs {
				if ver.RunID == r.ID {
					row.Verification, row.VerifyID, row.VerifySummary = ver.State, ver.ID, ver.Result.Summary()
					break
				}
			}
			if !r.Finished() || (r.State == engine.RunSucceeded && r.Kind == "apply" && (row.VerifyID == 0 || row.Verification == "running")) {
				v.Finished = false
			}
		}
		v.Stacks = append(v.Stacks, row)
	}
	return v, nil
}

func (s *Server) promotionShow(c echo.Context) error {
	v, err := s.promotionView(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.PromotionPage(s.page(c, fmt.Sprintf("Promotion #%d", v.Row.ID), "promotions"), v))
}

func (s *Server) promotionProgress(c echo.Context) error {
	v, err := s.promotionView(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.PromotionProgress(v))
}

// lockView shows who holds stack's lock.
func lockView(l workflows.Lock, people *actors) templates.LockView {
	v := templates.LockView{Held: l.Held}
	if l.Held {
		v.RunID, v.By, v.State, v.Since = l.Run.ID, people.view(l.Run.CreatedBy), l.Run.State, l.Since
	}
	for _, r := range l.Queue {
		v.Queue = append(v.Queue, runRow(r, people, nil))
	}
	return v
}

func verificationRow(v workflows.Verification, people *actors) templates.VerificationRow {
	return templates.VerificationRow{ID: v.ID, Stack: v.Stack, RunID: v.RunID, Version: v.Version, State: v.State, Summary: v.Result.Summary(),
		CreatedBy: people.view(v.CreatedBy), CreatedAt: v.CreatedAt}
}

func (s *Server) stackHistory(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	stack := c.Param("stack")
	st, ok := wf.Catalogue.Stack(stack)
	if !ok {
		return apperr.New(apperr.NotFound, "no stack %q (stacks are named like prod-eu)", stack)
	}
	ctx := c.Request().Context()
	var before int64
	if b := c.QueryParam("before"); b != "" {
		before, _ = strconv.ParseInt(b, 10, 64)
	}
	people := s.actors(c)
	hist, more, err := wf.History(ctx, stack, before, 25)
	if err != nil {
		return err
	}
	in, err := wf.VersionInForce(ctx, stack)
	if err != nil {
		return err
	}
	l, err := wf.LockOf(ctx, stack)
	if err != nil {
		return err
	}
	v := templates.HistoryView{Stack: stack, Environment: st.Environment.Name, Jurisdiction: st.Jurisdiction.ID, InForce: in.Version,
		CanAct: currentUser(c).Has(staff.Ops, staff.Admin), Lock: lockView(l, people)}
	for _, h := range hist {
		v.Rows = append(v.Rows, templates.HistoryRow{Run: runRow(h.Run, people, nil), Version: h.Version, InForce: h.InForce, Verification: h.Verification})
	}
	if more && len(hist) > 0 {
		v.NextURL = fmt.Sprintf("/stacks/%s/history?before=%d", stack, hist[len(hist)-1].Run.ID)
	}
	vs, err := wf.Verifications(ctx, stack, 10)
	if err != nil {
		return err
	}
	for _, x := range vs {
		v.Verifications = append(v.Verifications, verificationRow(x, people))
	}
	if d, err := wf.LatestDrift(ctx, stack); err == nil {
		r := driftRow(d)
		v.Drift = &r
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return s.render(c, http.StatusOK, templates.HistoryPage(s.page(c, stack, "promotions"), v))
}

func (s *Server) verificationShow(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ver, err := wf.GetVerification(c.Request().Context(), id)
	if err != nil {
		return err
	}
	v := templates.VerificationView{Row: verificationRow(ver, s.actors(c)), FinishedAt: ver.FinishedAt, CanVerify: currentUser(c).Has(staff.Ops, staff.Admin)}
	for _, st := range ver.Result.Steps {
		v.Steps = append(v.Steps, templates.VerifyStepRow{Name: st.Name, Title: st.Title, State: st.State, Detail: st.Detail, Took: st.Took.Round(1e6).String()})
		if st.State == verify.Unsupported {
			v.Unsupported = unsupportedPolicy(wf)
		}
	}
	return s.render(c, http.StatusOK, templates.VerificationPage(s.page(c, fmt.Sprintf("Verification #%d", ver.ID), "promotions"), v))
}

func (s *Server) stackVerify(c echo.Context) error {
	wf, err := s.workflows()
	if err != nil {
		return err
	}
	ver, err := wf.Verify(c.Request().Context(), who(c), c.Param("stack"), 0)
	if err != nil {
		return err
	}
	switch ver.State {
	case verify.Failed:
		s.flashError(c, "Verification finished: "+ver.State+".")
	case verify.Incomplete:
		s.flashWarning(c, "Verification finished: "+ver.State+".")
	default:
		s.flash(c, "Verification finished: "+ver.State+".")
	}
	return c.Redirect(http.StatusSeeOther, "/verifications/"+itoa(ver.ID))
}
