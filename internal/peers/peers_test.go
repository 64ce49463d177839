package peers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/chromedp/chromedp"
	"github.com/stripe/stripe-go/v76"

	"portal/internal/peers"
	"portal/internal/peers/peertest"
)

func TestMain(m *testing.M) { peertest.Main(m) }

func TestProjectRoot(t *testing.T) {
	root, err := peers.ProjectRoot()
	if err != nil {
		t.Fatalf("ProjectRoot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Errorf("ProjectRoot() = %s, which has no go.mod: %v", root, err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(root, "internal", "peers"); wd != want {
		t.Errorf("working dir: got %s, want %s", wd, want)
	}
}

func TestStartMissingBinary(t *testing.T) {
	t.Setenv("PORTAL_MOTO_SERVER", "/nonexistent/moto_server")
	t.Setenv("PORTAL_STRIPE_MOCK", "/nonexistent/stripe-mock")
	t.Setenv("PORTAL_MAILPIT", "/nonexistent/mailpit")
	ctx := context.Background()
	starts := []struct {
		name  string
		start func() error
	}{
		{"moto", func() error { _, err := peers.StartMoto(ctx, peers.MotoOptions{}); return err }},
		{"stripe-mock", func() error { _, err := peers.StartStripeMock(ctx, peers.StripeMockOptions{}); return err }},
		{"mailpit", func() error { _, err := peers.StartMailpit(ctx, peers.MailpitOptions{}); return err }},
	}
	for _, tc := range starts {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.start()
			if !errors.Is(err, peers.ErrNotInstalled) {
				t.Fatalf("error: got %v, want one wrapping ErrNotInstalled", err)
			}
			for _, want := range []string{"/nonexistent/", "make tools"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q: does not name %q", err, want)
				}
			}
		})
	}
}

// TestMotoStartStop starts a moto of its own, to measure the start and check
// that Stop really ends the server.
func TestMotoStartStop(t *testing.T) {
	t.Parallel()
	logPath := filepath.Join(t.TempDir(), "moto.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	begin := time.Now()
	m, err := peers.StartMoto(context.Background(), peers.MotoOptions{Log: logFile})
	if err != nil {
		t.Fatalf("StartMoto: %v", err)
	}
	t.Logf("moto started in %s at %s", time.Since(begin).Round(time.Millisecond), m.URL())
	if !strings.HasPrefix(m.URL(), "https://127.0.0.1:") {
		t.Errorf("URL() = %s, want https://127.0.0.1:<port>", m.URL())
	}
	if _, err := http.Get(m.URL() + "/moto-api/"); err == nil {
		t.Errorf("GET /moto-api/ with the system's trust store: no error, want moto's certificate refused (only the sandbox CA vouches for it)")
	}
	resp, err := m.HTTPClient().Get(m.URL() + "/moto-api/")
	if err != nil {
		t.Fatalf("GET /moto-api/: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /moto-api/: got status %d, want 200", resp.StatusCode)
	}
	if err := m.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := m.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if resp, err := m.HTTPClient().Get(m.URL() + "/moto-api/"); err == nil {
		resp.Body.Close()
		t.Errorf("GET after Stop: got status %d, want connection refused", resp.StatusCode)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/moto-api/", "moto patches applied: ", "patch_policy_conditions", "patch_rds_replica_subnet_group"} {
		if !bytes.Contains(log, []byte(want)) {
			t.Errorf("moto log: got %q, want it to mention %q", log, want)
		}
	}
}

func TestAssumeAccount(t *testing.T) {
	t.Parallel()
	m := peertest.MotoForTest(t)
	ctx := context.Background()
	base := peertest.AWSConfigForTest(t, m, "eu-west-1")
	for _, account := range []string{peertest.AccountForTest(t), peertest.AccountForTest(t), "000000000001"} {
		t.Run(account, func(t *testing.T) {
			cfg := peers.AssumeAccount(ctx, base, account, peertest.TestRole)
			id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatalf("GetCallerIdentity: %v", err)
			}
			if got := aws.ToString(id.Account); got != account {
				t.Errorf("account: got %s, want %s", got, account)
			}
			wantARN := fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, peertest.TestRole, peers.RoleSessionName)
			if got := aws.ToString(id.Arn); got != wantARN {
				t.Errorf("ARN: got %s, want %s", got, wantARN)
			}
		})
	}
}

