package web

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo-contrib/echoprometheus"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"portal/internal/audit"
	"portal/internal/staff"
)

const (
	ctxUser  = "portal.user"
	ctxToken = "portal.token"
	// Session keys.
	sessUserID    = "uid"
	sessPendingID = "pending_uid"
	// sessPendingAt (unix seconds) and sessPendingFails bound a pending
	// sign-in: its life and how many wrong codes it may try.
	sessPendingAt    = "pending_at"
	sessPendingFails = "pending_fails"
	// sessVersion and sessPendingVersion are the account's credentials
	// version when the session (or pending sign-in) began; an older one is
	// void (see staff.User.CredentialsVersion).
	sessVersion        = "credentials_version"
	sessPendingVersion = "pending_credentials_version"
	// sessAuthAt (unix seconds) is when the person last proved their
	// password in this session; adding a factor needs it to be recent.
	sessAuthAt    = "auth_at"
	sessEnrol     = "enrol_secret"
	sessFlash     = "flash"
	sessFlashKind = "flash_kind"
	// ctxSession is set once the request's session is loaded; requests
	// without one (API, machine endpoints, a failed load) must not touch it.
	ctxSession = "portal.session"
)

// echoContextKey carries the echo context into the session manager's
// error callback.
type echoContextKey struct{}

func (s *Server) registerMiddleware() {
	e := s.echo
	e.IPExtractor = echo.ExtractIPDirect()
	if s.cfg.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	}
	e.Pre(middleware.RemoveTrailingSlashWithConfig(middleware.TrailingSlashConfig{RedirectCode: http.StatusMovedPermanently}))
	e.Use(s.requestID)
	e.Use(s.logRequests())
	e.Use(middleware.Recover())
	e.Use(echoprometheus.NewMiddlewareWithConfig(echoprometheus.MiddlewareConfig{
		Namespace:  "portal",
		Registerer: s.metrics,
		Skipper:    func(c echo.Context) bool { return c.Path() == "/metrics" },
		// The Host header is the client's to choose: as a label it would let
		// anyone create unbounded series. Unknown paths share one series too.
		// The method is the client's to choose too: methods outside the
		// standard set share one label.
		LabelFuncs: map[string]echoprometheus.LabelValueFunc{
			"host":   func(echo.Context, error) string { return "portal" },
			"method": func(c echo.Context, _ error) string { return methodLabel(c.Request().Method) },
		},
		DoNotUseRequestPathFor404: true,
	}))
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:         "0",
		ContentTypeNosniff:    "nosniff",
		XFrameOptions:         "DENY",
		HSTSMaxAge:            31536000,
		ReferrerPolicy:        "same-origin",
		ContentSecurityPolicy: "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
	}))
	e.Use(middleware.BodyLimit("4M"))
	e.Use(s.loadSession)
	e.Use(s.csrf)
	e.Use(s.loadUser)
}

// methodLabel is the metrics label of an HTTP method: one of the methods
// HTTP defines, or "OTHER".
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// maxRequestIDLen bounds a request ID taken from the client.
const maxRequestIDLen = 64

// requestID gives every request an ID, sent back in X-Request-Id and kept
// in logs and audit records. A proxy's ID is kept when it is at most 64
// characters of letters, digits and "-_.:"; anything else (too long, spaces,
// control characters, markup) is replaced by a fresh one, so a client
// cannot put what it likes into the logs or the audit trail.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !validRequestID(id) {
			id = newRequestID()
		}
		// The request header too: the request logger reads it first.
		c.Request().Header.Set(echo.HeaderXRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '-', b == '_', b == '.', b == ':':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 32 random letters and digits.
func newRequestID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	for i, c := range b {
		b[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(b)
}

// skipBrowserState reports requests that carry no browser session: the JSON
// API (bearer tokens), machine endpoints and static files. They get neither
// a session nor CSRF checks (and a cookie sent to them is ignored).
func skipBrowserState(c echo.Context) bool {
	p := c.Request().URL.Path
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, "/webhooks/") ||
		p == "/healthz" || p == "/readyz" || p == "/metrics"
}

// loadSession is scs's LoadAndSave for echo: it loads the session before
// the handler and writes the cookie before the response is written, and
// lets echo's error handler render errors while the session is still live.
func (s *Server) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if skipBrowserState(c) {
			return next(c)
		}
		r := c.Request()
		r = r.WithContext(context.WithValue(r.Context(), echoContextKey{}, c))
		s.sessions.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			touchSession(s.sessions, r.Context(), time.Now())
			c.Set(ctxSession, true)
			c.SetRequest(r)
			c.Response().Writer = w
			if err := next(c); err != nil {
				c.Error(err)
			}
		})).ServeHTTP(c.Response().Writer, r)
		return nil
	}
}

