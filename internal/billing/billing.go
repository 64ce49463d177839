// Package billing keeps a local, traceable copy of the Stripe objects
// finance reports on: charges, refunds, disputes, payouts and balance
// transactions, with the payment intents and customers they reference.
//
// Data arrives two ways. Sync lists each kind incrementally (a cursor on
// creation time, auto-pagination, one transaction per batch that also
// records where to resume), on a schedule and on demand. Webhooks tell the
// portal that an object changed; the portal verifies the signature on the
// raw body, stores the event id once, and later re-fetches the object the
// event names, so duplicates and out-of-order deliveries cannot roll state
// back.
//
// Every figure the pages show is a sum over stored balance transactions,
// per currency (never across currencies), so each one can be traced back
// to the Stripe objects behind it.
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/jobs"
	"portal/internal/store"
)

// Job names in the scheduler.
const (
	SyncJob     = "billing.sync"
	WebhooksJob = "billing.webhooks"
)

// Config is the billing service's configuration.
type Config struct {
	// SecretKey is the Stripe API key (a restricted read-only key is
	// recommended). Without it nothing is synced.
	SecretKey Secret
	// WebhookSecret is the webhook endpoint's signing secret (whsec_...).
	// Without it the webhook endpoint refuses every delivery.
	WebhookSecret Secret
	// APIURL overrides Stripe's API address (stripe-mock, the fixture
	// server). Empty means https://api.stripe.com.
	APIURL string
	// SyncInterval is how often the scheduled sync runs; zero means 15m.
	SyncInterval time.Duration
	// WebhookTolerance is how old a signed delivery may be; zero means 5m.
	WebhookTolerance time.Duration
	// PageSize is the list page size asked of Stripe (1-100); zero means 100.
	PageSize int64
	// Sandbox marks the data as generated sandbox data on every page.
	Sandbox string
}

// Service syncs Stripe data and answers the finance pages' queries.
type Service struct {
	db    *store.DB
	audit *audit.Log
	log   *slog.Logger
	now   func() time.Time
	cfg   Config
	sc    *client.API
	jobs  *jobs.Scheduler
	// syncMu keeps syncs in this process one at a time (the job lease
	// does the same across replicas), so a sync started while another
	// runs waits rather than marking it interrupted.
	syncMu sync.Mutex
}

// New returns a billing service. now is the clock (nil: time.Now).
func New(db *store.DB, auditLog *audit.Log, log *slog.Logger, now func() time.Time, cfg Config) *Service {
	if now == nil {
		now = time.Now
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 15 * time.Minute
	}
	if cfg.WebhookTolerance == 0 {
		cfg.WebhookTolerance = 5 * time.Minute
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 100 {
		cfg.PageSize = 100
	}
	s := &Service{db: db, audit: auditLog, log: log, now: now, cfg: cfg}
	if cfg.SecretKey.IsSet() {
		s.sc = newClient(cfg.SecretKey, cfg.APIURL, log)
	}
	return s
}

func newClient(key Secret, apiURL string, log *slog.Logger) *client.API {
	bc := &stripe.BackendConfig{
		MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger:     slogLogger{log},
		HTTPClient:        &http.Client{Timeout: 60 * time.Second},
	}
	if apiURL != "" {
		bc.URL = stripe.String(strings.TrimRight(apiURL, "/"))
	}
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, bc)
	return client.New(key.Reveal(), &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
}

// slogLogger sends stripe-go's own messages to the portal's logger. They
// name requests and errors, never the key.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Debugf(format string, v ...any) {}
func (l slogLogger) Infof(format string, v ...any)  {}
func (l slogLogger) Warnf(format string, v ...any) {
	l.log.Warn("stripe: " + fmt.Sprintf(format, v...))
}
func (l slogLogger) Errorf(format string, v ...any) {
	l.log.Warn("stripe: " + fmt.Sprintf(format, v...))
}

// Configured reports whether a Stripe key is set.
func (s *Service) Configured() bool { return s.sc != nil }

// Sandbox returns the sandbox notice for the pages, "" outside the sandbox.
func (s *Service) Sandbox() string { return s.cfg.Sandbox }

// KeyMode is the mode of the configured secret key: "test", "live",
// "unknown", or "" with no key.
func (s *Service) KeyMode() string { return DescribeKey(s.cfg.SecretKey).Mode }

// Register adds the scheduled sync and the webhook processing to sched.
func (s *Service) Register(sched *jobs.Scheduler) {
	s.jobs = sched
	if s.Configured() {
		sched.Every(SyncJob, s.cfg.SyncInterval, func(ctx context.Context) error {
			_, err := s.Sync(ctx, "schedule")
			return err
		})
	}
	sched.Every(WebhooksJob, 30*time.Second, func(ctx context.Context) error {
		_, err := s.ProcessEvents(ctx)
		return err
	})
}

// ErrNotConfigured reports that no Stripe key is set.
var ErrNotConfigured = apperr.New(apperr.Conflict, "Stripe is not configured: set STRIPE_SECRET_KEY (or -stripe-secret-key-file) and restart the portal")

// RequestSync records that by asked for a sync now and makes the sync job
// due at once; the scheduler runs it in the background.
func (s *Service) RequestSync(ctx context.Context, by audit.Entry) error {
	if !s.Configured() || s.jobs == nil {
		return ErrNotConfigured
	}
	st, err := s.jobs.Status(ctx, SyncJob)
	if err != nil {
		return err
	}
	if st.Running {
		return apperr.New(apperr.Conflict, "a sync is already running; its progress is shown below")
	}
	by.Action, by.Target = "billing.sync_requested", "stripe"
	if _, err := s.audit.Record(ctx, by); err != nil {
		return err
	}
	if _, err := s.jobs.Trigger(ctx, SyncJob); err != nil {
		return err
	}
	return nil
}

// Settings is what the settings page shows: never a secret itself.
type Settings struct {
	Key              KeyInfo
	WebhookSecretSet bool
	APIURL           string // "" for Stripe's own
	SyncInterval     time.Duration
	Job              jobs.Status
}

// Settings describes the Stripe configuration and the sync job.
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	st := Settings{Key: DescribeKey(s.cfg.SecretKey), WebhookSecretSet: s.cfg.WebhookSecret.IsSet(), APIURL: s.cfg.APIURL, SyncInterval: s.cfg.SyncInterval}
	if s.jobs != nil && s.Configured() {
		var err error
		if st.Job, err = s.jobs.Status(ctx, SyncJob); err != nil {
			return st, err
		}
	}
	return st, nil
}

// stripeErr classifies an error from Stripe: a missing object is
// errMissing; anything else is wrapped as is.
func stripeMissing(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && (se.HTTPStatusCode == http.StatusNotFound || se.Code == stripe.ErrorCodeResourceMissing)
}
