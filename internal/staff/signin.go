package staff

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/store"
)

// Sign-in limits.
//
// Every failed password is counted three ways within Config.Window: against
// the account and the source together (MaxAccountSourceFailures), against
// the source alone whatever the account (MaxIPFailures), and against the
// account from anywhere (MaxAccountFailures). A source is an IPv4 address or
// an IPv6 /64 network (one host usually holds a whole /64). An attempt made
// while a limit holds is refused before the password is checked, and is
// neither counted nor recorded: only attempts that could have succeeded
// count, so refusals cannot extend a lock-out.
//
// So someone guessing from their own address locks out only that address
// (for that account, or for all after MaxIPFailures). Guessing from many
// addresses reaches the account-wide limit, but that limit does not apply
// to a known device: a browser that completed a sign-in to the account
// before (a random token in a cookie, Config.DeviceLife). The account's
// owner, at their usual browser, can always still sign in; a stranger's
// addresses cannot keep them out.
//
// What an anonymous request leaves behind is bounded and fixed in shape: one
// login_attempts row and one audit record (action, email or "(not an email
// address)", a reason from a fixed list, the source address and request ID)
// per counted attempt, plus one auth.sign_in_throttled record when a limit
// starts to hold. Rows older than the window are deleted as new ones come.

// ErrBadCredentials is the one answer to a wrong email or password, so the
// answer does not reveal which accounts exist.
var ErrBadCredentials = apperr.New(apperr.Unauthorized, "Email or password is incorrect.")

// maxEmailLen is the longest address SMTP allows (RFC 5321 4.5.3.1.3).
const maxEmailLen = 254

// maxPasswordBytes bounds the password a sign-in checks; longer ones are
// refused without hashing them.
const maxPasswordBytes = 1024

// notAnEmail stands for sign-in input that cannot be an account's email,
// in login_attempts ("") and the audit trail.
const notAnEmail = "(not an email address)"

