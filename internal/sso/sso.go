// Package sso signs staff in through the organization's OpenID Connect
// provider (Okta, Entra ID, Google Workspace, Keycloak...): the
// authorization code flow with PKCE, state and nonce, groups mapped to
// portal roles, accounts made on first sign-in, and access that ends soon
// after the provider stops vouching for the person.
//
// # How long access lasts
//
// An account the provider vouches for keeps access while three things
// hold, checked on every request (web) and for every API token:
//
//   - it is not suspended: the re-check job (Recheck) redeems the
//     account's refresh token with the provider every Config.Recheck. The
//     provider refuses it (invalid_grant) once the person is disabled or
//     removed there, or their sessions were revoked; the account is then
//     suspended, and so are its API tokens, until the person signs in
//     through the provider again. The new ID token's groups are mapped
//     again, so a role taken away at the provider goes within the same
//     bound, and groups that map to no role suspend the account too;
//   - the provider confirmed it within Config.StaleAfter (three re-checks):
//     if the provider cannot be reached for that long, access ends (fail
//     closed; break-glass local accounts remain);
//   - the browser session is younger than Config.SessionMax.
//
// The refresh token, rather than the userinfo endpoint, is what is checked
// because redeeming it is where every provider applies its own decision
// (disabled, deleted, sessions revoked, refresh token lifetimes), and it
// yields a fresh ID token with the current groups. Userinfo is used only to
// fill claims the ID token lacks, and, for a provider that issues no
// refresh token, to check the access token while it lasts.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/staff"
	"portal/internal/store"
)

// Actor is how the audit trail names work single sign-on does by itself
// (accounts made, roles synced, accounts suspended).
const Actor = "single sign-on"

// PendingLife bounds a sign-in from leaving for the provider to coming
// back.
const PendingLife = 10 * time.Minute

// Options are the Service's dependencies.
type Options struct {
	DB     *store.DB
	Audit  *audit.Log
	Staff  *staff.Service
	Sealer *staff.Sealer
	Logger *slog.Logger
	Now    func() time.Time
	// HTTPClient reaches the provider; nil means a client with a 15s
	// timeout.
	HTTPClient *http.Client
}

// Service signs people in through the provider and keeps checking it.
type Service struct {
	cfg Config
	o   Options

	mu      sync.Mutex
	disc    *discovered
	lastTry time.Time
	lastErr error
}

// discovered is what the provider's discovery document gave.
type discovered struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	userinfo string
}

// New returns a Service. The provider is discovered on first use, so the
// portal starts (and break-glass accounts work) while it is down.
func New(cfg Config, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName(cfg.Issuer)
	}
	return &Service{cfg: cfg, o: o}
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Name is the provider's display name.
func (s *Service) Name() string { return s.cfg.Name }

func (s *Service) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, s.o.HTTPClient)
}

// rediscoverAfter spaces discovery attempts while the provider is down.
const rediscoverAfter = 5 * time.Second

// discover fetches the discovery document once (retrying after a failure).
func (s *Service) discover(ctx context.Context) (*discovered, error) {
	d, _, err := s.discoverFresh(ctx)
	return d, err
}

