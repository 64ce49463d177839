// Package staff manages the portal's staff accounts: roles, passwords,
// two-factor authentication, sign-in throttling and personal API tokens.
// Every change is appended to the audit trail in the same transaction.
package staff

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/store"
)

// User is a staff account.
type User struct {
	ID                 int64
	Email              string
	Name               string
	Roles              []Role
	MustChangePassword bool
	TOTPEnabled        bool
	// Passkeys counts the account's passkeys and security keys.
	Passkeys int
	Disabled bool
	// CredentialsVersion grows with every change of the account's
	// credentials or roles; a session signed in under an older version is
	// void (see EndCredentials).
	CredentialsVersion int64
	// SingleSignOn is set for an account an OpenID provider vouches for
	// (see federated.go): it has no usable portal password and takes its
	// roles from the provider's groups.
	SingleSignOn bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Has reports whether u holds any of roles.
func (u User) Has(roles ...Role) bool {
	for _, r := range roles {
		if slices.Contains(u.Roles, r) {
			return true
		}
	}
	return false
}

// HasSecondFactor reports whether u can prove a second factor: an
// authenticator app (TOTP) or a passkey.
func (u User) HasSecondFactor() bool { return u.TOTPEnabled || u.Passkeys > 0 }

// Label names the user in the audit trail.
func (u User) Label() string { return fmt.Sprintf("user:%d %s", u.ID, u.Email) }

// DisplayName is the user's name, or their email when they have none.
func (u User) DisplayName() string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

// Config tunes the staff service.
type Config struct {
	// Require2FA lists the roles that must enrol two-factor authentication.
	Require2FA []Role
	// LocalAccountsNeed2FA makes two-factor authentication required for
	// every account that signs in with a portal password, whatever its
	// roles: set when single sign-on is on, where such accounts are the
	// break-glass way in.
	LocalAccountsNeed2FA bool
	// Issuer names the portal in authenticator apps.
	Issuer string
	// Hash sets the argon2id cost.
	Hash HashParams
	// Sign-in limits (see signin.go): within Window, at most
	// MaxAccountSourceFailures failed passwords for one account from one
	// source, MaxIPFailures from one source for any accounts, and
	// MaxAccountFailures for one account from anywhere except its known
	// devices. A device is known for DeviceLife after its last sign-in; an
	// account keeps its MaxDevices most recent.
	MaxAccountSourceFailures int
	MaxIPFailures            int
	MaxAccountFailures       int
	Window                   time.Duration
	DeviceLife               time.Duration
	MaxDevices               int
	// Second factor: at most MaxCodeFailures wrong codes per account within
	// Window (whatever the sign-in they came from), at most
	// MaxCodesPerSignIn for one pending sign-in, which is void after that or
	// after PendingSignInLife.
	MaxCodeFailures   int
	MaxCodesPerSignIn int
	PendingSignInLife time.Duration
	// Passkeys is the relying party for passkeys (see PasskeyOriginFor);
	// zero turns passkeys off.
	Passkeys PasskeyOrigin
}

// DefaultConfig is the production configuration.
func DefaultConfig() Config {
	return Config{
		Require2FA:               slices.Clone(AllRoles),
		Issuer:                   "Portal",
		Hash:                     DefaultHashParams,
		MaxAccountSourceFailures: 5,
		MaxIPFailures:            20,
		MaxAccountFailures:       30,
		Window:                   15 * time.Minute,
		DeviceLife:               90 * 24 * time.Hour,
		MaxDevices:               20,
		MaxCodeFailures:          10,
		MaxCodesPerSignIn:        5,
		PendingSignInLife:        5 * time.Minute,
	}
}

// Service manages staff accounts.
type Service struct {
	db     *store.DB
	audit  *audit.Log
	sealer *Sealer
	cfg    Config
	now    func() time.Time
	// OnDisabled, when set, is called after an account is disabled (and
	// the change committed); package access revokes its AWS access there.
	OnDisabled func(ctx context.Context, by audit.Entry, u User)
	// dummyHash is checked against when an email is unknown, so that the
	// time taken does not reveal which accounts exist.
	dummyHash string
	// webauthn is the passkey relying party; nil (and webauthnErr says
	// why) when passkeys are unavailable.
	webauthn    *webauthn.WebAuthn
	webauthnErr error
}

// NewService returns a staff service.
func NewService(db *store.DB, log *audit.Log, sealer *Sealer, cfg Config, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	dummy, _ := HashPassword(OneTimePassword(), cfg.Hash)
	s := &Service{db: db, audit: log, sealer: sealer, cfg: cfg, now: now, dummyHash: dummy}
	s.initPasskeys()
	return s
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// Requires2FA reports whether u must use the portal's two-factor
// authentication: never for a single sign-on account (its provider checks
// its factors), always for a local account when single sign-on is on
// (local accounts are then for break-glass use), else by role.
func (s *Service) Requires2FA(u User) bool {
	switch {
	case u.SingleSignOn:
		return false
	case s.cfg.LocalAccountsNeed2FA:
		return true
	}
	return u.Has(s.cfg.Require2FA...)
}

// NewUser is the input for creating an account.
type NewUser struct {
	Email string
	Name  string
	Roles []Role
}

// Validate checks the input and names each bad field.
func (n *NewUser) Validate() error {
	var v apperr.Validation
	// Emails are stored lower-case: case variants are one account.
	n.Email = strings.ToLower(strings.TrimSpace(n.Email))
	n.Name = strings.TrimSpace(n.Name)
	if n.Email == "" {
		v.Add("email", "is required")
	} else if a, err := mail.ParseAddress(n.Email); err != nil || a.Address != n.Email {
		v.Add("email", "is not a valid email address")
	} else if len(n.Email) > 254 {
		v.Add("email", "is longer than 254 characters")
	}
	if len(n.Name) > 100 {
		v.Add("name", "is longer than 100 characters")
	}
	if len(n.Roles) == 0 {
		v.Add("roles", "choose at least one role")
	}
	return v.Err()
}

// Create adds an account with a one-time password, which it returns; the
// holder must change it at first sign-in.
func (s *Service) Create(ctx context.Context, by audit.Entry, n NewUser) (User, string, error) {
	if err := n.Validate(); err != nil {
		return User{}, "", err
	}
	otp := OneTimePassword()
	hash, err := HashPassword(otp, s.cfg.Hash)
	if err != nil {
		return User{}, "", err
	}
	var u User
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := store.Time(s.now())
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO users (email, name, password_hash, must_change_password, created_at, updated_at)
			VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (email) DO NOTHING RETURNING id`, n.Email, n.Name, hash, now, now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return &apperr.Error{Kind: apperr.Conflict, Message: "an account with this email already exists",
				Fields: map[string]string{"email": "an account with this email already exists"}}
		} else if err != nil {
			return fmt.Errorf("staff: create %s: %w", n.Email, err)
		}
		if err := setRoles(ctx, tx, id, n.Roles); err != nil {
			return err
		}
		if u, err = getUser(ctx, tx, "u.id = ?", id); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, by, "staff.create", u, map[string]any{"roles": u.Roles, "name": u.Name})
	})
	if err != nil {
		return User{}, "", err
	}
	return u, otp, nil
}

// EnsureAdmin creates an admin account with email when no enabled admin
// exists, returning its one-time password; created is false when an admin
// already exists.
//
// Replicas starting together on one database create one: the check and
// the creation hold the database's first-admin lock.
func (s *Service) EnsureAdmin(ctx context.Context, email string) (u User, otp string, created bool, err error) {
	err = s.db.WithLock(ctx, "first-admin", func(ctx context.Context) error {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users u JOIN user_roles r ON r.user_id = u.id
			WHERE r.role = 'admin' AND u.disabled = 0`).Scan(&n); err != nil {
			return fmt.Errorf("staff: count admins: %w", err)
		}
		if n > 0 {
			return nil
		}
		u, otp, err = s.Create(ctx, audit.Entry{Actor: "system"}, NewUser{Email: email, Name: "First administrator", Roles: []Role{Admin}})
		created = err == nil
		return err
	})
	if err != nil {
		return User{}, "", false, err
	}
	return u, otp, created, nil
}

