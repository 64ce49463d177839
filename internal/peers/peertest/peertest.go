// Package peertest starts the real peers (moto, stripe-mock, mailpit,
// PostgreSQL, chromium) for tests: shared per test binary, failing the test
// loudly when a peer is missing. It is imported only by tests, so the portal
// binary links none of it.
//
// moto serves HTTPS with a certificate from a CA made for the test binary
// (as in the sandbox), so tests reach AWS over TLS as the portal does on
// AWS; SetAWSEnv points the SDK's default configuration at it. moto's SNS
// deliveries to http(s) subscribers go to the shared alert inbox
// (AlertInboxForTest).
package peertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/chromedp/chromedp"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"portal/internal/peers"
)

// TestRole is the role tests assume in their account (see AccountConfigForTest).
const TestRole = "PortalDeployer"

// shared holds the per-test-binary instances behind MotoForTest and
// StripeMockForTest: each starts on first use and lives until StopAll. This
// is the package's only mutable package-level state.
var shared struct {
	caOnce sync.Once
	ca     *peers.CA
	caErr  error

	inboxOnce sync.Once
	inbox     *peers.AlertInbox
	inboxErr  error

	motoOnce sync.Once
	moto     *peers.Moto
	motoErr  error

	stripeOnce sync.Once
	stripe     *peers.StripeMock
	stripeErr  error

	mailpitOnce sync.Once
	mailpit     *peers.Mailpit
	mailpitErr  error
}

// Main runs the package's tests and then StopAll, and exits with the tests'
// code. Use it as the TestMain of every package whose tests use
// MotoForTest, StripeMockForTest or PostgresForTest (StoreForTest):
//
//	func TestMain(m *testing.M) { peers.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if err := StopAll(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// StopAll stops the shared instances MotoForTest, StripeMockForTest and
// PostgresForTest started, if any, and removes the SQLite template and the
// OpenID provider's build. Call it once, after all tests ran (Main does). A test
// binary that does not call it still leaves no process behind on Linux, where
// peers die with the process that started them.
func StopAll() error {
	var errs []error
	if shared.moto != nil {
		errs = append(errs, shared.moto.Stop())
	}
	if shared.stripe != nil {
		errs = append(errs, shared.stripe.Stop())
	}
	if shared.mailpit != nil {
		errs = append(errs, shared.mailpit.Stop())
	}
	if shared.inbox != nil {
		errs = append(errs, shared.inbox.Close())
	}
	if pgShared.pg != nil {
		errs = append(errs, pgShared.pg.Stop())
	}
	errs = append(errs, removeSQLiteTemplate(), peers.RemoveOIDCProviderBuild())
	return errors.Join(errs...)
}

// MotoForTest returns this test binary's shared moto server, starting it on
// first use. Tests share it and isolate their state by account (see
// AccountConfigForTest). If moto cannot start, and in particular if it is not
// installed, the test fails with the reason and the install command.
func MotoForTest(tb testing.TB) *peers.Moto {
	tb.Helper()
	opts := motoOptions(tb)
	shared.motoOnce.Do(func() {
		shared.moto, shared.motoErr = peers.StartMoto(context.Background(), opts)
	})
	if shared.motoErr != nil {
		tb.Fatalf("moto is required: %v", shared.motoErr)
	}
	return shared.moto
}

