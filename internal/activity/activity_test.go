package activity_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"portal/internal/activity"
	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

func openDB(tb testing.TB) *store.DB {
	tb.Helper()
	return peertest.StoreForTest(tb)
}

func newService(tb testing.TB, cfg activity.Config) (*activity.Service, *audit.Log) {
	tb.Helper()
	db := openDB(tb)
	log := audit.New(db, nil)
	return activity.New(cfg, db, log, nil, nil), log
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func rec(name, source string, mod func(*activity.Record)) activity.Record {
	r := activity.Record{EventID: name + "-" + source, RequestID: "req-" + name, Time: t0, Account: "111111111111", Region: "eu-central-1", Source: source, Name: name,
		Identity: activity.Identity{Type: "AssumedRole", Account: "111111111111", Role: "StaffOperator", Session: "ana.ops", AccessKey: "ASIAEXAMPLE"},
		SourceIP: "203.0.113.10", UserAgent: "aws-cli/2"}
	if mod != nil {
		mod(&r)
	}
	return r
}

func TestParseRecordSensitive(t *testing.T) {
	tests := []struct {
		name string
		r    activity.Record
		want string
	}{
		{"read is not sensitive", rec("DescribeInstances", "ec2.amazonaws.com", func(r *activity.Record) { r.ReadOnly = true }), ""},
		{"role policy", rec("PutRolePolicy", "iam.amazonaws.com", nil), activity.SensIAM},
		{"attach role policy failed", rec("AttachRolePolicy", "iam.amazonaws.com", func(r *activity.Record) { r.ErrorCode = "AccessDenied" }),
			activity.SensIAM + " (attempt failed: AccessDenied)"},
		{"kms disable", rec("DisableKey", "kms.amazonaws.com", nil), activity.SensKMS},
		{"kms deletion", rec("ScheduleKeyDeletion", "kms.amazonaws.com", nil), activity.SensKMS},
		{"kms decrypt", rec("Decrypt", "kms.amazonaws.com", nil), ""},
		{"trail stop", rec("StopLogging", "cloudtrail.amazonaws.com", nil), activity.SensTrail},
		{"trail update", rec("UpdateTrail", "cloudtrail.amazonaws.com", nil), activity.SensTrail},
		{"bucket policy", rec("PutBucketPolicy", "s3.amazonaws.com", nil), activity.SensS3Public},
		{"public access block removed", rec("DeleteBucketPublicAccessBlock", "s3.amazonaws.com", nil), activity.SensS3Public},
		{"sg open to world", rec("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", func(r *activity.Record) {
			r.RequestParameters = map[string]any{"ipPermissions": map[string]any{"items": []any{map[string]any{"ipRanges": map[string]any{"items": []any{map[string]any{"cidrIp": "0.0.0.0/0"}}}}}}}
		}), activity.SensOpenSG},
		{"sg open to ipv6 world", rec("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", func(r *activity.Record) {
			r.RequestParameters = map[string]any{"ipv6Ranges": []any{map[string]any{"cidrIpv6": "::/0"}}}
		}), activity.SensOpenSG},
		{"sg open to office", rec("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", func(r *activity.Record) {
			r.RequestParameters = map[string]any{"cidrIp": "203.0.113.0/24"}
		}), ""},
		{"console without mfa", rec("ConsoleLogin", "signin.amazonaws.com", func(r *activity.Record) {
			r.Identity = activity.Identity{Type: "IAMUser", Account: r.Account, User: "gus.support"}
			r.AdditionalEventData = map[string]any{"MFAUsed": "No"}
		}), activity.SensConsoleNoMFA},
		{"console with mfa", rec("ConsoleLogin", "signin.amazonaws.com", func(r *activity.Record) {
			r.Identity = activity.Identity{Type: "IAMUser", Account: r.Account, User: "gus.support"}
			r.AdditionalEventData = map[string]any{"MFAUsed": "Yes"}
		}), ""},
		{"root read", rec("ListBuckets", "s3.amazonaws.com", func(r *activity.Record) {
			r.Identity = activity.Identity{Type: "Root", Account: r.Account}
			r.ReadOnly = true
		}), activity.SensRoot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := activity.ParseRecord(tt.r.JSON())
			if err != nil {
				t.Fatal(err)
			}
			if e.Sensitive != tt.want {
				t.Errorf("sensitive: got %q, want %q", e.Sensitive, tt.want)
			}
		})
	}
}

