package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"portal/internal/peers/oidcprovider/directory"
)

// Token lifetimes. Short, as a careful organization configures its
// provider: relying parties learn of a disabled account at their next
// refresh.
const (
	accessTokenLife  = 10 * time.Minute
	idTokenLife      = 10 * time.Minute
	refreshTokenLife = 8 * time.Hour
	authRequestLife  = 10 * time.Minute
)

// ScopeGroups asks for the groups claim, as Okta's "groups" scope does.
const ScopeGroups = "groups"

// storage is the provider's state, in memory: the directory (which the
// admin API changes), pending sign-ins, codes and tokens. It implements
// op.Storage.
type storage struct {
	mu       sync.Mutex
	users    map[string]*directory.User // by subject
	byName   map[string]string          // username -> subject
	clients  map[string]directory.Client
	requests map[string]*authRequest
	codes    map[string]string // code -> auth request id
	access   map[string]*accessToken
	refresh  map[string]*refreshToken
	key      signingKey
	// noRefresh grants no refresh token whatever the client asks for.
	noRefresh bool
}

func newStorage(d *directory.Directory) (*storage, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	s := &storage{users: map[string]*directory.User{}, byName: map[string]string{}, clients: map[string]directory.Client{},
		requests: map[string]*authRequest{}, codes: map[string]string{}, access: map[string]*accessToken{}, refresh: map[string]*refreshToken{},
		key: signingKey{id: randomID(), key: k}}
	for _, u := range d.Users {
		u := u
		s.users[u.Subject()] = &u
		s.byName[u.Username] = u.Subject()
	}
	for _, c := range d.Clients {
		s.clients[c.ID] = c
	}
	return s, nil
}

func randomID() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// errNotFound is what the provider answers for unknown requests, codes and
// tokens.
var errNotFound = errors.New("not found or expired")

// authRequest is one sign-in in progress.
type authRequest struct {
	id        string
	created   time.Time
	clientID  string
	redirect  string
	state     string
	nonce     string
	scopes    []string
	respType  oidc.ResponseType
	respMode  oidc.ResponseMode
	challenge *oidc.CodeChallenge
	subject   string
	authTime  time.Time
	done      bool
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirect }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.respType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.respMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

type accessToken struct {
	id, subject, clientID, refreshID string
	scopes                           []string
	expires                          time.Time
}

// refreshToken is also the RefreshTokenRequest the op package asks for.
type refreshToken struct {
	token, subject, clientID string
	scopes                   []string
	authTime                 time.Time
	amr                      []string
	expires                  time.Time
	accessID                 string
}

func (r *refreshToken) GetAMR() []string             { return r.amr }
func (r *refreshToken) GetAudience() []string        { return []string{r.clientID} }
func (r *refreshToken) GetAuthTime() time.Time       { return r.authTime }
func (r *refreshToken) GetClientID() string          { return r.clientID }
func (r *refreshToken) GetScopes() []string          { return r.scopes }
func (r *refreshToken) GetSubject() string           { return r.subject }
func (r *refreshToken) SetCurrentScopes(sc []string) { r.scopes = sc }

// checkPassword is the login page's check. On success the sign-in request
// id belongs to the user and is done.
func (s *storage) checkPassword(requestID, username, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[requestID]
	if !ok || time.Since(req.created) > authRequestLife {
		return errors.New("This sign-in has expired. Go back to the application and start again.")
	}
	u := s.users[s.byName[username]]
	want := "\x00" // compared even for unknown names, so timing says little
	if u != nil {
		want = u.Password
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 || u == nil {
		return errors.New("Username or password is incorrect.")
	}
	if u.Disabled {
		return errors.New("This account is disabled. Ask your administrator.")
	}
	req.subject, req.authTime, req.done = u.Subject(), time.Now(), true
	return nil
}

// clientName names the application a sign-in request is for.
func (s *storage) clientName(requestID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[requestID]
	if !ok {
		return "", false
	}
	c := s.clients[req.clientID]
	if c.Name != "" {
		return c.Name, true
	}
	return c.ID, true
}

// setDisabled disables or enables the user; disabling ends every token and
// refresh token they hold, as Okta's deactivation and Keycloak's disabling
// do.
func (s *storage) setDisabled(username string, disabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[s.byName[username]]
	if u == nil {
		return errNotFound
	}
	u.Disabled = disabled
	if disabled {
		s.revokeLocked(u.Subject())
	}
	return nil
}

// setGroups replaces the user's groups; tokens issued from now on carry
// them.
func (s *storage) setGroups(username string, groups []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users[s.byName[username]]
	if u == nil {
		return errNotFound
	}
	u.Groups = append([]string{}, groups...)
	return nil
}

// listUsers returns a copy of the directory's users.
func (s *storage) listUsers() []directory.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]directory.User, 0, len(s.users))
	for _, u := range s.users {
		c := *u
		c.Password = ""
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b directory.User) int {
		if a.Username < b.Username {
			return -1
		}
		return 1
	})
	return out
}