// Get returns the account with id.
func (s *Service) Get(ctx context.Context, id int64) (User, error) {
	return getUser(ctx, s.db, "u.id = ?", id)
}

// GetByEmail returns the account with email (case-insensitive).
func (s *Service) GetByEmail(ctx context.Context, email string) (User, error) {
	return getUser(ctx, s.db, "u.email = ?", strings.ToLower(strings.TrimSpace(email)))
}

// List returns every account, ordered by email.
func (s *Service) List(ctx context.Context) ([]User, error) {
	return listUsers(ctx, s.db, "1 = 1")
}

type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

const userColumns = `u.id, u.email, u.name, u.must_change_password, u.totp_enabled, u.disabled, u.credentials_version, u.created_at, u.updated_at,
	(SELECT COUNT(*) FROM webauthn_credentials w WHERE w.user_id = u.id),
	COALESCE((SELECT group_concat(role, ',') FROM user_roles r WHERE r.user_id = u.id), ''),
	EXISTS (SELECT 1 FROM sso_identities i WHERE i.user_id = u.id)`

func listUsers(ctx context.Context, q queryer, where string, args ...any) ([]User, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+userColumns+` FROM users u WHERE `+where+` ORDER BY u.email`, args...)
	if err != nil {
		return nil, fmt.Errorf("staff: list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var created, updated, roles string
		if err := rows.Scan(&u.ID, &u.Email, &u.Name, &u.MustChangePassword, &u.TOTPEnabled, &u.Disabled, &u.CredentialsVersion, &created, &updated, &u.Passkeys, &roles, &u.SingleSignOn); err != nil {
			return nil, fmt.Errorf("staff: scan user: %w", err)
		}
		u.CreatedAt, _ = store.ParseTime(created)
		u.UpdatedAt, _ = store.ParseTime(updated)
		for _, r := range strings.Split(roles, ",") {
			if r != "" {
				u.Roles = append(u.Roles, Role(r))
			}
		}
		sortRoles(u.Roles)
		out = append(out, u)
	}
	return out, rows.Err()
}