// IsolatedMotoForTest starts a moto server of the test's own, stopped when
// the test ends. Use it only for tests that need a server-wide state (such as
// /moto-api/reset); others use MotoForTest.
func IsolatedMotoForTest(tb testing.TB) *peers.Moto {
	tb.Helper()
	m, err := peers.StartMoto(context.Background(), motoOptions(tb))
	if err != nil {
		tb.Fatalf("moto is required: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Stop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return m
}

// motoOptions are the options of every moto of this test binary: the
// shared CA, and SNS deliveries to the shared alert inbox.
func motoOptions(tb testing.TB) peers.MotoOptions {
	tb.Helper()
	return peers.MotoOptions{CA: CAForTest(tb), Outbound: AlertInboxForTest(tb).ProxyURL()}
}

// CAForTest returns this test binary's sandbox CA, which signs the
// certificates of moto and the alert inbox.
func CAForTest(tb testing.TB) *peers.CA {
	tb.Helper()
	shared.caOnce.Do(func() { shared.ca, shared.caErr = peers.NewCA() })
	if shared.caErr != nil {
		tb.Fatalf("sandbox CA: %v", shared.caErr)
	}
	return shared.ca
}

// AlertInboxForTest returns this test binary's alert inbox: every SNS
// delivery the test binary's motos make to an http(s) subscriber lands
// there (tests tell theirs apart by topic ARN, which holds their account).
func AlertInboxForTest(tb testing.TB) *peers.AlertInbox {
	tb.Helper()
	ca := CAForTest(tb)
	shared.inboxOnce.Do(func() { shared.inbox, shared.inboxErr = peers.StartAlertInbox(ca) })
	if shared.inboxErr != nil {
		tb.Fatalf("alert inbox: %v", shared.inboxErr)
	}
	return shared.inbox
}

// SetAWSEnv points the AWS SDK's default configuration at m for the rest
// of the test (t.Setenv of Moto.Env: endpoint, CA bundle, dummy
// credentials, region), for code that loads it the standard way, as the
// portal does.
func SetAWSEnv(t *testing.T, m *peers.Moto) {
	t.Helper()
	for k, v := range m.Env() {
		t.Setenv(k, v)
	}
}

// StripeMockForTest returns this test binary's shared stripe-mock, starting
// it on first use (stripe-mock is stateless, so sharing is safe). If it
// cannot start, and in particular if it is not installed, the test fails with
// the reason and the install command.
func StripeMockForTest(tb testing.TB) *peers.StripeMock {
	tb.Helper()
	shared.stripeOnce.Do(func() {
		shared.stripe, shared.stripeErr = peers.StartStripeMock(context.Background(), peers.StripeMockOptions{})
	})
	if shared.stripeErr != nil {
		tb.Fatalf("stripe-mock is required: %v", shared.stripeErr)
	}
	return shared.stripe
}

// MailpitForTest returns this test binary's shared mailpit, starting it on
// first use, with STARTTLS required and a certificate from CAForTest.
// Tests tell their messages apart by recipient (addresses of their own).
// If it cannot start, and in particular if it is not installed, the test
// fails with the reason and the install command.
func MailpitForTest(tb testing.TB) *peers.Mailpit {
	tb.Helper()
	ca := CAForTest(tb)
	shared.mailpitOnce.Do(func() {
		shared.mailpit, shared.mailpitErr = peers.StartMailpit(context.Background(), peers.MailpitOptions{CA: ca})
	})
	if shared.mailpitErr != nil {
		tb.Fatalf("mailpit is required: %v", shared.mailpitErr)
	}
	return shared.mailpit
}

// StripeClientForTest returns a stripe-go client that talks to s with
// StripeTestKey, without network retries and logging errors only.
func StripeClientForTest(tb testing.TB, s *peers.StripeMock) *client.API {
	tb.Helper()
	backend := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
		URL:               stripe.String(s.URL()),
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelError},
	})
	return client.New(peers.StripeTestKey, &stripe.Backends{API: backend, Connect: backend, Uploads: backend})
}

// AWSConfigForTest returns an aws-sdk-go-v2 configuration pointed at m in
// region, with static dummy credentials for moto's default account
// (see Moto.AWSConfig).
func AWSConfigForTest(tb testing.TB, m *peers.Moto, region string) aws.Config {
	tb.Helper()
	return m.AWSConfig(region)
}

