package sso

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"portal/internal/staff"
)

// CallbackPath is where the provider sends people back to the portal; the
// redirect URI to register at the provider is the portal's base URL
// followed by it.
const CallbackPath = "/login/sso/callback"

// Config is how the portal reaches its OpenID provider.
type Config struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// Issuer + "/.well-known/openid-configuration". https, except on a
	// loopback address.
	Issuer       string
	ClientID     string
	ClientSecret Secret
	// Name is what the login page calls the provider ("Sign in with NAME").
	Name string
	// Scopes are asked for besides openid; offline_access is added when
	// the provider lists it, so that it issues a refresh token.
	Scopes []string
	// GroupsClaim names the claim holding the person's groups, as a path
	// for nested claims ("groups", "roles", "realm_access.roles").
	GroupsClaim string
	// RoleMap gives each group its portal roles.
	RoleMap RoleMap
	// Recheck is how often the provider is asked whether it still vouches
	// for each person (a refresh-token grant); StaleAfter bounds how long
	// access lasts without an answer.
	Recheck time.Duration
	// SessionMax bounds a single sign-on session: after it the person signs
	// in through the provider again.
	SessionMax time.Duration
	// RedirectURL is the portal's base URL followed by CallbackPath.
	RedirectURL string
}

// Secret is the client secret: it prints as [redacted], so a Config can be
// logged.
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return "sso.Secret([redacted])" }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// StaleAfter is how long an account keeps access without the provider
// confirming it (three rechecks missed, e.g. while the provider is down):
// after it, its sessions end and its API tokens are refused until the
// provider answers again or the person signs in again.
func (c Config) StaleAfter() time.Duration { return 3 * c.Recheck }

// Validate names the first thing wrong with c.
func (c Config) Validate() error {
	u, err := url.Parse(c.Issuer)
	switch {
	case c.Issuer == "":
		return fmt.Errorf("-oidc-issuer is required")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("-oidc-issuer %q is not a URL such as https://login.example.com", c.Issuer)
	case u.Scheme == "http" && !loopback(u.Hostname()):
		return fmt.Errorf("-oidc-issuer %q must use https (plain http is allowed only on a loopback address)", c.Issuer)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("-oidc-issuer %q must not have a query or fragment", c.Issuer)
	case c.ClientID == "":
		return fmt.Errorf("-oidc-client-id is required with -oidc-issuer")
	case c.ClientSecret == "":
		return fmt.Errorf("the OpenID client secret is required with -oidc-issuer (-oidc-client-secret-file, or PORTAL_OIDC_CLIENT_SECRET)")
	case len(c.RoleMap) == 0:
		return fmt.Errorf("-oidc-role-map is required with -oidc-issuer: say which groups give which roles, e.g. ops=ops,portal-admins=admin")
	case strings.TrimSpace(c.GroupsClaim) == "":
		return fmt.Errorf("-oidc-groups-claim must name a claim")
	case c.Recheck < time.Second:
		return fmt.Errorf("-oidc-recheck: want at least 1s, got %s", c.Recheck)
	case c.SessionMax < c.Recheck:
		return fmt.Errorf("-oidc-session-max (%s) must be at least -oidc-recheck (%s)", c.SessionMax, c.Recheck)
	}
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DefaultName derives a display name from the issuer's host when none is
// configured.
func DefaultName(issuer string) string {
	if u, err := url.Parse(issuer); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	return "your identity provider"
}

// RoleMap gives groups (as the provider names them) portal roles.
type RoleMap map[string][]staff.Role

// ParseRoleMap reads "GROUP=ROLE,GROUP=ROLE,...": a group may appear
// several times to give several roles; the last "=" splits, so group names
// may hold "=" but not ",".
func ParseRoleMap(s string) (RoleMap, error) {
	m := RoleMap{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		i := strings.LastIndex(pair, "=")
		if i <= 0 || i == len(pair)-1 {
			return nil, fmt.Errorf("-oidc-role-map: %q is not GROUP=ROLE", pair)
		}
		group := strings.TrimSpace(pair[:i])
		role, err := staff.ParseRole(pair[i+1:])
		if err != nil {
			return nil, fmt.Errorf("-oidc-role-map: %q: %w", pair, err)
		}
		if !slices.Contains(m[group], role) {
			m[group] = append(m[group], role)
		}
	}
	return m, nil
}

// Roles returns the roles groups give, sorted as staff sorts them, or none.
func (m RoleMap) Roles(groups []string) []staff.Role {
	var out []staff.Role
	for _, g := range groups {
		for _, r := range m[g] {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b staff.Role) int { return slices.Index(staff.AllRoles, a) - slices.Index(staff.AllRoles, b) })
	return out
}

// String is the map in the flag's format, groups sorted.
func (m RoleMap) String() string {
	groups := make([]string, 0, len(m))
	for g := range m {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	var parts []string
	for _, g := range groups {
		for _, r := range m[g] {
			parts = append(parts, g+"="+string(r))
		}
	}
	return strings.Join(parts, ",")
}

// Groups lists the mapped groups, sorted.
func (m RoleMap) Groups() []string {
	out := make([]string, 0, len(m))
	for g := range m {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}