func TestParseRecordIdentity(t *testing.T) {
	r := rec("CreateBucket", "s3.amazonaws.com", func(r *activity.Record) {
		r.RequestParameters = map[string]any{"bucketName": "medportal-eu-docs"}
		r.Identity.Role, r.Identity.Session = "PortalDeployer", "portal"
	})
	e, err := activity.ParseRecord(r.JSON())
	if err != nil {
		t.Fatal(err)
	}
	want := activity.Event{ID: r.EventID, Time: t0, Account: "111111111111", Region: "eu-central-1", Source: "s3.amazonaws.com", Name: "CreateBucket",
		IdentityType: "AssumedRole", PrincipalARN: "arn:aws:sts::111111111111:assumed-role/PortalDeployer/portal", UserName: "portal", Session: "portal",
		AccessKey: "ASIAEXAMPLE", SourceIP: "203.0.113.10", RequestID: "req-CreateBucket", Resources: []string{"medportal-eu-docs"}}
	e.Raw = nil
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("event (-want +got):\n%s", diff)
	}
}

func TestParseLogFileErrors(t *testing.T) {
	for _, tt := range []struct{ name, body, want string }{
		{"not json", "hello", "log file k"},
		{"no event id", `{"Records":[{"eventTime":"2026-01-01T00:00:00Z"}]}`, "record 1: activity: CloudTrail record has no eventID"},
		{"bad time", `{"Records":[{"eventID":"x","eventTime":"yesterday"}]}`, `eventTime "yesterday"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := activity.ParseLogFile(strings.NewReader(tt.body), "k")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// seedEvents stores n generated events between t0 and t0+30 days.
func seedEvents(t testing.TB, s *activity.Service, n int) []activity.Event {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	recs := activity.Background(rng, []string{"111111111111", "222222222222", "333333333333"}, []string{"us-east-1", "eu-central-1", "ap-southeast-1"},
		t0, t0.Add(30*24*time.Hour), n)
	var events []activity.Event
	for _, r := range recs {
		e, err := activity.ParseRecord(r.JSON())
		if err != nil {
			t.Fatal(err)
		}
		e.Origin = "test"
		events = append(events, e)
	}
	added, err := s.Insert(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != n {
		t.Fatalf("inserted %d, want %d", len(added), n)
	}
	return added
}

// matches is the filter's meaning, written out plainly.
func matches(f activity.Filter, e activity.Event) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) || !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	if f.Account != "" && e.Account != f.Account || f.Region != "" && e.Region != f.Region || f.Name != "" && e.Name != f.Name ||
		f.Source != "" && e.Source != f.Source || f.SourceIP != "" && e.SourceIP != f.SourceIP {
		return false
	}
	if f.User != "" && e.UserName != f.User && e.PrincipalARN != f.User && e.AccessKey != f.User && e.Session != f.User {
		return false
	}
	if f.Resource != "" && !strings.Contains(strings.Join(e.Resources, "\n"), f.Resource) {
		return false
	}
	if f.ErrorCode == activity.AnyError && e.ErrorCode == "" || f.ErrorCode != "" && f.ErrorCode != activity.AnyError && e.ErrorCode != f.ErrorCode {
		return false
	}
	if f.Access == activity.AccessRead && !e.ReadOnly || f.Access == activity.AccessWrite && e.ReadOnly || f.Sensitive && e.Sensitive == "" {
		return false
	}
	if f.Text != "" && !matchesText(f.Text, e) {
		return false
	}
	return true
}

// matchesText is Filter.Text's meaning: the event or request id, or the
// words of the text next to each other in one of the event's values, the
// last one (of 3 or more characters, ending the text) possibly cut short.
func matchesText(text string, e activity.Event) bool {
	if id := strings.TrimSpace(text); id != "" && (id == e.ID || id == e.RequestID) {
		return true
	}
	want := words(text)
	prefix := len(want) > 0 && len(want[len(want)-1]) >= 3 && isWordByte(text[len(text)-1])
	for _, have := range values(e.Raw) {
		for start := 0; start+len(want) <= len(have); start++ {
			ok := len(want) > 0
			for i, w := range want {
				h := have[start+i]
				if i == len(want)-1 && prefix {
					ok = ok && strings.HasPrefix(h, w)
				} else {
					ok = ok && h == w
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// values are the words of each of a record's strings and integers,
// leaving out field names, true/false/null, fractions and the record's
// ids.
func values(raw []byte) [][]string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		panic(err)
	}
	var out [][]string
	var walk func(key string, v any)
	walk = func(key string, v any) {
		id := key == "eventID" || key == "requestID" || key == "sharedEventID"
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				walk(k, y)
			}
		case []any:
			for _, y := range x {
				walk("", y)
			}
		case string:
			if !id {
				out = append(out, words(x))
			}
		case json.Number:
			if _, err := strconv.ParseInt(string(x), 10, 64); err == nil && !id {
				out = append(out, words(string(x)))
			}
		}
	}
	walk("", v)
	return out
}

// words splits s into runs of ASCII letters, digits and non-ASCII bytes,
// folding ASCII case.
func words(s string) []string {
	var out []string
	var w []byte
	for i := 0; i <= len(s); i++ {
		if i < len(s) && isWordByte(s[i]) {
			c := s[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			w = append(w, c)
			continue
		}
		if len(w) > 0 {
			out = append(out, string(w))
			w = nil
		}
	}
	return out
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func TestSearchFiltersCombine(t *testing.T) {
	s, _ := newService(t, activity.Config{})
	all := seedEvents(t, s, 3000)
	odd, err := activity.ParseRecord([]byte(oddRecord))
	if err != nil {
		t.Fatal(err)
	}
	added, err := s.Insert(context.Background(), []activity.Event{odd})
	if err != nil {
		t.Fatal(err)
	}
	all = append(all, added...)
	slices.SortFunc(all, func(a, b activity.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return int(a.Seq - b.Seq)
	})
	var kms activity.Event // an event naming a KMS key id (a UUID)
	for _, e := range all {
		if e.Source == "kms.amazonaws.com" && len(e.Resources) > 0 {
			kms = e
		}
	}
	ctx := context.Background()
	filters := map[string]activity.Filter{
		"everything":             {},
		"account and region":     {Account: "222222222222", Region: "eu-central-1"},
		"week of writes":         {Since: t0.Add(7 * 24 * time.Hour), Until: t0.Add(14 * 24 * time.Hour), Access: activity.AccessWrite},
		"user by session":        {User: "ana.ops", Account: "111111111111"},
		"user by arn":            {User: "arn:aws:sts::333333333333:assumed-role/StaffOperator/dara.sec"},
		"source and name":        {Source: "s3.amazonaws.com", Name: "GetBucketPolicy", Region: "us-east-1"},
		"resource by name":       {Resource: "medportal-eu-central-1-docs-1"},
		"failures":               {ErrorCode: activity.AnyError, Access: activity.AccessRead},
		"access denied":          {ErrorCode: "AccessDenied", SourceIP: "198.51.100.7"},
		"sensitive":              {Sensitive: true},
		"free text":              {Text: "INLINE-S3-ACCESS"},
		"text: start of a word":  {Text: "medport", Account: "111111111111"},
		"text: inside a word":    {Text: "portal"},
		"text: short last word":  {Text: "s3", Access: activity.AccessWrite},
		"text: several words":    {Text: "dara sec", Region: "us-east-1"},
		"text: words apart":      {Text: "medportal dev eu doc"},
		"text and other values":  {Text: "dara", Source: "ec2.amazonaws.com", Region: "eu-central-1", SourceIP: "198.51.100.7"},
		"text and failures":      {Text: "not authorized", ErrorCode: "AccessDenied", Name: "DescribeInstances"},
		"text: words reversed":   {Text: "sec dara"},
		"text: a field name":     {Text: "eventName"},
		"text: common word":      {Text: "amazonaws", Since: t0.Add(24 * time.Hour), Until: t0.Add(48 * time.Hour)},
		"text: error message":    {Text: "not authorized", Account: "222222222222"},
		"text: key id":           {Text: kms.Resources[0][strings.LastIndexByte(kms.Resources[0], '/')+1:]},
		"text: event id":         {Text: all[17].ID},
		"text: request id":       {Text: " " + all[42].RequestID},
		"text: not A to Z":       {Text: "ZOË"},
		"text: spelt with \\u":   {Text: "café"},
		"text: in a policy":      {Text: "Statement Effect Allow"},
		"text: an id inside":     {Text: "inner-id"},
		"nothing":                {Account: "999999999999"},
		"everything at once-ish": {Since: t0, Until: t0.Add(20 * 24 * time.Hour), Account: "111111111111", Region: "us-east-1", Access: activity.AccessRead, Source: "ec2.amazonaws.com"},
	}
	// Text is searched one of three ways depending on how many events
	// its words match; each must give the same answer.
	plans := []struct {
		name                         string
		rowsMax, scanFrom, scanShare int
	}{{"few matches", 1 << 30, 1 << 30, 1}, {"some matches", 0, 1 << 30, 1 << 30}, {"many matches", 0, 1, 1}}
	for _, p := range plans {
		t.Run(p.name, func(t *testing.T) {
			defer activity.SetTextPlans(p.rowsMax, p.scanFrom, p.scanShare)()
			for name, f := range filters {
				if f.Text == "" && p.name != plans[0].name {
					continue
				}
				t.Run(name, func(t *testing.T) { checkSearch(t, s, all, f) })
			}
		})
	}
	if _, _, err := s.Search(ctx, activity.Filter{Text: "--"}); apperr.KindOf(err) != apperr.Invalid {
		t.Errorf("text without a word: got %v, want an invalid input error", err)
	}
}

// checkSearch pages through f's matches and counts them, and compares
// with matches over all.
func checkSearch(t *testing.T, s *activity.Service, all []activity.Event, f activity.Filter) {
	ctx := context.Background()
	var want []string
	for i := len(all) - 1; i >= 0; i-- { // newest first
		if matches(f, all[i]) {
			want = append(want, all[i].ID)
		}
	}
	// Page through with a small page size.
	var got []string
	f.Limit = 37
	for pages := 0; ; pages++ {
		evs, more, err := s.Search(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			got = append(got, e.ID)
		}
		if !more {
			break
		}
		f.Before = activity.Cursor{At: evs[len(evs)-1].Time, Seq: evs[len(evs)-1].Seq}
		if pages > 200 {
			t.Fatal("too many pages")
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	n, err := s.Count(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("count: got %d, want %d", n, len(want))
	}
}

func TestInsertIdempotent(t *testing.T) {
	s, _ := newService(t, activity.Config{})
	ctx := context.Background()
	e, _ := activity.ParseRecord(rec("CreateBucket", "s3.amazonaws.com", nil).JSON())
	for i, want := range []int{1, 0} {
		added, err := s.Insert(ctx, []activity.Event{e})
		if err != nil {
			t.Fatal(err)
		}
		if len(added) != want {
			t.Errorf("insert %d: got %d new, want %d", i+1, len(added), want)
		}
	}
	// A batch holding a stored event and a new one twice stores each new
	// one once, in order, with its row number (on PostgreSQL the stored
	// event makes the batch go through the staging table); their words
	// are indexed either way.
	f, _ := activity.ParseRecord(rec("DeleteBucket", "s3.amazonaws.com", func(r *activity.Record) { r.EventID = "new-event-0001" }).JSON())
	g, _ := activity.ParseRecord(rec("PutBucketAcl", "s3.amazonaws.com", func(r *activity.Record) { r.EventID = "new-event-0002" }).JSON())
	added, err := s.Insert(ctx, []activity.Event{f, e, f, g})
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 || added[0].ID != f.ID || added[1].ID != g.ID || added[0].Seq <= 0 || added[1].Seq <= added[0].Seq {
		t.Fatalf("mixed batch: stored %+v, want %s then %s with increasing row numbers", added, f.ID, g.ID)
	}
	for _, x := range added {
		got, err := s.Get(ctx, x.Seq)
		if err != nil || got.ID != x.ID {
			t.Errorf("event %d: got %s (%v), want %s", x.Seq, got.ID, err, x.ID)
		}
		found, _, err := s.Search(ctx, activity.Filter{Text: x.Name})
		if err != nil || len(found) != 1 || found[0].ID != x.ID {
			t.Errorf("text %q: found %d events (%v), want %s", x.Name, len(found), err, x.ID)
		}
	}
}

func TestExports(t *testing.T) {
	s, _ := newService(t, activity.Config{})
	all := seedEvents(t, s, 500)
	ctx := context.Background()
	f := activity.Filter{Access: activity.AccessWrite}
	var want []string
	for i := len(all) - 1; i >= 0; i-- {
		if !all[i].ReadOnly {
			want = append(want, all[i].ID)
		}
	}

	var buf bytes.Buffer
	if err := s.ExportCSV(ctx, f, &buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(activity.CSVHeader, rows[0]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	var got []string
	for _, r := range rows[1:] {
		got = append(got, r[1])
		if r[6] != "false" {
			t.Errorf("CSV row %s: read_only %s, want false", r[1], r[6])
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CSV events (-want +got):\n%s", diff)
	}

	buf.Reset()
	if err := s.ExportJSONL(ctx, f, &buf); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		var r struct {
			EventID  string `json:"eventID"`
			ReadOnly bool   `json:"readOnly"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("JSONL line %q: %v", line, err)
		}
		got = append(got, r.EventID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("JSONL events (-want +got):\n%s", diff)
	}
}

// oddRecord has escapes, non-ASCII text, numbers of every kind and ids
// in odd places.
const oddRecord = `{"eventVersion":"1.08","eventID":"odd-1","eventTime":"2026-03-02T09:00:00Z","eventSource":"s3.amazonaws.com","eventName":"PutBucketPolicy",` +
	`"awsRegion":"eu-central-1","recipientAccountId":"111111111111","requestID":"REQ-ODD","userIdentity":{"type":"IAMUser","userName":"ZOË"},` +
	`"userAgent":"Caf\u00e9 \"quoted\"\nnext\\line \ud83d\ude00 emoji\/slash","requestParameters":{"bucketName":"Zürich-docs",` +
	`"policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\"}]}","count":42,"ratio":0.5,"exp":1e3,"neg":-7,` +
	`"big":123456789012345678901,"flag":true,"nothing":null,"nested":{"eventID":"inner-id","list":["a1",2,{"requestID":"r-inner"}]},` +
	`"sharedEventID":{"deep":"kept"}}}`

// TestTextIndexBackfill stores events, then takes the database back to
// before migration 0502 (no text index) and opens it again: the
// migration's index of the stored events holds the same words, per event,
// as the one ingestion keeps.
func TestTextIndexBackfill(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "portal.db")
	db, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s := activity.New(activity.Config{}, db, audit.New(db, nil), nil, nil)
	seedEvents(t, s, 300)
	e, err := activity.ParseRecord([]byte(oddRecord))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Insert(ctx, []activity.Event{e}); err != nil {
		t.Fatal(err)
	}
	before := vocabulary(t, db)
	for _, q := range []string{`DROP TABLE activity_text`, `DROP INDEX activity_events_request_idx`, `DELETE FROM schema_migrations WHERE name = '0502_activity_search.sql'`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if db, err = store.Open(ctx, path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	after := vocabulary(t, db)
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("words per event, ingested (-) and migrated (+):\n%s", diff)
	}
	for _, w := range []string{"café", "zürich", "version", "2012", "allow", "quoted", "next", "line", "slash", "42", "7", "a1", "2", "kept", "zoË"} {
		if !slices.Contains(after[w], "odd-1") {
			t.Errorf("word %q: not indexed for the odd event", w)
		}
	}
	for _, w := range []string{"odd", "req", "inner", "eventid", "ratio", "5", "1e3", "true", "null", "123456789012345678901", "20"} {
		if slices.Contains(after[w], "odd-1") {
			t.Errorf("word %q: indexed for the odd event, want it left out", w)
		}
	}
}

// vocabulary returns the text index's words, each with the event ids it
// holds them for.
func vocabulary(t *testing.T, db *store.DB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, activity_text, 'row')`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT term FROM temp.vocab`)
	if err != nil {
		t.Fatal(err)
	}
	var terms []string
	for rows.Next() {
		var term string
		if err := rows.Scan(&term); err != nil {
			t.Fatal(err)
		}
		terms = append(terms, term)
	}
	rows.Close()
	out := map[string][]string{}
	for _, term := range terms {
		rows, err := conn.QueryContext(ctx, `SELECT e.event_id FROM activity_text AS x JOIN activity_events AS e ON e.id = x.rowid
			WHERE activity_text MATCH ? ORDER BY e.event_id`, `"`+term+`"`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out[term] = append(out[term], id)
		}
		rows.Close()
	}
	return out
}

