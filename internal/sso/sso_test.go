package sso_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"portal/internal/sso"
	"portal/internal/staff"
)

// A person's first sign-in through the provider makes their account with
// the roles their groups give; later sign-ins read the groups again.
func TestSignInCreatesAccountFromGroups(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	u, err := h.signIn(t, "olga", "olga-password-1")
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if u.Email != "olga.ops@example.com" || u.Name != "Olga Ops" || !slices.Equal(u.Roles, []staff.Role{staff.Ops}) || !u.SingleSignOn {
		t.Errorf("account %+v, want olga.ops@example.com, Olga Ops, ops, single sign-on", u)
	}
	if h.staff.Requires2FA(u) {
		t.Error("a single sign-on account must not owe the portal a second factor (the provider checks it)")
	}
	l, err := h.svc.LinkOf(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if l.State != sso.Active || !l.HasRefreshToken || l.Subject != "user-olga" || !slices.Equal(l.Groups, []string{"ops", "everyone"}) {
		t.Errorf("link %+v, want active with a refresh token, subject user-olga, both groups", l)
	}
	// The refresh token is sealed, never stored in the clear.
	var stored string
	if err := h.db.QueryRowContext(ctx, `SELECT refresh_token FROM sso_identities WHERE user_id = ?`, u.ID).Scan(&stored); err != nil || !strings.HasPrefix(stored, "v1:") {
		t.Errorf("stored refresh token %q (err %v), want it sealed", stored, err)
	}
	if got := h.actions(t); !slices.Contains(got, "staff.create") || !slices.Contains(got, "sso.account_created") {
		t.Errorf("audit %v, want staff.create and sso.account_created", got)
	}
	// A portal password sign-in is refused as a wrong password would be.
	if _, err := h.staff.Authenticate(ctx, by, staff.PasswordSignIn{Email: u.Email, Password: "olga-password-1"}); err != staff.ErrBadCredentials {
		t.Errorf("password sign-in of a single sign-on account: %v, want bad credentials", err)
	}
	// Admins cannot give it roles or a password: those come from the provider.
	if _, err := h.staff.SetRoles(ctx, by, u.ID, []staff.Role{staff.Admin}); err == nil || !strings.Contains(err.Error(), "single sign-on") {
		t.Errorf("SetRoles on a single sign-on account: %v, want refused", err)
	}
	if _, _, err := h.staff.ResetPassword(ctx, by, u.ID); err == nil {
		t.Error("ResetPassword on a single sign-on account was accepted")
	}

	// Olga joins the auditors at the provider: her next sign-in adds the role.
	if err := h.idp.SetGroups(ctx, "olga", []string{"ops", "auditors"}); err != nil {
		t.Fatal(err)
	}
	u2, err := h.signIn(t, "olga", "olga-password-1")
	if err != nil {
		t.Fatalf("second sign-in: %v", err)
	}
	if u2.ID != u.ID || !slices.Equal(u2.Roles, []staff.Role{staff.Ops, staff.Compliance}) {
		t.Errorf("after the groups changed: account %d roles %v, want account %d with ops, compliance", u2.ID, u2.Roles, u.ID)
	}
	// Someone in a group that maps to several roles gets them all.
	ada, err := h.signIn(t, "ada", "ada-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ada.Roles, []staff.Role{staff.Admin, staff.Ops}) {
		t.Errorf("ada's roles %v, want admin, ops", ada.Roles)
	}
}

// Every way a sign-in can fail is refused with its own reason and audited.
func TestSignInRefusals(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	t.Run("groups that map to no role", func(t *testing.T) {
		_, err := h.signIn(t, "mark", "mark-password-1")
		r := refusal(t, err)
		if r.Reason != sso.NoMappedRole || !strings.Contains(r.Detail, "marketing") || !strings.Contains(r.Message, "portal-admins") {
			t.Errorf("refusal %+v, want no mapped role naming marketing and the mapped groups", r)
		}
		if _, err := h.staff.GetByEmail(ctx, "mark@example.com"); err == nil {
			t.Error("an account was made for someone with no mapped role")
		}
	})
	t.Run("email not verified", func(t *testing.T) {
		if r := refusal(t, func() error { _, err := h.signIn(t, "una", "una-password-1"); return err }()); r.Reason != sso.EmailUnverified {
			t.Errorf("reason %s, want %s", r.Reason, sso.EmailUnverified)
		}
	})
	t.Run("email of a local account", func(t *testing.T) {
		if _, _, err := h.staff.Create(ctx, by, staff.NewUser{Email: "lou.local@example.com", Roles: []staff.Role{staff.Finance}}); err != nil {
			t.Fatal(err)
		}
		r := refusal(t, func() error { _, err := h.signIn(t, "lou", "lou-password-1"); return err }())
		if r.Reason != sso.EmailTaken || !strings.Contains(r.Message, "local account") {
			t.Errorf("refusal %+v, want email taken by a local account", r)
		}
	})
	t.Run("state that matches no sign-in", func(t *testing.T) {
		p, authURL, err := h.svc.Begin(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		cb, err := newBrowser(t).signInAtProvider(authURL, "olga", "olga-password-1")
		if err != nil {
			t.Fatal(err)
		}
		other, _, _ := h.svc.Begin(ctx, "/")
		got, found := sso.Match([]sso.Pending{other}, cb.State)
		if r := refusal(t, func() error { _, err := h.svc.Complete(ctx, by, got, found, cb); return err }()); r.Reason != sso.StateMismatch {
			t.Errorf("reason %s, want %s", r.Reason, sso.StateMismatch)
		}
		// The right state, but a nonce the ID token does not carry.
		p.Nonce = "not-the-nonce"
		if r := refusal(t, func() error { _, err := h.svc.Complete(ctx, by, p, true, cb); return err }()); r.Reason != sso.InvalidResponse || r.Detail != "nonce mismatch" {
			t.Errorf("refusal %+v, want the nonce mismatch", r)
		}
	})
	t.Run("code redeemed with the wrong PKCE verifier", func(t *testing.T) {
		p, authURL, err := h.svc.Begin(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		cb, err := newBrowser(t).signInAtProvider(authURL, "olga", "olga-password-1")
		if err != nil {
			t.Fatal(err)
		}
		p.Verifier = "a-verifier-an-attacker-would-have-to-guess-0123456789"
		if r := refusal(t, func() error { _, err := h.svc.Complete(ctx, by, p, true, cb); return err }()); r.Reason != sso.InvalidResponse || !strings.Contains(r.Detail, "invalid_grant") {
			t.Errorf("refusal %+v, want the provider refusing the code", r)
		}
	})
	t.Run("the provider answers with an error", func(t *testing.T) {
		p, _, err := h.svc.Begin(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		r := refusal(t, func() error {
			_, err := h.svc.Complete(ctx, by, p, true, sso.Callback{State: p.State, Error: "access_denied", ErrorDescription: "the user cancelled"})
			return err
		}())
		if r.Reason != sso.ProviderError || !strings.Contains(r.Detail, "the user cancelled") {
			t.Errorf("refusal %+v, want the provider's error and description", r)
		}
	})
	t.Run("a sign-in older than ten minutes", func(t *testing.T) {
		p, _, err := h.svc.Begin(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		p.Started = p.Started.Add(-sso.PendingLife - time.Second)
		if r := refusal(t, func() error {
			_, err := h.svc.Complete(ctx, by, p, true, sso.Callback{State: p.State, Code: "x"})
			return err
		}()); r.Reason != sso.StateMismatch {
			t.Errorf("reason %s, want %s", r.Reason, sso.StateMismatch)
		}
	})
	t.Run("an account disabled in the portal", func(t *testing.T) {
		u, err := h.signIn(t, "ada", "ada-password-1")
		if err != nil {
			t.Fatal(err)
		}
		// Another admin must exist for the portal to let ada be disabled.
		if _, _, err := h.staff.Create(ctx, by, staff.NewUser{Email: "root@example.com", Roles: []staff.Role{staff.Admin}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.staff.SetDisabled(ctx, by, u.ID, true); err != nil {
			t.Fatal(err)
		}
		if r := refusal(t, func() error { _, err := h.signIn(t, "ada", "ada-password-1"); return err }()); r.Reason != sso.AccountDisabled {
			t.Errorf("reason %s, want %s", r.Reason, sso.AccountDisabled)
		}
	})
	n := 0
	for _, a := range h.actions(t) {
		if a == "auth.sso_refused" {
			n++
		}
	}
	if n != 9 {
		t.Errorf("%d sign-ins refused in the audit trail, want 9", n)
	}
}

// The provider disabling someone ends their access at the next re-check;
// losing every mapped group does too; signing in again (once allowed)
// restores it.
func TestRecheckEndsAccess(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	// A local break-glass admin, so that the provider may take ada's admin
	// role (the portal never leaves itself without an enabled admin).
	if _, _, err := h.staff.Create(ctx, by, staff.NewUser{Email: "break-glass@example.com", Roles: []staff.Role{staff.Admin}}); err != nil {
		t.Fatal(err)
	}
	olga, err := h.signIn(t, "olga", "olga-password-1")
	if err != nil {
		t.Fatal(err)
	}
	ada, err := h.signIn(t, "ada", "ada-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Gate(ctx, olga); err != nil {
		t.Fatalf("gate right after sign-in: %v", err)
	}
	// Not due yet: nothing is asked.
	if n, err := h.svc.Recheck(ctx); err != nil || n != 0 {
		t.Fatalf("recheck before it is due: %d, %v; want 0", n, err)
	}
	if err := h.idp.DisableUser(ctx, "olga"); err != nil {
		t.Fatal(err)
	}
	if err := h.idp.SetGroups(ctx, "ada", []string{"ops"}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.Recheck)
	if n, err := h.svc.Recheck(ctx); err != nil || n != 2 {
		t.Fatalf("recheck: %d, %v; want 2 asked", n, err)
	}
	r := refusal(t, h.svc.Gate(ctx, olga))
	if r.Reason != sso.ProviderRefused || !strings.Contains(r.Detail, "invalid_grant") {
		t.Errorf("olga after being disabled: %+v, want refused by the provider", r)
	}
	// Ada keeps access, now as ops only (her admin group went).
	if err := h.svc.Gate(ctx, ada); err != nil {
		t.Errorf("ada: %v", err)
	}
	if got, _ := h.staff.Get(ctx, ada.ID); !slices.Equal(got.Roles, []staff.Role{staff.Ops}) {
		t.Errorf("ada's roles after the re-check: %v, want ops", got.Roles)
	}
	// Ada loses her last mapped group: suspended too.
	if err := h.idp.SetGroups(ctx, "ada", []string{"marketing"}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.Recheck)
	if _, err := h.svc.Recheck(ctx); err != nil {
		t.Fatal(err)
	}
	if r := refusal(t, h.svc.Gate(ctx, ada)); r.Reason != sso.NoMappedRole {
		t.Errorf("ada with no mapped group: %s, want %s", r.Reason, sso.NoMappedRole)
	}
	// A disabled person cannot sign in at the provider at all.
	p, authURL, err := h.svc.Begin(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = p
	if _, err := newBrowser(t).signInAtProvider(authURL, "olga", "olga-password-1"); err == nil || !strings.Contains(err.Error(), "disabled") {
		t.Errorf("sign-in of a disabled person at the provider: %v, want refused as disabled", err)
	}
	// Enabled again, Olga signs in and her access is back.
	if err := h.idp.EnableUser(ctx, "olga"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.signIn(t, "olga", "olga-password-1"); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Gate(ctx, olga); err != nil {
		t.Errorf("olga after signing in again: %v", err)
	}
	if got := h.actions(t); !slices.Contains(got, "sso.suspended") || !slices.Contains(got, "staff.sync_from_provider") {
		t.Errorf("audit %v, want sso.suspended and staff.sync_from_provider", got)
	}
}

// Without answers from the provider, access lasts StaleAfter and no more;
// an unreachable provider is its own page.
func TestProviderDown(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	olga, err := h.signIn(t, "olga", "olga-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.idp.Stop(); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.Recheck)
	if _, err := h.svc.Recheck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.svc.Gate(ctx, olga); err != nil {
		t.Errorf("one missed re-check: %v, want access to go on", err)
	}
	h.clock.Advance(h.cfg.StaleAfter())
	r := refusal(t, h.svc.Gate(ctx, olga))
	if r.Reason != sso.Unconfirmed || !strings.Contains(r.Detail, "could not reach") {
		t.Errorf("after StaleAfter without answers: %+v, want unconfirmed, naming the unreachable provider", r)
	}
	// A portal that discovered the provider before checks that it still
	// answers before sending anyone to it.
	if _, _, err := h.svc.Begin(ctx, "/"); refusal(t, err).Reason != sso.ProviderUnavailable {
		t.Errorf("Begin with the provider down after discovery: %v, want %s", err, sso.ProviderUnavailable)
	}
	// A portal that has not discovered the provider yet says it is down.
	h2 := sso.New(h.cfg, sso.Options{DB: h.db, Audit: h.audit, Staff: h.staff, Logger: nil})
	_, _, err = h2.Begin(ctx, "/")
	if r := refusal(t, err); r.Reason != sso.ProviderUnavailable {
		t.Errorf("Begin with the provider down: %s, want %s", r.Reason, sso.ProviderUnavailable)
	}
}

func TestRoleMap(t *testing.T) {
	m, err := sso.ParseRoleMap(" ops=ops, portal-admins=admin,portal-admins=ops , a=b=finance")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Roles([]string{"portal-admins", "unknown"}); !slices.Equal(got, []staff.Role{staff.Admin, staff.Ops}) {
		t.Errorf("roles of portal-admins: %v", got)
	}
	if got := m.Roles([]string{"a=b"}); !slices.Equal(got, []staff.Role{staff.Finance}) {
		t.Errorf("a group with = in its name: %v", got)
	}
	if got := m.Roles([]string{"nobody"}); len(got) != 0 {
		t.Errorf("unmapped group: %v", got)
	}
	if got := m.String(); got != "a=b=finance,ops=ops,portal-admins=admin,portal-admins=ops" {
		t.Errorf("String() = %q", got)
	}
	for _, bad := range []string{"ops", "=ops", "ops=", "ops=wizard"} {
		if _, err := sso.ParseRoleMap(bad); err == nil {
			t.Errorf("ParseRoleMap(%q) accepted", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	rm, _ := sso.ParseRoleMap("ops=ops")
	good := sso.Config{Issuer: "https://login.example.com", ClientID: "portal", ClientSecret: "s", RoleMap: rm, GroupsClaim: "groups", Recheck: time.Minute, SessionMax: time.Hour}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for name, mut := range map[string]func(*sso.Config){
		"plain http off loopback": func(c *sso.Config) { c.Issuer = "http://login.example.com" },
		"no client id":            func(c *sso.Config) { c.ClientID = "" },
		"no secret":               func(c *sso.Config) { c.ClientSecret = "" },
		"no role map":             func(c *sso.Config) { c.RoleMap = nil },
		"session shorter":         func(c *sso.Config) { c.SessionMax = time.Second },
	} {
		c := good
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := good
	c.Issuer = "http://127.0.0.1:9998"
	if err := c.Validate(); err != nil {
		t.Errorf("plain http on loopback: %v", err)
	}
	if s := good.ClientSecret.String(); s != "[redacted]" {
		t.Errorf("the secret prints as %q", s)
	}
}

// The provider cannot leave the portal without an enabled admin: the last
// one keeps admin, whatever their groups, until there is another.
func TestLastAdminKeepsAdmin(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	ada, err := h.signIn(t, "ada", "ada-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.idp.SetGroups(ctx, "ada", []string{"ops"}); err != nil {
		t.Fatal(err)
	}
	u, err := h.signIn(t, "ada", "ada-password-1")
	if err != nil {
		t.Fatalf("the last admin signing in with fewer groups: %v", err)
	}
	if !slices.Equal(u.Roles, []staff.Role{staff.Admin, staff.Ops}) {
		t.Errorf("the last admin's roles %v, want admin kept beside ops", u.Roles)
	}
	if _, _, err := h.staff.Create(ctx, by, staff.NewUser{Email: "break-glass@example.com", Roles: []staff.Role{staff.Admin}}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.Recheck)
	if _, err := h.svc.Recheck(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.staff.Get(ctx, ada.ID); !slices.Equal(got.Roles, []staff.Role{staff.Ops}) {
		t.Errorf("with another admin, ada's roles %v, want ops", got.Roles)
	}
}

// A provider that issues no refresh token (Google) is asked through
// userinfo while the access token lasts; after that the person signs in
// again.
func TestWithoutRefreshTokens(t *testing.T) {
	d := testDirectory()
	d.NoRefreshTokens = true
	h := newHarnessWith(t, d, func(c *sso.Config) { c.Recheck = 4 * time.Minute })
	ctx := context.Background()
	olga, err := h.signIn(t, "olga", "olga-password-1")
	if err != nil {
		t.Fatal(err)
	}
	ada, err := h.signIn(t, "ada", "ada-password-1")
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := h.svc.LinkOf(ctx, olga.ID); l.HasRefreshToken {
		t.Fatal("the provider gave a refresh token it should not have")
	}
	h.clock.Advance(h.cfg.Recheck)
	if _, err := h.svc.Recheck(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := h.svc.LinkOf(ctx, olga.ID); l.CheckError != "" || h.svc.Gate(ctx, olga) != nil {
		t.Fatalf("re-check through userinfo: %q, gate %v", l.CheckError, h.svc.Gate(ctx, olga))
	}
	if err := h.idp.DisableUser(ctx, "olga"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(h.cfg.Recheck)
	if _, err := h.svc.Recheck(ctx); err != nil {
		t.Fatal(err)
	}
	if r := refusal(t, h.svc.Gate(ctx, olga)); r.Reason != sso.ProviderRefused {
		t.Errorf("olga disabled, checked through userinfo: %s, want %s", r.Reason, sso.ProviderRefused)
	}
	// Ada's access token (10 minutes) has expired by now: no answer, and
	// three re-checks later her access ends.
	h.clock.Advance(h.cfg.Recheck)
	if _, err := h.svc.Recheck(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _ := h.svc.LinkOf(ctx, ada.ID); !strings.Contains(l.CheckError, "sign in again") {
		t.Errorf("ada's check after her access token expired: %q", l.CheckError)
	}
	h.clock.Advance(h.cfg.StaleAfter())
	if r := refusal(t, h.svc.Gate(ctx, ada)); r.Reason != sso.Unconfirmed {
		t.Errorf("ada: %s, want %s", r.Reason, sso.Unconfirmed)
	}
}