// discoverFresh is discover, also saying whether the document was fetched
// by this call.
func (s *Service) discoverFresh(ctx context.Context) (*discovered, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disc != nil {
		return s.disc, false, nil
	}
	if s.lastErr != nil && time.Since(s.lastTry) < rediscoverAfter {
		return nil, false, s.lastErr
	}
	s.lastTry = time.Now()
	p, err := oidc.NewProvider(s.ctx(ctx), s.cfg.Issuer)
	if err != nil {
		s.lastErr = fmt.Errorf("discover %s: %w", s.cfg.Issuer, err)
		return nil, false, s.lastErr
	}
	var meta struct {
		Scopes   []string `json:"scopes_supported"`
		UserInfo string   `json:"userinfo_endpoint"`
	}
	_ = p.Claims(&meta)
	scopes := []string{oidc.ScopeOpenID}
	for _, sc := range s.cfg.Scopes {
		if sc != oidc.ScopeOpenID && !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if slices.Contains(meta.Scopes, oidc.ScopeOfflineAccess) && !slices.Contains(scopes, oidc.ScopeOfflineAccess) {
		scopes = append(scopes, oidc.ScopeOfflineAccess)
	}
	s.disc = &discovered{
		provider: p,
		// The key set keeps the client (and not the request's
		// cancellation) for its later fetches.
		verifier: p.VerifierContext(s.ctx(context.Background()), &oidc.Config{ClientID: s.cfg.ClientID, Now: s.o.Now}),
		oauth:    oauth2.Config{ClientID: s.cfg.ClientID, ClientSecret: string(s.cfg.ClientSecret), Endpoint: p.Endpoint(), RedirectURL: s.cfg.RedirectURL, Scopes: scopes},
		userinfo: meta.UserInfo,
	}
	s.lastErr = nil
	return s.disc, true, nil
}

// Pending is a sign-in that left for the provider: what must come back
// (state), what the ID token must carry (nonce), the PKCE verifier, and
// where to land. The web layer keeps it in the browser's session.
type Pending struct {
	State    string    `json:"state"`
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"`
	Next     string    `json:"next"`
	Started  time.Time `json:"started"`
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// probeTimeout bounds Begin's check that the provider still answers.
const probeTimeout = 3 * time.Second

// Begin starts a sign-in: it returns the pending sign-in to keep and the
// provider's authorization URL to send the browser to. A provider
// discovered by an earlier call is asked for its discovery document again
// first (one small request per sign-in), so
// that while it is down the person reads the portal's page (which names
// the break-glass way in) rather than their browser's connection error.
func (s *Service) Begin(ctx context.Context, next string) (Pending, string, error) {
	d, fresh, err := s.discoverFresh(ctx)
	if err != nil {
		return Pending{}, "", unavailable(s.cfg.Name, err)
	}
	if !fresh {
		if err := s.probe(ctx); err != nil {
			return Pending{}, "", unavailable(s.cfg.Name, err)
		}
	}
	p := Pending{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), Next: next, Started: s.o.Now()}
	return p, d.oauth.AuthCodeURL(p.State, oidc.Nonce(p.Nonce), oauth2.S256ChallengeOption(p.Verifier)), nil
}

// probe asks for the provider's discovery document.
func (s *Service) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	u := strings.TrimSuffix(s.cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("probe %s: %w", u, err)
	}
	res, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe %s: %w", u, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<16))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s", u, res.Status)
	}
	return nil
}

// Callback is what the provider sent back to CallbackPath.
type Callback struct {
	State, Code, Error, ErrorDescription string
}

// Match returns the pending sign-in cb answers, if any.
func Match(pending []Pending, state string) (Pending, bool) {
	for _, p := range pending {
		if state != "" && subtle.ConstantTimeCompare([]byte(p.State), []byte(state)) == 1 {
			return p, true
		}
	}
	return Pending{}, false
}

// identity is what the provider says about a person.
type identity struct {
	subject, email, name string
	groups               []string
	claims               claims
	token                *oauth2.Token
}

// Complete finishes a sign-in: it checks the callback against the pending
// sign-in, redeems the code with the PKCE verifier, verifies the ID token
// (signature, issuer, audience, expiry, nonce), maps the groups to roles,
// and makes or updates the account. by describes the request for the
// audit trail; every refusal is audited there (auth.sso_refused) before it
// is returned as a *Refusal. The caller records the sign-in itself.
func (s *Service) Complete(ctx context.Context, by audit.Entry, p Pending, found bool, cb Callback) (staff.User, error) {
	u, err := s.complete(ctx, by, p, found, cb)
	var r *Refusal
	if errors.As(err, &r) {
		s.o.Logger.Info("single sign-on refused", slog.String("reason", string(r.Reason)), slog.String("request_id", by.RequestID), slog.Any("err", r.Err))
	}
	return u, err
}

