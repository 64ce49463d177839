package staff

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/store"
)

// Passkeys (WebAuthn credentials: platform passkeys and security keys) are
// a second factor beside TOTP. The portal is the relying party of its base
// URL's host name; an address that is an IP literal cannot be one, and
// passkeys are then unavailable (PasskeysUnavailable says why). A loopback
// IP (the local sandbox) uses "localhost", so open the portal at
// http://localhost:PORT to use passkeys there.

// Passkey is a registered passkey or security key, as listed.
type Passkey struct {
	ID         int64
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero when never used
}

// PasskeyOrigin is the relying party the portal is for passkeys.
type PasskeyOrigin struct {
	ID     string // the host name, e.g. "portal.example.com"
	Origin string // scheme, host and port, e.g. "https://portal.example.com"
}

// PasskeyOriginFor returns the relying party of the portal's base URL, or
// why there is none.
func PasskeyOriginFor(baseURL string) (PasskeyOrigin, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return PasskeyOrigin{}, fmt.Errorf("the portal's address %q is not an http(s) URL", baseURL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return PasskeyOrigin{}, fmt.Errorf("passkeys need the portal to be reached by a host name, not the address %s: set -base-url", host)
		}
		host = "localhost"
	}
	origin := u.Scheme + "://" + host
	if p := u.Port(); p != "" {
		origin += ":" + p
	}
	if u.Scheme == "http" && host != "localhost" {
		return PasskeyOrigin{}, fmt.Errorf("passkeys need https (or localhost): the portal's address is %s", baseURL)
	}
	return PasskeyOrigin{ID: host, Origin: origin}, nil
}

// maxPasskeys bounds the passkeys one account may hold.
const maxPasskeys = 10

// passkeyTimeout is how long a passkey ceremony may take.
const passkeyTimeout = 3 * time.Minute

// Passkeys reports whether passkeys can be used here, and otherwise why not.
func (s *Service) Passkeys() (PasskeyOrigin, error) {
	if s.webauthn == nil {
		return PasskeyOrigin{}, s.webauthnErr
	}
	return s.cfg.Passkeys, nil
}

// UsePasskeys makes o the relying party for passkeys, or, when why is not
// nil, says why passkeys cannot be used (shown where they would be). Call it
// before serving.
func (s *Service) UsePasskeys(o PasskeyOrigin, why error) {
	s.cfg.Passkeys = o
	if why != nil {
		s.cfg.Passkeys = PasskeyOrigin{}
		s.webauthn, s.webauthnErr = nil, why
		return
	}
	s.initPasskeys()
}

// initPasskeys sets up the relying party from Config.Passkeys.
func (s *Service) initPasskeys() {
	if s.cfg.Passkeys.ID == "" {
		s.webauthn, s.webauthnErr = nil, errors.New("passkeys are not configured on this portal")
		return
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID:          s.cfg.Passkeys.ID,
		RPDisplayName: s.cfg.Issuer,
		RPOrigins:     []string{s.cfg.Passkeys.Origin},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: passkeyTimeout},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: passkeyTimeout},
		},
	})
	if err != nil {
		s.webauthnErr = fmt.Errorf("passkeys: %w", err)
		return
	}
	s.webauthn = w
}

// passkeyUser is an account as the WebAuthn library sees it.
type passkeyUser struct {
	u      User
	handle []byte
	creds  []webauthn.Credential
}

func (p *passkeyUser) WebAuthnID() []byte                         { return p.handle }
func (p *passkeyUser) WebAuthnName() string                       { return p.u.Email }
func (p *passkeyUser) WebAuthnDisplayName() string                { return p.u.DisplayName() }
func (p *passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }

// loadPasskeyUser reads u's handle (made now when it has none, with
// create) and credentials.
func (s *Service) loadPasskeyUser(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, u User, create bool) (*passkeyUser, error) {
	var handle string
	if err := q.QueryRowContext(ctx, `SELECT webauthn_handle FROM users WHERE id = ?`, u.ID).Scan(&handle); err != nil {
		return nil, fmt.Errorf("staff: passkeys: %w", err)
	}
	if handle == "" && create {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("staff: passkeys: %w", err)
		}
		handle = base64.RawURLEncoding.EncodeToString(b)
		if _, err := q.ExecContext(ctx, `UPDATE users SET webauthn_handle = ? WHERE id = ? AND webauthn_handle = ''`, handle, u.ID); err != nil {
			return nil, fmt.Errorf("staff: passkeys: %w", err)
		}
		if err := q.QueryRowContext(ctx, `SELECT webauthn_handle FROM users WHERE id = ?`, u.ID).Scan(&handle); err != nil {
			return nil, fmt.Errorf("staff: passkeys: %w", err)
		}
	}
	pu := &passkeyUser{u: u}
	if handle != "" {
		h, err := base64.RawURLEncoding.DecodeString(handle)
		if err != nil {
			return nil, fmt.Errorf("staff: passkeys: user handle of %s: %w", u.Email, err)
		}
		pu.handle = h
	}
	rows, err := q.QueryContext(ctx, `SELECT credential FROM webauthn_credentials WHERE user_id = ? ORDER BY id`, u.ID)
	if err != nil {
		return nil, fmt.Errorf("staff: passkeys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("staff: passkeys: %w", err)
		}
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(raw), &c); err != nil {
			return nil, fmt.Errorf("staff: passkeys: a stored credential of %s: %w", u.Email, err)
		}
		pu.creds = append(pu.creds, c)
	}
	return pu, rows.Err()
}

