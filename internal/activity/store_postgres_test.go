package activity

import "testing"

// TestValueVector: the words of a record's values, folded to lower case,
// each with its positions; one value's words side by side and a gap
// between values (so a phrase never spans two), field names and ids left
// out, a word too long for a tsvector left out too.
func TestValueVector(t *testing.T) {
	long := make([]byte, maxLexeme+1)
	for i := range long {
		long[i] = 'x'
	}
	raw := []byte(`{"eventID":"abc-123","userName":"Ana Ops","note":"ops desk","n":42,"blob":"` + string(long) + `"}`)
	want := `'ana':1 'ops':2,4 'desk':5 '42':7`
	if got := valueVector(raw); got != want {
		t.Errorf("valueVector:\n got %s\nwant %s", got, want)
	}
	q, err := parseText("Ana OPS de")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := q.tsquery(), `'ana' <-> 'ops' <-> 'de'`; got != want {
		t.Errorf("tsquery %s, want %s (a last word under 3 characters is no prefix)", got, want)
	}
	q, _ = parseText("ops des")
	if got, want := q.tsquery(), `'ops' <-> 'des':*`; got != want {
		t.Errorf("tsquery %s, want %s", got, want)
	}
	if got := pgText("a\x00b\xffc"); got != "a\uFFFDb\uFFFDc" {
		t.Errorf("pgText: %q", got)
	}
}
