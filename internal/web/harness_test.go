package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"portal/internal/app"
	"portal/internal/audit"
	"portal/internal/peers/peertest"
	"portal/internal/staff"
	"portal/internal/store"
)

// testPassword is what every test account's password is changed to.
const testPassword = "correct horse battery staple 42"

// clock is the portal's injected clock. Tests advance it so that each
// two-factor sign-in uses a fresh TOTP time step (codes are never accepted
// twice).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a running portal over a fresh SQLite file.
type harness struct {
	t     *testing.T
	app   *app.App
	clock *clock
	url   string
	seq   atomic.Int64
}

// newHarness starts the portal on a free port with a fresh database; args
// are extra `portal serve` flags.
func newHarness(t *testing.T, args ...string) *harness {
	t.Helper()
	dir := t.TempDir()
	cfg, err := app.ParseServe(append([]string{"-addr", "127.0.0.1:0", "-data-dir", dir}, args...))
	if err != nil {
		t.Fatal(err)
	}
	if !store.IsPostgresURL(cfg.DBPath) {
		// A new database, migrated as the portal's first start leaves it.
		peertest.CopySQLiteTemplate(t, cfg.DBPath)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.Options{
		Now:        clk.Now,
		HashParams: &staff.HashParams{Memory: 64, Time: 1, Threads: 1},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = a.Close()
	})
	return &harness{t: t, app: a, clock: clk, url: a.URL()}
}

// user is a test account with its credentials.
type user struct {
	staff.User
	Password string
	Secret   string // TOTP secret, "" when not enrolled
}

