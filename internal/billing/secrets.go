package billing

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Secret holds a credential read from the environment or a file. It prints
// as "[redacted]" however it is formatted or logged, so a Config can be
// logged or dumped without leaking it; Reveal is the one way to read it.
type Secret struct{ value string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{value: strings.TrimSpace(s)} }

// Reveal returns the secret itself, for the Stripe client and webhook
// verification only.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.value != "" }

func (s Secret) String() string   { return "[redacted]" }
func (s Secret) GoString() string { return "billing.Secret([redacted])" }

// LogValue keeps the secret out of structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalText keeps the secret out of JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// LoadSecret reads a secret from file when file is set, else from the
// environment variable env. A file that cannot be read is an error naming
// the file (never its content).
func LoadSecret(env, file string) (Secret, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return Secret{}, fmt.Errorf("billing: read secret file %s: %w", file, err)
		}
		return NewSecret(string(b)), nil
	}
	return NewSecret(os.Getenv(env)), nil
}

// KeyInfo is all the portal ever shows about the Stripe secret key.
type KeyInfo struct {
	Set        bool
	Mode       string // "test", "live" or "unknown"
	Restricted bool   // a restricted key (rk_), as the README recommends
	LastFour   string
}

// DescribeKey returns what may be shown about key: whether it is set, its
// mode, whether it is restricted, and its last four characters ("" for a
// key shorter than 12, of which four would be too much to show).
func DescribeKey(key Secret) KeyInfo {
	k := key.Reveal()
	if k == "" {
		return KeyInfo{}
	}
	info := KeyInfo{Set: true, Mode: "unknown"}
	switch {
	case strings.HasPrefix(k, "sk_test_"), strings.HasPrefix(k, "rk_test_"):
		info.Mode = "test"
	case strings.HasPrefix(k, "sk_live_"), strings.HasPrefix(k, "rk_live_"):
		info.Mode = "live"
	}
	info.Restricted = strings.HasPrefix(k, "rk_")
	if len(k) >= 12 {
		info.LastFour = k[len(k)-4:]
	}
	return info
}
