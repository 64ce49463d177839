// Package directory is the format of the test identity provider's
// directory: its people, their passwords and groups, and the applications
// (OpenID clients) allowed to sign them in. The provider
// (internal/peers/oidcprovider) reads it from a JSON file; the peer harness
// (internal/peers) writes it.
package directory

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Directory is everything the provider knows at start.
type Directory struct {
	// Name is how the provider calls itself on its pages, e.g.
	// "Sandbox Identity".
	Name    string   `json:"name"`
	Users   []User   `json:"users"`
	Clients []Client `json:"clients"`
	// NoRefreshTokens makes the provider leave offline_access out of its
	// discovery document and issue no refresh tokens, as Google does for
	// OpenID Connect clients.
	NoRefreshTokens bool `json:"no_refresh_tokens,omitempty"`
}

// User is a person who can sign in.
type User struct {
	// ID is the stable subject (sub) of the person's tokens; empty means
	// "user-" followed by the username.
	ID       string `json:"id,omitempty"`
	Username string `json:"username"`
	// Password is kept in the clear: this is a test peer's directory, made
	// for the sandbox and tests on one machine.
	Password string `json:"password"`
	Email    string `json:"email"`
	// EmailUnverified makes the email_verified claim false.
	EmailUnverified bool     `json:"email_unverified,omitempty"`
	Name            string   `json:"name"`
	Groups          []string `json:"groups"`
	Disabled        bool     `json:"disabled,omitempty"`
}

// Subject is the user's stable subject identifier.
func (u User) Subject() string {
	if u.ID != "" {
		return u.ID
	}
	return "user-" + u.Username
}

// Client is an application allowed to sign people in: a confidential web
// client (client_secret_basic or client_secret_post) using the
// authorization code flow, with PKCE when it sends a challenge.
type Client struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
	// Name is shown on the login page ("Sign in to continue to NAME").
	Name string `json:"name"`
	// RedirectURIs are exact redirect URIs or path.Match patterns, e.g.
	// "http://127.0.0.1:*/login/sso/callback" for a portal on any port.
	RedirectURIs []string `json:"redirect_uris"`
}

// Load reads and checks a directory file.
func Load(path string) (*Directory, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	var d Directory
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("directory %s: %w", path, err)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("directory %s: %w", path, err)
	}
	return &d, nil
}

// Write saves d to path (mode 0600: it holds passwords and secrets).
func (d *Directory) Write(path string) error {
	if err := d.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// Validate names the first thing wrong with d.
func (d *Directory) Validate() error {
	if strings.TrimSpace(d.Name) == "" {
		return fmt.Errorf("name is required")
	}
	seen := map[string]bool{}
	subjects := map[string]bool{}
	for i, u := range d.Users {
		switch {
		case u.Username == "":
			return fmt.Errorf("users[%d]: username is required", i)
		case seen[u.Username]:
			return fmt.Errorf("users[%d]: username %q appears twice", i, u.Username)
		case subjects[u.Subject()]:
			return fmt.Errorf("users[%d]: id %q appears twice", i, u.Subject())
		case u.Password == "":
			return fmt.Errorf("users[%d] (%s): password is required", i, u.Username)
		case !strings.Contains(u.Email, "@"):
			return fmt.Errorf("users[%d] (%s): email %q is not an address", i, u.Username, u.Email)
		}
		seen[u.Username], subjects[u.Subject()] = true, true
	}
	ids := map[string]bool{}
	for i, c := range d.Clients {
		switch {
		case c.ID == "":
			return fmt.Errorf("clients[%d]: id is required", i)
		case ids[c.ID]:
			return fmt.Errorf("clients[%d]: id %q appears twice", i, c.ID)
		case c.Secret == "":
			return fmt.Errorf("clients[%d] (%s): secret is required", i, c.ID)
		case len(c.RedirectURIs) == 0:
			return fmt.Errorf("clients[%d] (%s): at least one redirect URI is required", i, c.ID)
		}
		for _, r := range c.RedirectURIs {
			if u, err := url.Parse(strings.ReplaceAll(r, "*", "0")); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("clients[%d] (%s): redirect URI %q is not an http(s) URL", i, c.ID, r)
			}
		}
		ids[c.ID] = true
	}
	return nil
}
