package app

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"portal/internal/sso"
	"portal/internal/staff"
)

// ssoFlags declares the single sign-on flags on fs and returns a function
// that, after parsing, gives its configuration (nil when -oidc-issuer is
// not set). The redirect URL is filled in by New, from the base URL.
func ssoFlags(fs *flag.FlagSet) func() (*sso.Config, error) {
	issuer := fs.String("oidc-issuer", "", "OpenID Connect issuer URL of the organization's identity provider (Okta, Entra ID, Google, Keycloak...); turns single sign-on on")
	clientID := fs.String("oidc-client-id", "", "client id of the portal's application at the identity provider")
	secretFile := fs.String("oidc-client-secret-file", "", "file holding the application's client secret (default: the PORTAL_OIDC_CLIENT_SECRET environment variable)")
	name := fs.String("oidc-name", "", "name of the identity provider on the sign-in page, as in \"Sign in with NAME\" (default: the issuer's host)")
	scopes := fs.String("oidc-scopes", "openid,email,profile", "scopes to ask for, comma-separated (offline_access is added when the provider supports it; add groups for Okta)")
	groupsClaim := fs.String("oidc-groups-claim", "groups", "claim holding the person's groups; a dotted path for nested claims (realm_access.roles)")
	roleMap := fs.String("oidc-role-map", "", "which groups give which portal roles, comma-separated GROUP=ROLE pairs, e.g. ops=ops,portal-admins=admin; a group may appear more than once")
	recheck := fs.Duration("oidc-recheck", 5*time.Minute, "how often the identity provider is asked whether it still vouches for each person (refresh token); a disabled person loses access within about this long")
	sessionMax := fs.Duration("oidc-session-max", 12*time.Hour, "longest a single sign-on session lasts before signing in through the provider again")
	return func() (*sso.Config, error) {
		if *issuer == "" {
			if *clientID != "" || *roleMap != "" {
				return nil, fmt.Errorf("-oidc-client-id and -oidc-role-map need -oidc-issuer")
			}
			return nil, nil
		}
		secret := os.Getenv("PORTAL_OIDC_CLIENT_SECRET")
		if *secretFile != "" {
			b, err := os.ReadFile(*secretFile)
			if err != nil {
				return nil, fmt.Errorf("-oidc-client-secret-file: %w", err)
			}
			secret = string(b)
		}
		rm, err := sso.ParseRoleMap(*roleMap)
		if err != nil {
			return nil, err
		}
		c := &sso.Config{Issuer: strings.TrimRight(strings.TrimSpace(*issuer), "/"), ClientID: strings.TrimSpace(*clientID),
			ClientSecret: sso.Secret(strings.TrimSpace(secret)), Name: strings.TrimSpace(*name), GroupsClaim: strings.TrimSpace(*groupsClaim),
			RoleMap: rm, Recheck: *recheck, SessionMax: *sessionMax}
		for _, sc := range strings.Split(*scopes, ",") {
			if sc = strings.TrimSpace(sc); sc != "" {
				c.Scopes = append(c.Scopes, sc)
			}
		}
		if c.Name == "" {
			c.Name = sso.DefaultName(c.Issuer)
		}
		if err := c.Validate(); err != nil {
			return nil, err
		}
		return c, nil
	}
}

// buildSSO wires single sign-on: the service, the re-check job, and
// two-factor for every local account (they are the break-glass way in).
func (a *App) buildSSO(base string, sealer *staff.Sealer, opts Options) *sso.Service {
	if a.cfg.SSO == nil {
		return nil
	}
	cfg := *a.cfg.SSO
	cfg.RedirectURL = strings.TrimRight(base, "/") + sso.CallbackPath
	svc := sso.New(cfg, sso.Options{DB: a.DB, Audit: a.Audit, Staff: a.Staff, Sealer: sealer, Logger: a.log, Now: opts.Now})
	a.Jobs.Every("sso.recheck", sso.JobInterval(cfg), func(ctx context.Context) error {
		_, err := svc.Recheck(ctx)
		return err
	})
	return svc
}
