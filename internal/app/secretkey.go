package app

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"portal/internal/billing"
)

// SecretKeyEnv names the environment variable that holds the portal's
// secret key (the key that seals two-factor secrets) as 64 hex characters.
// It wins over -secret-key-file. Replicas sharing a PostgreSQL database
// must all have the same key; the database keeps its fingerprint and a
// replica with another key refuses to start (staff.CheckKey).
const SecretKeyEnv = "PORTAL_SECRET_KEY"

// LoadSecretKey returns the portal's secret key: env (the value of
// PORTAL_SECRET_KEY) when set, else the hex key in file. A missing file is
// created with a new random key (mode 0600) for a SQLite database, which
// one machine holds; for PostgreSQL it is an error saying how to give every
// replica the same key, since a key made by each replica would differ.
func LoadSecretKey(env billing.Secret, file string, postgres bool) ([]byte, error) {
	if env.IsSet() {
		key, err := hex.DecodeString(env.Reveal())
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("app: %s: want 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`", SecretKeyEnv)
		}
		return key, nil
	}
	b, err := os.ReadFile(file)
	switch {
	case errors.Is(err, os.ErrNotExist) && postgres:
		return nil, fmt.Errorf("app: no secret key: replicas sharing a PostgreSQL database must all use the same one, so none is made here. "+
			"Make one with `openssl rand -hex 32` and give it to every replica as %s, or in the file -secret-key-file (looked for %s)", SecretKeyEnv, file)
	case errors.Is(err, os.ErrNotExist):
		return createKey(file)
	case err != nil:
		return nil, fmt.Errorf("app: secret key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("app: secret key %s: want 64 hex characters (32 bytes)", file)
	}
	return key, nil
}

func createKey(path string) ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("app: secret key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("app: secret key: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("app: secret key: %w", err)
	}
	return key, nil
}

// LoadOrCreateKey reads the hex key in path, creating it when missing (a
// SQLite portal's data folder).
func LoadOrCreateKey(path string) ([]byte, error) {
	return LoadSecretKey(billing.Secret{}, path, false)
}
