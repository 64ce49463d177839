// Package web is the portal's HTTP layer: pages (templ + htmx), the JSON API
// under /api/v1, authentication, CSRF protection, per-route authorization
// and request logging. Every route is registered in routes.go with the roles
// that may use it.
package web

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"portal/internal/access"
	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/billing"
	"portal/internal/evidence"
	"portal/internal/inventory"
	"portal/internal/orgguard"
	"portal/internal/regions"
	"portal/internal/sso"
	"portal/internal/staff"
	"portal/internal/store"
	"portal/internal/versions"
	"portal/internal/workflows"
)

// Config holds the HTTP layer's settings.
type Config struct {
	// BaseURL is the address people use to reach the portal; an https
	// base URL makes cookies Secure.
	BaseURL string
	// SessionLifetime bounds how long a sign-in lasts.
	SessionLifetime time.Duration
	// SessionIdle signs people out after this long without a request.
	SessionIdle time.Duration
	// SandboxNotice, when set, is shown on every page (local sandbox mode).
	SandboxNotice string
	// TrustProxy takes the client address from X-Forwarded-For.
	TrustProxy bool
	// CSRFKey signs CSRF tokens (at least 32 bytes; replicas share it).
	// Empty picks a random key, good for one process only.
	CSRFKey []byte
}

// Deps are the services the HTTP layer calls.
type Deps struct {
	DB     *store.DB
	Staff  *staff.Service
	Audit  *audit.Log
	Logger *slog.Logger
	Now    func() time.Time
	// Workflows plans and applies stacks; nil when no AWS environments
	// are configured, and the pages say so.
	Workflows *workflows.Service
	// Stacks lists the nine stacks (from the regions catalogue).
	Stacks []string
	// Versions stores blueprint versions and guardrail exceptions.
	Versions *versions.Service
	// Catalogue holds the environments' AWS accounts; nil when none are
	// configured, and the stacks grid says so.
	Catalogue *regions.Catalogue
	// StackRuns says what the provisioning engine last did to each stack;
	// nil until it is wired, and the stacks grid says "Not deployed yet".
	StackRuns StackRuns
	// Billing is the Stripe copy finance reads; always set (without a
	// Stripe key its pages say how to configure one).
	Billing *billing.Service
	// Activity is CloudTrail activity, log integrity, CloudWatch and
	// evidence reports; nil hides nothing but makes its pages say so.
	Activity *activity.Service
	// Evidence makes and keeps evidence packs; always set by the app.
	Evidence *evidence.Service
	// Inventory is what discovery found in AWS; always set (without AWS
	// its pages say nothing can be discovered).
	Inventory *inventory.Service
	// Access is staff AWS access (roles, grants, elevation, reviews); nil
	// when no AWS environments are configured, and its pages say so.
	Access *access.Service
	// Anchoring is where the audit chain is anchored; nil when it is not,
	// and the audit page warns.
	Anchoring *AuditAnchoring
	// OrgGuard is the organization's service control policies; nil or
	// unconfigured without a management account.
	OrgGuard *orgguard.Service
	// SSO signs staff in through the organization's OpenID provider; nil
	// when single sign-on is off.
	SSO *sso.Service
	// Sandbox is set only in the local sandbox: its alert inbox and mail
	// server.
	Sandbox *Sandbox
}

// AuditAnchoring is where the head of the audit chain is anchored outside
// the portal, for the audit page.
type AuditAnchoring struct {
	Store     audit.AnchorStore
	Interval  time.Duration
	Retention time.Duration
	Account   string // the audit account; "" for the portal's own
	// Status says when anchoring last ran and its error ("" when it
	// succeeded).
	Status func(ctx context.Context) (lastRun time.Time, lastErr string, err error)
}

// Server is the portal's HTTP handler.
type Server struct {
	cfg      Config
	deps     Deps
	echo     *echo.Echo
	sessions *scs.SessionManager
	store    store.SessionStore
	metrics  *prometheus.Registry
	routes   []Route
	csrfKey  []byte
}

// New builds the HTTP layer and registers every route.
func New(cfg Config, deps Deps) *Server {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if cfg.SessionLifetime == 0 {
		cfg.SessionLifetime = 12 * time.Hour
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 2 * time.Hour
	}
	s := &Server{cfg: cfg, deps: deps, echo: echo.New(), metrics: prometheus.NewRegistry(), csrfKey: cfg.CSRFKey}
	if len(s.csrfKey) < 32 {
		s.csrfKey = make([]byte, 32)
		_, _ = rand.Read(s.csrfKey)
	}
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	s.store = deps.DB.SessionStore(10 * time.Minute)
	s.sessions = scs.New()
	// The idle timeout is kept by idleSessions and touchSession (see
	// session_store.go), not by scs, which would write every session on
	// every request.
	s.sessions.Store = &idleSessions{SessionStore: s.store, idle: cfg.SessionIdle, now: time.Now}
	s.sessions.Lifetime = cfg.SessionLifetime
	s.sessions.HashTokenInStore = true
	s.sessions.Cookie.Name = s.cookieName("portal_session")
	s.sessions.Cookie.Path = "/"
	s.sessions.Cookie.HttpOnly = true
	s.sessions.Cookie.SameSite = http.SameSiteLaxMode
	s.sessions.Cookie.Secure = s.secureCookies()
	s.sessions.Cookie.Persist = false
	s.sessions.ErrorFunc = s.sessionError

	s.echo.HideBanner = true
	s.echo.HidePort = true
	s.echo.HTTPErrorHandler = s.handleError
	s.registerMiddleware()
	s.registerRoutes()
	return s
}

func (s *Server) secureCookies() bool {
	return len(s.cfg.BaseURL) >= 8 && s.cfg.BaseURL[:8] == "https://"
}

// cookieName is the name of one of the portal's cookies. Served over https
// it carries the __Host- prefix, which browsers accept only on a Secure
// cookie for the whole site (Path=/) set by this host alone (no Domain), so
// no other host, not even a sibling subdomain, can plant or overwrite it.
// Over http (the local sandbox) browsers refuse the prefix, so it is left
// off.
func (s *Server) cookieName(name string) string {
	if s.secureCookies() {
		return "__Host-" + name
	}
	return name
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Routes lists every registered route with its declared access.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

// EchoRoutes lists what echo itself has registered, so a test can check
// that nothing bypassed the access declarations.
func (s *Server) EchoRoutes() []*echo.Route { return s.echo.Routes() }

// Close stops background work (session cleanup).
func (s *Server) Close(ctx context.Context) error {
	s.store.StopCleanup()
	return nil
}
