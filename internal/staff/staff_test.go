package staff_test

import (
	"strings"
	"testing"

	"portal/internal/staff"
)

func TestPasswordHash(t *testing.T) {
	p := staff.HashParams{Memory: 64, Time: 1, Threads: 1}
	h, err := staff.HashPassword("correct horse battery staple", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q is not PHC argon2id", h)
	}
	for pw, want := range map[string]bool{"correct horse battery staple": true, "correct horse battery stapl": false, "": false} {
		if got, err := staff.CheckPassword(h, pw); err != nil || got != want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", pw, got, err, want)
		}
	}
	if _, err := staff.CheckPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Error("an unknown hash format was accepted")
	}
}

func TestPasswordPolicy(t *testing.T) {
	const (
		short    = "must be at least 12 characters"
		local    = "must not contain your email name"
		common   = "is one of the most common passwords (found in lists of breached passwords); choose something else"
		guessed  = "is too easy to guess (common words, names, dates, repeats or keyboard patterns); a passphrase of four or more unrelated words works well"
		accepted = ""
	)
	for _, tt := range []struct{ pw, want string }{
		{"short", short},
		{"alice-and-more-chars", local},
		{"password123456", common},
		{"QWERTYUIOP123", common},
		{"Sunshine2026!!!!", common},
		{"  iloveyou  ", common},
		{"123456789012", guessed},
		{"aaaaaaaaaaaaaaaa", guessed},
		{"abcdefghijklmnop", guessed},
		{"1qaz2wsx3edc4rfv", common},
		{"zxcvbnmasdfghjkl", guessed},
		{"example.com 2024", guessed},
		{"portalportal1", guessed},
		{"a long enough passphrase", accepted},
		{"correct horse battery staple 42", accepted},
		{"Tr0ub4dor&3 plus more", accepted},
	} {
		if got := staff.CheckPasswordPolicy(tt.pw, "alice@example.com", "Ada", "Lovelace"); got != tt.want {
			t.Errorf("policy(%q) = %q, want %q", tt.pw, got, tt.want)
		}
	}
}

func TestSealer(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	s, err := staff.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("JBSWY3DPEHPK3PXP", "totp:5")
	if strings.Contains(sealed, "JBSWY3DPEHPK3PXP") {
		t.Fatal("the sealed value contains the secret")
	}
	if got, err := s.Open(sealed, "totp:5"); err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Errorf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, "totp:6"); err == nil {
		t.Error("a value sealed for user 5 opened for user 6")
	}
	if _, err := staff.NewSealer(key[:16]); err == nil {
		t.Error("a 16-byte key was accepted")
	}
}

func TestParseRoles(t *testing.T) {
	got, err := staff.ParseRoles([]string{"finance,ops", "admin", "ops"})
	if err != nil || len(got) != 3 || got[0] != staff.Admin || got[1] != staff.Ops || got[2] != staff.Finance {
		t.Errorf("ParseRoles = %v, %v; want [admin ops finance]", got, err)
	}
	if _, err := staff.ParseRoles([]string{"wizard"}); err == nil || !strings.Contains(err.Error(), `"wizard"`) {
		t.Errorf("unknown role: %v, want an error naming it", err)
	}
	if _, err := staff.ParseRoles(nil); err == nil {
		t.Error("no roles accepted")
	}
}

func TestOneTimePassword(t *testing.T) {
	a, b := staff.OneTimePassword(), staff.OneTimePassword()
	if a == b || len(a) != 23 || strings.Count(a, "-") != 3 {
		t.Errorf("one-time passwords %q, %q: want distinct, 4 groups of 5", a, b)
	}
}

func TestNormalizeEmail(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"alice@example.com", "alice@example.com", true},
		{"  Alice@Example.COM ", "alice@example.com", true},
		{"", "", false},
		{"alice", "", false},
		{"@example.com", "", false},
		{"alice@", "", false},
		{"a b@example.com", "", false},
		{"alice@example.com\r\nX: y", "", false},
		{"<alice@example.com>", "", false},
		{"Ålice@example.com", "ålice@example.com", true},
		{"alice\u00a0@example.com", "", false},
		{"\xff@example.com", "", false},
		{strings.Repeat("a", 250) + "@x.io", "", false},
	}
	for _, tt := range tests {
		got, ok := staff.NormalizeEmail(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("NormalizeEmail(%.40q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSourceOf(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.7":          "203.0.113.7",
		"::ffff:203.0.113.7":   "203.0.113.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::ffff":   "2001:db8:1:2::/64",
		"":                     "unknown",
		"not an address":       "unknown",
		"2001:db8:1:3::1%eth0": "unknown",
	} {
		if got := staff.SourceOf(in); got != want {
			t.Errorf("SourceOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestScopes(t *testing.T) {
	tests := []struct {
		in   []string
		want string
		err  bool
	}{
		{[]string{"read"}, "read", false},
		{[]string{"all", "runs"}, "all", false},
		{[]string{"staff:read, runs", "inventory:read", "runs:read"}, "runs,inventory:read,staff:read", false},
		{[]string{"read", "runs:read", "audit"}, "read,audit", false},
		{[]string{"wizardry"}, "", true},
		{nil, "", true},
	}
	for _, tt := range tests {
		got, err := staff.ParseScopes(tt.in)
		if (err != nil) != tt.err || got.Text() != tt.want {
			t.Errorf("ParseScopes(%q) = %q, %v; want %q (error %v)", tt.in, got.Text(), err, tt.want, tt.err)
		}
	}
	sc, _ := staff.ParseScopes([]string{"runs", "audit:read"})
	for _, c := range []struct {
		area  string
		write bool
		want  bool
	}{{"runs", true, true}, {"runs", false, true}, {"audit", false, true}, {"audit", true, false}, {"staff", false, false}, {"", true, true}} {
		if got := sc.Allows(c.area, c.write); got != c.want {
			t.Errorf("%q.Allows(%q, write %v) = %v, want %v", sc.Text(), c.area, c.write, got, c.want)
		}
	}
}

func TestPasskeyOriginFor(t *testing.T) {
	for _, tt := range []struct {
		base, id, origin string
		ok               bool
	}{
		{"https://portal.example.com", "portal.example.com", "https://portal.example.com", true},
		{"https://portal.example.com:8443/", "portal.example.com", "https://portal.example.com:8443", true},
		{"http://127.0.0.1:8080", "localhost", "http://localhost:8080", true},
		{"http://localhost:8080", "localhost", "http://localhost:8080", true},
		{"http://[::1]:8080", "localhost", "http://localhost:8080", true},
		{"https://10.0.0.5", "", "", false},
		{"http://portal.example.com", "", "", false},
		{"portal.example.com", "", "", false},
	} {
		got, err := staff.PasskeyOriginFor(tt.base)
		if (err == nil) != tt.ok || got.ID != tt.id || got.Origin != tt.origin {
			t.Errorf("PasskeyOriginFor(%q) = %+v, %v; want %q %q (ok %v)", tt.base, got, err, tt.id, tt.origin, tt.ok)
		}
	}
}