func (s *storage) revokeLocked(subject string) {
	for id, t := range s.access {
		if t.subject == subject {
			delete(s.access, id)
		}
	}
	for tok, r := range s.refresh {
		if r.subject == subject {
			delete(s.refresh, tok)
		}
	}
}

// activeUser returns the enabled user with subject, or an error.
func (s *storage) activeUserLocked(subject string) (*directory.User, error) {
	u := s.users[subject]
	switch {
	case u == nil:
		return nil, errors.New("user not found")
	case u.Disabled:
		return nil, errors.New("user is disabled")
	}
	return u, nil
}

// op.AuthStorage

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(r.Prompt, oidc.PromptNone) {
		// The provider keeps no sign-in session of its own, so it can never
		// answer without asking.
		return nil, oidc.ErrLoginRequired()
	}
	req := &authRequest{id: randomID(), created: time.Now(), clientID: r.ClientID, redirect: r.RedirectURI, state: r.State,
		nonce: r.Nonce, scopes: r.Scopes, respType: r.ResponseType, respMode: r.ResponseMode}
	if r.CodeChallenge != "" {
		req.challenge = &oidc.CodeChallenge{Challenge: r.CodeChallenge, Method: r.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, old := range s.requests {
		if time.Since(old.created) > authRequestLife {
			delete(s.requests, id)
		}
	}
	s.requests[req.id] = req
	return req, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return nil, errNotFound
	}
	return req, nil
}

func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errNotFound
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.activeUserLocked(r.GetSubject()); err != nil {
		return "", time.Time{}, err
	}
	t := s.newAccessLocked(r.GetSubject(), clientOf(r), "", r.GetScopes())
	return t.id, t.expires, nil
}

func clientOf(r op.TokenRequest) string {
	switch r := r.(type) {
	case *authRequest:
		return r.clientID
	case *refreshToken:
		return r.clientID
	}
	return ""
}

func (s *storage) newAccessLocked(subject, clientID, refreshID string, scopes []string) *accessToken {
	t := &accessToken{id: randomID(), subject: subject, clientID: clientID, refreshID: refreshID, scopes: scopes, expires: time.Now().Add(accessTokenLife)}
	s.access[t.id] = t
	return t
}

// CreateAccessAndRefreshTokens issues tokens for a code exchange (current
// == "") or rotates a refresh token: the presented one stops working.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.activeUserLocked(r.GetSubject()); err != nil {
		return "", "", time.Time{}, err
	}
	next := &refreshToken{token: randomID(), subject: r.GetSubject(), clientID: clientOf(r), scopes: r.GetScopes(), expires: time.Now().Add(refreshTokenLife)}
	switch req := r.(type) {
	case *authRequest:
		next.authTime, next.amr = req.authTime, req.GetAMR()
	case *refreshToken:
		next.authTime, next.amr = req.authTime, req.amr
	}
	if current != "" {
		old, ok := s.refresh[current]
		if !ok || time.Now().After(old.expires) {
			return "", "", time.Time{}, errNotFound
		}
		delete(s.refresh, current)
		delete(s.access, old.accessID)
	}
	t := s.newAccessLocked(next.subject, next.clientID, next.token, next.scopes)
	next.accessID = t.id
	s.refresh[next.token] = next
	return t.id, next.token, t.expires, nil
}

// TokenRequestByRefreshToken refuses the refresh token of a disabled or
// removed user (the op package answers invalid_grant).
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refresh[token]
	if !ok || time.Now().After(r.expires) {
		return nil, errNotFound
	}
	if _, err := s.activeUserLocked(r.subject); err != nil {
		return nil, err
	}
	c := *r
	return &c, nil
}

