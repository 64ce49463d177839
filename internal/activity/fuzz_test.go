package activity_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"portal/internal/activity"
)

// FuzzParseLogFile feeds arbitrary bytes to the CloudTrail log file parser:
// it never panics; a file it accepts yields events that each have an id, a
// time and a raw record that is valid JSON; and the same file gzipped
// parses to the same events.
func FuzzParseLogFile(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 9))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	recs := activity.Background(rng, []string{"111111111111", "222222222222"}, []string{"eu-central-1", "us-east-1"}, start, start.Add(time.Hour), 6)
	var raws []json.RawMessage
	for _, r := range recs {
		raws = append(raws, r.JSON())
		one, _ := json.Marshal(map[string]any{"Records": []json.RawMessage{r.JSON()}})
		f.Add(one)
	}
	all, _ := json.Marshal(map[string]any{"Records": raws})
	f.Add(all)
	f.Add(gz(all))
	for _, s := range []string{
		`{"Records":[]}`,
		`{"Records":null}`,
		`{"Records":[{"eventID":"x","eventTime":"2026-01-01T00:00:00Z","readOnly":"true"}]}`,
		`{"Records":[{"eventID":"x","eventTime":"2026-01-01T00:00:00Z","userIdentity":{"type":"AssumedRole","arn":"no-slash"}}]}`,
		`{"Records":[{"eventID":"x","eventTime":"2026-01-01T00:00:00Z","requestParameters":{"bucketName":7}}]}`,
		`{"Records":[{"eventTime":"2026-01-01T00:00:00Z"}]}`,
		`{"Records":[{"eventID":"x","eventTime":"yesterday"}]}`,
		"\x1f\x8b",
		"\x1f",
		"",
		"hello",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := activity.ParseLogFile(bytes.NewReader(body), "fuzz")
		if err != nil {
			return
		}
		for i, e := range evs {
			if e.ID == "" || e.Time.IsZero() || e.Origin != "fuzz" {
				t.Fatalf("event %d: id %q, time %v, origin %q: want all set", i, e.ID, e.Time, e.Origin)
			}
			if !json.Valid(e.Raw) {
				t.Fatalf("event %d: raw record is not valid JSON: %q", i, e.Raw)
			}
		}
		if len(body) >= 2 && body[0] == 0x1f && body[1] == 0x8b {
			return // already gzipped
		}
		zevs, err := activity.ParseLogFile(bytes.NewReader(gz(body)), "fuzz")
		if err != nil {
			t.Fatalf("gzipped copy: %v, want it to parse like the plain file", err)
		}
		if diff := cmp.Diff(evs, zevs); diff != "" {
			t.Fatalf("gzipped copy parses differently (-plain +gzipped):\n%s", diff)
		}
	})
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}