func getUser(ctx context.Context, q queryer, where string, args ...any) (User, error) {
	us, err := listUsers(ctx, q, where, args...)
	if err != nil {
		return User{}, err
	}
	if len(us) == 0 {
		return User{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no such staff account")
	}
	return us[0], nil
}

func setRoles(ctx context.Context, tx *sql.Tx, id int64, roles []Role) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM user_roles WHERE user_id = ?`, id); err != nil {
		return fmt.Errorf("staff: set roles: %w", err)
	}
	for _, r := range roles {
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, id, string(r)); err != nil {
			return fmt.Errorf("staff: set roles: %w", err)
		}
	}
	return nil
}

func (s *Service) appendAudit(ctx context.Context, tx *sql.Tx, by audit.Entry, action string, target User, details map[string]any) error {
	e := by
	e.Action = action
	e.Target = target.Label()
	e.Details = details
	if _, err := s.audit.Append(ctx, tx, e); err != nil {
		return fmt.Errorf("staff: audit %s: %w", action, err)
	}
	return nil
}

// update runs fn on the account with id inside a transaction and audits it.
func (s *Service) update(ctx context.Context, by audit.Entry, id int64, action string, fn func(tx *sql.Tx, u User) (map[string]any, error)) (User, error) {
	var out User
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		u, err := getUser(ctx, tx, "u.id = ?", id)
		if err != nil {
			return err
		}
		details, err := fn(tx, u)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET updated_at = ? WHERE id = ?`, store.Time(s.now()), id); err != nil {
			return fmt.Errorf("staff: %s: %w", action, err)
		}
		if out, err = getUser(ctx, tx, "u.id = ?", id); err != nil {
			return err
		}
		return s.appendAudit(ctx, tx, by, action, out, details)
	})
	return out, err
}

