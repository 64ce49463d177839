package staff

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"portal/internal/store"
)

// KeyFingerprint is what the database keeps of the sealing key: an
// HMAC-SHA256 of a fixed label under the key, from which the key cannot be
// recovered.
func KeyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("portal secret key fingerprint v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// ErrKeyMismatch reports that a replica's sealing key is not the one its
// database was set up with.
var ErrKeyMismatch = errors.New("the secret key does not match this database")

const fingerprintSetting = "secret_key_fingerprint"

// CheckKey makes sure key is the key the database's secrets are sealed
// with, so that a replica given another key refuses to start instead of
// failing every two-factor sign-in. The first start records the key's
// fingerprint (under a lock, so replicas starting together agree); later
// starts compare. A database that holds sealed secrets but no fingerprint
// (made before fingerprints were kept) is checked by opening one of them.
func CheckKey(ctx context.Context, db *store.DB, key []byte) error {
	sealer, err := NewSealer(key)
	if err != nil {
		return err
	}
	mine := KeyFingerprint(key)
	return db.WithLock(ctx, "secret-key", func(ctx context.Context) error {
		var stored string
		err := db.QueryRowContext(ctx, `SELECT value FROM portal_settings WHERE name = ?`, fingerprintSetting).Scan(&stored)
		switch {
		case err == nil:
			if !hmac.Equal([]byte(stored), []byte(mine)) {
				return fmt.Errorf("%w: %s was set up with the key whose fingerprint starts %s, and this key's starts %s. "+
					"Every replica must use the same key (PORTAL_SECRET_KEY or -secret-key-file): two-factor secrets sealed with one key do not open with another",
					ErrKeyMismatch, db.Name(), short(stored), short(mine))
			}
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("staff: check the secret key: %w", err)
		}
		var id int64
		var sealed string
		err = db.QueryRowContext(ctx, `SELECT id, totp_secret FROM users WHERE totp_secret != '' ORDER BY id LIMIT 1`).Scan(&id, &sealed)
		if err == nil {
			if _, err := sealer.Open(sealed, fmt.Sprintf("totp:%d", id)); err != nil {
				return fmt.Errorf("%w: the two-factor secrets in %s do not open with this key (fingerprint %s); start with the key the portal used before",
					ErrKeyMismatch, db.Name(), short(mine))
			}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("staff: check the secret key: %w", err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO portal_settings (name, value, updated_at) VALUES (?, ?, ?)`,
			fingerprintSetting, mine, store.Time(time.Now())); err != nil {
			return fmt.Errorf("staff: record the secret key's fingerprint: %w", err)
		}
		return nil
	})
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}
