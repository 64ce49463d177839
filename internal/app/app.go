package app

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	shipped "portal/blueprints"
	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/billing"
	"portal/internal/evidence"
	"portal/internal/jobs"
	"portal/internal/sso"
	"portal/internal/staff"
	"portal/internal/store"
	"portal/internal/versions"
	"portal/internal/web"
)

// ErrAddrInUse reports that the listen address is taken.
var ErrAddrInUse = errors.New("address already in use")

// App is a running portal.
type App struct {
	cfg     Config
	log     *slog.Logger
	DB      *store.DB
	Audit   *audit.Log
	Staff   *staff.Service
	Web     *web.Server
	Jobs    *jobs.Scheduler
	Billing *billing.Service // the local copy of Stripe that finance reads
	// Versions stores blueprint versions and guardrail exceptions.
	Versions *versions.Service
	// Estate reaches AWS; nil when no environment accounts are configured.
	Estate   *Estate
	listener net.Listener
	baseURL  string // where people reach this portal (-base-url, else URL)
	http     *http.Server
	// FirstAdmin is set when New created the first administrator; its
	// one-time password is for the console, once.
	FirstAdmin *Credentials
	// Evidence makes the evidence packs (on demand and monthly).
	Evidence *evidence.Service
	// Activity is CloudTrail activity, log integrity, CloudWatch and
	// evidence reports.
	Activity *activity.Service
	// SSO is single sign-on through the organization's OpenID provider;
	// nil when it is off.
	SSO *sso.Service
	// anchors keeps the audit chain's anchors; nil when anchoring is off.
	anchors *audit.S3Anchors
}

// Credentials are an account's email and one-time password.
type Credentials struct {
	Email    string
	Password string
}

// Options adjust an App for tests.
type Options struct {
	Now        func() time.Time
	HashParams *staff.HashParams
	// Sandbox is set by the local sandbox: its alert inbox and mail
	// server, which get pages and links of their own.
	Sandbox *web.Sandbox
}

// New opens the database, builds the services and the HTTP server, creates
// the first administrator when none exists, and binds the listener (so
// Addr is known before Run).
func New(ctx context.Context, cfg Config, log *slog.Logger, opts Options) (*App, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if !store.IsPostgresURL(cfg.DBPath) {
		if err := os.MkdirAll(filepath.Dir(cfg.DBPath), 0o700); err != nil {
			return nil, fmt.Errorf("app: data folder: %w", err)
		}
	}
	key, err := LoadSecretKey(cfg.SecretKey, cfg.SecretKeyFile, store.IsPostgresURL(cfg.DBPath))
	if err != nil {
		return nil, err
	}
	sealer, err := staff.NewSealer(key)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DBPath)
	if err != nil {
		return nil, err
	}
	if err := staff.CheckKey(ctx, db, key); err != nil {
		db.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	a := &App{cfg: cfg, log: log, DB: db}
	acfg := cfg.Audit
	acfg.Shared = store.IsPostgresURL(cfg.DBPath)
	ring, reload, err := LoadAuditKeys(acfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("app: %w", err)
	}
	a.Audit = audit.NewKeyed(db, opts.Now, ring, reload)
	// A trail from before keying (or sealed with a key since rotated) is
	// re-keyed now, with an explicit record, rather than at the first
	// change someone makes.
	if rekeyed, err := a.Audit.Rekey(ctx, "system"); err != nil {
		db.Close()
		return nil, fmt.Errorf("app: %w", err)
	} else if rekeyed {
		log.Info("audit trail sealed with the current audit key from here on", slog.String("key_id", ring.Current().ID))
	}
	scfg := staff.DefaultConfig()
	scfg.Require2FA = cfg.Require2FA
	scfg.LocalAccountsNeed2FA = cfg.SSO != nil
	if opts.HashParams != nil {
		scfg.Hash = *opts.HashParams
	}
	a.Staff = staff.NewService(db, a.Audit, sealer, scfg, opts.Now)
	a.Jobs = jobs.New(db, log, opts.Now, "")
	a.Versions = versions.New(db, a.Audit, opts.Now)
	a.importBlueprints(ctx)
	a.Billing = billing.New(db, a.Audit, log, opts.Now, cfg.Billing)
	a.Billing.Register(a.Jobs)

	if _, otp, created, err := a.Staff.EnsureAdmin(ctx, cfg.AdminEmail); err != nil {
		db.Close()
		return nil, fmt.Errorf("app: first administrator: %w", err)
	} else if created {
		a.FirstAdmin = &Credentials{Email: cfg.AdminEmail, Password: otp}
	}

	if a.Estate, err = a.buildEstate(ctx, opts); err != nil {
		db.Close()
		return nil, err
	}
	if a.Estate != nil {
		a.Estate.Workflows.Blueprints = a.Versions
	}

	a.listener, err = net.Listen("tcp", cfg.Addr)
	if err != nil {
		db.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			err = ErrAddrInUse
		}
		return nil, fmt.Errorf("app: listen on %s: %w", cfg.Addr, err)
	}
	base := cfg.BaseURL
	if base == "" {
		base = "http://" + a.listener.Addr().String()
	}
	a.baseURL = base
	if a.Estate != nil && a.Estate.Workflows.Notify != nil {
		// Links in e-mails and ops messages lead to where people reach
		// this portal.
		a.Estate.Workflows.Notify.BaseURL = base
	}
	// Passkeys belong to the portal's address (its host name).
	rp, why := staff.PasskeyOriginFor(base)
	a.Staff.UsePasskeys(rp, why)
	if why != nil {
		log.Warn("passkeys are unavailable", slog.String("reason", why.Error()))
	}
	a.Activity = a.buildActivity(base, opts)
	deps := a.webDeps(opts)
	if deps.Anchoring, err = a.startAnchoring(ctx); err != nil {
		a.listener.Close()
		db.Close()
		return nil, err
	}
	deps.Versions = a.Versions
	a.Evidence = a.buildEvidence(base, deps.Inventory, opts)
	deps.Evidence = a.Evidence
	if a.Estate != nil {
		deps.Catalogue = a.Estate.Catalogue
	}
	deps.Billing = a.Billing
	a.SSO = a.buildSSO(base, sealer, opts)
	deps.SSO = a.SSO
	a.Web = web.New(web.Config{BaseURL: base, SessionIdle: cfg.SessionTimeout, SandboxNotice: cfg.SandboxNotice, TrustProxy: cfg.TrustProxy,
		CSRFKey: deriveKey(key, "portal csrf tokens")}, deps)
	a.http = &http.Server{
		Handler:           a.Web,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return a, nil
}