func (s *Service) complete(ctx context.Context, by audit.Entry, p Pending, found bool, cb Callback) (staff.User, error) {
	name := s.cfg.Name
	switch {
	case !found:
		r := refusal(StateMismatch, http.StatusBadRequest, "This sign-in link is not valid any more",
			"The answer from "+name+" does not belong to a sign-in this browser started (it may have been used already, or started in another browser). Start again from the sign-in page.")
		return staff.User{}, s.refuse(ctx, by, r, identity{}, nil)
	case s.o.Now().Sub(p.Started) > PendingLife:
		r := refusal(StateMismatch, http.StatusBadRequest, "This sign-in took too long",
			fmt.Sprintf("More than %d minutes passed between leaving for %s and coming back. Start again from the sign-in page.", int(PendingLife.Minutes()), name))
		return staff.User{}, s.refuse(ctx, by, r, identity{}, nil)
	case cb.Error != "":
		r := refusal(ProviderError, http.StatusUnauthorized, name+" did not sign you in", name+" answered with an error instead of signing you in.")
		r.Detail = clip(cb.Error, 100)
		if cb.ErrorDescription != "" {
			r.Detail += ": " + clip(cb.ErrorDescription, 300)
		}
		if cb.Error == "access_denied" {
			r.Message = name + " refused the sign-in (you cancelled it, or " + name + " does not let your account use the portal)."
		}
		return staff.User{}, s.refuse(ctx, by, r, identity{}, nil)
	case cb.Code == "":
		r := refusal(InvalidResponse, http.StatusBadRequest, "The answer from "+name+" is incomplete", "The answer carried no authorization code. Start again from the sign-in page.")
		return staff.User{}, s.refuse(ctx, by, r, identity{}, nil)
	}
	d, err := s.discover(ctx)
	if err != nil {
		return staff.User{}, s.refuse(ctx, by, unavailable(name, err), identity{}, nil)
	}
	tok, err := d.oauth.Exchange(s.ctx(ctx), cb.Code, oauth2.VerifierOption(p.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			return staff.User{}, s.refuse(ctx, by, unavailable(name, err), identity{}, nil)
		}
		r := refusal(InvalidResponse, http.StatusBadGateway, name+" refused the sign-in code", "The portal could not redeem the code "+name+" gave. Start again from the sign-in page; if it keeps happening, the portal's client settings at "+name+" need a look.")
		r.Detail, r.Err = clip(strings.TrimSpace(re.ErrorCode+" "+re.ErrorDescription), 300), err
		return staff.User{}, s.refuse(ctx, by, r, identity{}, nil)
	}
	id, err := s.identify(ctx, d, tok, p.Nonce, "")
	if err != nil {
		return staff.User{}, s.refuse(ctx, by, asRefusal(name, err), identity{}, nil)
	}
	return s.signIn(ctx, by, id)
}

// identify verifies tok's ID token and gathers the person's claims: from
// the ID token, and from userinfo when it lacks the email or the groups.
// nonce must match unless empty (refreshes carry none); wantSubject, when
// set, must be the token's subject.
func (s *Service) identify(ctx context.Context, d *discovered, tok *oauth2.Token, nonce, wantSubject string) (identity, error) {
	name := s.cfg.Name
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		if wantSubject == "" {
			return identity{}, refusal(InvalidResponse, http.StatusBadGateway, "The answer from "+name+" has no ID token",
				"The portal asked for an OpenID Connect ID token and got none. The portal's client at "+name+" must be an OpenID Connect client with the openid scope.")
		}
		// A refresh answer may leave the ID token out; userinfo says the rest.
		id := identity{subject: wantSubject, claims: claims{}, token: tok}
		return id, s.fillFromUserinfo(ctx, d, &id)
	}
	idt, err := d.verifier.Verify(s.ctx(ctx), raw)
	if err != nil {
		r := refusal(InvalidResponse, http.StatusBadGateway, "The answer from "+name+" could not be verified",
			"The ID token "+name+" sent did not pass verification (signature, issuer, audience or expiry). Start again; if it keeps happening, check the portal's -oidc-issuer and -oidc-client-id.")
		r.Detail, r.Err = clip(err.Error(), 300), err
		return identity{}, r
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		r := refusal(InvalidResponse, http.StatusBadRequest, "The answer from "+name+" could not be verified",
			"The ID token does not carry the value this sign-in sent (its nonce), so it may be replayed. Start again from the sign-in page.")
		r.Detail = "nonce mismatch"
		return identity{}, r
	}
	if wantSubject != "" && idt.Subject != wantSubject {
		return identity{}, &Refusal{Reason: InvalidResponse, Status: http.StatusBadGateway, Title: "Wrong subject", Message: "the refreshed ID token is for another subject"}
	}
	c := claims{}
	if err := idt.Claims(&c); err != nil {
		return identity{}, fmt.Errorf("sso: read ID token claims: %w", err)
	}
	id := identity{subject: idt.Subject, claims: c, token: tok}
	if _, ok := c.groups(s.cfg.GroupsClaim); !ok || c.str("email") == "" {
		if err := s.fillFromUserinfo(ctx, d, &id); err != nil {
			return identity{}, err
		}
	}
	id.email, id.name = strings.ToLower(id.claims.str("email")), id.claims.str("name")
	id.groups, _ = id.claims.groups(s.cfg.GroupsClaim)
	return id, nil
}

