package peers

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// motoPatches are the launcher and the runtime patches moto starts with:
// motopatch/launch.py applies every motopatch/patch_*.py, each of which
// mends one place where moto answers differently from AWS and has its own
// test_*.py (see MotoPatches and the package's tests).
//
//go:embed motopatch/*.py
var motoPatches embed.FS

// MotoPatches lists the runtime patches moto is started with, by name
// (patch_policy_conditions, ...).
func MotoPatches() []string {
	var out []string
	entries, _ := fs.ReadDir(motoPatches, "motopatch")
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".py"); ok && strings.HasPrefix(name, "patch_") {
			out = append(out, name)
		}
	}
	return out
}

// WriteMotoPatches writes the launcher, the patches and their tests into
// dir, and returns the launcher's path.
func WriteMotoPatches(dir string) (string, error) {
	entries, err := fs.ReadDir(motoPatches, "motopatch")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		b, err := motoPatches.ReadFile("motopatch/" + e.Name())
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return "", fmt.Errorf("peers: write moto patches: %w", err)
		}
	}
	return filepath.Join(dir, "launch.py"), nil
}

// MotoOptions configures StartMoto. The zero value is ready to use.
type MotoOptions struct {
	// Path is the moto_server executable. Empty means $PORTAL_MOTO_SERVER,
	// or else .tools/venv/bin/moto_server under the project root. moto is
	// started through the launcher with the python beside it.
	Path string
	// Log receives moto's stdout and stderr. Nil discards them; the last
	// few KiB are quoted in start errors either way.
	Log io.Writer
	// StartTimeout bounds the wait until moto answers. Zero means 60s.
	StartTimeout time.Duration
	// CA signs moto's TLS certificate; nil makes a CA of moto's own.
	// Give one CA to the peers that must trust each other (moto delivers
	// SNS messages to the alert inbox over TLS).
	CA *CA
	// PlainHTTP serves plain HTTP instead of HTTPS. Only a test that shows
	// a TLS-only bucket policy refusing plain HTTP needs it: the sandbox
	// and the other tests reach AWS over TLS, as the portal does on AWS.
	PlainHTTP bool
	// Outbound is the HTTP proxy moto's own outgoing requests (SNS
	// deliveries to http and https subscribers) go through: the alert
	// inbox's ProxyURL. Empty leaves them to the network, where the
	// blueprints' subscriber addresses do not resolve.
	Outbound string
}

// Moto is a running moto server (AWS in server mode) on 127.0.0.1, serving
// HTTPS with a certificate from its CA, patched at start to judge policy
// conditions as AWS does (see MotoPatches).
type Moto struct {
	url    string
	ca     *CA
	caFile string
	dir    string
	proc   *proc
}

