package staff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/store"
)

// Token is a personal API token, as listed (the secret is never stored).
type Token struct {
	ID         int64
	UserID     int64
	Name       string
	Prefix     string // first characters of the token, to recognise it
	CreatedAt  time.Time
	LastUsedAt time.Time // zero when never used
	RevokedAt  time.Time // zero while active
}

// Active reports whether the token can still be used.
func (t Token) Active() bool { return t.RevokedAt.IsZero() }

const tokenPrefix = "ptl_"

func hashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// CreateToken issues a token for account id and returns its secret, which
// is shown once and stored only as a SHA-256 hash.
func (s *Service) CreateToken(ctx context.Context, by audit.Entry, userID int64, name string) (string, Token, error) {
	name = strings.TrimSpace(name)
	var v apperr.Validation
	if name == "" {
		v.Add("name", "is required; say what the token is for")
	} else if len(name) > 80 {
		v.Add("name", "is longer than 80 characters")
	}
	if err := v.Err(); err != nil {
		return "", Token{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, fmt.Errorf("staff: token: %w", err)
	}
	plain := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	var tok Token
	_, err := s.update(ctx, by, userID, "token.create", func(tx *sql.Tx, u User) (map[string]any, error) {
		now := s.now()
		res, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) VALUES (?, ?, ?, ?, ?)`,
			userID, name, plain[:10], hashToken(plain), store.Time(now))
		if err != nil {
			return nil, fmt.Errorf("staff: create token: %w", err)
		}
		id, _ := res.LastInsertId()
		tok = Token{ID: id, UserID: userID, Name: name, Prefix: plain[:10], CreatedAt: now}
		return map[string]any{"token_id": id, "name": name, "prefix": tok.Prefix}, nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return plain, tok, nil
}

// ListTokens returns account id's tokens, newest first.
func (s *Service) ListTokens(ctx context.Context, userID int64) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, user_id, name, prefix, created_at, COALESCE(last_used_at, ''), COALESCE(revoked_at, '')
		FROM api_tokens WHERE user_id = ? ORDER BY id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("staff: list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var t Token
		var created, used, revoked string
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &t.Prefix, &created, &used, &revoked); err != nil {
			return nil, fmt.Errorf("staff: scan token: %w", err)
		}
		t.CreatedAt, _ = store.ParseTime(created)
		if used != "" {
			t.LastUsedAt, _ = store.ParseTime(used)
		}
		if revoked != "" {
			t.RevokedAt, _ = store.ParseTime(revoked)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes token tokenID of account userID.
func (s *Service) RevokeToken(ctx context.Context, by audit.Entry, userID, tokenID int64) error {
	_, err := s.update(ctx, by, userID, "token.revoke", func(tx *sql.Tx, u User) (map[string]any, error) {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL`,
			store.Time(s.now()), tokenID, userID)
		if err != nil {
			return nil, fmt.Errorf("staff: revoke token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil, apperr.New(apperr.NotFound, "no active token %d", tokenID)
		}
		return map[string]any{"token_id": tokenID}, nil
	})
	return err
}

// ErrBadToken answers any unusable API token.
var ErrBadToken = apperr.New(apperr.Unauthorized, "the API token is missing, unknown, revoked, or belongs to a disabled account")

// AuthenticateToken returns the account a token belongs to.
func (s *Service) AuthenticateToken(ctx context.Context, plain string) (User, Token, error) {
	if !strings.HasPrefix(plain, tokenPrefix) {
		return User{}, Token{}, ErrBadToken
	}
	var t Token
	err := s.db.QueryRowContext(ctx, `SELECT t.id, t.user_id, t.name, t.prefix FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled = 0`, hashToken(plain)).Scan(&t.ID, &t.UserID, &t.Name, &t.Prefix)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, Token{}, ErrBadToken
	} else if err != nil {
		return User{}, Token{}, fmt.Errorf("staff: authenticate token: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, store.Time(s.now()), t.ID); err != nil {
		return User{}, Token{}, fmt.Errorf("staff: token last used: %w", err)
	}
	u, err := s.Get(ctx, t.UserID)
	return u, t, err
}