// lastEnabledAdmin reports whether u is the only enabled admin.
func lastEnabledAdmin(ctx context.Context, tx *sql.Tx, u User) (bool, error) {
	if !u.Has(Admin) || u.Disabled {
		return false, nil
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users u JOIN user_roles r ON r.user_id = u.id
		WHERE r.role = 'admin' AND u.disabled = 0 AND u.id != ?`, u.ID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("staff: count admins: %w", err)
	}
	return n == 0, nil
}

// SetRoles replaces the roles of account id.
func (s *Service) SetRoles(ctx context.Context, by audit.Entry, id int64, roles []Role) (User, error) {
	if len(roles) == 0 {
		return User{}, &apperr.Error{Kind: apperr.Invalid, Message: "choose at least one role", Fields: map[string]string{"roles": "choose at least one role"}}
	}
	sortRoles(roles)
	return s.update(ctx, by, id, "staff.set_roles", func(tx *sql.Tx, u User) (map[string]any, error) {
		if u.SingleSignOn {
			return nil, errFederated(u, "its roles come from its groups at the identity provider; change them there")
		}
		return s.setRolesTx(ctx, tx, u, roles)
	})
}

// setRolesTx gives u roles, refusing to take admin from the last enabled
// admin, and ends u's sessions.
func (s *Service) setRolesTx(ctx context.Context, tx *sql.Tx, u User, roles []Role) (map[string]any, error) {
	if !slices.Contains(roles, Admin) {
		if last, err := lastEnabledAdmin(ctx, tx, u); err != nil {
			return nil, err
		} else if last {
			return nil, apperr.Wrap(apperr.Conflict, ErrLastAdmin, "%s is the last enabled admin; make someone else an admin first", u.Email)
		}
	}
	if err := setRoles(ctx, tx, u.ID, roles); err != nil {
		return nil, err
	}
	// Sessions end (they were signed in under other roles); tokens stay,
	// and read the new roles on their next request.
	if _, err := s.endCredentials(ctx, tx, u.ID, ""); err != nil {
		return nil, err
	}
	return map[string]any{"before": u.Roles, "after": roles, "sessions_ended": true}, nil
}

// SetDisabled disables or re-enables account id. Disabling ends its
// sessions, revokes its API tokens, then calls OnDisabled.
func (s *Service) SetDisabled(ctx context.Context, by audit.Entry, id int64, disabled bool) (User, error) {
	action := "staff.enable"
	if disabled {
		action = "staff.disable"
	}
	u, err := s.update(ctx, by, id, action, func(tx *sql.Tx, u User) (map[string]any, error) {
		if disabled {
			if last, err := lastEnabledAdmin(ctx, tx, u); err != nil {
				return nil, err
			} else if last {
				return nil, apperr.New(apperr.Conflict, "%s is the last enabled admin and cannot be disabled", u.Email)
			}
			n, err := s.endCredentials(ctx, tx, id, "account disabled")
			if err != nil {
				return nil, err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = 1 WHERE id = ?`, id); err != nil {
				return nil, err
			}
			return map[string]any{"sessions_ended": true, "tokens_revoked": n}, nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET disabled = 0 WHERE id = ?`, id)
		return nil, err
	})
	if err == nil && disabled && s.OnDisabled != nil {
		s.OnDisabled(ctx, by, u)
	}
	return u, err
}

// ResetTwoFactor removes account id's two-factor enrolment; the holder
// enrols again at next sign-in.
func (s *Service) ResetTwoFactor(ctx context.Context, by audit.Entry, id int64) (User, error) {
	return s.update(ctx, by, id, "staff.reset_2fa", func(tx *sql.Tx, u User) (map[string]any, error) {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = '', totp_enabled = 0, totp_last_step = 0 WHERE id = ?`, id); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM webauthn_credentials WHERE user_id = ?`, id); err != nil {
			return nil, err
		}
		n, err := s.endCredentials(ctx, tx, id, "two-factor reset")
		return map[string]any{"sessions_ended": true, "tokens_revoked": n}, err
	})
}

// ResetPassword gives account id a new one-time password, which it returns.
func (s *Service) ResetPassword(ctx context.Context, by audit.Entry, id int64) (User, string, error) {
	otp := OneTimePassword()
	hash, err := HashPassword(otp, s.cfg.Hash)
	if err != nil {
		return User{}, "", err
	}
	u, err := s.update(ctx, by, id, "staff.reset_password", func(tx *sql.Tx, u User) (map[string]any, error) {
		if u.SingleSignOn {
			return nil, errFederated(u, "it has no portal password")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, must_change_password = 1 WHERE id = ?`, hash, id); err != nil {
			return nil, err
		}
		n, err := s.endCredentials(ctx, tx, id, "password reset")
		return map[string]any{"sessions_ended": true, "tokens_revoked": n}, err
	})
	return u, otp, err
}

