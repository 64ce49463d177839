package web

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"portal/internal/activity"
	"portal/web/templates"
)

func validationRow(v activity.Validation, people *actors) templates.ValidationRow {
	return templates.ValidationRow{ID: v.ID, StartedAt: v.StartedAt, FinishedAt: v.FinishedAt, StartedBy: people.view(v.StartedBy), OK: v.OK, Digests: v.Digests,
		LogFiles: v.LogFiles, Problems: len(v.Problems)}
}

func validationDetail(v activity.Validation) ([]templates.ChainRow, []templates.ProblemRow) {
	var chains []templates.ChainRow
	for _, c := range v.Chains {
		chains = append(chains, templates.ChainRow{Bucket: c.Bucket, Prefix: c.Prefix, Digests: c.Digests, LogFiles: c.LogFiles, Pending: c.Pending, From: c.From, To: c.To})
	}
	var problems []templates.ProblemRow
	for _, p := range v.Problems {
		problems = append(problems, templates.ProblemRow{Kind: p.Kind, Bucket: p.Bucket, Key: p.Key, Detail: p.Detail})
	}
	return chains, problems
}

func (s *Server) activityIntegrity(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	cfg := svc.Config()
	v := templates.IntegrityView{NoSources: len(cfg.Buckets) == 0, CanRun: true}
	for _, b := range cfg.Buckets {
		v.Buckets = append(v.Buckets, "s3://"+b.Bucket)
	}
	for _, k := range cfg.DigestKeys {
		v.Keys = append(v.Keys, k.Fingerprint)
	}
	if every := svc.ScheduleOf().Validate; every > 0 {
		v.Schedule = fmt.Sprintf("validated automatically every %s", every)
		if st, err := svc.JobStatus(ctx, activity.JobValidate); err == nil && !st.NextRun.IsZero() {
			v.NextRun = st.NextRun
		}
	} else {
		v.Schedule = "on demand only"
	}
	hist, err := svc.Validations(ctx, 20)
	if err != nil {
		return err
	}
	people := s.actors(c)
	if len(hist) > 0 {
		cur := validationRow(hist[0], people)
		v.Current = &cur
		v.Chains, v.Problems = validationDetail(hist[0])
	}
	for _, h := range hist[min(1, len(hist)):] {
		v.History = append(v.History, validationRow(h, people))
	}
	return s.render(c, http.StatusOK, templates.Integrity(s.page(c, "Log integrity", "activity"), v))
}

func (s *Server) activityValidate(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	v, err := svc.Validate(c.Request().Context(), who(c))
	if err != nil {
		return err
	}
	if v.OK {
		s.flash(c, fmt.Sprintf("Validation #%d passed: %d digests and %d log files are intact.", v.ID, v.Digests, v.LogFiles))
	} else {
		s.flashError(c, fmt.Sprintf("Validation #%d failed with %s.", v.ID, plural(len(v.Problems), "finding", "findings")))
	}
	return c.Redirect(http.StatusSeeOther, "/activity/integrity")
}

func (s *Server) activityValidation(c echo.Context) error {
	svc, err := s.activityService()
	if err != nil {
		return err
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	v, err := svc.GetValidation(c.Request().Context(), id)
	if err != nil {
		return err
	}
	chains, problems := validationDetail(v)
	return s.render(c, http.StatusOK, templates.ValidationPage(s.page(c, fmt.Sprintf("Validation #%d", v.ID), "activity"), validationRow(v, s.actors(c)), chains, problems))
}