func (s *storage) TerminateSession(_ context.Context, subject, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.access {
		if t.subject == subject && t.clientID == clientID {
			delete(s.access, id)
		}
	}
	for tok, r := range s.refresh {
		if r.subject == subject && r.clientID == clientID {
			delete(s.refresh, tok)
		}
	}
	return nil
}

func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.access[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.access, tokenOrID)
		return nil
	}
	if r, ok := s.refresh[tokenOrID]; ok {
		if r.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
		}
		delete(s.refresh, tokenOrID)
		delete(s.access, r.accessID)
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.refresh[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return r.subject, r.token, nil
}

// Signing keys: one RSA key made at start.

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.id }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.key.PublicKey }

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return &s.key, nil }
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{&s.key}}, nil }

// op.OPStorage

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, fmt.Errorf("client %q not found", id)
	}
	return client{c: c, noRefresh: s.noRefresh}, nil
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return errors.New("wrong client id or secret")
	}
	return nil
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, r op.IDTokenRequest, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.userinfoLocked(info, r.GetSubject(), scopes)
}

// SetUserinfoFromToken answers the userinfo endpoint; a revoked or expired
// token, or a disabled user, is refused.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.access[tokenID]
	if !ok || t.subject != subject || time.Now().After(t.expires) {
		return errors.New("token is invalid or has expired")
	}
	return s.userinfoLocked(info, subject, t.scopes)
}

func (s *storage) userinfoLocked(info *oidc.UserInfo, subject string, scopes []string) error {
	u, err := s.activeUserLocked(subject)
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		switch sc {
		case oidc.ScopeOpenID:
			info.Subject = u.Subject()
		case oidc.ScopeEmail:
			info.Email, info.EmailVerified = u.Email, oidc.Bool(!u.EmailUnverified)
			if u.EmailUnverified {
				// The library leaves a false email_verified out; say it.
				info.AppendClaims("email_verified", false)
			}
		case oidc.ScopeProfile:
			info.Name, info.PreferredUsername = u.Name, u.Username
		case ScopeGroups:
			info.AppendClaims("groups", append([]string{}, u.Groups...))
		}
	}
	return nil
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, r *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.access[tokenID]
	if !ok || t.subject != subject || time.Now().After(t.expires) || t.clientID != clientID {
		return errors.New("token is invalid or has expired")
	}
	info := new(oidc.UserInfo)
	if err := s.userinfoLocked(info, subject, t.scopes); err != nil {
		return err
	}
	r.SetUserInfo(info)
	r.Scope, r.ClientID, r.Expiration = t.scopes, t.clientID, oidc.FromTime(t.expires)
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

func (s *storage) Health(context.Context) error { return nil }

// client is a directory client as the op package sees it.
type client struct {
	c         directory.Client
	noRefresh bool
}

func (c client) GetID() string                    { return c.c.ID }
func (c client) RedirectURIs() []string           { return exact(c.c.RedirectURIs) }
func (c client) PostLogoutRedirectURIs() []string { return nil }
func (c client) ApplicationType() op.ApplicationType {
	return op.ApplicationTypeWeb
}
func (c client) AuthMethod() oidc.AuthMethod { return oidc.AuthMethodBasic }
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c client) GrantTypes() []oidc.GrantType {
	if c.noRefresh {
		return []oidc.GrantType{oidc.GrantTypeCode}
	}
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c client) LoginURL(id string) string            { return "/login?authRequestID=" + id }
func (c client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c client) IDTokenLifetime() time.Duration       { return idTokenLife }
func (c client) DevMode() bool                        { return true } // http redirect URIs on loopback
func (c client) IsScopeAllowed(scope string) bool     { return scope == ScopeGroups }
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c client) ClockSkew() time.Duration             { return 0 }
func (c client) RedirectURIGlobs() []string           { return globs(c.c.RedirectURIs) }
func (c client) PostLogoutRedirectURIGlobs() []string { return nil }
func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func isGlob(s string) bool {
	_, err := path.Match(s, "")
	return err == nil && (slices.ContainsFunc([]rune(s), func(r rune) bool { return r == '*' || r == '?' || r == '[' }))
}

func exact(uris []string) []string {
	var out []string
	for _, u := range uris {
		if !isGlob(u) {
			out = append(out, u)
		}
	}
	return out
}

func globs(uris []string) []string {
	var out []string
	for _, u := range uris {
		if isGlob(u) {
			out = append(out, u)
		}
	}
	return out
}