// ChangePassword replaces the password of account id after checking the
// current one.
func (s *Service) ChangePassword(ctx context.Context, by audit.Entry, id int64, current, next, confirm string) error {
	u, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if u.SingleSignOn {
		return errFederated(u, "its password is managed by the identity provider")
	}
	var v apperr.Validation
	var hash string
	if err := s.db.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, id).Scan(&hash); err != nil {
		return fmt.Errorf("staff: change password: %w", err)
	}
	if ok, err := CheckPassword(hash, current); err != nil {
		return err
	} else if !ok {
		v.Add("current", "is not your current password")
	}
	if msg := CheckPasswordPolicy(next, u.Email, strings.Fields(u.Name)...); msg != "" {
		v.Add("new", msg)
	} else if next == current {
		v.Add("new", "must differ from your current password")
	}
	if confirm != next {
		v.Add("confirm", "does not match the new password")
	}
	if err := v.Err(); err != nil {
		return err
	}
	newHash, err := HashPassword(next, s.cfg.Hash)
	if err != nil {
		return err
	}
	_, err = s.update(ctx, by, id, "auth.change_password", func(tx *sql.Tx, u User) (map[string]any, error) {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, must_change_password = 0 WHERE id = ?`, newHash, id); err != nil {
			return nil, err
		}
		n, err := s.endCredentials(ctx, tx, id, "password changed")
		return map[string]any{"other_sessions_ended": true, "tokens_revoked": n}, err
	})
	return err
}

// endCredentials makes every session of account id void (by moving its
// credentials version on) and, unless reason is "", revokes its active API
// tokens with that reason, returning how many. The session that made a
// change of its own account's credentials stays signed in by taking the
// new version (package web does that).
func (s *Service) endCredentials(ctx context.Context, tx *sql.Tx, id int64, reason string) (int64, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE users SET credentials_version = credentials_version + 1 WHERE id = ?`, id); err != nil {
		return 0, fmt.Errorf("staff: end sessions: %w", err)
	}
	if reason == "" {
		return 0, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL`,
		store.Time(s.now()), reason, id)
	if err != nil {
		return 0, fmt.Errorf("staff: revoke tokens: %w", err)
	}
	return res.RowsAffected()
}

// RecordSignIn audits a completed sign-in (after two-factor, if any).
func (s *Service) RecordSignIn(ctx context.Context, by audit.Entry, u User, method string) error {
	e := by
	e.Action, e.Target, e.Details = "auth.sign_in", u.Label(), map[string]any{"method": method}
	_, err := s.audit.Record(ctx, e)
	return err
}

// RecordSignOut audits a sign-out.
func (s *Service) RecordSignOut(ctx context.Context, by audit.Entry, u User) error {
	e := by
	e.Action, e.Target = "auth.sign_out", u.Label()
	_, err := s.audit.Record(ctx, e)
	return err
}
