package peers

import (
	"context"
	"fmt"
	"io"
	"time"
)

// StripeMockOptions configures StartStripeMock. The zero value is ready to use.
type StripeMockOptions struct {
	// Path is the stripe-mock executable. Empty means $PORTAL_STRIPE_MOCK,
	// or else .tools/bin/stripe-mock under the project root.
	Path string
	// Log receives stripe-mock's stdout and stderr. Nil discards them; the
	// last few KiB are quoted in start errors either way.
	Log io.Writer
	// StartTimeout bounds the wait until stripe-mock answers HTTP. Zero
	// means 30s.
	StartTimeout time.Duration
}

// StripeMock is a running stripe-mock on 127.0.0.1, started with
// -strict-version-check so requests must carry the API version stripe-go v76
// sends (2023-10-16).
type StripeMock struct {
	url      string
	httpsURL string
	proc     *proc
}

// StartStripeMock starts stripe-mock with -strict-version-check and both
// -http-addr and -https-addr on free ports of 127.0.0.1, and returns once the
// HTTP port answers. ctx bounds the start only; the server runs until Stop.
// A missing executable gives an error wrapping ErrNotInstalled.
func StartStripeMock(ctx context.Context, opts StripeMockOptions) (*StripeMock, error) {
	path := opts.Path
	if path == "" {
		var err error
		path, err = toolPath("PORTAL_STRIPE_MOCK", ".tools/bin/stripe-mock", "make tools")
		if err != nil {
			return nil, fmt.Errorf("peers: start stripe-mock: %w", err)
		}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	p, ports, err := startProc(ctx, spec{
		name:  "stripe-mock",
		path:  path,
		ports: 2,
		args: func(ports []int) []string {
			return []string{"-strict-version-check", "-http-addr", hostPort(ports[0]), "-https-addr", hostPort(ports[1])}
		},
		ready:   func(ports []int) string { return "http://" + hostPort(ports[0]) + "/" },
		out:     opts.Log,
		timeout: timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("peers: start stripe-mock: %w", err)
	}
	return &StripeMock{url: "http://" + hostPort(ports[0]), httpsURL: "https://" + hostPort(ports[1]), proc: p}, nil
}

// URL returns stripe-mock's plain-HTTP base URL, e.g. "http://127.0.0.1:41235",
// to use as the stripe-go API backend URL.
func (s *StripeMock) URL() string { return s.url }

// HTTPSURL returns stripe-mock's HTTPS base URL (self-signed certificate).
func (s *StripeMock) HTTPSURL() string { return s.httpsURL }

// Stop kills stripe-mock's process group and waits for it to exit. It is
// idempotent.
func (s *StripeMock) Stop() error {
	if err := s.proc.stop(); err != nil {
		return fmt.Errorf("peers: stop stripe-mock: %w", err)
	}
	return nil
}

// StripeTestKey is the secret key the sandbox and tests give stripe-mock,
// which accepts any key of this shape.
const StripeTestKey = "sk_test_123"
