package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"portal/internal/app"
	"portal/internal/peers"
	"portal/internal/peers/oidcprovider/directory"
	"portal/internal/sso"
)

// The sandbox's identity provider: the project's own OpenID provider with
// a few people, standing in for the organization's Okta or Entra ID.
const (
	identityName = "Sandbox Identity"
	// identityRoleMap is how the sandbox maps the provider's groups to
	// portal roles; "marketing" maps to none, so Mark is refused.
	identityRoleMap = "ops=ops,portal-admins=admin,compliance=compliance,finance=finance"
)

// samplePeople are the sandbox provider's people and groups.
var samplePeople = []directory.User{
	{Username: "olga", Email: "olga.ops@example.com", Name: "Olga Ops", Groups: []string{"ops", "all-staff"}},
	{Username: "ada", Email: "ada.admin@example.com", Name: "Ada Admin", Groups: []string{"portal-admins", "all-staff"}},
	{Username: "carl", Email: "carl.compliance@example.com", Name: "Carl Compliance", Groups: []string{"compliance", "all-staff"}},
	{Username: "fiona", Email: "fiona.finance@example.com", Name: "Fiona Finance", Groups: []string{"finance", "all-staff"}},
	{Username: "mark", Email: "mark.marketing@example.com", Name: "Mark Marketing", Groups: []string{"marketing", "all-staff"}},
}

// loadIdentityDirectory reads the sandbox provider's directory from dir,
// making it (with generated passwords and client secret) on first start,
// so the passwords stay the same across restarts.
func loadIdentityDirectory(dir string) (*directory.Directory, error) {
	path := filepath.Join(dir, "identity-provider.json")
	d, err := directory.Load(path)
	if err == nil {
		return d, nil
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		return nil, fmt.Errorf("sandbox: %w (delete it to make a new one)", err)
	}
	d = &directory.Directory{Name: identityName, Clients: []directory.Client{{
		ID: "portal", Secret: randomSecret(24), Name: "Portal",
		RedirectURIs: []string{"http://127.0.0.1:*" + sso.CallbackPath, "http://localhost:*" + sso.CallbackPath},
	}}}
	for _, p := range samplePeople {
		p.Password = p.Username + "-" + randomSecret(6)
		d.Users = append(d.Users, p)
	}
	if err := d.Write(path); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return d, nil
}

func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// identity is the running sandbox provider.
type identity struct {
	provider *peers.OIDCProvider
	dir      *directory.Directory
	log      *os.File
	// flags point the portal at the provider.
	flags []string
}

func (i *identity) stop() {
	i.provider.Stop()
	i.log.Close()
	_ = peers.RemoveOIDCProviderBuild() // a temporary copy; built again on the next start
}

// startIdentity starts the sandbox's OpenID provider (building it the
// first time), logging to identity-provider.log in dir.
func startIdentity(ctx context.Context, dir string) (*identity, error) {
	d, err := loadIdentityDirectory(dir)
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(filepath.Join(dir, "identity-provider.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	p, err := peers.StartOIDCProvider(ctx, peers.OIDCProviderOptions{Directory: *d, Log: log})
	if err != nil {
		log.Close()
		return nil, err
	}
	os.Setenv("PORTAL_OIDC_CLIENT_SECRET", d.Clients[0].Secret)
	flags := []string{"-oidc-issuer", p.Issuer(), "-oidc-client-id", d.Clients[0].ID, "-oidc-name", d.Name,
		"-oidc-scopes", "openid,email,profile,groups", "-oidc-role-map", identityRoleMap, "-oidc-recheck", "1m"}
	return &identity{provider: p, dir: d, log: log, flags: flags}, nil
}

// printIdentity says how to sign in through the sandbox provider.
func (i *identity) print(w io.Writer, portalURL string, cfg app.Config) {
	p, d := i.provider, i.dir
	fmt.Fprintf(w, "\n  Single sign-on: \"Sign in with %s\" on %s/login, then, on the provider's page:\n\n", d.Name, portalURL)
	roles := map[string]string{}
	if cfg.SSO != nil {
		for _, u := range d.Users {
			var rs []string
			for _, r := range cfg.SSO.RoleMap.Roles(u.Groups) {
				rs = append(rs, string(r))
			}
			roles[u.Username] = strings.Join(rs, ", ")
		}
	}
	for _, u := range d.Users {
		lands := "portal roles: " + roles[u.Username]
		if roles[u.Username] == "" {
			lands = "refused: no group maps to a portal role"
		}
		fmt.Fprintf(w, "    %-7s %-22s groups %-28s %s\n", u.Username, u.Password, strings.Join(u.Groups, ", "), lands)
	}
	fmt.Fprintf(w, "\n  The provider is re-asked about each person every minute. To see someone lose access, disable them there:\n"+
		"    curl -X POST -H 'Authorization: Bearer %s' %s/admin/users/olga/disable\n"+
		"  (…/enable to undo; PUT …/groups with a JSON list changes their groups). People and passwords: identity-provider.json in the sandbox folder.\n", p.AdminToken(), p.Issuer())
}
