package sandbox_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sts"

	"portal/internal/accounts"
	"portal/internal/regions"
	"portal/internal/sandbox"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSandbox runs what `make run` runs: moto and stripe-mock start, the
// portal assumes a role in each environment's account, prints its address
// and the first admin's one-time password, serves, and on cancel stops
// everything it started.
func TestSandbox(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() { done <- sandbox.Run(ctx, []string{"-addr", "127.0.0.1:0", "-dir", t.TempDir()}, &out, &errOut) }()

	running := regexp.MustCompile(`running at (http://127\.0\.0\.1:\d+) \(moto (https://127\.0\.0\.1:\d+), stripe-mock (http://127\.0\.0\.1:\d+), identity provider (http://127\.0\.0\.1:\d+)`)
	var m []string
	deadline := time.Now().Add(90 * time.Second)
	for m == nil {
		select {
		case err := <-done:
			t.Fatalf("sandbox stopped early: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sandbox did not start within 90s\nstdout: %s\nstderr: %s", out.String(), errOut.String())
		}
		m = running.FindStringSubmatch(out.String())
	}
	portal, moto, stripe, idp := m[1], m[2], m[3], m[4]
	mm := regexp.MustCompile(`E-mails the portal sends arrive at (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out.String())
	if mm == nil {
		t.Fatalf("sandbox output does not name the mail server's inbox:\n%s", out.String())
	}
	mailpit := mm[1]
	if res, err := http.Get(mailpit + "/livez"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("mail inbox %s: %v %v, want it answering", mailpit, res, err)
	} else {
		res.Body.Close()
	}

	text := out.String()
	for _, want := range []string{
		"dev   account 111111111111 as arn:aws:sts::111111111111:assumed-role/PortalDeployer/portal",
		"test  account 222222222222 as arn:aws:sts::222222222222:assumed-role/PortalDeployer/portal",
		"prod  account 333333333333 as arn:aws:sts::333333333333:assumed-role/PortalDeployer/portal",
		"Email:               admin@portal.local",
		`Single sign-on: "Sign in with Sandbox Identity"`,
		"portal roles: ops",
		"refused: no group maps to a portal role",
		"/admin/users/olga/disable",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("sandbox output lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`One-time password:\s+\S{5}-\S{5}-\S{5}-\S{5}`).MatchString(text) {
		t.Errorf("sandbox output has no one-time password:\n%s", text)
	}
	res, err := http.Get(portal + "/login")
	if err != nil {
		t.Fatalf("GET /login: %v", err)
	}
	body := new(bytes.Buffer)
	body.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(body.String(), `data-testid="sandbox-banner"`) {
		t.Errorf("GET /login: status %d, sandbox banner present %v; want 200 with the banner", res.StatusCode, strings.Contains(body.String(), "sandbox-banner"))
	}
	if !strings.Contains(body.String(), "Sign in with Sandbox Identity") {
		t.Error("the sign-in page does not offer the sandbox identity provider")
	}
	// The deployer roles allow tagged sessions: a jurisdiction's stack is
	// deployed by one (moto refuses session tags otherwise, as AWS does).
	base, err := accounts.LoadBase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := regions.New(regions.SandboxEnvironments())
	tagged, err := accounts.New(base, cat).StackConfig("prod", "eu", "eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sts.NewFromConfig(tagged).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		t.Errorf("a tagged prod-eu deployer session in the sandbox: %v", err)
	}
	if res, err := http.Get(idp + "/.well-known/openid-configuration"); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("the identity provider's discovery document: %v", err)
	} else {
		res.Body.Close()
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("sandbox returned %v after Ctrl-C, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sandbox did not stop within 30s of cancel")
	}
	for name, u := range map[string]string{"portal": portal, "moto": moto, "stripe-mock": stripe, "identity provider": idp, "mailpit": mailpit} {
		hostport := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
		if c, err := net.DialTimeout("tcp", hostport, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still listens on %s after the sandbox stopped", name, hostport)
		}
	}
}
