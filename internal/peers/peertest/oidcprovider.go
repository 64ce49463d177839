package peertest

import (
	"context"
	"testing"

	"portal/internal/peers"
	"portal/internal/peers/oidcprovider/directory"
)

// OIDCProviderForTest starts the project's OpenID provider (a real
// provider process built on zitadel/oidc's op package; see
// peers.StartOIDCProvider) with directory d, for this test only: stopped
// when the test ends. The first call in a test binary builds the provider,
// which takes a while the first time on a machine. If it cannot be built
// or started, the test fails with the reason.
func OIDCProviderForTest(tb testing.TB, d directory.Directory) *peers.OIDCProvider {
	tb.Helper()
	p, err := peers.StartOIDCProvider(context.Background(), peers.OIDCProviderOptions{Directory: d, Log: testLog{tb}})
	if err != nil {
		tb.Fatalf("the OpenID provider is required: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.Stop(); err != nil {
			tb.Errorf("%v", err)
		}
	})
	return p
}

// testLog writes a peer's output to the test's log (shown when it fails or
// with -v).
type testLog struct{ tb testing.TB }

func (l testLog) Write(b []byte) (int, error) {
	l.tb.Logf("%s", b)
	return len(b), nil
}