// errRefused is a provider's refusal to vouch for a person (invalid_grant,
// or userinfo answering 401 to a token that has not expired).
var errRefused = errors.New("the provider refused")

// fillFromUserinfo adds the userinfo endpoint's claims to id's (the ID
// token's win); the subjects must agree.
func (s *Service) fillFromUserinfo(ctx context.Context, d *discovered, id *identity) error {
	if d.userinfo == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.userinfo, nil)
	if err != nil {
		return err
	}
	id.token.SetAuthHeader(req)
	res, err := s.o.HTTPClient.Do(req)
	if err != nil {
		return unavailable(s.cfg.Name, err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		return fmt.Errorf("sso: userinfo %s: %w", res.Status, errRefused)
	case res.StatusCode != http.StatusOK:
		return unavailable(s.cfg.Name, fmt.Errorf("userinfo answered %s", res.Status))
	}
	var info claims
	if err := decodeJSON(res, &info); err != nil {
		return unavailable(s.cfg.Name, fmt.Errorf("userinfo: %w", err))
	}
	if info.str("sub") != id.subject {
		return &Refusal{Reason: InvalidResponse, Status: http.StatusBadGateway, Title: "The answer from " + s.cfg.Name + " could not be verified",
			Message: "The userinfo endpoint answered for another person than the ID token. Start again from the sign-in page."}
	}
	for k, v := range info {
		if _, ok := id.claims[k]; !ok {
			id.claims[k] = v
		}
	}
	return nil
}

func asRefusal(name string, err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	if errors.Is(err, errRefused) {
		return &Refusal{Reason: ProviderRefused, Status: http.StatusUnauthorized, Err: err, Title: name + " refused",
			Message: name + " did not accept the portal's token for your account. Start again from the sign-in page."}
	}
	return &Refusal{Reason: InvalidResponse, Status: http.StatusBadGateway, Err: err, Title: "The answer from " + name + " could not be read",
		Message: "Start again from the sign-in page; if it keeps happening, an administrator can see the cause in the portal's log."}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// signIn makes or updates the account of a verified identity.
func (s *Service) signIn(ctx context.Context, by audit.Entry, id identity) (staff.User, error) {
	name := s.cfg.Name
	if id.email == "" || !id.claims.emailVerified() {
		r := refusal(EmailUnverified, http.StatusForbidden, name+" did not give a verified email",
			"The portal names accounts by their email, and "+name+" sent none or said it is not verified. Ask your "+name+" administrator to verify your email.")
		return staff.User{}, s.refuse(ctx, by, r, id, nil)
	}
	if _, ok := staff.NormalizeEmail(id.email); !ok {
		r := refusal(EmailUnverified, http.StatusForbidden, name+" gave an email the portal cannot use", "The email "+name+" sent is not a valid address.")
		r.Detail = clip(id.email, 100)
		return staff.User{}, s.refuse(ctx, by, r, id, nil)
	}
	link, err := s.identityBySubject(ctx, id.subject)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return staff.User{}, err
	}
	linked := err == nil
	roles := s.cfg.RoleMap.Roles(id.groups)
	if len(roles) == 0 {
		r := refusal(NoMappedRole, http.StatusForbidden, "No portal role for your groups",
			"Your groups at "+name+" do not give you a role in the portal, so you cannot sign in. Ask an administrator to add you to one of the groups the portal maps: "+strings.Join(s.cfg.RoleMap.Groups(), ", ")+".")
		r.Detail = "your groups: " + orNone(id.groups)
		if _, ok := id.claims.groups(s.cfg.GroupsClaim); !ok {
			r.Detail = name + " sent no " + s.cfg.GroupsClaim + " claim"
			if id.claims.groupsOverage(s.cfg.GroupsClaim) {
				r.Detail += " (you are in too many groups for the token: filter the groups the portal's application receives at " + name + ")"
			}
		}
		var suspend *int64
		if linked {
			suspend = &link.UserID
		}
		return staff.User{}, s.refuse(ctx, by, r, id, suspend)
	}
	if !linked {
		return s.createAccount(ctx, by, id, roles)
	}
	u, err := s.o.Staff.Get(ctx, link.UserID)
	if err != nil {
		return staff.User{}, err
	}
	if u.Disabled {
		r := refusal(AccountDisabled, http.StatusForbidden, "Your portal account is disabled",
			"An administrator disabled your account in the portal. Signing in through "+name+" does not enable it again; ask a portal administrator.")
		return staff.User{}, s.refuse(ctx, by, r, id, nil)
	}
	sys := by
	sys.Actor = Actor
	if u, _, err = s.o.Staff.SyncFederated(ctx, sys, u.ID, id.email, id.name, roles); err != nil {
		if apperr.KindOf(err) != apperr.Conflict {
			return staff.User{}, err
		}
		r := refusal(EmailTaken, http.StatusConflict, "Your account could not be brought up to date", apperr.MessageOf(err)+".")
		return staff.User{}, s.refuse(ctx, by, r, id, nil)
	}
	return u, s.recordSignIn(ctx, link.UserID, id, false)
}

