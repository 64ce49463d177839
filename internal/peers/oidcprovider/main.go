// Command oidcprovider is a small OpenID Connect provider for the portal's
// tests and sandbox, built on zitadel/oidc's op package (an OpenID
// Certified implementation): discovery, the authorization code flow with
// PKCE, signed ID tokens, refresh tokens (rotated), userinfo, introspection
// and revocation. Its people, passwords and groups come from a directory
// file (package directory); it has its own login page, and an admin API
// through which tests disable a person or change their groups, as an
// administrator would in Okta or Keycloak.
//
// It serves plain HTTP on a loopback address only.
//
//	oidcprovider -addr 127.0.0.1:9998 -directory dir.json
//
// The admin API needs the bearer token in $OIDCPROVIDER_ADMIN_TOKEN:
//
//	GET  /admin/users                       the people, without passwords
//	POST /admin/users/NAME/disable          disable NAME and end their tokens
//	POST /admin/users/NAME/enable
//	PUT  /admin/users/NAME/groups           body: ["ops", "admins"]
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"portal/internal/peers/oidcprovider/directory"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "oidcprovider: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("oidcprovider", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9998", "loopback address to listen on")
	dirFile := fs.String("directory", "", "directory file: people, passwords, groups and clients (JSON)")
	issuer := fs.String("issuer", "", "issuer URL (default http://ADDR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: only a loopback address is allowed (this is a test provider)", *addr)
	}
	if *dirFile == "" {
		return fmt.Errorf("-directory is required")
	}
	d, err := directory.Load(*dirFile)
	if err != nil {
		return err
	}
	adminToken := os.Getenv("OIDCPROVIDER_ADMIN_TOKEN")
	if len(adminToken) < 16 {
		return fmt.Errorf("OIDCPROVIDER_ADMIN_TOKEN must hold at least 16 characters")
	}
	if *issuer == "" {
		*issuer = "http://" + *addr
	}
	st, err := newStorage(d)
	if err != nil {
		return err
	}
	var cryptoKey [32]byte
	if _, err := rand.Read(cryptoKey[:]); err != nil {
		return err
	}
	scopes := []string{}
	for _, sc := range op.DefaultSupportedScopes {
		if sc != oidc.ScopeOfflineAccess || !d.NoRefreshTokens {
			scopes = append(scopes, sc)
		}
	}
	st.noRefresh = d.NoRefreshTokens
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                cryptoKey,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.English},
		SupportedScopes:          append(scopes, ScopeGroups),
		DefaultLogoutRedirectURI: "/signed-out",
	}, st, op.StaticIssuer(*issuer), op.WithAllowInsecure())
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	ui := &ui{name: d.Name, st: st, callback: op.AuthCallbackURL(provider), issuer: op.NewIssuerInterceptor(provider.IssuerFromRequest), adminToken: adminToken, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", ui.loginPage)
	mux.Handle("POST /login", ui.issuer.HandlerFunc(ui.loginSubmit))
	mux.HandleFunc("GET /signed-out", ui.signedOut)
	mux.HandleFunc("GET /admin/users", ui.admin(ui.listUsers))
	mux.HandleFunc("POST /admin/users/{name}/disable", ui.admin(ui.disable(true)))
	mux.HandleFunc("POST /admin/users/{name}/enable", ui.admin(ui.disable(false)))
	mux.HandleFunc("PUT /admin/users/{name}/groups", ui.admin(ui.setGroups))
	mux.Handle("/", provider)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: logRequests(log, mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("OpenID provider listening", "issuer", *issuer, "users", len(d.Users), "clients", len(d.Clients))
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		start := time.Now()
		next.ServeHTTP(rec, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "took", time.Since(start).Round(time.Microsecond))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
