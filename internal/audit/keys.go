package audit

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Key is one audit key: the HMAC-SHA256 key that seals records, and the
// ID records name it by.
type Key struct {
	ID     string
	Secret []byte
}

// Keyring holds the audit keys, oldest first. The newest (last) seals new
// records; the older ones verify the records they sealed. Keys live outside
// the database (a file or the environment), so that someone able to write
// the database cannot re-seal records they changed.
type Keyring struct{ keys []Key }

// minKeyBytes is the shortest key accepted: HMAC-SHA256 wants 32 bytes.
const minKeyBytes = 32

var keyIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ParseKeyring reads a key ring: one key per line, "ID HEX" (ID of
// lower-case letters, digits and dashes; HEX at least 64 hex digits); keys
// may also be separated by ";" on one line (for an environment variable).
// Blank lines and lines starting with "#" are ignored. The last key is the
// current one.
func ParseKeyring(text string) (*Keyring, error) {
	r := &Keyring{}
	n := 0
	var entries []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			entries = append(entries, strings.Split(line, ";")...)
		}
	}
	for _, line := range entries {
		n++
		line = strings.TrimSpace(line)
		id, hx, ok := strings.Cut(line, " ")
		hx = strings.TrimSpace(hx)
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("audit keys: entry %d: want \"ID HEX\" with an ID of lower-case letters, digits and dashes", n)
		}
		secret, err := hex.DecodeString(hx)
		if err != nil || len(secret) < minKeyBytes {
			return nil, fmt.Errorf("audit keys: key %s: want at least %d bytes as hex (%d hex digits)", id, minKeyBytes, 2*minKeyBytes)
		}
		if _, dup := r.Get(id); dup {
			return nil, fmt.Errorf("audit keys: key %s appears twice", id)
		}
		r.keys = append(r.keys, Key{ID: id, Secret: secret})
	}
	if len(r.keys) == 0 {
		return nil, errors.New("audit keys: no key")
	}
	return r, nil
}

// Current is the key that seals new records.
func (r *Keyring) Current() Key { return r.keys[len(r.keys)-1] }

// Get returns the key with id.
func (r *Keyring) Get(id string) (Key, bool) {
	for _, k := range r.keys {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}

// IDs lists the key IDs, oldest first.
func (r *Keyring) IDs() []string {
	out := make([]string, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.ID
	}
	return out
}

// keyFileHeader starts a key file the portal writes.
const keyFileHeader = `# Portal audit keys: one per line, "ID HEX". The last line seals new
# audit records. Every older line is needed to verify the records it sealed:
# never remove one. Keep this file away from the database and its backups
# (a secret store, or a volume only the portal reads). Rotate with
# "portal audit rotate-key".
`

// LoadKeyFile reads the key ring in path. With create, a missing file is
// created (mode 0600) holding one new key, k1.
func LoadKeyFile(path string, create bool) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("audit keys: %w", err)
		}
		k, err := newKey("k1")
		if err != nil {
			return nil, err
		}
		text := keyFileHeader + keyLine(k)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return LoadKeyFile(path, false) // another process made it first
		} else if err != nil {
			return nil, fmt.Errorf("audit keys: %w", err)
		}
		if _, err := f.WriteString(text); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit keys: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("audit keys: %w", err)
		}
		return ParseKeyring(text)
	} else if err != nil {
		return nil, fmt.Errorf("audit keys: %w", err)
	}
	r, err := ParseKeyring(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// RotateKeyFile adds a new key to the key ring in path, which becomes the
// current key, and returns it. The older keys stay, to verify what they
// sealed.
func RotateKeyFile(path string) (Key, error) {
	r, err := LoadKeyFile(path, false)
	if err != nil {
		return Key{}, err
	}
	next := len(r.keys) + 1
	id := "k" + strconv.Itoa(next)
	for _, taken := r.Get(id); taken; _, taken = r.Get(id) {
		next++
		id = "k" + strconv.Itoa(next)
	}
	k, err := newKey(id)
	if err != nil {
		return Key{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return Key{}, fmt.Errorf("audit keys: %w", err)
	}
	w := bufio.NewWriter(f)
	w.WriteString(keyLine(k))
	if err := w.Flush(); err != nil {
		f.Close()
		return Key{}, fmt.Errorf("audit keys: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return Key{}, fmt.Errorf("audit keys: %w", err)
	}
	return k, f.Close()
}

func newKey(id string) (Key, error) {
	secret := make([]byte, minKeyBytes)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("audit keys: %w", err)
	}
	return Key{ID: id, Secret: secret}, nil
}

func keyLine(k Key) string { return k.ID + " " + hex.EncodeToString(k.Secret) + "\n" }

// EphemeralKeyring is a ring with one random key that lives as long as the
// process: for tests and throw-away logs only (nothing it seals can be
// verified by another process).
func EphemeralKeyring() *Keyring {
	k, err := newKey("ephemeral")
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return &Keyring{keys: []Key{k}}
}
