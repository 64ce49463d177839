package staff

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"image/png"
	"net/url"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/store"
)

const totpPeriod = 30

// Enrolment is a freshly generated two-factor secret awaiting confirmation.
type Enrolment struct {
	Secret string // base32, shown for manual entry
	URL    string // otpauth:// URL
	QRPNG  string // data: URL of a PNG QR code of URL
}

// BeginEnrolment generates a new TOTP secret for u. Nothing is stored until
// ConfirmEnrolment is given a valid code for it.
func (s *Service) BeginEnrolment(u User) (Enrolment, error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.Issuer, AccountName: u.Email, Period: totpPeriod, Algorithm: otp.AlgorithmSHA1, Digits: otp.DigitsSix})
	if err != nil {
		return Enrolment{}, fmt.Errorf("staff: generate two-factor secret: %w", err)
	}
	return enrolment(key)
}

// EnrolmentFor shows an already generated secret again (after a mistyped
// code), so the person need not scan a new one.
func (s *Service) EnrolmentFor(u User, secret string) (Enrolment, error) {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", s.cfg.Issuer)
	v.Set("period", "30")
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	key, err := otp.NewKeyFromURL((&url.URL{Scheme: "otpauth", Host: "totp", Path: "/" + s.cfg.Issuer + ":" + u.Email, RawQuery: v.Encode()}).String())
	if err != nil {
		return Enrolment{}, fmt.Errorf("staff: two-factor secret: %w", err)
	}
	return enrolment(key)
}

func enrolment(key *otp.Key) (Enrolment, error) {
	img, err := key.Image(240, 240)
	if err != nil {
		return Enrolment{}, fmt.Errorf("staff: QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrolment{}, fmt.Errorf("staff: QR code: %w", err)
	}
	return Enrolment{Secret: key.Secret(), URL: key.URL(), QRPNG: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// validateCode checks code against secret and returns the time step it
// matched, refusing steps at or before lastStep so that a code is never
// accepted twice.
func (s *Service) validateCode(secret, code string, lastStep int64) (int64, bool) {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != 6 {
		return 0, false
	}
	now := s.now()
	for _, skew := range []int64{0, -1, 1} {
		t := now.Add(time.Duration(skew*totpPeriod) * time.Second)
		step := t.Unix() / totpPeriod
		if step <= lastStep {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, t, totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && want == code {
			return step, true
		}
	}
	return 0, false
}

// ConfirmEnrolment stores secret for account id once code proves the
// authenticator app holds it.
func (s *Service) ConfirmEnrolment(ctx context.Context, by audit.Entry, id int64, secret, code string) error {
	step, ok := s.validateCode(secret, code, 0)
	if !ok {
		return &apperr.Error{Kind: apperr.Invalid, Message: "the code does not match; check your device's clock and try the next code",
			Fields: map[string]string{"code": "does not match; enter the current 6-digit code from your app"}}
	}
	_, err := s.update(ctx, by, id, "auth.enrol_2fa", func(tx *sql.Tx, u User) (map[string]any, error) {
		sealed := s.sealer.Seal(secret, fmt.Sprintf("totp:%d", id))
		if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = ?, totp_enabled = 1, totp_last_step = ? WHERE id = ?`, sealed, step, id); err != nil {
			return nil, err
		}
		n, err := s.endCredentials(ctx, tx, id, "two-factor changed")
		return map[string]any{"factor": "totp", "other_sessions_ended": true, "tokens_revoked": n}, err
	})
	return err
}

// VerifyCode checks a two-factor code for account id, refusing replays. Once
// the account has had Config.MaxCodeFailures wrong codes within
// Config.Window, every code is refused (the right one too) until the window
// moves on, so a stolen password does not buy unlimited guesses.
func (s *Service) VerifyCode(ctx context.Context, by audit.Entry, id int64, code string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.codeLimit(ctx, tx, id); err != nil {
			return err
		}
		var sealed string
		var enabled bool
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT totp_secret, totp_enabled, totp_last_step FROM users WHERE id = ?`, id).Scan(&sealed, &enabled, &last); err != nil {
			return fmt.Errorf("staff: verify code: %w", err)
		}
		if !enabled {
			return apperr.New(apperr.Invalid, "two-factor authentication is not set up for this account")
		}
		secret, err := s.sealer.Open(sealed, fmt.Sprintf("totp:%d", id))
		if err != nil {
			return err
		}
		step, ok := s.validateCode(secret, code, last)
		if !ok {
			return errBadCode
		}
		// Conditional, so that a code verified at the same time on another
		// replica is accepted once.
		res, err := tx.ExecContext(ctx, `UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?`, step, id, step)
		if err != nil {
			return fmt.Errorf("staff: verify code: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("staff: verify code: %w", err)
		} else if n == 0 {
			return errBadCode
		}
		return nil
	})
}

// codeLimit refuses a second factor for account id once it has had
// Config.MaxCodeFailures failures (wrong codes or passkeys) within
// Config.Window.
func (s *Service) codeLimit(ctx context.Context, tx *sql.Tx, id int64) error {
	var fails int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM second_factor_failures WHERE user_id = ? AND at > ?`,
		id, store.Time(s.now().Add(-s.cfg.Window))).Scan(&fails); err != nil {
		return fmt.Errorf("staff: second factor: %w", err)
	}
	if fails >= s.cfg.MaxCodeFailures {
		return apperr.New(apperr.TooMany, "Too many wrong two-factor codes for this account. Wait %d minutes, then sign in again.", int(s.cfg.Window.Minutes()))
	}
	return nil
}

var errBadCode = &apperr.Error{Kind: apperr.Invalid, Message: "the code is not valid",
	Fields: map[string]string{"code": "is not valid; enter the current 6-digit code from your app"}}

// RecordFailedCode counts a wrong two-factor code against the account and
// audits it, in one transaction.
func (s *Service) RecordFailedCode(ctx context.Context, by audit.Entry, u User) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO second_factor_failures (user_id, at) VALUES (?, ?)`, u.ID, store.Time(s.now())); err != nil {
			return fmt.Errorf("staff: record failed code: %w", err)
		}
		e := by
		e.Action, e.Target, e.Details = "auth.2fa_failed", u.Label(), nil
		if _, err := s.audit.Append(ctx, tx, e); err != nil {
			return fmt.Errorf("staff: audit failed code: %w", err)
		}
		return nil
	})
}

// RecordAbandonedSignIn audits a pending sign-in made void by too many wrong
// codes.
func (s *Service) RecordAbandonedSignIn(ctx context.Context, by audit.Entry, u User, reason string) error {
	e := by
	e.Action, e.Target, e.Details = "auth.sign_in_void", u.Label(), map[string]any{"reason": reason}
	_, err := s.audit.Record(ctx, e)
	return err
}