func TestS3PerAccount(t *testing.T) {
	t.Parallel()
	m := peertest.MotoForTest(t)
	ctx := context.Background()
	cfgA, accountA := peertest.AccountConfigForTest(t, m, "us-east-1")
	cfgB, _ := peertest.AccountConfigForTest(t, m, "us-east-1")
	a, b := s3.NewFromConfig(cfgA), s3.NewFromConfig(cfgB)

	bucket := "portal-test-" + accountA
	if _, err := a.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	body := "hello moto"
	if _, err := a.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("k"), Body: strings.NewReader(body)}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	obj, err := a.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	var got bytes.Buffer
	_, _ = got.ReadFrom(obj.Body)
	obj.Body.Close()
	if got.String() != body {
		t.Errorf("object body: got %q, want %q", got.String(), body)
	}

	for _, tc := range []struct {
		name   string
		client *s3.Client
		want   []string
	}{
		{"owner", a, []string{bucket}},
		{"other account", b, nil},
	} {
		out, err := tc.client.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatalf("%s: ListBuckets: %v", tc.name, err)
		}
		var names []string
		for _, bk := range out.Buckets {
			names = append(names, aws.ToString(bk.Name))
		}
		if fmt.Sprint(names) != fmt.Sprint(tc.want) {
			t.Errorf("%s: ListBuckets: got %v, want %v", tc.name, names, tc.want)
		}
	}
}

func TestStripeMock(t *testing.T) {
	t.Parallel()
	sm := peertest.StripeMockForTest(t)
	sc := peertest.StripeClientForTest(t, sm)
	tests := []struct {
		name   string
		call   func() (string, error)
		prefix string
	}{
		{"balance", func() (string, error) {
			b, err := sc.Balance.Get(nil)
			if err != nil {
				return "", err
			}
			return b.Object, nil
		}, "balance"},
		{"customer", func() (string, error) {
			c, err := sc.Customers.Get("cus_123", nil)
			if err != nil {
				return "", err
			}
			return c.ID, nil
		}, "cus_"},
		{"create customer", func() (string, error) {
			c, err := sc.Customers.New(&stripe.CustomerParams{Email: stripe.String("a@example.com")})
			if err != nil {
				return "", err
			}
			return c.ID, nil
		}, "cus_"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !strings.HasPrefix(got, tc.prefix) {
				t.Errorf("got %q, want prefix %q", got, tc.prefix)
			}
		})
	}
}

// TestStripeMockStrictVersion checks that stripe-mock runs with
// -strict-version-check: a request for another API version is refused.
func TestStripeMockStrictVersion(t *testing.T) {
	t.Parallel()
	sm := peertest.StripeMockForTest(t)
	for _, tc := range []struct {
		version string
		want    int
	}{
		{stripe.APIVersion, http.StatusOK},
		{"2020-08-27", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(http.MethodGet, sm.URL()+"/v1/balance", nil)
		req.Header.Set("Authorization", "Bearer "+peers.StripeTestKey)
		req.Header.Set("Stripe-Version", tc.version)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /v1/balance: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Stripe-Version %s: got status %d, want %d", tc.version, resp.StatusCode, tc.want)
		}
	}
}

func TestChromium(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>Portal test page</title><h1 id="h">Hello</h1>`)
	}))
	defer srv.Close()

	ctx := peertest.Chromium(t)
	for _, tc := range []struct {
		name, url, want string
	}{
		{"httptest", srv.URL, "Portal test page"},
		{"data URL", "data:text/html,<title>From data</title>", "From data"},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(tc.url)); err != nil {
			t.Fatalf("%s: navigate: %v", tc.name, err)
		}
		got, err := chromedp.Run(ctx, chromedp.Title())
		if err != nil {
			t.Fatalf("%s: title: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: title: got %q, want %q", tc.name, got, tc.want)
		}
	}

	path := filepath.Join(t.TempDir(), "page.png")
	peertest.Screenshot(t, ctx, path)
	png, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot: got %q..., want a PNG", png[:min(8, len(png))])
	}
}
