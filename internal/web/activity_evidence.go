package web

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"

	"portal/internal/activity"
	"portal/internal/apperr"
	"portal/internal/regions"
	"portal/web/templates"
)

func jurisdictionIDs() []string {
	var out []string
	for _, j := range regions.Jurisdictions() {
		out = append(out, j.ID)
	}
	return out
}

func (s *Server) activityEvidence(c echo.Context) error {
	return s.renderEvidence(c, http.StatusOK, "", nil)
}

func (s *Server) renderEvidence(c echo.Context, status int, selected string, errs map[string]string) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	v := templates.EvidenceView{Jurisdictions: jurisdictionIDs(), Selected: selected, Errors: errs, CanGenerate: true}
	reports, err := svc.Reports(c.Request().Context(), 100)
	if err != nil {
		return err
	}
	people := s.actors(c)
	for _, r := range reports {
		v.Reports = append(v.Reports, templates.ReportRow{ID: r.ID, Jurisdiction: r.Jurisdiction, GeneratedAt: r.GeneratedAt, GeneratedBy: people.view(r.GeneratedBy),
			Passed: r.Passed, Failed: r.Failed, Unknwn: r.Unknwn, SHA256: r.SHA256})
	}
	return s.render(c, status, templates.Evidence(s.page(c, "Evidence reports", "activity"), v))
}

// evidenceForm is the new-report form.
type evidenceForm struct {
	Jurisdiction string
}

func (f evidenceForm) Validate() error {
	var v apperr.Validation
	if f.Jurisdiction == "" {
		v.Add("jurisdiction", "is required")
	} else if !slices.Contains(jurisdictionIDs(), f.Jurisdiction) {
		v.Add("jurisdiction", fmt.Sprintf("%q is not one of us, eu, apac", f.Jurisdiction))
	}
	return v.Err()
}

func (s *Server) activityEvidenceCreate(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	f := evidenceForm{Jurisdiction: c.FormValue("jurisdiction")}
	if err := f.Validate(); err != nil {
		return s.renderEvidence(c, http.StatusBadRequest, f.Jurisdiction, apperr.FieldsOf(err))
	}
	ctx := c.Request().Context()
	by := who(c)
	src := activity.EvidenceSources{Staff: s.deps.Staff, Audit: s.deps.Audit}
	if s.deps.OrgGuard.Configured() {
		src.Preventive = s.deps.OrgGuard.Controls
	}
	if s.deps.Workflows != nil {
		src.Runs, src.State = s.deps.Workflows.Engine, s.deps.Workflows.Engine
	}
	r, err := svc.BuildReport(ctx, f.Jurisdiction, by, src)
	if err != nil {
		return err
	}
	j, _ := regions.JurisdictionByID(f.Jurisdiction)
	v := templates.EvidenceReportView{Jurisdiction: j.Name + " (" + j.ID + ")", Regime: j.Regime, GeneratedAt: r.GeneratedAt,
		GeneratedBy: s.actors(c).view(r.GeneratedBy).Plain(), Sandbox: s.cfg.SandboxNotice}
	v.Passed, v.Failed, v.Unknown = r.Counts()
	activity.SortControls(r.Controls)
	for _, ctl := range r.Controls {
		v.Controls = append(v.Controls, templates.ControlRow{Area: ctl.Area, Name: ctl.Name, Citation: ctl.Citation, Stack: ctl.Stack, Status: ctl.Status, Evidence: ctl.Evidence})
	}
	var buf bytes.Buffer
	if err := templates.EvidenceReport(v).Render(ctx, &buf); err != nil {
		return err
	}
	sr, err := svc.SaveReport(ctx, by, r, buf.Bytes())
	if err != nil {
		return err
	}
	s.flash(c, fmt.Sprintf("Evidence report #%d for %s generated: %d pass, %d fail, %d unknown. SHA-256 %s.", sr.ID, f.Jurisdiction, sr.Passed, sr.Failed, sr.Unknwn, sr.SHA256))
	return c.Redirect(http.StatusSeeOther, "/activity/evidence")
}

// activityEvidenceShow downloads a stored report byte for byte, so its
// SHA-256 matches the one recorded.
func (s *Server) activityEvidenceShow(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	r, err := svc.GetReport(c.Request().Context(), id)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="evidence-%s-%d-%s.html"`, r.Jurisdiction, r.ID, r.GeneratedAt.UTC().Format("20060102-150405")))
	h.Set("X-Report-SHA256", r.SHA256)
	h.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", r.Body)
}
