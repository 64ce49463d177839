package activity

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

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
	// Sorted as PostgreSQL keeps a tsvector's lexemes.
	want := `'42':7 'ana':1 'desk':5 'ops':2,4`
	if got := vectorText(t, valueVector(raw)); got != want {
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
	// Invalid UTF-8 is replaced in a word too, and two words that become
	// one lexeme are one.
	if got, want := vectorText(t, valueVector([]byte("{\"a\":\"x\xfey x\xffy Z\"}"))), "'x\uFFFDy':1,2 'z':3"; got != want {
		t.Errorf("valueVector of invalid UTF-8: got %q, want %q", got, want)
	}
}

// vectorText is v as PostgreSQL writes a tsvector, read by pgx's own
// decoder of the binary form.
func vectorText(t *testing.T, v vector) string {
	t.Helper()
	var tv pgtype.TSVector
	if err := pgtype.NewMap().Scan(pgtype.TSVectorOID, pgtype.BinaryFormatCode, v, &tv); err != nil {
		t.Fatalf("vector does not decode: %v", err)
	}
	return tv.String()
}

// TestValueVectorLikeItsDefinition: for many records, and for ones past
// the limits (a word repeated more than 256 times, more than 16383
// words), valueVector holds what its definition says, worked out here
// the plain way: each word (folded, pgText) with its positions in order,
// at most 256 of them, positions past 16383 all at 16383 and kept once.
func TestValueVectorLikeItsDefinition(t *testing.T) {
	raws, _ := backgroundRaws(300)
	many := []byte(`{"a":"` + strings.Repeat("ops ", 300) + `","b":"` + strings.Repeat("w ", 17000) + `tail"}`)
	raws = append(raws, many, []byte("{\"a\":\"Caf\xc3\xa9 caf\xc3\xa9 x\xfey\"}"))
	for _, raw := range raws {
		want := map[string][]uint16{}
		pos := 0
		forEachValue(raw, func(text []byte) bool {
			forEachWord(text, func(w []byte) {
				pos++
				word := pgText(string(lowerASCII(w)))
				p := uint16(min(pos, maxPosition))
				if ps := want[word]; len(ps) < maxPositions && (len(ps) == 0 || ps[len(ps)-1] != p) {
					want[word] = append(ps, p)
				}
			})
			pos++
			return true
		})
		var tv pgtype.TSVector
		if err := pgtype.NewMap().Scan(pgtype.TSVectorOID, pgtype.BinaryFormatCode, valueVector(raw), &tv); err != nil {
			t.Fatalf("vector does not decode: %v", err)
		}
		got := map[string][]uint16{}
		for i, l := range tv.Lexemes {
			if i > 0 && tv.Lexemes[i-1].Word >= l.Word {
				t.Fatalf("lexemes out of order: %q before %q", tv.Lexemes[i-1].Word, l.Word)
			}
			for _, p := range l.Positions {
				got[l.Word] = append(got[l.Word], uint16(p.Position))
			}
		}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("valueVector(%.80s...): %d words, want %d", raw, len(got), len(want))
		}
	}
}
