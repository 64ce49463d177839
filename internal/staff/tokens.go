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
	"slices"
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
	Scopes     Scopes
	LifeDays   int // how long it lasts from creation or renewal
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time // zero when never used
	RevokedAt  time.Time // zero while not revoked
	// RevokedReason says why a revoked token was revoked: "" when its owner
	// revoked it, else what ended it ("password changed", …).
	RevokedReason string
}

// Active reports whether the token can be used at now.
func (t Token) Active(now time.Time) bool { return t.RevokedAt.IsZero() && now.Before(t.ExpiresAt) }

// Expired reports whether the token ran out (rather than being revoked).
func (t Token) Expired(now time.Time) bool { return t.RevokedAt.IsZero() && !now.Before(t.ExpiresAt) }

const tokenPrefix = "ptl_"

// TokenLives are the lives, in days, a token may be given; DefaultTokenLife
// is the one offered first.
var TokenLives = []int{7, 30, 90, 180, 365}

// DefaultTokenLife is a token's life in days unless another is chosen.
const DefaultTokenLife = 90

func hashToken(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}

// NewToken is what a token is made with.
type NewToken struct {
	Name     string
	LifeDays int // one of TokenLives; 0 means DefaultTokenLife
	Scopes   []string
}

// Validate checks the input and names each bad field.
func (n *NewToken) Validate() (Scopes, error) {
	var v apperr.Validation
	n.Name = strings.TrimSpace(n.Name)
	if n.Name == "" {
		v.Add("name", "is required; say what the token is for")
	} else if len(n.Name) > 80 {
		v.Add("name", "is longer than 80 characters")
	}
	if n.LifeDays == 0 {
		n.LifeDays = DefaultTokenLife
	}
	if !slices.Contains(TokenLives, n.LifeDays) {
		v.Add("life", fmt.Sprintf("must be one of %v days", TokenLives))
	}
	sc, err := ParseScopes(n.Scopes)
	if err != nil {
		v.Add("scopes", err.Error())
	}
	return sc, v.Err()
}

// CreateToken issues a token for account id and returns its secret, which
// is shown once and stored only as a SHA-256 hash.
func (s *Service) CreateToken(ctx context.Context, by audit.Entry, userID int64, n NewToken) (string, Token, error) {
	scopes, err := n.Validate()
	if err != nil {
		return "", Token{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Token{}, fmt.Errorf("staff: token: %w", err)
	}
	plain := tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	var tok Token
	_, err = s.update(ctx, by, userID, "token.create", func(tx *sql.Tx, u User) (map[string]any, error) {
		now := s.now()
		expires := now.Add(time.Duration(n.LifeDays) * 24 * time.Hour)
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at, expires_at, life_days, scopes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			userID, n.Name, plain[:10], hashToken(plain), store.Time(now), store.Time(expires), n.LifeDays, scopes.Text()).Scan(&id); err != nil {
			return nil, fmt.Errorf("staff: create token: %w", err)
		}
		tok = Token{ID: id, UserID: userID, Name: n.Name, Prefix: plain[:10], Scopes: scopes, LifeDays: n.LifeDays, CreatedAt: now, ExpiresAt: expires}
		return map[string]any{"token_id": id, "name": n.Name, "prefix": tok.Prefix, "scopes": scopes.Text(), "expires_at": store.Time(expires)}, nil
	})
	if err != nil {
		return "", Token{}, err
	}
	return plain, tok, nil
}

const tokenColumns = `t.id, t.user_id, t.name, t.prefix, t.scopes, t.life_days, t.created_at, COALESCE(t.expires_at, ''),
	COALESCE(t.last_used_at, ''), COALESCE(t.revoked_at, ''), t.revoked_reason`