// sessionError answers a failing session store. A session that cannot be
// loaded (the database is unreachable) is an internal error like any other:
// the error page with the request ID. A failure to save comes once the
// response is under way; it is logged and answered with a bare 500.
func (s *Server) sessionError(w http.ResponseWriter, r *http.Request, err error) {
	if c, ok := r.Context().Value(echoContextKey{}).(echo.Context); ok && c.Get(ctxSession) == nil {
		c.Error(fmt.Errorf("web: load session: %w", err))
		return
	}
	s.deps.Logger.Error("session store", slog.String("err", err.Error()), slog.String("request_id", w.Header().Get(echo.HeaderXRequestID)))
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// loadUser resolves the signed-in account from the session or, for the
// API, from a bearer token. A disabled account is signed out at once.
func (s *Server) loadUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		p := c.Request().URL.Path
		switch {
		case strings.HasPrefix(p, "/api/"):
			h := c.Request().Header.Get("Authorization")
			if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
				u, t, err := s.deps.Staff.AuthenticateToken(ctx, strings.TrimSpace(tok))
				if err != nil {
					return err
				}
				if err := s.ssoAllowsToken(ctx, u); err != nil {
					return err
				}
				c.Set(ctxUser, &u)
				c.Set(ctxToken, &t)
			}
		case skipBrowserState(c):
		default:
			id := s.sessions.GetInt64(ctx, sessUserID)
			if id == 0 {
				break
			}
			u, err := s.deps.Staff.Get(ctx, id)
			// A disabled account, or one whose credentials or roles changed
			// since this session signed in (elsewhere, or by an admin), is
			// signed out at once.
			if err != nil || u.Disabled || s.sessions.GetInt64(ctx, sessVersion) != u.CredentialsVersion {
				_ = s.sessions.Destroy(ctx)
				break
			}
			if ok, err := s.ssoAllowsSession(c, &u); err != nil {
				return err
			} else if !ok {
				break
			}
			c.Set(ctxUser, &u)
		}
		return next(c)
	}
}

// currentUser returns the signed-in account, or nil.
func currentUser(c echo.Context) *staff.User {
	u, _ := c.Get(ctxUser).(*staff.User)
	return u
}

// who describes the requester for the audit trail.
func who(c echo.Context) audit.Entry {
	e := audit.Entry{
		Actor:     "anonymous",
		SourceIP:  c.RealIP(),
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID),
	}
	if u := currentUser(c); u != nil {
		e.Actor = u.Label()
		if t, ok := c.Get(ctxToken).(*staff.Token); ok {
			e.Actor += " via api-token:" + itoa(t.ID)
		}
	}
	return e
}

func (s *Server) logRequests() echo.MiddlewareFunc {
	return middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogURIPath: true, LogMethod: true, LogLatency: true, LogRequestID: true, LogRemoteIP: true, LogRoutePath: true,
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return p == "/healthz" || p == "/readyz" || p == "/metrics" || strings.HasPrefix(p, "/static/")
		},
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			s.deps.Logger.LogAttrs(context.Background(), level, "request",
				slog.String("method", v.Method), slog.String("path", v.URIPath), slog.String("route", v.RoutePath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency.Round(time.Microsecond)),
				slog.String("request_id", v.RequestID), slog.String("ip", v.RemoteIP))
			return nil
		},
	})
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext returns next when it is a path on this portal, else "/". It is
// where a sign-in lands, so anything a browser might read as another origin
// is refused: a scheme or host, a leading "//" or "/\" (browsers treat a
// backslash as a slash), tabs, newlines and other control characters (which
// browsers strip, so "/\t/evil.example" becomes "//evil.example"), bytes
// outside printable ASCII, and the same tricks percent-encoded, at any depth.
func safeNext(next string) string {
	if !localPath(next) {
		return "/"
	}
	// Decode until nothing changes (refusing what is still encoded after
	// a few rounds), checking every form a browser or proxy might produce.
	decoded := next
	for round := 0; ; round++ {
		d, err := url.PathUnescape(decoded)
		if err != nil || round == 4 && d != decoded {
			return "/"
		}
		if d == decoded {
			break
		}
		if !localPathDecoded(d) {
			return "/"
		}
		decoded = d
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return next
}

// maxNextLen bounds a redirect target; the portal's own addresses are far
// shorter.
const maxNextLen = 2048

// localPath reports whether s, as sent, is a same-origin path: it starts
// with one "/" and holds only printable ASCII other than backslash and space.
func localPath(s string) bool {
	if s == "" || len(s) > maxNextLen || s[0] != '/' || (len(s) > 1 && s[1] == '/') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || b == '\\' {
			return false
		}
	}
	return true
}

// localPathDecoded is localPath for a percent-decoded form, where spaces and
// other text may legitimately appear in the query but never a control
// character, a backslash or a second leading slash.
func localPathDecoded(s string) bool {
	if s == "" || s[0] != '/' || (len(s) > 1 && (s[1] == '/' || s[1] == '\\')) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == '\\' || (r >= 0x80 && r <= 0x9f) || r == '\uFFFD' {
			return false
		}
	}
	return true
}