// StartMoto starts moto on a free port of 127.0.0.1 through the patch
// launcher and returns once it answers. ctx bounds the start only; the
// server runs until Stop. A missing executable gives an error wrapping
// ErrNotInstalled.
func StartMoto(ctx context.Context, opts MotoOptions) (*Moto, error) {
	path := opts.Path
	if path == "" {
		var err error
		path, err = toolPath("PORTAL_MOTO_SERVER", ".tools/venv/bin/moto_server", "make tools")
		if err != nil {
			return nil, fmt.Errorf("peers: start moto: %w", err)
		}
	}
	python := filepath.Join(filepath.Dir(path), "python")
	if _, err := os.Stat(python); err != nil {
		return nil, fmt.Errorf("peers: start moto: %w: %s, the python of moto's virtual environment (run `make tools`)", ErrNotInstalled, python)
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ca := opts.CA
	if ca == nil {
		var err error
		if ca, err = NewCA(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "portal-moto-")
	if err != nil {
		return nil, fmt.Errorf("peers: start moto: %w", err)
	}
	m := &Moto{ca: ca, dir: dir, caFile: filepath.Join(dir, "sandbox-ca.pem")}
	launcher, err := m.prepare(opts.PlainHTTP)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peers: start moto: %w", err)
	}
	scheme := "https"
	tlsArgs := []string{"-c", filepath.Join(dir, "moto.crt"), "-k", filepath.Join(dir, "moto.key")}
	if opts.PlainHTTP {
		scheme, tlsArgs = "http", nil
	}
	env := []string{
		// ACM issues DNS-validated certificates at once instead of after
		// 60 seconds: the validation records are written for real, but
		// nothing on this machine can resolve them.
		"MOTO_ACM_VALIDATION_WAIT=0",
		// moto's own requests (SNS deliveries) trust the sandbox CA only.
		"REQUESTS_CA_BUNDLE=" + m.caFile,
		"PYTHONDONTWRITEBYTECODE=1",
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
	}
	if opts.Outbound != "" {
		env = append(env, "HTTPS_PROXY="+opts.Outbound, "https_proxy="+opts.Outbound, "HTTP_PROXY="+opts.Outbound, "http_proxy="+opts.Outbound)
	}
	p, ports, err := startProc(ctx, spec{
		name:  "moto",
		path:  python,
		ports: 1,
		args: func(ports []int) []string {
			return append([]string{launcher, "-H", "127.0.0.1", "-p", strconv.Itoa(ports[0])}, tlsArgs...)
		},
		ready:   func(ports []int) string { return scheme + "://" + hostPort(ports[0]) + "/moto-api/" },
		client:  ca.HTTPClient(time.Second),
		out:     opts.Log,
		timeout: timeout,
		env:     env,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peers: start moto: %w", err)
	}
	m.proc, m.url = p, scheme+"://"+hostPort(ports[0])
	return m, nil
}

// prepare writes the launcher, the patches, the CA and moto's certificate
// into m.dir and returns the launcher's path.
func (m *Moto) prepare(plain bool) (string, error) {
	launcher, err := WriteMotoPatches(m.dir)
	if err != nil {
		return "", err
	}
	if err := m.ca.WriteCert(m.caFile); err != nil {
		return "", err
	}
	if plain {
		return launcher, nil
	}
	_, certPEM, keyPEM, err := m.ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(m.dir, "moto.crt"), append(certPEM, m.ca.CertPEM()...), 0o644); err != nil {
		return "", err
	}
	return launcher, os.WriteFile(filepath.Join(m.dir, "moto.key"), keyPEM, 0o600)
}

// URL returns moto's base URL, e.g. "https://127.0.0.1:41234", to use as
// the AWS endpoint of every service.
func (m *Moto) URL() string { return m.url }

// CA returns the CA that signed moto's certificate.
func (m *Moto) CA() *CA { return m.ca }

// CAFile returns the path of the CA's certificate (PEM), for
// AWS_CA_BUNDLE: the SDK then trusts that CA, and only it, for AWS calls.
// The file lives until Stop.
func (m *Moto) CAFile() string { return m.caFile }

// Env returns the environment variables that point the AWS SDK's default
// configuration at moto: AWS_ENDPOINT_URL, AWS_CA_BUNDLE, dummy static
// credentials for moto's default account and region us-east-1.
func (m *Moto) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":      m.url,
		"AWS_CA_BUNDLE":         m.caFile,
		"AWS_ACCESS_KEY_ID":     "testing",
		"AWS_SECRET_ACCESS_KEY": "testing",
		"AWS_REGION":            "us-east-1",
	}
}

// HTTPClient returns an HTTP client that trusts moto's CA only.
func (m *Moto) HTTPClient() *http.Client { return m.ca.HTTPClient(30 * time.Second) }

// Stop kills moto's process group, waits for it to exit and removes its
// files. It is idempotent.
func (m *Moto) Stop() error {
	err := m.proc.stop()
	os.RemoveAll(m.dir)
	if err != nil {
		return fmt.Errorf("peers: stop moto: %w", err)
	}
	return nil
}

// AWSConfig returns an aws-sdk-go-v2 configuration whose every service
// client talks to moto (BaseEndpoint, the AWS_ENDPOINT_URL semantics) in
// region over TLS, trusting moto's CA only, with static dummy credentials
// for moto's default account 123456789012. It reads nothing from the
// environment or ~/.aws, so a developer's real credentials are never used.
// S3 clients address buckets path-style, as the endpoint is an IP address.
func (m *Moto) AWSConfig(region string) aws.Config {
	roots := m.ca.Pool()
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(m.url),
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("testing", "testing", "")),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
			tr.TLSClientConfig = m.ca.ClientTLS()
			tr.TLSClientConfig.RootCAs = roots
		}),
	}
}