// importBlueprints saves the shipped blueprints as the first version when
// the database holds none, audited as the system. Shipped files that fail
// validation or a blocking guardrail are not saved (nothing invalid ever
// is); the portal still starts, logs why, and its pages say that no
// version exists yet.
func (a *App) importBlueprints(ctx context.Context) {
	var v versions.Version
	var created bool
	// Replicas starting together on an empty database import once.
	err := a.DB.WithLock(ctx, "first-start", func(ctx context.Context) error {
		var err error
		v, created, err = a.Versions.Import(ctx, audit.Entry{Actor: "system"}, shipped.FS, "Shipped blueprints, imported on first start")
		return err
	})
	var rej *versions.Rejection
	switch {
	case errors.As(err, &rej):
		a.log.Error("the shipped blueprints were not imported", slog.String("err", err.Error()),
			slog.Int("diagnostics", len(rej.Diagnostics)), slog.Int("blocking_guardrails", len(rej.Blocking)))
	case err != nil:
		a.log.Error("the shipped blueprints were not imported", slog.String("err", err.Error()))
	case created:
		a.log.Info("imported the shipped blueprints", slog.String("version", v.ID))
	}
}

// Addr is the address the portal listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// URL is the portal's base address.
func (a *App) URL() string { return "http://" + a.Addr() }

// BaseURL is where people reach the portal: -base-url (behind a load
// balancer, its address), else URL.
func (a *App) BaseURL() string { return a.baseURL }

// Run serves until ctx is cancelled, then lets in-flight requests finish
// within the configured grace period.
func (a *App) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- a.http.Serve(a.listener) }()
	jobsCtx, stopJobs := context.WithCancel(ctx)
	jobsDone := make(chan struct{})
	go func() { a.Jobs.Run(jobsCtx); close(jobsDone) }()
	defer func() { stopJobs(); <-jobsDone }()
	if a.Estate != nil {
		// Runs are executed here: one per stack at a time, resumable.
		workDone := make(chan struct{})
		go func() { a.Estate.Engine.Work(jobsCtx, runnerName()); close(workDone) }()
		defer func() { stopJobs(); <-workDone }()
	}
	a.log.Info("portal listening", slog.String("url", a.URL()), slog.String("db", a.DB.Name()))
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("app: serve: %w", err)
	case <-ctx.Done():
	}
	grace := a.cfg.ShutdownGrace
	if grace == 0 {
		grace = 15 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	a.log.Info("shutting down", slog.Duration("grace", grace))
	if err := a.http.Shutdown(sctx); err != nil {
		return fmt.Errorf("app: shutdown: %w", err)
	}
	// Anchor what the last requests wrote, so a planned stop leaves
	// nothing unanchored.
	if _, err := a.AnchorNow(sctx); err != nil {
		a.log.Error("audit chain not anchored at shutdown", slog.String("err", err.Error()))
	}
	return nil
}

// Close releases the database and background work. Call it after Run
// returns (or instead of Run).
func (a *App) Close() error {
	_ = a.listener.Close()
	_ = a.Web.Close(context.Background())
	return a.DB.Close()
}

// deriveKey derives a key for one purpose from the secret key, so that no
// two purposes share key material.
func deriveKey(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// PrintFirstAdmin writes the first administrator's one-time password to the
// console. It is never logged.
func PrintFirstAdmin(w io.Writer, url string, c Credentials) {
	fmt.Fprintf(w, "\n  No administrator existed, so one was created.\n\n    Sign in at:          %s/login\n    Email:               %s\n    One-time password:   %s\n\n  The password is shown only now; you will choose your own and set up two-factor at first sign-in.\n\n", url, c.Email, c.Password)
}