func orNone(groups []string) string {
	if len(groups) == 0 {
		return "none"
	}
	return strings.Join(groups, ", ")
}

// createAccount makes the account of a person's first sign-in, with the
// provider link, in one transaction.
func (s *Service) createAccount(ctx context.Context, by audit.Entry, id identity, roles []staff.Role) (staff.User, error) {
	name := s.cfg.Name
	if existing, err := s.o.Staff.GetByEmail(ctx, id.email); err == nil {
		what := "a local account (one that signs in with a portal password)"
		if existing.SingleSignOn {
			what = "an account linked to another identity at " + name + " or another provider"
		}
		r := refusal(EmailTaken, http.StatusConflict, "Another account already has your email",
			"The portal already has "+what+" with the email "+id.email+", so it cannot make one for you. Ask a portal administrator: a local account can be disabled and given another email, after which your sign-in makes your account.")
		return staff.User{}, s.refuse(ctx, by, r, id, nil)
	} else if !errors.Is(err, store.ErrNotFound) {
		return staff.User{}, err
	}
	hash, err := s.o.Staff.UnusablePasswordHash()
	if err != nil {
		return staff.User{}, err
	}
	sys := by
	sys.Actor = Actor
	var u staff.User
	err = s.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = s.o.Staff.CreateFederatedTx(ctx, tx, sys, staff.NewUser{Email: id.email, Name: id.name, Roles: roles}, hash, "single sign-on: "+s.cfg.Issuer)
		if err != nil {
			return err
		}
		if err := s.insertIdentity(ctx, tx, u.ID, id); err != nil {
			return err
		}
		e := sys
		e.Action, e.Target = "sso.account_created", u.Label()
		e.Details = map[string]any{"issuer": s.cfg.Issuer, "subject": id.subject, "groups": id.groups, "roles": u.Roles}
		_, err = s.o.Audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return staff.User{}, err
	}
	return s.o.Staff.Get(ctx, u.ID)
}

// refuse audits a refused sign-in (auth.sso_refused) and, when suspend
// names a linked account, suspends it (its groups no longer map to a role).
func (s *Service) refuse(ctx context.Context, by audit.Entry, r *Refusal, id identity, suspend *int64) error {
	e := by
	e.Action, e.Target = "auth.sso_refused", "sso:"+s.cfg.Issuer
	if id.email != "" {
		e.Target = "email:" + id.email
	}
	details := map[string]any{"reason": string(r.Reason)}
	if id.subject != "" {
		details["subject"], details["groups"] = id.subject, id.groups
	}
	if r.Detail != "" {
		details["detail"] = r.Detail
	}
	e.Details = details
	err := s.o.DB.Tx(ctx, func(tx *sql.Tx) error {
		if suspend != nil {
			if err := s.suspendTx(ctx, tx, *suspend, NoMappedRole, "groups at "+s.cfg.Name+" give no portal role: "+orNone(id.groups)); err != nil {
				return err
			}
		}
		_, err := s.o.Audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return err
	}
	return r
}