// newUser creates an account holding roles through the staff service,
// replaces its one-time password and, when its roles require it, enrols
// two-factor, so that it can sign in straight away.
func (h *harness) newUser(t *testing.T, roles ...staff.Role) user {
	t.Helper()
	u, otp := h.newUserOTP(t, roles...)
	ctx := context.Background()
	by := audit.Entry{Actor: "test"}
	if err := h.app.Staff.ChangePassword(ctx, by, u.ID, otp, testPassword, testPassword); err != nil {
		t.Fatalf("change password of %s: %v", u.Email, err)
	}
	out := user{Password: testPassword}
	if h.app.Staff.Requires2FA(u) {
		e, err := h.app.Staff.BeginEnrolment(u)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.app.Staff.ConfirmEnrolment(ctx, by, u.ID, e.Secret, h.code(t, e.Secret)); err != nil {
			t.Fatalf("enrol two-factor of %s: %v", u.Email, err)
		}
		out.Secret = e.Secret
	}
	var err error
	if out.User, err = h.app.Staff.Get(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	return out
}

// newUserOTP creates an account holding roles and returns it with its
// one-time password, untouched.
func (h *harness) newUserOTP(t *testing.T, roles ...staff.Role) (staff.User, string) {
	t.Helper()
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	email := fmt.Sprintf("%s-%d@example.com", strings.Join(names, "-"), h.seq.Add(1))
	u, otp, err := h.app.Staff.Create(context.Background(), audit.Entry{Actor: "test"}, staff.NewUser{Email: email, Roles: roles})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	return u, otp
}

// code moves the clock to the next TOTP time step and returns the code for
// secret at that step.
func (h *harness) code(t *testing.T, secret string) string {
	t.Helper()
	h.clock.Advance(30 * time.Second)
	c, err := totp.GenerateCode(secret, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// apiToken issues a personal API token for u.
func (h *harness) apiToken(t *testing.T, u staff.User) string {
	t.Helper()
	plain, _, err := h.app.Staff.CreateToken(context.Background(), audit.Entry{Actor: "test"}, u.ID, staff.NewToken{Name: "test token", Scopes: []string{staff.ScopeAll}})
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// records returns the audit records matching f, newest first.
func (h *harness) records(t *testing.T, f audit.Filter) []audit.Record {
	t.Helper()
	f.Limit = audit.MaxLimit
	recs, _, err := h.app.Audit.List(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// client is one browser: a cookie jar, and redirects are not followed.
type client struct {
	h  *harness
	hc *http.Client
	// header is added to every request.
	header http.Header
}

func (h *harness) client() *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &client{h: h, header: http.Header{}, hc: &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// response is a read response.
type response struct {
	*http.Response
	Body string
}

// Doc parses the body as HTML.
func (r *response) Doc(t *testing.T) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestID returns the trimmed text of the first element with data-testid id,
// and whether there is one.
func (r *response) TestID(t *testing.T, id string) (string, bool) {
	t.Helper()
	s := r.Doc(t).Find(`[data-testid="` + id + `"]`).First()
	return strings.TrimSpace(s.Text()), s.Length() > 0
}

// Location is the redirect target.
func (r *response) Location() string { return r.Header.Get("Location") }

// JSON decodes the body into v.
func (r *response) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.Body), v); err != nil {
		t.Fatalf("%s %s: body is not JSON: %v\n%s", r.Request.Method, r.Request.URL.Path, err, r.Body)
	}
}

func (c *client) do(t *testing.T, method, path string, body io.Reader, hdr http.Header) *response {
	t.Helper()
	req, err := http.NewRequest(method, c.h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{Response: res, Body: string(b)}
}

func (c *client) get(t *testing.T, path string) *response {
	t.Helper()
	return c.do(t, http.MethodGet, path, nil, nil)
}

// post sends form as a urlencoded form, as is (add _csrf yourself, or use
// submit).
func (c *client) post(t *testing.T, path string, form url.Values) *response {
	t.Helper()
	return c.do(t, http.MethodPost, path, strings.NewReader(form.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

// csrf reads the CSRF token from the _csrf hidden input of the page at path.
func (c *client) csrf(t *testing.T, path string) string {
	t.Helper()
	r := c.get(t, path)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET %s for its CSRF token: got status %d, want 200", path, r.StatusCode)
	}
	return r.CSRF(t)
}

// CSRF reads the CSRF token from the page's _csrf hidden input.
func (r *response) CSRF(t *testing.T) string {
	t.Helper()
	tok, ok := r.Doc(t).Find(`input[name="_csrf"]`).First().Attr("value")
	if !ok || tok == "" {
		t.Fatalf("%s %s: no _csrf input in the page", r.Request.Method, r.Request.URL.Path)
	}
	return tok
}

// enrol reads the secret and CSRF token from the two-factor enrolment page
// (each visit generates a new secret) and posts code(secret).
func (c *client) enrol(t *testing.T, code func(secret string) string) *response {
	t.Helper()
	page := c.get(t, "/account/2fa")
	secret, ok := page.TestID(t, "totp-secret")
	if page.StatusCode != http.StatusOK || !ok {
		t.Fatalf("GET /account/2fa: got %d (to %q), want 200 with the secret", page.StatusCode, page.Location())
	}
	return c.post(t, "/account/2fa", url.Values{"_csrf": {page.CSRF(t)}, "code": {code(secret)}})
}

// submit posts form to action with the CSRF token of the page at from.
func (c *client) submit(t *testing.T, from, action string, form url.Values) *response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("_csrf", c.csrf(t, from))
	return c.post(t, action, form)
}

// login posts the sign-in form and returns the response.
func (c *client) login(t *testing.T, email, password, next string) *response {
	t.Helper()
	return c.submit(t, "/login", "/login", url.Values{"email": {email}, "password": {password}, "next": {next}})
}

// signIn signs u in through the forms, with two-factor when enrolled, and
// fails unless it ends on a redirect to want.
func (c *client) signIn(t *testing.T, u user, want string) {
	t.Helper()
	r := c.login(t, u.Email, u.Password, "")
	if r.StatusCode == http.StatusSeeOther && r.Location() == "/login/2fa" {
		r = c.submit(t, "/login/2fa", "/login/2fa", url.Values{"code": {c.h.code(t, u.Secret)}})
	}
	if r.StatusCode != http.StatusSeeOther || r.Location() != want {
		t.Fatalf("sign in as %s: got %d to %q, want 303 to %q\n%s", u.Email, r.StatusCode, r.Location(), want, r.Body)
	}
}

// signedIn returns a client signed in as a new account holding roles.
func (h *harness) signedIn(t *testing.T, roles ...staff.Role) (*client, user) {
	t.Helper()
	u := h.newUser(t, roles...)
	c := h.client()
	c.signIn(t, u, "/")
	return c, u
}

// api sends an API request with a bearer token (none when token is "").
func (h *harness) api(t *testing.T, method, path, token, contentType, body string) *response {
	t.Helper()
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		hdr.Set("Content-Type", contentType)
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	return h.client().do(t, method, path, rd, hdr)
}

// apiError is the JSON error body.
type apiError struct {
	Error struct {
		Code      string            `json:"code"`
		Message   string            `json:"message"`
		Fields    map[string]string `json:"fields"`
		RequestID string            `json:"request_id"`
	} `json:"error"`
}

// jsonText encodes v as JSON.
func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func auditFilterAction(action string) audit.Filter { return audit.Filter{Action: action} }

// browserSignIn is the steps that sign u in through the forms in Chromium,
// two-factor code included (every role uses two-factor by default).
func (h *harness) browserSignIn(t *testing.T, u user) chromedp.Action[chromedp.Void] {
	t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(h.url + "/login"), chromedp.WaitVisible(`[data-testid=login-form]`),
		chromedp.SendKeys(`#f-email`, u.Email), chromedp.SendKeys(`#f-password`, u.Password), chromedp.Click(`[data-testid=login-submit]`)}
	if u.Secret != "" {
		code := h.code(t, u.Secret)
		steps = append(steps, chromedp.WaitVisible(`[data-testid=totp-form]`), chromedp.SendKeys(`#f-code`, code), chromedp.Click(`[data-testid=totp-submit]`))
	}
	return chromedp.Steps(steps...)
}
