package peers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"portal/internal/peers/oidcprovider/directory"
)

// OIDCProviderOptions configures StartOIDCProvider.
type OIDCProviderOptions struct {
	// Directory is the provider's people, groups and clients.
	Directory directory.Directory
	// Path is a built oidcprovider executable. Empty means
	// $PORTAL_OIDC_PROVIDER, or else the provider is built from
	// internal/peers/oidcprovider with the go command (the build cache
	// makes this quick after the first time).
	Path string
	// Log receives the provider's output (one line per request). Nil
	// discards it; the last few KiB are quoted in start errors either way.
	Log io.Writer
	// StartTimeout bounds the build and the wait until the provider
	// answers. Zero means 3 minutes (a first build compiles the OpenID
	// library).
	StartTimeout time.Duration
}

// OIDCProvider is a running OpenID Connect provider on 127.0.0.1: the
// project's own small provider built on zitadel/oidc's op package (an
// OpenID Certified implementation), with a login page and an admin API.
// It stands in for Okta, Entra ID or Keycloak.
type OIDCProvider struct {
	issuer string
	name   string
	token  string
	dir    string
	proc   *proc
	client *http.Client
}

// buildOIDCProvider builds the provider once per process.
var buildOIDCProvider struct {
	mu   sync.Mutex
	path string // the executable, in a temporary folder of its own
}

// OIDCProviderPath returns the provider's executable, building it with the
// go command into a temporary folder the first time it is asked for (again
// after RemoveOIDCProviderBuild).
func OIDCProviderPath(ctx context.Context) (string, error) {
	if p := os.Getenv("PORTAL_OIDC_PROVIDER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s (unset PORTAL_OIDC_PROVIDER to build it)", ErrNotInstalled, p)
		}
		return p, nil
	}
	b := &buildOIDCProvider
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path != "" {
		return b.path, nil
	}
	root, err := ProjectRoot()
	if err != nil {
		return "", err
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := os.MkdirTemp("", "portal-oidcprovider-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(out, "oidcprovider")
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", path, "./internal/peers/oidcprovider")
	cmd.Dir = root
	if msg, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(out)
		return "", fmt.Errorf("build the OpenID provider (go build ./internal/peers/oidcprovider): %w\n%s", err, msg)
	}
	b.path = path
	return path, nil
}

// RemoveOIDCProviderBuild removes the executable OIDCProviderPath built, if
// it built one (each is tens of megabytes; a test binary or a sandbox
// that starts the provider calls this when it is done with it).
// Providers already started run on.
func RemoveOIDCProviderBuild() error {
	b := &buildOIDCProvider
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path == "" {
		return nil
	}
	err := os.RemoveAll(filepath.Dir(b.path))
	b.path = ""
	return err
}

// StartOIDCProvider writes the directory to a temporary folder and starts
// the provider on a free loopback port, returning once its discovery
// document answers. ctx bounds the start only; the provider runs until
// Stop.
func StartOIDCProvider(ctx context.Context, opts OIDCProviderOptions) (*OIDCProvider, error) {
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := opts.Directory.Validate(); err != nil {
		return nil, fmt.Errorf("peers: OpenID provider directory: %w", err)
	}
	path := opts.Path
	if path == "" {
		var err error
		if path, err = OIDCProviderPath(ctx); err != nil {
			return nil, fmt.Errorf("peers: start the OpenID provider: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "portal-idp-")
	if err != nil {
		return nil, fmt.Errorf("peers: start the OpenID provider: %w", err)
	}
	dirFile := filepath.Join(dir, "directory.json")
	if err := opts.Directory.Write(dirFile); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peers: start the OpenID provider: %w", err)
	}
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	deadline, _ := ctx.Deadline()
	p, ports, err := startProc(ctx, spec{
		name:  "oidcprovider",
		path:  path,
		ports: 1,
		args: func(ports []int) []string {
			return []string{"-addr", hostPort(ports[0]), "-directory", dirFile}
		},
		ready:   func(ports []int) string { return "http://" + hostPort(ports[0]) + "/.well-known/openid-configuration" },
		out:     opts.Log,
		env:     []string{"OIDCPROVIDER_ADMIN_TOKEN=" + token},
		timeout: time.Until(deadline),
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peers: start the OpenID provider: %w", err)
	}
	return &OIDCProvider{issuer: "http://" + hostPort(ports[0]), name: opts.Directory.Name, token: token, dir: dir, proc: p,
		client: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Issuer is the provider's issuer URL, e.g. "http://127.0.0.1:41239"; its
// discovery document is at Issuer + "/.well-known/openid-configuration".
func (p *OIDCProvider) Issuer() string { return p.issuer }

// Name is the provider's display name (the directory's name).
func (p *OIDCProvider) Name() string { return p.name }

// AdminToken is the bearer token of the provider's admin API (see
// internal/peers/oidcprovider), for people trying the sandbox by hand.
func (p *OIDCProvider) AdminToken() string { return p.token }

// DisableUser disables username at the provider, as an administrator would
// when someone leaves: their sign-ins are refused and every token and
// refresh token they hold stops working at once.
func (p *OIDCProvider) DisableUser(ctx context.Context, username string) error {
	return p.admin(ctx, http.MethodPost, "/admin/users/"+url.PathEscape(username)+"/disable", nil)
}

// EnableUser enables username again.
func (p *OIDCProvider) EnableUser(ctx context.Context, username string) error {
	return p.admin(ctx, http.MethodPost, "/admin/users/"+url.PathEscape(username)+"/enable", nil)
}

// SetGroups replaces username's groups; tokens issued from then on carry
// them.
func (p *OIDCProvider) SetGroups(ctx context.Context, username string, groups []string) error {
	if groups == nil {
		groups = []string{}
	}
	b, _ := json.Marshal(groups)
	return p.admin(ctx, http.MethodPut, "/admin/users/"+url.PathEscape(username)+"/groups", b)
}

func (p *OIDCProvider) admin(ctx context.Context, method, path string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, p.issuer+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("peers: OpenID provider admin: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return fmt.Errorf("peers: OpenID provider admin %s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// Stop kills the provider and removes its directory file. It is
// idempotent.
func (p *OIDCProvider) Stop() error {
	err := p.proc.stop()
	os.RemoveAll(p.dir)
	if err != nil {
		return fmt.Errorf("peers: stop the OpenID provider: %w", err)
	}
	return nil
}
