package peers

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// MotoOptions configures StartMoto. The zero value is ready to use.
type MotoOptions struct {
	// Path is the moto_server executable. Empty means $PORTAL_MOTO_SERVER,
	// or else .tools/venv/bin/moto_server under the project root.
	Path string
	// Log receives moto's stdout and stderr. Nil discards them; the last
	// few KiB are quoted in start errors either way.
	Log io.Writer
	// StartTimeout bounds the wait until moto answers HTTP. Zero means 60s.
	StartTimeout time.Duration
}

// Moto is a running moto server (AWS in server mode) on 127.0.0.1.
type Moto struct {
	url  string
	proc *proc
}

// StartMoto starts moto_server on a free port of 127.0.0.1 and returns once
// it answers HTTP. ctx bounds the start only; the server runs until Stop.
// A missing executable gives an error wrapping ErrNotInstalled.
func StartMoto(ctx context.Context, opts MotoOptions) (*Moto, error) {
	path := opts.Path
	if path == "" {
		var err error
		path, err = toolPath("PORTAL_MOTO_SERVER", ".tools/venv/bin/moto_server", "make tools")
		if err != nil {
			return nil, fmt.Errorf("peers: start moto: %w", err)
		}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	p, ports, err := startProc(ctx, spec{
		name:    "moto",
		path:    path,
		ports:   1,
		args:    func(ports []int) []string { return []string{"-H", "127.0.0.1", "-p", strconv.Itoa(ports[0])} },
		ready:   func(ports []int) string { return "http://" + hostPort(ports[0]) + "/moto-api/" },
		out:     opts.Log,
		timeout: timeout,
		// ACM issues DNS-validated certificates at once instead of after
		// 60 seconds: the validation records are written for real, but
		// nothing on this machine can resolve them.
		env: []string{"MOTO_ACM_VALIDATION_WAIT=0"},
	})
	if err != nil {
		return nil, fmt.Errorf("peers: start moto: %w", err)
	}
	return &Moto{url: "http://" + hostPort(ports[0]), proc: p}, nil
}

// URL returns moto's base URL, e.g. "http://127.0.0.1:41234", to use as the
// AWS endpoint of every service.
func (m *Moto) URL() string { return m.url }

// Stop kills moto's process group and waits for it to exit. It is idempotent.
func (m *Moto) Stop() error {
	if err := m.proc.stop(); err != nil {
		return fmt.Errorf("peers: stop moto: %w", err)
	}
	return nil
}

// AWSConfig returns an aws-sdk-go-v2 configuration whose every service
// client talks to moto (BaseEndpoint, the AWS_ENDPOINT_URL semantics) in
// region, with static dummy credentials for moto's default account
// 123456789012. It reads nothing from the environment or ~/.aws, so a
// developer's real credentials are never used. S3 clients address buckets
// path-style, as the endpoint is an IP address.
func (m *Moto) AWSConfig(region string) aws.Config {
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(m.url),
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
	}
}
