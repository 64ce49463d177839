package app_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"portal/internal/app"
	"portal/internal/peers/oidcprovider/directory"
	"portal/internal/peers/peertest"
)

// TestSingleSignOnAcrossReplicas: behind a load balancer without sticky
// sessions, a sign-in through the identity provider begun on one replica
// comes back to the other: the second replica finds the sign-in the first
// started (its state, nonce and PKCE verifier live in the session, in the
// database), finishes it, and both replicas then serve the signed-in
// person.
func TestSingleSignOnAcrossReplicas(t *testing.T) {
	idp := peertest.OIDCProviderForTest(t, directory.Directory{
		Name:    "Sandbox Identity",
		Users:   []directory.User{{Username: "olga", Password: "olga-at-the-provider", Email: "olga.ops@example.com", Name: "Olga Ops", Groups: []string{"ops"}}},
		Clients: []directory.Client{{ID: "portal", Secret: "portal-secret-for-tests", Name: "Portal", RedirectURIs: []string{"http://127.0.0.1:*/login/sso/callback"}}},
	})
	t.Setenv("PORTAL_OIDC_CLIENT_SECRET", "portal-secret-for-tests")
	t.Setenv(app.AuditKeysEnv, "k1 6b65792d666f722d7468652d7265706c696361732d617564697421212121212121")
	db := peertest.PostgresDatabaseForTest(t)

	// The balancer: the sign-in starts on replica 0, its callback goes to
	// replica 1, and every other request alternates between them.
	var mu sync.Mutex
	var proxies []*httputil.ReverseProxy
	served := map[string][]int{} // path -> replicas that answered it
	next := 0
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := next % 2
		switch r.URL.Path {
		case "/login/sso":
			i = 0
		case "/login/sso/callback":
			i = 1
		default:
			next++
		}
		served[r.URL.Path] = append(served[r.URL.Path], i)
		p := proxies[i]
		mu.Unlock()
		p.ServeHTTP(w, r)
	}))
	defer front.Close()
	for range 2 {
		a, err := newReplica(t, db, replicaKey, "-base-url", front.URL,
			"-oidc-issuer", idp.Issuer(), "-oidc-client-id", "portal", "-oidc-name", "Sandbox Identity",
			"-oidc-scopes", "openid,email,profile,groups", "-oidc-role-map", "ops=ops")
		if err != nil {
			t.Fatal(err)
		}
		run(t, a)
		u, _ := url.Parse(a.URL())
		proxies = append(proxies, httputil.NewSingleHostReverseProxy(u))
	}

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	get := func(u string) (string, *http.Response) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body), resp
	}
	// Replica 0 sends the browser to the provider's sign-in page.
	page, resp := get(front.URL + "/login/sso?next=/account")
	if !strings.HasPrefix(resp.Request.URL.String(), idp.Issuer()) {
		t.Fatalf("the sign-in went to %s, want the provider at %s", resp.Request.URL, idp.Issuer())
	}
	m := regexp.MustCompile(`name="authRequestID" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("the provider's sign-in page has no authRequestID:\n%s", page)
	}
	// Signing in there sends the browser back to the callback, which the
	// balancer gives to replica 1.
	resp, err := client.PostForm(resp.Request.URL.ResolveReference(&url.URL{Path: "/login"}).String(),
		url.Values{"authRequestID": {m[1]}, "username": {"olga"}, "password": {"olga-at-the-provider"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/account" || !strings.Contains(string(body), "olga.ops@example.com") {
		t.Fatalf("after the provider: %d at %s, want the account page of olga.ops@example.com:\n%.2000s", resp.StatusCode, resp.Request.URL, body)
	}
	mu.Lock()
	start, callback := served["/login/sso"], served["/login/sso/callback"]
	mu.Unlock()
	if len(start) != 1 || start[0] != 0 || len(callback) != 1 || callback[0] != 1 {
		t.Fatalf("sign-in started on %v and came back to %v, want replica 0 then replica 1", start, callback)
	}
	// Both replicas serve the signed-in person.
	for range 2 {
		if page, resp := get(front.URL + "/account"); resp.Request.URL.Path != "/account" || !strings.Contains(page, "olga.ops@example.com") {
			t.Fatalf("a later page: %d at %s, want the account page", resp.StatusCode, resp.Request.URL)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := served["/account"]; len(got) < 3 || !slices.Contains(got, 0) || !slices.Contains(got, 1) {
		t.Errorf("account pages served by %v, want both replicas", got)
	}
}
