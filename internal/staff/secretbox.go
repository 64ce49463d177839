package staff

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// Sealer encrypts small secrets (TOTP seeds) before they reach the database,
// with AES-256-GCM under the portal's secret key.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("staff: secret key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("staff: secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("staff: secret key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext, binding it to purpose (e.g. "totp:5").
func (s *Sealer) Seal(plaintext, purpose string) string {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(purpose))
	return "v1:" + base64.RawStdEncoding.EncodeToString(out)
}

// Open decrypts a value made by Seal with the same purpose.
func (s *Sealer) Open(sealed, purpose string) (string, error) {
	if len(sealed) < 3 || sealed[:3] != "v1:" {
		return "", errors.New("staff: sealed value has an unknown format")
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed[3:])
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errors.New("staff: sealed value is corrupt")
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
	if err != nil {
		return "", errors.New("staff: sealed value does not open with this key")
	}
	return string(pt), nil
}
