package staff

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/crypto/argon2"
)

// HashParams are the argon2id cost parameters. The defaults follow OWASP's
// recommended minimum (19 MiB, 2 passes, 1 lane).
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultHashParams is what production uses.
var DefaultHashParams = HashParams{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// MinPasswordLen is the shortest password the portal accepts.
	MinPasswordLen = 12
	maxPasswordLen = 256
)

// hashSlots bounds how many argon2id computations run at once. Each takes
// Memory KiB (19 MiB by default) and a core for its whole time, so more
// at once than there are cores only adds memory: 100 sign-ins arriving
// together would hold about 2 GB. The others wait their turn.
var hashSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

func idKey(password, salt []byte, p HashParams, n uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, n)
}

// HashPassword returns a PHC-formatted argon2id hash of password.
func HashPassword(password string, p HashParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("staff: salt: %w", err)
	}
	key := idKey([]byte(password), salt, p, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether password matches the PHC hash.
func CheckPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("staff: unsupported password hash format")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("staff: unsupported argon2 version")
	}
	var p HashParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, fmt.Errorf("staff: parse hash parameters: %w", err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("staff: parse salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("staff: parse key: %w", err)
	}
	got := idKey([]byte(password), salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// CheckPasswordPolicy returns a user-facing reason the password is not
// acceptable, or "" when it is. Following NIST SP 800-63B 5.1.1.2 it
// refuses passwords that are short (under 12 characters), found in a breach
// corpus (passwords/common-passwords.txt.gz, also with spaces and the
// digits and symbols around them taken away), or guessable: zxcvbn's
// estimate under 10^8 guesses (score 3), counting as known words the
// account's email and name and the portal's own name. There are no
// composition rules: a passphrase of ordinary words is welcome.
func CheckPasswordPolicy(password, email string, context ...string) string {
	n := utf8.RuneCountInString(password)
	lower := strings.ToLower(password)
	local, domain, _ := strings.Cut(strings.ToLower(email), "@")
	switch {
	case n < MinPasswordLen:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLen)
	case n > maxPasswordLen:
		return fmt.Sprintf("must be at most %d characters", maxPasswordLen)
	case local != "" && strings.Contains(lower, local):
		return "must not contain your email name"
	case isCommonPassword(lower):
		return "is one of the most common passwords (found in lists of breached passwords); choose something else"
	}
	// zxcvbn matches these words lower-case.
	words := []string{local, domain, "portal"}
	for _, w := range context {
		words = append(words, strings.ToLower(w))
	}
	for _, part := range strings.FieldsFunc(local+"."+domain, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		words = append(words, part)
	}
	// zxcvbn's matching grows faster than the length: 100 characters say
	// enough about a password's strength.
	head := password
	if n > guessCheckLen {
		head = string([]rune(password)[:guessCheckLen])
	}
	if zxcvbn.PasswordStrength(head, words).Score < minGuessScore {
		return "is too easy to guess (common words, names, dates, repeats or keyboard patterns); a passphrase of four or more unrelated words works well"
	}
	return ""
}

const (
	// minGuessScore is zxcvbn's score 3: at least 10^8 guesses.
	minGuessScore = 3
	guessCheckLen = 100
)

//go:embed passwords/common-passwords.txt.gz
var commonPasswordsGz []byte

// commonPasswords is the breach-corpus list, read once.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		panic(fmt.Sprintf("staff: common passwords: %v", err)) // the file is embedded: a broken one is a build error
	}
	set := make(map[string]struct{}, 20000)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := strings.TrimSpace(sc.Text()); w != "" {
			set[w] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		panic(fmt.Sprintf("staff: common passwords: %v", err))
	}
	return set
})

// isCommonPassword reports whether lower (a lower-cased password) is on the
// list as it is, without spaces, or without the digits and symbols around
// it.
func isCommonPassword(lower string) bool {
	set := commonPasswords()
	trimmed := strings.TrimFunc(lower, func(r rune) bool { return !unicode.IsLetter(r) })
	for _, c := range []string{lower, strings.ReplaceAll(lower, " ", ""), trimmed, strings.ReplaceAll(trimmed, " ", "")} {
		if len(c) < 4 {
			continue
		}
		if _, ok := set[c]; ok {
			return true
		}
	}
	return false
}

// OneTimePassword returns a random password for a new or reset account; the
// holder must change it at first sign-in.
func OneTimePassword() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = alphabet[int(c)%len(alphabet)]
	}
	// Groups of five read well when copied from a console.
	s := string(out)
	return s[0:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:20]
}