// NormalizeEmail returns the form an email is looked up and counted under:
// trimmed and lower-case. ok is false when it cannot be an account's email
// (longer than 254 bytes, not UTF-8, or not shaped like local@domain without
// spaces, control characters or the specials of RFC 5322), so that it is
// neither looked up nor stored.
func NormalizeEmail(s string) (email string, ok bool) {
	if len(s) > 4*maxEmailLen || !utf8.ValidString(s) {
		return "", false
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > maxEmailLen {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 {
		return "", false
	}
	for _, r := range s {
		if r <= ' ' || (r >= 0x7f && r <= 0xa0) || unicode.IsSpace(r) || strings.ContainsRune(`"(),:;<>[\]`, r) {
			return "", false
		}
	}
	return s, true
}

// SourceOf is the source failures from ip are counted against: the IPv4
// address, the IPv6 /64 network, or "unknown".
func SourceOf(ip string) string {
	a := net.ParseIP(ip)
	switch {
	case a == nil:
		return "unknown"
	case a.To4() != nil:
		return a.To4().String()
	}
	return (&net.IPNet{IP: a.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

// PasswordSignIn is one attempt to sign in with a password.
type PasswordSignIn struct {
	Email    string
	Password string
	// Device is the known-device token the browser sent ("" for none); see
	// RememberDevice.
	Device string
}

// limits are the failures counted against one attempt.
type limits struct{ source, accountSource, account int }

// Authenticate checks an email and password within the sign-in limits
// above, and records the attempt (login_attempts and the audit trail) unless
// a limit refused it. A refusal is apperr.TooMany; a wrong email or
// password is ErrBadCredentials, whichever it was.
func (s *Service) Authenticate(ctx context.Context, by audit.Entry, in PasswordSignIn) (User, error) {
	email, valid := NormalizeEmail(in.Email)
	source := SourceOf(by.SourceIP)
	now := s.now()
	n, err := s.failures(ctx, email, source, now)
	if err != nil {
		return User{}, err
	}
	known := false
	if valid && n.account >= s.cfg.MaxAccountFailures {
		if known, err = s.knownDevice(ctx, email, in.Device, now); err != nil {
			return User{}, err
		}
	}
	mins := int(s.cfg.Window.Minutes())
	switch {
	case n.source >= s.cfg.MaxIPFailures:
		return User{}, apperr.New(apperr.TooMany, "Too many failed sign-in attempts from your network. Wait %d minutes and try again.", mins)
	case n.accountSource >= s.cfg.MaxAccountSourceFailures:
		return User{}, apperr.New(apperr.TooMany, "Too many failed sign-in attempts. Wait %d minutes and try again.", mins)
	case n.account >= s.cfg.MaxAccountFailures && !known:
		return User{}, apperr.New(apperr.TooMany, "Too many failed sign-in attempts for this account from several places. Wait %d minutes, or sign in from a browser you have signed in with before.", mins)
	}

	if !valid || len(in.Password) > maxPasswordBytes {
		// Nothing to look up; the answer is the same as for a wrong password.
		return User{}, s.recordAttempt(ctx, by, email, source, n, false, "not an account")
	}
	var id int64
	var hash string
	var disabled bool
	err = s.db.QueryRowContext(ctx, `SELECT id, password_hash, disabled FROM users WHERE email = ?`, email).Scan(&id, &hash, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		// Spend the same time as a real check so timing does not reveal accounts.
		_, _ = CheckPassword(s.dummyHash, in.Password)
		return User{}, s.recordAttempt(ctx, by, email, source, n, false, "unknown account")
	} else if err != nil {
		return User{}, fmt.Errorf("staff: authenticate: %w", err)
	}
	ok, err := CheckPassword(hash, in.Password)
	switch {
	case err != nil:
		return User{}, err
	case !ok:
		return User{}, s.recordAttempt(ctx, by, email, source, n, false, "wrong password")
	case disabled:
		return User{}, s.recordAttempt(ctx, by, email, source, n, false, "account disabled")
	}
	u, err := s.Get(ctx, id)
	if err != nil {
		return User{}, err
	}
	return u, s.recordAttempt(ctx, by, email, source, n, true, "password accepted")
}

// failures counts the failed attempts within the window that concern email
// and source.
func (s *Service) failures(ctx context.Context, email, source string, now time.Time) (limits, error) {
	var n limits
	err := s.db.QueryRowContext(ctx, `SELECT
			COALESCE(SUM(CASE WHEN ip = ? THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN ip = ? AND email = ? AND email != '' THEN 1 ELSE 0 END), 0),
			COALESCE(SUM(CASE WHEN email = ? AND email != '' THEN 1 ELSE 0 END), 0)
		FROM login_attempts WHERE ok = 0 AND at > ? AND (ip = ? OR email = ?)`,
		source, source, email, email, store.Time(now.Add(-s.cfg.Window)), source, email).Scan(&n.source, &n.accountSource, &n.account)
	if err != nil {
		return n, fmt.Errorf("staff: sign-in limits: %w", err)
	}
	return n, nil
}

// recordAttempt stores a counted attempt and its audit record in one
// transaction, adds an auth.sign_in_throttled record when this failure
// makes a limit hold, and drops rows older than the window. It returns
// ErrBadCredentials for a failure, nil for success.
func (s *Service) recordAttempt(ctx context.Context, by audit.Entry, email, source string, before limits, ok bool, reason string) error {
	now := s.now()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM login_attempts WHERE at <= ?`, store.Time(now.Add(-s.cfg.Window))); err != nil {
			return fmt.Errorf("staff: record attempt: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_attempts (email, ip, at, ok) VALUES (?, ?, ?, ?)`,
			email, source, store.Time(now), ok); err != nil {
			return fmt.Errorf("staff: record attempt: %w", err)
		}
		target := "email:" + email
		if email == "" {
			target = "email:" + notAnEmail
		}
		e := by
		e.Action, e.Target, e.Details = "auth.sign_in_failed", target, map[string]any{"reason": reason}
		if ok {
			e.Action = "auth.password_ok"
		}
		if _, err := s.audit.Append(ctx, tx, e); err != nil {
			return fmt.Errorf("staff: audit sign-in: %w", err)
		}
		if ok {
			return nil
		}
		var scopes []string
		if before.source+1 == s.cfg.MaxIPFailures {
			scopes = append(scopes, "source")
		}
		if email != "" && before.accountSource+1 == s.cfg.MaxAccountSourceFailures {
			scopes = append(scopes, "account and source")
		}
		if email != "" && before.account+1 == s.cfg.MaxAccountFailures {
			scopes = append(scopes, "account, except known devices")
		}
		for _, scope := range scopes {
			e.Action, e.Details = "auth.sign_in_throttled", map[string]any{"limit": scope, "source": source, "minutes": int(s.cfg.Window.Minutes())}
			if _, err := s.audit.Append(ctx, tx, e); err != nil {
				return fmt.Errorf("staff: audit sign-in limit: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !ok {
		return ErrBadCredentials
	}
	return nil
}

// deviceTokenBytes is the size of a known-device token.
const deviceTokenBytes = 32

// RememberDevice records that the browser holding token completed a sign-in
// to account userID, and returns the token the browser should keep: token
// itself when it already belonged to userID (its life starts again), or a
// new one. An account keeps its Config.MaxDevices most recently used
// devices.
func (s *Service) RememberDevice(ctx context.Context, userID int64, token string) (string, error) {
	now := store.Time(s.now())
	out := token
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if token != "" {
			res, err := tx.ExecContext(ctx, `UPDATE known_devices SET last_used_at = ? WHERE token_hash = ? AND user_id = ?`, now, hashToken(token), userID)
			if err != nil {
				return fmt.Errorf("staff: remember device: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				return nil
			}
		}
		raw := make([]byte, deviceTokenBytes)
		if _, err := rand.Read(raw); err != nil {
			return fmt.Errorf("staff: remember device: %w", err)
		}
		out = base64.RawURLEncoding.EncodeToString(raw)
		if _, err := tx.ExecContext(ctx, `INSERT INTO known_devices (user_id, token_hash, created_at, last_used_at) VALUES (?, ?, ?, ?)`,
			userID, hashToken(out), now, now); err != nil {
			return fmt.Errorf("staff: remember device: %w", err)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM known_devices WHERE user_id = ? AND id NOT IN
			(SELECT id FROM known_devices WHERE user_id = ? ORDER BY last_used_at DESC, id DESC LIMIT ?)`, userID, userID, s.cfg.MaxDevices)
		if err != nil {
			return fmt.Errorf("staff: remember device: %w", err)
		}
		return nil
	})
	return out, err
}

// knownDevice reports whether token belongs to the account with email and
// was used within Config.DeviceLife.
func (s *Service) knownDevice(ctx context.Context, email, token string, now time.Time) (bool, error) {
	if token == "" || len(token) > 64 {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM known_devices d JOIN users u ON u.id = d.user_id
		WHERE d.token_hash = ? AND u.email = ? AND d.last_used_at > ?`, hashToken(token), email, store.Time(now.Add(-s.cfg.DeviceLife))).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("staff: known device: %w", err)
	}
	return n > 0, nil
}
