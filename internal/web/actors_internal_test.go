package web

import "testing"

func TestParseActor(t *testing.T) {
	for _, tc := range []struct {
		label      string
		id         int64
		email, via string
		ok         bool
	}{
		{"user:2 olga.ops@example.com", 2, "olga.ops@example.com", "", true},
		{"user:12 ana@example.com via api-token:5", 12, "ana@example.com", "API token #5", true},
		{"user:7", 7, "", "", true},
		{"system", 0, "", "", false},
		{"cli", 0, "", "", false},
		{"user:x ana@example.com", 0, "", "", false},
		{"user:0 ana@example.com", 0, "", "", false},
	} {
		id, email, via, ok := parseActor(tc.label)
		if id != tc.id || email != tc.email || via != tc.via || ok != tc.ok {
			t.Errorf("parseActor(%q): got %d %q %q %v, want %d %q %q %v", tc.label, id, email, via, ok, tc.id, tc.email, tc.via, tc.ok)
		}
	}
}
