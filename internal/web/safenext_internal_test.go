package web

import (
	"strings"
	"testing"
)

// TestSafeNext: only same-origin paths survive as a place to land after
// signing in; everything a browser might read as another origin becomes "/".
func TestSafeNext(t *testing.T) {
	tests := []struct{ next, want string }{
		{"", "/"},
		{"/", "/"},
		{"/audit", "/audit"},
		{"/audit?action=auth.sign_in", "/audit?action=auth.sign_in"},
		{"/activity?q=a%20b&since=2026-01-31T14%3A00", "/activity?q=a%20b&since=2026-01-31T14%3A00"},
		{"/blueprints/versions/3/files/dev-eu.yaml#L4", "/blueprints/versions/3/files/dev-eu.yaml#L4"},
		{"/inventory?q=caf%C3%A9", "/inventory?q=caf%C3%A9"},
		// Other origins, spelled plainly.
		{"https://evil.example/", "/"},
		{"http:/evil.example", "/"},
		{"evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"//evil.example", "/"},
		{"//evil.example/audit", "/"},
		{"///evil.example", "/"},
		{`/\evil.example`, "/"},
		{`/\/evil.example`, "/"},
		{`\\evil.example`, "/"},
		{"/audit\\..\\", "/"},
		// Characters browsers strip or fold, which turn a path into "//host".
		{"/\t/evil.example/x", "/"},
		{"/\n/evil.example", "/"},
		{"/\r/evil.example", "/"},
		{"/ /evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/\x7f/evil.example", "/"},
		{"/\u00a0/evil.example", "/"},
		{"/\uff0f/evil.example", "/"}, // fullwidth solidus
		// The same, percent-encoded once, twice, three times.
		{"/%09/evil.example/x", "/"},
		{"/%0a/evil.example", "/"},
		{"/%0D/evil.example", "/"},
		{"/%00", "/"},
		{"/%2F/evil.example", "/"},
		{"/%2f%2fevil.example", "/"},
		{"/%5Cevil.example", "/"},
		{"/%5cevil.example", "/"},
		{"/%252F/evil.example", "/"},
		{"/%25252F/evil.example", "/"},
		{"/%2525252525252F", "/"},
		{"/%zz", "/"},
		{"/%ff", "/"},
		{"/%C2%85/evil.example", "/"}, // NEL
		// Userinfo and over-long input.
		{"/@evil.example", "/@evil.example"}, // a path segment, same origin
		{"/" + strings.Repeat("a", maxNextLen), "/"},
	}
	for _, tt := range tests {
		if got := safeNext(tt.next); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
		}
	}
}