// TestFacetsFollowIngestion: the explorer's drop-downs and counts are kept
// between page views, and an insert makes them current again.
func TestFacetsFollowIngestion(t *testing.T) {
	s, _ := newService(t, activity.Config{})
	ctx := context.Background()
	seedEvents(t, s, 200)
	f, err := s.Facets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"111111111111", "222222222222", "333333333333"}, f.Accounts); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
	if f.Total != 200 || f.Sandbox != 0 {
		t.Errorf("got %d events, %d from the sandbox; want 200, 0", f.Total, f.Sandbox)
	}
	f.Accounts[0] = "changed by the caller"
	if again, _ := s.Facets(ctx); again.Accounts[0] != "111111111111" {
		t.Errorf("a caller's change to the facets shows in the next view: %q", again.Accounts[0])
	}
	e, err := activity.ParseRecord(rec("CreateBucket", "s3.amazonaws.com", func(r *activity.Record) {
		r.Account, r.Region, r.Time = "444444444444", "ap-southeast-1", t0.Add(40*24*time.Hour)
	}).JSON())
	if err != nil {
		t.Fatal(err)
	}
	e.Sandbox = true
	if _, err := s.Insert(ctx, []activity.Event{e}); err != nil {
		t.Fatal(err)
	}
	f, err = s.Facets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.Accounts, "444444444444") || f.Total != 201 || f.Sandbox != 1 || !f.Newest.Equal(e.Time) {
		t.Errorf("after an insert: accounts %v, %d events, %d from the sandbox, newest %v; want 444444444444 among them, 201, 1, %v",
			f.Accounts, f.Total, f.Sandbox, f.Newest, e.Time)
	}
}