// PasskeyCeremony is a begun registration or sign-in: the options for the
// browser's navigator.credentials call, and the state to keep (in the
// session, server side) until it finishes.
type PasskeyCeremony struct {
	Options json.RawMessage
	State   string
}

// BeginPasskeyRegistration starts adding a passkey to u: the browser makes
// a credential for the portal, never one u already has.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, u User) (PasskeyCeremony, error) {
	if s.webauthn == nil {
		return PasskeyCeremony{}, apperr.Wrap(apperr.Conflict, s.webauthnErr, "%s", s.webauthnErr.Error())
	}
	pu, err := s.loadPasskeyUser(ctx, s.db, u, true)
	if err != nil {
		return PasskeyCeremony{}, err
	}
	if len(pu.creds) >= maxPasskeys {
		return PasskeyCeremony{}, apperr.New(apperr.Conflict, "you have %d passkeys, the most an account may hold; remove one first", maxPasskeys)
	}
	exclude := make([]protocol.CredentialDescriptor, len(pu.creds))
	for i, c := range pu.creds {
		exclude[i] = c.Descriptor()
	}
	opts, session, err := s.webauthn.BeginRegistration(pu,
		webauthn.WithExclusions(exclude),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
	if err != nil {
		return PasskeyCeremony{}, fmt.Errorf("staff: begin passkey registration: %w", err)
	}
	return ceremony(opts, session)
}

func ceremony(opts any, session *webauthn.SessionData) (PasskeyCeremony, error) {
	o, err := json.Marshal(opts)
	if err != nil {
		return PasskeyCeremony{}, fmt.Errorf("staff: passkey options: %w", err)
	}
	st, err := json.Marshal(session)
	if err != nil {
		return PasskeyCeremony{}, fmt.Errorf("staff: passkey state: %w", err)
	}
	return PasskeyCeremony{Options: o, State: string(st)}, nil
}

func sessionOf(state string) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if state == "" {
		return sd, errPasskeyStale
	}
	if err := json.Unmarshal([]byte(state), &sd); err != nil {
		return sd, errPasskeyStale
	}
	return sd, nil
}

var (
	errPasskeyStale = apperr.New(apperr.Invalid, "the passkey request expired or was already used; try again")
	errPasskeyBad   = &apperr.Error{Kind: apperr.Invalid, Message: "the passkey could not be verified",
		Fields: map[string]string{"passkey": "could not be verified; try again, or use another way to sign in"}}
)

// maxPasskeyResponse bounds a browser's answer to a ceremony.
const maxPasskeyResponse = 64 << 10

// FinishPasskeyRegistration checks the browser's new credential against
// the begun ceremony and stores it under name. Adding a factor ends the
// account's other sessions and revokes its API tokens, like enrolling TOTP.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, by audit.Entry, u User, state, name string, response []byte) (Passkey, error) {
	if s.webauthn == nil {
		return Passkey{}, apperr.Wrap(apperr.Conflict, s.webauthnErr, "%s", s.webauthnErr.Error())
	}
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		name = "Passkey"
	case len(name) > 60:
		return Passkey{}, &apperr.Error{Kind: apperr.Invalid, Message: "the name is too long", Fields: map[string]string{"name": "is longer than 60 characters"}}
	}
	sd, err := sessionOf(state)
	if err != nil {
		return Passkey{}, err
	}
	if len(response) > maxPasskeyResponse {
		return Passkey{}, errPasskeyBad
	}
	parsed, err := protocol.ParseCredentialCreationResponseBody(bytes.NewReader(response))
	if err != nil {
		return Passkey{}, errPasskeyBad
	}
	var out Passkey
	_, err = s.update(ctx, by, u.ID, "auth.enrol_2fa", func(tx *sql.Tx, cur User) (map[string]any, error) {
		pu, err := s.loadPasskeyUser(ctx, tx, cur, false)
		if err != nil {
			return nil, err
		}
		cred, err := s.webauthn.CreateCredential(pu, sd, parsed)
		if err != nil {
			return nil, errPasskeyBad
		}
		raw, err := json.Marshal(cred)
		if err != nil {
			return nil, fmt.Errorf("staff: store passkey: %w", err)
		}
		now := s.now()
		var id int64
		err = tx.QueryRowContext(ctx, `INSERT INTO webauthn_credentials (user_id, credential_id, name, credential, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (credential_id) DO NOTHING RETURNING id`, u.ID, base64.RawURLEncoding.EncodeToString(cred.ID), name, string(raw), store.Time(now)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, apperr.New(apperr.Conflict, "this passkey is registered already")
		} else if err != nil {
			return nil, fmt.Errorf("staff: store passkey: %w", err)
		}
		out = Passkey{ID: id, Name: name, CreatedAt: now}
		n, err := s.endCredentials(ctx, tx, u.ID, "two-factor changed")
		return map[string]any{"factor": "passkey", "passkey": name, "passkey_id": id, "other_sessions_ended": true, "tokens_revoked": n}, err
	})
	return out, err
}

