package csvcell_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"portal/internal/csvcell"
)

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"prescriptions", "prescriptions"},
		{"arn:aws:s3:::medportal-docs", "arn:aws:s3:::medportal-docs"},
		{"=HYPERLINK(\"https://evil.example\",\"x\")", "'=HYPERLINK(\"https://evil.example\",\"x\")"},
		{"+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1:A2)", "'@SUM(A1:A2)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"a=1", "a=1"},
	}
	for _, tt := range tests {
		if got := csvcell.Text(tt.in); got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	row := csvcell.Row([]string{"ok", "=1", "@x"})
	if diff := cmp.Diff([]string{"ok", "'=1", "'@x"}, row); diff != "" {
		t.Errorf("Row (-want +got):\n%s", diff)
	}
}
