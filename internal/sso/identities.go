package sso

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"portal/internal/apperr"
	"portal/internal/store"
)

// Link is an account's link to its provider, as stored.
type Link struct {
	UserID          int64
	Issuer, Subject string
	Email           string
	Groups          []string
	// State is "active" or "suspended"; Reason says why when suspended.
	State      string
	Reason     string
	ReasonCode Reason
	// VerifiedAt is the last time the provider vouched for the account;
	// CheckedAt the last time the portal asked, CheckError why that got no
	// answer.
	VerifiedAt, CheckedAt, CreatedAt, LastSignInAt time.Time
	CheckError                                     string
	// HasRefreshToken says whether the provider gave one (without it the
	// account is checked through userinfo while its access token lasts).
	HasRefreshToken bool
}

// States of a link.
const (
	Active    = "active"
	Suspended = "suspended"
)

const linkColumns = `user_id, issuer, subject, email, groups, state, reason, verified_at, checked_at, check_error, created_at, last_sign_in_at, refresh_token != ''`

func scanLink(row interface{ Scan(...any) error }) (Link, error) {
	var l Link
	var groups, verified, checked, created, signedIn string
	if err := row.Scan(&l.UserID, &l.Issuer, &l.Subject, &l.Email, &groups, &l.State, &l.Reason, &verified, &checked, &l.CheckError, &created, &signedIn, &l.HasRefreshToken); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Link{}, apperr.Wrap(apperr.NotFound, store.ErrNotFound, "no single sign-on link")
		}
		return Link{}, fmt.Errorf("sso: read link: %w", err)
	}
	_ = json.Unmarshal([]byte(groups), &l.Groups)
	l.VerifiedAt, _ = store.ParseTime(verified)
	l.CheckedAt, _ = store.ParseTime(checked)
	l.CreatedAt, _ = store.ParseTime(created)
	l.LastSignInAt, _ = store.ParseTime(signedIn)
	if code, text, ok := cutReason(l.Reason); ok {
		l.ReasonCode, l.Reason = code, text
	}
	return l, nil
}

// Reasons are stored as "code: text".
func storedReason(code Reason, text string) string { return string(code) + ": " + text }

func cutReason(s string) (Reason, string, bool) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == ':' && s[i+1] == ' ' {
			return Reason(s[:i]), s[i+2:], true
		}
	}
	return "", s, false
}

func (s *Service) identityBySubject(ctx context.Context, subject string) (Link, error) {
	return scanLink(s.o.DB.QueryRowContext(ctx, `SELECT `+linkColumns+` FROM sso_identities WHERE issuer = ? AND subject = ?`, s.cfg.Issuer, subject))
}

// LinkOf returns account userID's link to its provider.
func (s *Service) LinkOf(ctx context.Context, userID int64) (Link, error) {
	return scanLink(s.o.DB.QueryRowContext(ctx, `SELECT `+linkColumns+` FROM sso_identities WHERE user_id = ?`, userID))
}

func (s *Service) sealTokens(userID int64, id identity) (refresh, access string, expires any) {
	if id.token == nil {
		return "", "", nil
	}
	if id.token.RefreshToken != "" {
		refresh = s.o.Sealer.Seal(id.token.RefreshToken, "sso-refresh:"+strconv.FormatInt(userID, 10))
	}
	if id.token.AccessToken != "" {
		access = s.o.Sealer.Seal(id.token.AccessToken, "sso-access:"+strconv.FormatInt(userID, 10))
		if !id.token.Expiry.IsZero() {
			expires = store.Time(id.token.Expiry)
		}
	}
	return refresh, access, expires
}

func (s *Service) insertIdentity(ctx context.Context, tx *sql.Tx, userID int64, id identity) error {
	now := store.Time(s.o.Now())
	refresh, access, expires := s.sealTokens(userID, id)
	_, err := tx.ExecContext(ctx, `INSERT INTO sso_identities (user_id, issuer, subject, email, groups, refresh_token, access_token, access_expires_at,
		state, reason, verified_at, checked_at, check_error, created_at, last_sign_in_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', '', ?, ?, '', ?, ?)`,
		userID, s.cfg.Issuer, id.subject, id.email, groupsJSON(id.groups), refresh, access, expires, now, now, now, now)
	if err != nil {
		return fmt.Errorf("sso: link account: %w", err)
	}
	return nil
}

// recordSignIn stores what the provider just said about account userID,
// at a sign-in or (recheck) a re-check, and makes the link active: the
// provider vouched for the person. A refresh answer without a new refresh
// token keeps the old one.
func (s *Service) recordSignIn(ctx context.Context, userID int64, id identity, recheck bool) error {
	now := store.Time(s.o.Now())
	refresh, access, expires := s.sealTokens(userID, id)
	q := `UPDATE sso_identities SET email = ?, groups = ?, refresh_token = CASE WHEN ? = '' THEN refresh_token ELSE ? END,
		access_token = ?, access_expires_at = ?, state = 'active', reason = '', verified_at = ?, checked_at = ?, check_error = ''`
	args := []any{id.email, groupsJSON(id.groups), refresh, refresh, access, expires, now, now}
	if !recheck {
		q += `, last_sign_in_at = ?`
		args = append(args, now)
	}
	if _, err := s.o.DB.ExecContext(ctx, q+` WHERE user_id = ?`, append(args, userID)...); err != nil {
		return fmt.Errorf("sso: record sign-in: %w", err)
	}
	return nil
}

// suspendTx suspends account userID's link (once: an already suspended
// link keeps its first reason) and audits it.
func (s *Service) suspendTx(ctx context.Context, tx *sql.Tx, userID int64, code Reason, why string) error {
	now := store.Time(s.o.Now())
	res, err := tx.ExecContext(ctx, `UPDATE sso_identities SET state = 'suspended', reason = ?, checked_at = ?, check_error = '',
		refresh_token = '', access_token = '', access_expires_at = NULL WHERE user_id = ? AND state = 'active'`, storedReason(code, why), now, userID)
	if err != nil {
		return fmt.Errorf("sso: suspend: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	u, err := s.o.Staff.GetTx(ctx, tx, userID)
	if err != nil {
		return err
	}
	_, err = s.o.Audit.Append(ctx, tx, auditEntry("sso.suspended", u.Label(), map[string]any{"reason": string(code), "detail": why}))
	return err
}

func decodeJSON(res *http.Response, v any) error {
	return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(v)
}