// BeginPasskeySignIn starts the second factor with one of u's passkeys.
func (s *Service) BeginPasskeySignIn(ctx context.Context, u User) (PasskeyCeremony, error) {
	if s.webauthn == nil {
		return PasskeyCeremony{}, apperr.Wrap(apperr.Conflict, s.webauthnErr, "%s", s.webauthnErr.Error())
	}
	pu, err := s.loadPasskeyUser(ctx, s.db, u, false)
	if err != nil {
		return PasskeyCeremony{}, err
	}
	if len(pu.creds) == 0 {
		return PasskeyCeremony{}, apperr.New(apperr.Invalid, "this account has no passkey")
	}
	opts, session, err := s.webauthn.BeginLogin(pu, webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return PasskeyCeremony{}, fmt.Errorf("staff: begin passkey sign-in: %w", err)
	}
	return ceremony(opts, session)
}

// VerifyPasskey checks the browser's assertion for u against the begun
// ceremony, under the same per-account limit as two-factor codes (see
// VerifyCode). A wrong or replayed assertion (the credential's counter did
// not move on) is refused like a wrong code.
func (s *Service) VerifyPasskey(ctx context.Context, by audit.Entry, u User, state string, response []byte) error {
	if s.webauthn == nil {
		return apperr.Wrap(apperr.Conflict, s.webauthnErr, "%s", s.webauthnErr.Error())
	}
	sd, err := sessionOf(state)
	if err != nil {
		return err
	}
	if len(response) > maxPasskeyResponse {
		return errPasskeyBad
	}
	parsed, err := protocol.ParseCredentialRequestResponseBody(bytes.NewReader(response))
	if err != nil {
		return errPasskeyBad
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.codeLimit(ctx, tx, u.ID); err != nil {
			return err
		}
		pu, err := s.loadPasskeyUser(ctx, tx, u, false)
		if err != nil {
			return err
		}
		cred, err := s.webauthn.ValidateLogin(pu, sd, parsed)
		if err != nil || cred.Authenticator.CloneWarning {
			return errPasskeyBad
		}
		raw, err := json.Marshal(cred)
		if err != nil {
			return fmt.Errorf("staff: passkey: %w", err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE webauthn_credentials SET credential = ?, last_used_at = ? WHERE user_id = ? AND credential_id = ?`,
			string(raw), store.Time(s.now()), u.ID, base64.RawURLEncoding.EncodeToString(cred.ID))
		return err
	})
}

// ListPasskeys returns account id's passkeys, oldest first.
func (s *Service) ListPasskeys(ctx context.Context, userID int64) ([]Passkey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at, COALESCE(last_used_at, '') FROM webauthn_credentials WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("staff: list passkeys: %w", err)
	}
	defer rows.Close()
	var out []Passkey
	for rows.Next() {
		var p Passkey
		var created, used string
		if err := rows.Scan(&p.ID, &p.Name, &created, &used); err != nil {
			return nil, fmt.Errorf("staff: list passkeys: %w", err)
		}
		p.CreatedAt, _ = store.ParseTime(created)
		if used != "" {
			p.LastUsedAt, _ = store.ParseTime(used)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RemovePasskey removes passkey id of account userID, unless it is the
// account's last second factor and its roles require one.
func (s *Service) RemovePasskey(ctx context.Context, by audit.Entry, userID, id int64) error {
	_, err := s.update(ctx, by, userID, "auth.remove_passkey", func(tx *sql.Tx, u User) (map[string]any, error) {
		var name string
		err := tx.QueryRowContext(ctx, `SELECT name FROM webauthn_credentials WHERE id = ? AND user_id = ?`, id, userID).Scan(&name)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, apperr.New(apperr.NotFound, "no passkey %d", id)
		} else if err != nil {
			return nil, fmt.Errorf("staff: remove passkey: %w", err)
		}
		if !u.TOTPEnabled && u.Passkeys == 1 && s.Requires2FA(u) {
			return nil, apperr.New(apperr.Conflict, "%q is your only second factor, which your roles require: add another (a passkey or an authenticator app) before removing it", name)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webauthn_credentials WHERE id = ?`, id); err != nil {
			return nil, fmt.Errorf("staff: remove passkey: %w", err)
		}
		n, err := s.endCredentials(ctx, tx, userID, "two-factor changed")
		return map[string]any{"passkey": name, "passkey_id": id, "other_sessions_ended": true, "tokens_revoked": n}, err
	})
	return err
}