func scanToken(sc interface{ Scan(...any) error }) (Token, error) {
	var t Token
	var scopes, created, expires, used, revoked string
	if err := sc.Scan(&t.ID, &t.UserID, &t.Name, &t.Prefix, &scopes, &t.LifeDays, &created, &expires, &used, &revoked, &t.RevokedReason); err != nil {
		return t, err
	}
	t.Scopes = Scopes(strings.Split(scopes, ","))
	t.CreatedAt, _ = store.ParseTime(created)
	if expires != "" {
		t.ExpiresAt, _ = store.ParseTime(expires)
	} else {
		// Made before tokens expired: 90 days from creation.
		t.ExpiresAt = t.CreatedAt.Add(DefaultTokenLife * 24 * time.Hour)
	}
	if used != "" {
		t.LastUsedAt, _ = store.ParseTime(used)
	}
	if revoked != "" {
		t.RevokedAt, _ = store.ParseTime(revoked)
	}
	return t, nil
}

// ListTokens returns account id's tokens, newest first.
func (s *Service) ListTokens(ctx context.Context, userID int64) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens t WHERE t.user_id = ? ORDER BY t.id DESC`, userID)
	if err != nil {
		return nil, fmt.Errorf("staff: list tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("staff: scan token: %w", err)
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

// RenewToken gives token tokenID of account userID its life again from now
// (an expired token comes back; a revoked one does not), and returns it.
func (s *Service) RenewToken(ctx context.Context, by audit.Entry, userID, tokenID int64) (Token, error) {
	var out Token
	_, err := s.update(ctx, by, userID, "token.renew", func(tx *sql.Tx, u User) (map[string]any, error) {
		t, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens t WHERE t.id = ? AND t.user_id = ?`, tokenID, userID))
		if errors.Is(err, sql.ErrNoRows) {
			return nil, apperr.New(apperr.NotFound, "no token %d", tokenID)
		} else if err != nil {
			return nil, fmt.Errorf("staff: renew token: %w", err)
		}
		if !t.RevokedAt.IsZero() {
			return nil, apperr.New(apperr.Conflict, "token %q was revoked; create a new one", t.Name)
		}
		t.ExpiresAt = s.now().Add(time.Duration(t.LifeDays) * 24 * time.Hour)
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET expires_at = ? WHERE id = ?`, store.Time(t.ExpiresAt), t.ID); err != nil {
			return nil, fmt.Errorf("staff: renew token: %w", err)
		}
		out = t
		return map[string]any{"token_id": tokenID, "expires_at": store.Time(t.ExpiresAt)}, nil
	})
	return out, err
}

// tokenUseResolution is how precisely a token's last use is recorded.
const tokenUseResolution = time.Minute

// ErrBadToken answers any unusable API token.
var ErrBadToken = apperr.New(apperr.Unauthorized, "the API token is missing, unknown, expired, revoked, or belongs to a disabled account")

// AuthenticateToken returns the account a token belongs to, read afresh
// (its roles as they are now), and the token with its scopes.
func (s *Service) AuthenticateToken(ctx context.Context, plain string) (User, Token, error) {
	if !strings.HasPrefix(plain, tokenPrefix) || len(plain) > 100 {
		return User{}, Token{}, ErrBadToken
	}
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled = 0`, hashToken(plain)))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, Token{}, ErrBadToken
	} else if err != nil {
		return User{}, Token{}, fmt.Errorf("staff: authenticate token: %w", err)
	}
	now := s.now()
	if !t.Active(now) {
		return User{}, Token{}, ErrBadToken
	}
	// Last use is kept to the minute (the access review shows it by the
	// day): a script calling the API many times a second writes it once a
	// minute, not on every request, each a write that waits for any other.
	if now.Sub(t.LastUsedAt) >= tokenUseResolution {
		if _, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, store.Time(now), t.ID); err != nil {
			return User{}, Token{}, fmt.Errorf("staff: token last used: %w", err)
		}
		t.LastUsedAt = now
	}
	u, err := s.Get(ctx, t.UserID)
	return u, t, err
}