// The portal's own deploys (its deployer role session) can be told apart:
// hidden for people's events only, or shown alone.
func TestMadeByFilter(t *testing.T) {
	s, _ := newService(t, activity.Config{})
	var events []activity.Event
	for _, r := range []activity.Record{
		rec("PutRolePolicy", "iam.amazonaws.com", func(r *activity.Record) {
			r.Identity.Role, r.Identity.Session, r.Identity.AccessKey = "PortalDeployer", "portal", "ASIAPORTAL"
		}),
		rec("AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", nil),
	} {
		e, err := activity.ParseRecord(r.JSON())
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if _, err := s.Insert(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		madeBy string
		want   []string
	}{
		{"", []string{"AuthorizeSecurityGroupIngress", "PutRolePolicy"}},
		{activity.MadeByPeople, []string{"AuthorizeSecurityGroupIngress"}},
		{activity.MadeByPortal, []string{"PutRolePolicy"}},
	} {
		got, _, err := s.Search(context.Background(), activity.Filter{MadeBy: c.madeBy})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range got {
			names = append(names, e.Name)
			if activity.PortalCall(e) != (e.Name == "PutRolePolicy") {
				t.Errorf("PortalCall(%s) = %v", e.Name, activity.PortalCall(e))
			}
		}
		slices.Sort(names)
		if !slices.Equal(names, c.want) {
			t.Errorf("made by %q: got %v, want %v", c.madeBy, names, c.want)
		}
	}
}

// Exclusions leave out the events of the principals, sources and names
// given, combined with the other filters.
func TestHideFilters(t *testing.T) {
	s, _ := newService(t, activity.Config{})
	var events []activity.Event
	for _, r := range []activity.Record{
		rec("PutRolePolicy", "iam.amazonaws.com", func(r *activity.Record) { r.Identity.Session = "dara.sec" }),
		rec("Decrypt", "kms.amazonaws.com", nil),
		rec("GenerateDataKey", "kms.amazonaws.com", nil),
		rec("CreateBucket", "s3.amazonaws.com", nil),
	} {
		e, err := activity.ParseRecord(r.JSON())
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	if _, err := s.Insert(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		f    activity.Filter
		want []string
	}{
		{"nothing hidden", activity.Filter{}, []string{"CreateBucket", "Decrypt", "GenerateDataKey", "PutRolePolicy"}},
		{"a role session", activity.Filter{HideUsers: []string{"dara.sec"}}, []string{"CreateBucket", "Decrypt", "GenerateDataKey"}},
		{"an access key", activity.Filter{HideUsers: []string{"ASIAEXAMPLE"}}, nil},
		{"a source", activity.Filter{HideSources: []string{"kms.amazonaws.com"}}, []string{"CreateBucket", "PutRolePolicy"}},
		{"names", activity.Filter{HideNames: []string{"Decrypt", "CreateBucket"}}, []string{"GenerateDataKey", "PutRolePolicy"}},
		{"with a source filter", activity.Filter{Source: "kms.amazonaws.com", HideNames: []string{"Decrypt"}}, []string{"GenerateDataKey"}},
		{"all three", activity.Filter{HideUsers: []string{"dara.sec"}, HideSources: []string{"s3.amazonaws.com"}, HideNames: []string{"Decrypt"}}, []string{"GenerateDataKey"}},
	} {
		got, _, err := s.Search(context.Background(), c.f)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range got {
			names = append(names, e.Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, names, c.want)
		}
	}
}