// AccountForTest returns a random 12-digit AWS account id for this test, so
// that tests sharing one moto server do not see each other's resources. The
// id is logged, for reading moto's state when a test fails.
func AccountForTest(tb testing.TB) string {
	tb.Helper()
	// 100000000000 <= id < 1000000000000: always 12 digits, never moto's
	// default account 123456789012 in practice.
	n, err := rand.Int(rand.Reader, big.NewInt(900_000_000_000))
	if err != nil {
		tb.Fatalf("peers: account id: %v", err)
	}
	account := fmt.Sprintf("%012d", n.Int64()+100_000_000_000)
	tb.Logf("AWS account %s", account)
	return account
}

// AccountConfigForTest returns a configuration for a fresh account of this
// test's own (AccountForTest) on m in region, holding the credentials of
// TestRole assumed in it, and that account id. It fails the test unless STS
// confirms the caller is in that account.
func AccountConfigForTest(tb testing.TB, m *peers.Moto, region string) (aws.Config, string) {
	tb.Helper()
	account := AccountForTest(tb)
	ctx := context.Background()
	cfg := peers.AssumeAccount(ctx, m.AWSConfig(region), account, TestRole)
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		tb.Fatalf("peers: assume %s in account %s: %v", TestRole, account, err)
	}
	if got := aws.ToString(id.Account); got != account {
		tb.Fatalf("peers: caller account after AssumeRole: got %s, want %s", got, account)
	}
	return cfg, account
}

// Chromium starts headless chromium for this test and returns a chromedp
// context for one tab, cancelled (browser stopped) when the test ends. The
// executable is /usr/bin/chromium, or $PORTAL_CHROMIUM; it runs with a fresh
// user-data-dir and without sandbox, GPU, QUIC or background networking. If
// chromium is missing or does not start, the test fails with the install
// command.
func Chromium(tb testing.TB) context.Context {
	tb.Helper()
	path := os.Getenv("PORTAL_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := os.Stat(path); err != nil {
		tb.Fatalf("chromium is required: %v: %s (run `make tools`, which runs `apt-get install -y chromium`, or set PORTAL_CHROMIUM)", peers.ErrNotInstalled, path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(tb.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(1280, 800),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	tb.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// Start the browser now, so a broken install fails here and not in the
	// test's first action.
	if err := chromedp.Do(ctx); err != nil {
		tb.Fatalf("chromium is required: start %s: %v (run `make tools`)", path, err)
	}
	return ctx
}

// Screenshot saves a full-page PNG screenshot of the tab in ctx (from
// Chromium) to path, failing the test on error.
func Screenshot(tb testing.TB, ctx context.Context, path string) {
	tb.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		// Tests take a screenshot when a step fails too: the step's own
		// error must be the one reported, so this one is only logged.
		tb.Logf("peers: screenshot %s: %v", filepath.Base(path), err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatalf("peers: screenshot: %v", err)
	}
}

// KeepScreenshot saves a full-page PNG screenshot of the tab in ctx as
// name in the folder PORTAL_SCREENSHOTS names (created if need be), for
// people to look at the pages a browser test walks through. Without
// PORTAL_SCREENSHOTS it takes none: a screenshot kept in the test's
// temporary folder would be deleted unseen when the test ends, and each
// costs chromium a full-page render and PNG encoding.
func KeepScreenshot(tb testing.TB, ctx context.Context, name string) {
	tb.Helper()
	dir := os.Getenv("PORTAL_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatalf("peers: screenshot: %v", err)
	}
	Screenshot(tb, ctx, filepath.Join(dir, name))
}

// StartFaultProxy is peers.NewFaultProxy in front of m for a test, stopped
// at its end. It trusts this test binary's CA, so it can be pointed at
// another moto of the test binary later.
func StartFaultProxy(tb testing.TB, m *peers.Moto, share float64, seed int64) *peers.FaultProxy {
	tb.Helper()
	p, err := peers.NewFaultProxy(m.URL(), m.CA().Pool(), share, seed)
	if err != nil {
		tb.Fatalf("peers: fault proxy: %v", err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}
