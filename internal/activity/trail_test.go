package activity_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"

	"portal/internal/activity"
	"portal/internal/audit"
	"portal/internal/engine"
	"portal/internal/peers/peertest"
)

// testKey is generated once per test binary: RSA key generation is slow.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// trailBucket creates a bucket in a fresh moto account and returns an S3
// client for it.
func trailBucket(t *testing.T) (*s3.Client, string, string) {
	t.Helper()
	cfg, account := peertest.AccountConfigForTest(t, peertest.MotoForTest(t), "us-east-1")
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true })
	bucket := "trail-" + account
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return client, bucket, account
}

// deliver writes hours of log files (two an hour, n records each) and an
// hourly signed digest, as CloudTrail would, for account in region.
func deliver(t *testing.T, w *activity.TrailWriter, from time.Time, hours, n int) []string {
	t.Helper()
	ctx := context.Background()
	rng := mrand.New(mrand.NewPCG(uint64(from.Unix()), uint64(len(w.Region))))
	var keys []string
	for h := range hours {
		start := from.Add(time.Duration(h) * time.Hour)
		for half := range 2 {
			at := start.Add(time.Duration(half*30+5) * time.Minute)
			var records []json.RawMessage
			for _, r := range activity.Background(rng, []string{w.Account}, []string{w.Region}, at.Add(-5*time.Minute), at, n) {
				records = append(records, r.JSON())
			}
			k, err := w.WriteLogFile(ctx, at, records, fmt.Sprintf("u%d%d", h, half))
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		if _, err := w.WriteDigest(ctx, start, start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func s3Clients(client *s3.Client) activity.Clients {
	return activity.Clients{S3: func(env, region string) (activity.S3API, error) { return client, nil }}
}

func TestIngestFromBucketIncremental(t *testing.T) {
	client, bucket, account := trailBucket(t)
	ctx := context.Background()
	var writers []*activity.TrailWriter
	for _, region := range []string{"us-east-1", "eu-central-1"} {
		writers = append(writers, &activity.TrailWriter{Client: client, Bucket: bucket, Account: account, Region: region, TrailName: "org-trail", Key: testKey()})
	}
	for _, w := range writers {
		deliver(t, w, t0, 2, 10)
	}
	var notified []activity.Event
	s, _ := newService(t, activity.Config{Buckets: []activity.TrailBucket{{Environment: "dev", Bucket: bucket, Region: "us-east-1"}}, Clients: s3Clients(client),
		Notify: func(_ context.Context, evs []activity.Event) { notified = append(notified, evs...) }})

	res, err := s.Ingest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 8 || res.New != 80 {
		t.Errorf("first pass: got %d files, %d new events, want 8 and 80", res.Files, res.New)
	}
	// Nothing new: nothing read.
	if res, err = s.Ingest(ctx); err != nil {
		t.Fatal(err)
	} else if res.Files != 0 || res.New != 0 {
		t.Errorf("second pass: got %d files, %d new, want 0 and 0", res.Files, res.New)
	}
	// One more hour in one region: only it is read.
	deliver(t, writers[1], t0.Add(2*time.Hour), 1, 10)
	if res, err = s.Ingest(ctx); err != nil {
		t.Fatal(err)
	} else if res.Files != 2 || res.New != 20 {
		t.Errorf("third pass: got %d files, %d new, want 2 and 20", res.Files, res.New)
	}
	cps, err := s.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, c := range cps {
		sources = append(sources, c.Source)
	}
	want := []string{"s3://" + bucket + "/AWSLogs/" + account + "/CloudTrail/eu-central-1/", "s3://" + bucket + "/AWSLogs/" + account + "/CloudTrail/us-east-1/"}
	if diff := cmp.Diff(want, sources); diff != "" {
		t.Errorf("checkpoints (-want +got):\n%s", diff)
	}
	// Every sensitive event was notified once.
	n, err := s.Count(ctx, activity.Filter{Sensitive: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(notified) != n {
		t.Errorf("notified %d sensitive events, stored %d", len(notified), n)
	}
	// A re-delivered file (same event ids) adds nothing.
	if err := s.ResetCheckpoints(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err = s.Ingest(ctx); err != nil {
		t.Fatal(err)
	} else if res.Files != 10 || res.New != 0 {
		t.Errorf("after reset: got %d files, %d new, want 10 and 0", res.Files, res.New)
	}
}

func TestIngestUnreadableBucket(t *testing.T) {
	client, _, _ := trailBucket(t)
	s, _ := newService(t, activity.Config{Buckets: []activity.TrailBucket{{Environment: "dev", Bucket: "no-such-bucket-here", Region: "us-east-1"}}, Clients: s3Clients(client)})
	_, err := s.Ingest(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket-here") || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("got %v, want an error naming the bucket and NoSuchBucket", err)
	}
}

func validator(t *testing.T, client *s3.Client, bucket string, keys ...*rsa.PublicKey) (*activity.Service, *audit.Log) {
	var dk []activity.DigestKey
	for _, k := range keys {
		parsed, err := activity.ParseDigestKeys(activity.EncodeDigestKey(k))
		if err != nil {
			t.Fatal(err)
		}
		dk = append(dk, parsed...)
	}
	return newService(t, activity.Config{Buckets: []activity.TrailBucket{{Environment: "dev", Bucket: bucket, Region: "us-east-1"}}, Clients: s3Clients(client), DigestKeys: dk})
}

func kinds(v activity.Validation) []string {
	var out []string
	for _, p := range v.Problems {
		out = append(out, p.Kind+" "+p.Key[strings.LastIndexByte(p.Key, '/')+1:])
	}
	slices.Sort(out)
	return out
}

func base(k string) string { return k[strings.LastIndexByte(k, '/')+1:] }

func TestValidateDigestChain(t *testing.T) {
	ctx := context.Background()
	by := audit.Entry{Actor: "user:1 compliance@example.com"}
	put := func(client *s3.Client, bucket, key string, body []byte, meta map[string]string) {
		t.Helper()
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body), Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(client *s3.Client, bucket, key string) ([]byte, map[string]string) {
		t.Helper()
		o, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Body.Close()
		b, _ := io.ReadAll(o.Body)
		return b, o.Metadata
	}
	digests := func(client *s3.Client, bucket, account string) []string {
		out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("AWSLogs/" + account + "/CloudTrail-Digest/")})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		return keys
	}

	tests := []struct {
		name   string
		tamper func(t *testing.T, client *s3.Client, bucket, account string, logs []string) []string // returns the expected findings
		keys   func() []*rsa.PublicKey
	}{
		{"intact", func(*testing.T, *s3.Client, string, string, []string) []string { return nil }, nil},
		{"log file changed", func(t *testing.T, c *s3.Client, b, a string, logs []string) []string {
			put(c, b, logs[3], []byte(`{"Records":[]}`), nil) // someone rewrote the file
			return []string{activity.ProblemLogChanged + " " + base(logs[3])}
		}, nil},
		{"log file deleted", func(t *testing.T, c *s3.Client, b, a string, logs []string) []string {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String(logs[0])}); err != nil {
				t.Fatal(err)
			}
			return []string{activity.ProblemLogMissing + " " + base(logs[0])}
		}, nil},
		{"unexpected log file", func(t *testing.T, c *s3.Client, b, a string, logs []string) []string {
			k := strings.Replace(logs[2], "_u10.json.gz", "_zz.json.gz", 1)
			put(c, b, k, []byte(`{"Records":[]}`), nil)
			return []string{activity.ProblemLogUnexpected + " " + base(k)}
		}, nil},
		{"digest edited", func(t *testing.T, c *s3.Client, b, a string, logs []string) []string {
			ds := digests(c, b, a)
			body, meta := get(c, b, ds[1])
			raw, err := activity.Inflate(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			put(c, b, ds[1], bytes.Replace(raw, []byte(`"logFiles":[{`), []byte(`"logFiles":[{"note":"x",`), 1), meta)
			// The next digest's link names the old content's hash.
			return []string{activity.ProblemDigestInvalid + " " + base(ds[1]), activity.ProblemChainBroken + " " + base(ds[2])}
		}, nil},
		{"digest deleted", func(t *testing.T, c *s3.Client, b, a string, logs []string) []string {
			ds := digests(c, b, a)
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String(ds[1])}); err != nil {
				t.Fatal(err)
			}
			// The oldest digest is now out of reach, and the logs of the
			// missing hour are named by no digest that can be checked.
			return []string{activity.ProblemDigestMissing + " " + base(ds[1]), activity.ProblemDigestOutside + " " + base(ds[0]),
				activity.ProblemLogUnexpected + " " + base(logs[0]), activity.ProblemLogUnexpected + " " + base(logs[1]),
				activity.ProblemLogUnexpected + " " + base(logs[2]), activity.ProblemLogUnexpected + " " + base(logs[3])}
		}, nil},
		{"signed by another key", func(*testing.T, *s3.Client, string, string, []string) []string { return nil }, func() []*rsa.PublicKey {
			other, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			return []*rsa.PublicKey{&other.PublicKey}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, bucket, account := trailBucket(t)
			w := &activity.TrailWriter{Client: client, Bucket: bucket, Account: account, Region: "eu-central-1", TrailName: "trail", Key: testKey()}
			logs := deliver(t, w, t0, 3, 5)
			want := tt.tamper(t, client, bucket, account, logs)
			keys := []*rsa.PublicKey{&testKey().PublicKey}
			if tt.keys != nil {
				keys = tt.keys()
				ds := digests(client, bucket, account)
				want = nil
				for _, d := range ds {
					want = append(want, activity.ProblemDigestUnknown+" "+base(d))
				}
			}
			slices.Sort(want)
			s, log := validator(t, client, bucket, keys...)
			v, err := s.Validate(ctx, by)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, kinds(v)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if v.OK != (len(want) == 0) {
				t.Errorf("OK: got %v, want %v", v.OK, len(want) == 0)
			}
			if tt.name == "intact" && (v.Digests != 3 || v.LogFiles != 6) {
				t.Errorf("checked %d digests and %d log files, want 3 and 6", v.Digests, v.LogFiles)
			}
			// The result is stored and in the audit trail.
			got, err := s.GetValidation(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != v.OK || len(got.Problems) != len(v.Problems) {
				t.Errorf("stored validation: got ok=%v problems=%d, want ok=%v problems=%d", got.OK, len(got.Problems), v.OK, len(v.Problems))
			}
			recs, _, err := log.List(ctx, audit.Filter{Action: "activity.validate_logs"})
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Actor != by.Actor || recs[0].Details["ok"] != v.OK {
				t.Errorf("audit records: got %+v, want one by %s with ok=%v", recs, by.Actor, v.OK)
			}
		})
	}
}

// lookupFake serves CloudTrail LookupEvents (awsJson1.1) as the real API
// shapes it: newest first, pages of MaxResults with a NextToken, events
// carrying their record as a JSON string. It records when each first attempt
// came.
type lookupFake struct {
	mu     sync.Mutex
	events []activity.Record // newest first
	at     []time.Time
}

func (f *lookupFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The SDK numbers its attempts ("attempt=2; max=3"); a resend of a
	// request the loaded machine cut is the SDK's retryer, not a page the
	// ingester asked for, so only first attempts are counted.
	if strings.HasPrefix(r.Header.Get("Amz-Sdk-Request"), "attempt=1;") {
		f.mu.Lock()
		f.at = append(f.at, time.Now())
		f.mu.Unlock()
	}
	if got := r.Header.Get("X-Amz-Target"); got != "CloudTrail_20131101.LookupEvents" {
		http.Error(w, `{"__type":"UnknownOperationException"}`, http.StatusBadRequest)
		return
	}
	var in struct {
		StartTime  *float64
		EndTime    *float64
		MaxResults int
		NextToken  string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var sel []activity.Record
	for _, e := range f.events {
		ts := float64(e.Time.Unix())
		if in.StartTime != nil && ts < *in.StartTime || in.EndTime != nil && ts > *in.EndTime {
			continue
		}
		sel = append(sel, e)
	}
	start := 0
	fmt.Sscan(in.NextToken, &start)
	end := min(start+in.MaxResults, len(sel))
	type event struct {
		EventId, EventName, EventSource, Username, ReadOnly, AccessKeyId, CloudTrailEvent string
		EventTime                                                                         float64
		Resources                                                                         []map[string]string
	}
	out := struct {
		Events    []event
		NextToken string `json:",omitempty"`
	}{Events: []event{}}
	for _, e := range sel[start:end] {
		out.Events = append(out.Events, event{EventId: e.EventID, EventName: e.Name, EventSource: e.Source, Username: e.Identity.Session,
			ReadOnly: fmt.Sprint(e.ReadOnly), AccessKeyId: e.Identity.AccessKey, CloudTrailEvent: string(e.JSON()), EventTime: float64(e.Time.Unix())})
	}
	if end < len(sel) {
		out.NextToken = fmt.Sprint(end)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func TestIngestLookupEvents(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	rng := mrand.New(mrand.NewPCG(3, 4))
	recs := activity.Background(rng, []string{"222222222222"}, []string{"eu-central-1"}, now.Add(-2*time.Hour), now.Add(-time.Minute), 120)
	slices.Reverse(recs)
	fake := &lookupFake{events: recs}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := aws.Config{Region: "eu-central-1", Credentials: aws.AnonymousCredentials{}}
	client := cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	s, _ := newService(t, activity.Config{Lookups: []activity.LookupSource{{Environment: "test", Regions: []string{"eu-central-1"}}},
		Clients: activity.Clients{Lookup: func(env, region string) (activity.LookupAPI, error) { return client, nil }}})
	ctx := context.Background()
	start := time.Now()
	res, err := s.Ingest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.New != 120 {
		t.Errorf("new events: got %d, want 120", res.New)
	}
	// 120 events in pages of 50: three requests, at most 2 a second.
	if len(fake.at) != 3 {
		t.Fatalf("requests: got %d, want 3", len(fake.at))
	}
	// A lower bound on the whole span, not on each gap: arrival times jitter
	// on a loaded machine, but the limiter can only make the last request
	// later, never earlier than two intervals after the start.
	if span := fake.at[len(fake.at)-1].Sub(start); span < time.Second {
		t.Errorf("3 requests within %v of the start; the API allows 2 a second, so the third must wait at least 1s", span)
	}
	// Again: the checkpoint narrows the window; the overlap re-reads only
	// recent events and stores nothing twice.
	if res, err = s.Ingest(ctx); err != nil {
		t.Fatal(err)
	} else if res.New != 0 || res.Events >= 120 {
		t.Errorf("second pass: got %d seen, %d new, want fewer than 120 seen and 0 new", res.Events, res.New)
	}
	evs, _, err := s.Search(ctx, activity.Filter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].Origin != "lookup:test/eu-central-1" || evs[0].ID != recs[0].EventID {
		t.Errorf("newest event: got %s from %s, want %s from lookup:test/eu-central-1", evs[0].ID, evs[0].Origin, recs[0].EventID)
	}
}

// TestSandboxTrailRecordsPortalCalls: the portal's own calls (as
// engine.OnCall reports them) become CloudTrail records of the deployer
// role's "portal" session, in signed, chained digests, ingested as
// sandbox data with the bucket as a resource.
func TestSandboxTrailRecordsPortalCalls(t *testing.T) {
	client, _, account := trailBucket(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	trail, err := activity.StartSandboxTrail(ctx, client, t.TempDir(), []string{account}, []string{"eu-central-1"}, 1, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stack := engine.StackInfo{ID: "dev-eu", Environment: "dev", Region: "eu-central-1", AccountID: account}
	trail.Record(ctx, engine.Call{Stack: stack, Region: "eu-central-1", Service: "S3", Operation: "CreateBucket", RequestID: "REQ-1", Time: now,
		Input: &s3.CreateBucketInput{Bucket: aws.String("medportal-dev-eu-documents")}})
	trail.Record(ctx, engine.Call{Stack: stack, Region: "eu-central-1", Service: "Elastic Load Balancing v2", Operation: "DescribeLoadBalancers", Time: now})
	if err := trail.Flush(ctx, now); err != nil {
		t.Fatal(err)
	}
	b := trail.Bucket()
	b.Bucket = activity.SandboxBucket
	keys, err := activity.ParseDigestKeys(mustReadFile(t, trail.KeyFile()))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newService(t, activity.Config{Buckets: []activity.TrailBucket{b}, Clients: s3Clients(client), DigestKeys: keys})
	if _, err := s.Ingest(ctx); err != nil {
		t.Fatal(err)
	}
	evs, _, err := s.Search(ctx, activity.Filter{Name: "CreateBucket", Resource: "medportal-dev-eu-documents"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("CreateBucket events: got %d, want 1", len(evs))
	}
	e := evs[0]
	if !activity.PortalCall(e) || !e.Sandbox || e.RequestID != "REQ-1" || e.Source != "s3.amazonaws.com" || e.Account != account {
		t.Errorf("event: got portal=%v sandbox=%v request=%s source=%s account=%s", activity.PortalCall(e), e.Sandbox, e.RequestID, e.Source, e.Account)
	}
	elb, _, _ := s.Search(ctx, activity.Filter{Name: "DescribeLoadBalancers"})
	if len(elb) != 1 || elb[0].Source != "elasticloadbalancing.amazonaws.com" || !elb[0].ReadOnly {
		t.Errorf("ELB event: got %+v", elb)
	}
	v, err := s.Validate(ctx, audit.Entry{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !v.OK {
		t.Errorf("validation of the sandbox trail: %+v", v.Problems)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
