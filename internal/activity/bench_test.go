package activity_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

// memBucket is an in-memory S3API over gzip log files, so the benchmark
// measures the portal's parsing and storing, not the emulator.
type memBucket struct {
	keys    []string
	objects map[string][]byte
}

func (m *memBucket) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	prefix := aws.ToString(in.Prefix)
	after := aws.ToString(in.StartAfter)
	if t := aws.ToString(in.ContinuationToken); t != "" {
		after = t
	}
	out := &s3.ListObjectsV2Output{}
	seen := map[string]bool{}
	i := sort.SearchStrings(m.keys, after)
	for ; i < len(m.keys); i++ {
		k := m.keys[i]
		if k <= after || !strings.HasPrefix(k, prefix) {
			continue
		}
		if d := aws.ToString(in.Delimiter); d != "" {
			if j := strings.Index(k[len(prefix):], d); j >= 0 {
				cp := k[:len(prefix)+j+1]
				if !seen[cp] {
					seen[cp] = true
					out.CommonPrefixes = append(out.CommonPrefixes, types.CommonPrefix{Prefix: aws.String(cp)})
				}
				continue
			}
		}
		if len(out.Contents) == 1000 {
			out.IsTruncated = aws.Bool(true)
			out.NextContinuationToken = out.Contents[999].Key
			break
		}
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k)})
	}
	return out, nil
}

func (m *memBucket) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	b := m.objects[aws.ToString(in.Key)]
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b))}, nil
}

func rssKB() string { return procStatus("VmHWM:") }

func procStatus(field string) string {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			return strings.TrimSpace(strings.TrimPrefix(l, field))
		}
	}
	return "?"
}

