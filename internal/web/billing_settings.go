package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"portal/web/templates"
)

func (s *Server) billingSettingsView(c echo.Context) (templates.BillingSettingsView, error) {
	ctx := c.Request().Context()
	b := s.deps.Billing
	var v templates.BillingSettingsView
	var err error
	if v.Chrome, err = s.billingChrome(c, "settings"); err != nil {
		return v, err
	}
	st, err := b.Settings(ctx)
	if err != nil {
		return v, err
	}
	v.KeySet, v.KeyMode, v.KeyRestricted, v.KeyLastFour = st.Key.Set, st.Key.Mode, st.Key.Restricted, st.Key.LastFour
	v.WebhookSecretSet, v.APIURL, v.SyncInterval = st.WebhookSecretSet, st.APIURL, strings.TrimSuffix(strings.TrimSuffix(st.SyncInterval.String(), "0s"), "0m")
	v.WebhookURL = strings.TrimRight(s.cfg.BaseURL, "/") + "/webhooks/stripe"
	v.NextRun = st.Job.NextRun
	runs, err := b.RecentRuns(ctx, 8)
	if err != nil {
		return v, err
	}
	for _, r := range runs {
		v.Runs = append(v.Runs, templates.SyncRunLine{ID: r.ID, Started: r.StartedAt, Finished: r.FinishedAt, Trigger: r.Trigger,
			Status: r.Status, Phase: r.Phase, Error: r.Error, Objects: r.Objects})
	}
	ev, err := b.EventStats(ctx)
	if err != nil {
		return v, err
	}
	v.Events.Pending, v.Events.Done, v.Events.Ignored, v.Events.Failed, v.Events.Duplicates = ev.Pending, ev.Done, ev.Ignored, ev.Failed, ev.Duplicates
	v.LastEvent = ev.LastReceived
	for _, f := range ev.RecentFailures {
		v.Failures = append(v.Failures, templates.FailedEventLine{ID: f.ID, Type: f.Type, Object: f.Object, Error: f.Error, Attempts: f.Attempts})
	}
	return v, nil
}

func (s *Server) billingSettings(c echo.Context) error {
	v, err := s.billingSettingsView(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.BillingSettings(s.page(c, "Stripe & sync", "billing"), v))
}

// billingSyncStatus is the htmx fragment polled while a sync runs.
func (s *Server) billingSyncStatus(c echo.Context) error {
	v, err := s.billingSettingsView(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, templates.SyncStatus(v))
}

// billingSyncNow starts a sync on demand; it is recorded in the audit
// trail and runs in the background.
func (s *Server) billingSyncNow(c echo.Context) error {
	if err := s.deps.Billing.RequestSync(c.Request().Context(), who(c)); err != nil {
		return err
	}
	s.flash(c, "Sync started: progress is shown below and every finance page says how current its data is.")
	return c.Redirect(http.StatusSeeOther, "/billing/settings")
}
