package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"portal/internal/apperr"
	"portal/internal/evidence"
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

// evidenceSvc is the evidence packs, or a clear error when they are not
// wired.
func (s *Server) evidenceSvc() (*evidence.Service, error) {
	if s.deps.Evidence == nil {
		return nil, apperr.New(apperr.Conflict, "evidence packs are not available in this portal")
	}
	return s.deps.Evidence, nil
}

const packsPerPage = 25

func (s *Server) activityEvidence(c echo.Context) error {
	// A preset link fills the form's dates.
	return s.renderEvidence(c, http.StatusOK, evidenceForm{Jurisdiction: c.QueryParam("jurisdiction"), From: c.QueryParam("from"), To: c.QueryParam("to")}, nil)
}

func (s *Server) renderEvidence(c echo.Context, status int, f evidenceForm, errs map[string]string) error {
	svc, err := s.evidenceSvc()
	if err != nil {
		return err
	}
	last := evidence.LastMonth(s.deps.Now())
	v := templates.EvidenceView{Jurisdictions: jurisdictionIDs(), Selected: f.Jurisdiction, From: f.From, To: f.To, Errors: errs, CanGenerate: true,
		DefaultPeriod: last.String(), DefaultFrom: last.From.Format("2006-01-02"), DefaultTo: last.LastDay().Format("2006-01-02"),
		Presets: evidencePresets(s.deps.Now())}
	if v.Selected == "" {
		v.Selected = "eu"
	}
	before, _ := strconv.ParseInt(c.QueryParam("before"), 10, 64)
	packs, more, err := svc.List(c.Request().Context(), evidence.Filter{BeforeID: before, Limit: packsPerPage})
	if err != nil {
		return err
	}
	people := s.actors(c)
	for _, p := range packs {
		v.Reports = append(v.Reports, packRow(p, people))
	}
	if more && len(packs) > 0 {
		v.NextURL = "/activity/evidence?before=" + itoa(packs[len(packs)-1].ID)
	}
	return s.render(c, status, templates.Evidence(s.page(c, "Evidence packs", "activity"), v))
}

// evidencePresets are the periods offered in one click: last month (the
// default), the month before, the last three full months and this month so
// far.
func evidencePresets(now time.Time) []templates.PeriodPreset {
	last := evidence.LastMonth(now)
	before := evidence.LastMonth(last.From)
	quarter := evidence.Period{From: evidence.LastMonth(before.From).From, To: last.To}
	this := evidence.MonthOf(now)
	today := now.UTC().Truncate(24 * time.Hour)
	var out []templates.PeriodPreset
	for _, p := range []struct {
		label string
		from  time.Time
		to    time.Time // last day, included
	}{
		{"Last month (" + last.String() + ")", last.From, last.LastDay()},
		{before.String(), before.From, before.LastDay()},
		{"Last three months", quarter.From, quarter.LastDay()},
		{"This month so far", this.From, today},
	} {
		out = append(out, templates.PeriodPreset{Label: p.label, From: p.from.Format("2006-01-02"), To: p.to.Format("2006-01-02")})
	}
	return out
}

func packRow(p evidence.Stored, people *actors) templates.ReportRow {
	r := templates.ReportRow{ID: p.ID, Jurisdiction: p.Jurisdiction, GeneratedAt: p.GeneratedAt, GeneratedBy: people.view(p.GeneratedBy),
		Passed: p.Passed, Failed: p.Failed, Unknwn: p.Unknown, SHA256: p.SHA256, PDFSHA256: p.PDFSHA256, HasPDF: p.HasPDF,
		Scheduled: p.Origin == evidence.Scheduled}
	if !p.Period.From.IsZero() {
		r.Period = p.Period.String()
	}
	return r
}

// evidenceForm is the new-pack form: a jurisdiction and a period (two
// dates, both included; both empty for last month).
type evidenceForm struct {
	Jurisdiction, From, To string
}

// Validate checks the form and returns its period, naming each bad field.
func (f evidenceForm) Validate(now time.Time) (evidence.Period, map[string]string) {
	errs := map[string]string{}
	if f.Jurisdiction == "" {
		errs["jurisdiction"] = "is required"
	} else if !slices.Contains(jurisdictionIDs(), f.Jurisdiction) {
		errs["jurisdiction"] = fmt.Sprintf("%q is not one of us, eu, apac", f.Jurisdiction)
	}
	period, perrs := evidence.ParsePeriod(f.From, f.To, now)
	for k, m := range perrs {
		errs[k] = m
	}
	if len(errs) > 0 {
		return evidence.Period{}, errs
	}
	return period, nil
}

func (s *Server) activityEvidenceCreate(c echo.Context) error {
	svc, err := s.evidenceSvc()
	if err != nil {
		return err
	}
	f := evidenceForm{Jurisdiction: c.FormValue("jurisdiction"), From: c.FormValue("from"), To: c.FormValue("to")}
	period, errs := f.Validate(s.deps.Now())
	if errs != nil {
		return s.renderEvidence(c, http.StatusBadRequest, f, errs)
	}
	by := who(c)
	st, err := svc.Generate(c.Request().Context(), by, s.actors(c).view(by.Actor).Plain(), f.Jurisdiction, period, evidence.OnDemand)
	if err != nil {
		return err
	}
	s.flash(c, fmt.Sprintf("Evidence pack #%d for %s, %s: %d pass, %d fail, %d unknown. SHA-256 of the HTML %s, of the PDF %s (audit record #%d).",
		st.ID, st.Jurisdiction, period.String(), st.Passed, st.Failed, st.Unknown, st.SHA256, st.PDFSHA256, st.AuditSeq))
	return c.Redirect(http.StatusSeeOther, "/activity/evidence")
}

// activityEvidenceShow serves a stored pack's HTML byte for byte (so its
// SHA-256 matches the one recorded): in the browser, or as a download
// with ?download=1.
func (s *Server) activityEvidenceShow(c echo.Context) error {
	return s.servePack(c, false)
}

// activityEvidencePDF serves a stored pack's PDF byte for byte.
func (s *Server) activityEvidencePDF(c echo.Context) error {
	return s.servePack(c, true)
}

func (s *Server) servePack(c echo.Context, pdf bool) error {
	svc, err := s.evidenceSvc()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	p, err := svc.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("evidence-%s-%d-%s", p.Jurisdiction, p.ID, p.GeneratedAt.UTC().Format("20060102-150405"))
	body, typ, sum, ext := p.HTML, "text/html; charset=utf-8", p.SHA256, "html"
	if pdf {
		if !p.HasPDF {
			return apperr.New(apperr.NotFound, "evidence pack %d was made before packs had a PDF: generate a new one", id)
		}
		body, typ, sum, ext = p.PDF, "application/pdf", p.PDFSHA256, "pdf"
	}
	disposition := "inline"
	if pdf || c.QueryParam("download") != "" {
		disposition = "attachment"
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`%s; filename="%s.%s"`, disposition, name, ext))
	h.Set("X-Report-SHA256", sum)
	h.Set("Cache-Control", "no-store")
	// The stored HTML has no script: forbid any, should one ever slip in.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	return c.Blob(http.StatusOK, typ, body)
}