// resetPeakRSS starts VmHWM again from the current RSS (Linux), so the
// peak reported after ingestion is the portal's, not the generator's.
func resetPeakRSS() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// BenchmarkActivityMillion ingests 1,000,000 generated events (1,000 log
// files of 1,000 events over 90 days, three accounts and regions), then
// measures combined-filter searches over a month and an export of
// 100,000 events. Run it once:
//
//	go test -run '^$' -bench ActivityMillion -benchtime 1x ./internal/activity/
func BenchmarkActivityMillion(b *testing.B) {
	const files, perFile = 1000, 1000
	ctx := context.Background()
	accts := []string{"111111111111", "222222222222", "333333333333"}
	regions := []string{"us-east-1", "eu-central-1", "ap-southeast-1"}
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	start := end.Add(-90 * 24 * time.Hour)
	bucket := &memBucket{objects: map[string][]byte{}}
	rng := rand.New(rand.NewPCG(11, 12))
	genStart := time.Now()
	var rawBytes int
	for f := range files {
		acct, region := accts[f%3], regions[(f/3)%3]
		from := start.Add(time.Duration(f) * (end.Sub(start) / files))
		to := from.Add(end.Sub(start) / files)
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		recs := activity.Background(rng, []string{acct}, []string{region}, from, to, perFile)
		raw := make([]json.RawMessage, len(recs))
		for i, r := range recs {
			raw[i] = r.JSON()
			rawBytes += len(raw[i])
		}
		body, _ := json.Marshal(map[string]any{"Records": raw})
		zw.Write(body)
		zw.Close()
		key := fmt.Sprintf("AWSLogs/%s/CloudTrail/%s/%s/%s_CloudTrail_%s_%s_%05d.json.gz", acct, region, to.Format("2006/01/02"), acct, region, to.Format("20060102T1504Z"), f)
		bucket.objects[key] = buf.Bytes()
		bucket.keys = append(bucket.keys, key)
	}
	sort.Strings(bucket.keys)
	fmt.Printf("bench: generated %d events (%d MB of JSON) in %s; peak RSS %s generating\n", files*perFile, rawBytes>>20, time.Since(genStart).Round(time.Millisecond), rssKB())
	resetPeakRSS()
	fmt.Printf("bench: RSS %s holding the log files (from here the peak is the portal's)\n", procStatus("VmRSS:"))

	// PORTAL_TEST_STORE picks the database, as for the tests: make bench
	// runs this on SQLite and on PostgreSQL.
	dbPath := filepath.Join(b.TempDir(), "portal.db")
	if peertest.StoreDialect(b) == store.Postgres {
		dbPath = peertest.StoreDSNForTest(b)
	}
	db, err := store.Open(ctx, dbPath)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fmt.Printf("bench: store %s\n", db.Dialect())
	s := activity.New(activity.Config{Buckets: []activity.TrailBucket{{Environment: "dev", Bucket: "bench", Region: "us-east-1"}},
		Clients: activity.Clients{S3: func(string, string) (activity.S3API, error) { return bucket, nil }}}, db, audit.New(db, nil), nil, nil)

	b.ResetTimer()
	t0 := time.Now()
	res, err := s.Ingest(ctx)
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(t0)
	b.StopTimer()
	if res.New != files*perFile {
		b.Fatalf("ingested %d new events, want %d", res.New, files*perFile)
	}
	b.ReportMetric(float64(res.New)/took.Seconds(), "events/s")
	fmt.Printf("bench: ingest: %d events from %d files in %s = %.0f events/s\n", res.New, res.Files, took.Round(time.Millisecond), float64(res.New)/took.Seconds())

	var size int64
	if db.Dialect() == store.Postgres {
		if _, err := db.ExecContext(ctx, `ANALYZE activity_events`); err != nil {
			b.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&size); err != nil {
			b.Fatal(err)
		}
	} else {
		if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		fi, _ := os.Stat(dbPath)
		size = fi.Size()
	}
	b.ReportMetric(float64(size)/(1<<20), "db-MB")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("bench: database %d MB; Go heap in use %d MB, from the OS %d MB; peak RSS %s\n", size>>20, ms.HeapInuse>>20, ms.Sys>>20, rssKB())

	// Combined filters over a month, as an officer would type them.
	month := activity.Filter{Since: end.Add(-30 * 24 * time.Hour), Until: end}
	with := func(mod func(*activity.Filter)) activity.Filter { f := month; mod(&f); return f }
	queries := map[string]activity.Filter{
		"account+region+writes": with(func(f *activity.Filter) {
			f.Account, f.Region, f.Access = "222222222222", "eu-central-1", activity.AccessWrite
		}),
		"user+account": with(func(f *activity.Filter) { f.User, f.Account = "dara.sec", "111111111111" }),
		"source+name+region": with(func(f *activity.Filter) {
			f.Source, f.Name, f.Region = "iam.amazonaws.com", "PutRolePolicy", "us-east-1"
		}),
		"resource+writes": with(func(f *activity.Filter) { f.Resource, f.Access = "medportal-eu-central-1-docs-1", activity.AccessWrite }),
		"errors+account+ip": with(func(f *activity.Filter) {
			f.ErrorCode, f.Account, f.SourceIP = activity.AnyError, "333333333333", "198.51.100.7"
		}),
		"sensitive":              with(func(f *activity.Filter) { f.Sensitive = true }),
		"text+account":           with(func(f *activity.Filter) { f.Text, f.Account = "inline-s3-access", "111111111111" }),
		"name+user (rare combo)": with(func(f *activity.Filter) { f.Name, f.User = "ScheduleKeyDeletion", "ana.ops" }),
	}
	// More of Text, outside the totals (which stay comparable with earlier
	// reports): a word in most events, the start of words in many, a
	// request id.
	evs, _, err := s.Search(ctx, month)
	if err != nil || len(evs) == 0 {
		b.Fatalf("no event in the month: %v", err)
	}
	more := map[string]activity.Filter{
		"text common word+region": with(func(f *activity.Filter) { f.Text, f.Region = "StaffOperator", "ap-southeast-1" }),
		"text word start+account": with(func(f *activity.Filter) { f.Text, f.Account = "describe", "222222222222" }),
		"text request id":         with(func(f *activity.Filter) { f.Text = evs[len(evs)-1].RequestID }),
	}
	var all []time.Duration
	run := func(queries map[string]activity.Filter, total bool) {
		names := make([]string, 0, len(queries))
		for n := range queries {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			var ds []time.Duration
			for range 25 {
				q0 := time.Now()
				if _, _, err := s.Search(ctx, queries[n]); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(q0))
			}
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			fmt.Printf("bench: search %-24s p50 %8s  p95 %8s\n", n, ds[len(ds)/2].Round(10*time.Microsecond), ds[len(ds)*95/100].Round(10*time.Microsecond))
			if total {
				all = append(all, ds...)
			}
		}
	}
	run(queries, true)
	run(more, false)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	p50, p95 := all[len(all)/2], all[len(all)*95/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "search-p50-ms")
	b.ReportMetric(float64(p95.Microseconds())/1000, "search-p95-ms")
	fmt.Printf("bench: search over a month, all queries: p50 %s, p95 %s\n", p50.Round(10*time.Microsecond), p95.Round(10*time.Microsecond))

	// Export of about 100,000 events (one account over a month).
	exp := with(func(f *activity.Filter) { f.Account = "111111111111" })
	n, err := s.Count(ctx, exp)
	if err != nil {
		b.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cw := &countingWriter{}
	e0 := time.Now()
	if err := s.ExportCSV(ctx, exp, cw); err != nil {
		b.Fatal(err)
	}
	csvTook := time.Since(e0)
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	cw2 := &countingWriter{}
	e1 := time.Now()
	if err := s.ExportJSONL(ctx, exp, cw2); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(csvTook.Seconds(), "export-csv-s")
	fmt.Printf("bench: export of %d events: CSV %d MB in %s (heap %d MB before, %d MB after); JSON Lines %d MB in %s\n", n, cw.n>>20, csvTook.Round(time.Millisecond),
		before.HeapInuse>>20, after.HeapInuse>>20, cw2.n>>20, time.Since(e1).Round(time.Millisecond))
	fmt.Printf("bench: peak RSS %s over ingestion, searches and exports\n", rssKB())
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
