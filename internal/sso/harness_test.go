package sso_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"portal/internal/audit"
	"portal/internal/peers"
	"portal/internal/peers/oidcprovider/directory"
	"portal/internal/peers/peertest"
	"portal/internal/sso"
	"portal/internal/staff"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

// clock is the tests' clock; it follows real time from where it was set,
// so the provider's tokens (stamped with the real time) stay valid.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

type harness struct {
	svc   *sso.Service
	staff *staff.Service
	audit *audit.Log
	db    *store.DB
	idp   *peers.OIDCProvider
	clock *clock
	cfg   sso.Config
}

// The directory every test starts from: people in the groups the role
// map knows, one in a group it does not, and the portal as a client.
func testDirectory() directory.Directory {
	return directory.Directory{
		Name: "Test Identity",
		Users: []directory.User{
			{Username: "olga", Password: "olga-password-1", Email: "Olga.Ops@example.com", Name: "Olga Ops", Groups: []string{"ops", "everyone"}},
			{Username: "ada", Password: "ada-password-1", Email: "ada.admin@example.com", Name: "Ada Admin", Groups: []string{"portal-admins", "ops"}},
			{Username: "mark", Password: "mark-password-1", Email: "mark@example.com", Name: "Mark Eting", Groups: []string{"marketing"}},
			{Username: "una", Password: "una-password-1", Email: "una@example.com", Name: "Una Verified", Groups: []string{"ops"}, EmailUnverified: true},
			{Username: "lou", Password: "lou-password-1", Email: "lou.local@example.com", Name: "Lou Local", Groups: []string{"ops"}},
		},
		Clients: []directory.Client{{ID: "portal", Secret: "portal-client-secret", Name: "Portal", RedirectURIs: []string{"http://127.0.0.1:*/login/sso/callback"}}},
	}
}

func newHarness(t *testing.T, adjust func(*sso.Config)) *harness {
	t.Helper()
	return newHarnessWith(t, testDirectory(), adjust)
}

func newHarnessWith(t *testing.T, d directory.Directory, adjust func(*sso.Config)) *harness {
	t.Helper()
	ctx := context.Background()
	idp := peertest.OIDCProviderForTest(t, d)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clk := &clock{}
	alog := audit.New(db, clk.Now)
	sealer, err := staff.NewSealer(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	scfg := staff.DefaultConfig()
	scfg.Hash = staff.HashParams{Memory: 64, Time: 1, Threads: 1}
	scfg.LocalAccountsNeed2FA = true
	st := staff.NewService(db, alog, sealer, scfg, clk.Now)
	rm, err := sso.ParseRoleMap("ops=ops,portal-admins=admin,portal-admins=ops,auditors=compliance")
	if err != nil {
		t.Fatal(err)
	}
	cfg := sso.Config{Issuer: idp.Issuer(), ClientID: "portal", ClientSecret: "portal-client-secret", Name: idp.Name(),
		Scopes: []string{"openid", "email", "profile", "groups"}, GroupsClaim: "groups", RoleMap: rm,
		Recheck: time.Minute, SessionMax: time.Hour, RedirectURL: "http://127.0.0.1:9/login/sso/callback"}
	if adjust != nil {
		adjust(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	svc := sso.New(cfg, sso.Options{DB: db, Audit: alog, Staff: st, Sealer: sealer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clk.Now})
	return &harness{svc: svc, staff: st, audit: alog, db: db, idp: idp, clock: clk, cfg: cfg}
}

var by = audit.Entry{Actor: "anonymous", SourceIP: "127.0.0.1", RequestID: "test"}

// browser plays the person's browser at the provider: it follows the
// authorization URL to the provider's login page, submits the form, and
// stops at the redirect back to the portal.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, client: &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == sso.CallbackPath {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

// signInAtProvider logs in at the provider's own login page and returns
// the callback it sends the browser back with (or the login page's error).
func (b *browser) signInAtProvider(authURL, username, password string) (sso.Callback, error) {
	b.t.Helper()
	res, err := b.client.Get(authURL)
	if err != nil {
		return sso.Callback{}, err
	}
	doc, err := goquery.NewDocumentFromReader(res.Body)
	res.Body.Close()
	if err != nil {
		return sso.Callback{}, err
	}
	form := doc.Find(`form[data-testid=idp-login-form]`)
	if form.Length() == 0 {
		return sso.Callback{}, errors.New("no login form at " + res.Request.URL.String() + ": " + strings.TrimSpace(doc.Text()))
	}
	id, _ := form.Find(`input[name=authRequestID]`).Attr("value")
	action := res.Request.URL.ResolveReference(&url.URL{Path: "/login"})
	res, err = b.client.PostForm(action.String(), url.Values{"authRequestID": {id}, "username": {username}, "password": {password}})
	if err != nil {
		return sso.Callback{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusFound && res.StatusCode != http.StatusSeeOther {
		doc, _ := goquery.NewDocumentFromReader(res.Body)
		return sso.Callback{}, errors.New(strings.TrimSpace(doc.Find(`[data-testid=idp-error]`).Text()))
	}
	loc, err := res.Location()
	if err != nil {
		return sso.Callback{}, err
	}
	q := loc.Query()
	return sso.Callback{State: q.Get("state"), Code: q.Get("code"), Error: q.Get("error"), ErrorDescription: q.Get("error_description")}, nil
}

// signIn is a whole sign-in through the provider.
func (h *harness) signIn(t *testing.T, username, password string) (staff.User, error) {
	t.Helper()
	p, authURL, err := h.svc.Begin(context.Background(), "/runs")
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	cb, err := newBrowser(t).signInAtProvider(authURL, username, password)
	if err != nil {
		t.Fatalf("sign in at the provider as %s: %v", username, err)
	}
	got, found := sso.Match([]sso.Pending{p}, cb.State)
	return h.svc.Complete(context.Background(), by, got, found, cb)
}

// refusal returns err's reason, failing the test when err is not a refusal.
func refusal(t *testing.T, err error) *sso.Refusal {
	t.Helper()
	var r *sso.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("got error %v, want a refusal", err)
	}
	return r
}

// actions lists the audit trail's actions, oldest first.
func (h *harness) actions(t *testing.T) []string {
	t.Helper()
	recs, _, err := h.audit.List(context.Background(), audit.Filter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(recs) - 1; i >= 0; i-- {
		out = append(out, recs[i].Action)
	}
	return out
}
