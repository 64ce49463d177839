package activity

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"portal/internal/accounts"
	"portal/internal/engine"
)

// SandboxBucket is the trail bucket the sandbox writes into, in the dev
// account of the emulator.
const SandboxBucket = "portal-sandbox-cloudtrail"

// SandboxTrail stands in for CloudTrail in the sandbox, which the emulator
// does not deliver: it writes a generated background of staff activity
// and the portal's own AWS calls as CloudTrail log files, with hourly-style
// digests signed by a sandbox key, into SandboxBucket. Everything it
// writes is sandbox data and the pages say so.
type SandboxTrail struct {
	client  *s3.Client
	key     *rsa.PrivateKey
	keyFile string
	// deployerRole names the role the portal assumes (for records of its
	// own calls).
	deployerRole string

	mu      sync.Mutex
	writers map[string]*TrailWriter
	pending map[string][]json.RawMessage
	rng     *mrand.Rand
	seq     int
}

// StartSandboxTrail creates the bucket with client (the dev account's),
// loads or creates the sandbox signing key in dir, and writes days of
// generated background activity for accounts across regions, ending now.
func StartSandboxTrail(ctx context.Context, client *s3.Client, dir string, accts, regions []string, days int, now time.Time) (*SandboxTrail, error) {
	key, keyFile, err := sandboxKey(dir)
	if err != nil {
		return nil, err
	}
	t := &SandboxTrail{client: client, key: key, keyFile: keyFile, deployerRole: "PortalDeployer", writers: map[string]*TrailWriter{},
		pending: map[string][]json.RawMessage{}, rng: mrand.New(mrand.NewPCG(uint64(now.UnixNano()), 42))}
	created, err := t.createBucket(ctx)
	if err != nil {
		return nil, err
	}
	if !created {
		// The emulator outlived a restart of the portal: the bucket
		// already holds the generated week.
		return t, nil
	}
	// Six-hour log files over the period, then a digest each: enough to
	// explore and to validate, quick to write at start.
	start := now.Add(-time.Duration(days) * 24 * time.Hour).Truncate(time.Hour)
	for _, acct := range accts {
		for _, region := range regions {
			w := t.writer(acct, region)
			for at := start; at.Add(6 * time.Hour).Before(now); at = at.Add(6 * time.Hour) {
				var records []json.RawMessage
				for _, r := range Background(t.rng, []string{acct}, []string{region}, at, at.Add(6*time.Hour), 40) {
					records = append(records, r.JSON())
				}
				t.seq++
				if _, err := w.WriteLogFile(ctx, at.Add(6*time.Hour-time.Minute), records, fmt.Sprintf("sbx%05d", t.seq)); err != nil {
					return nil, err
				}
				if _, err := w.WriteDigest(ctx, at, at.Add(6*time.Hour)); err != nil {
					return nil, err
				}
			}
		}
	}
	return t, nil
}

// createBucket creates the trail bucket; false when it already exists.
func (t *SandboxTrail) createBucket(ctx context.Context) (bool, error) {
	if _, err := t.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(SandboxBucket)}); err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && (ae.ErrorCode() == "BucketAlreadyOwnedByYou" || ae.ErrorCode() == "BucketAlreadyExists") {
			return false, nil
		}
		return false, fmt.Errorf("activity: sandbox trail bucket: %w", explainAWS(err))
	}
	return true, nil
}

// KeyFile is the PEM file of the sandbox's public digest key.
func (t *SandboxTrail) KeyFile() string { return t.keyFile }

// Bucket is the trail bucket to configure, read from the dev account.
func (t *SandboxTrail) Bucket() TrailBucket {
	return TrailBucket{Environment: "dev", Bucket: SandboxBucket, Region: "us-east-1", Sandbox: true}
}

func (t *SandboxTrail) writer(acct, region string) *TrailWriter {
	k := acct + "/" + region
	w, ok := t.writers[k]
	if !ok {
		w = &TrailWriter{Client: t.client, Bucket: SandboxBucket, Account: acct, Region: region, TrailName: "sandbox-trail", Key: t.key}
		t.writers[k] = w
	}
	return w
}

func sandboxKey(dir string) (*rsa.PrivateKey, string, error) {
	priv := filepath.Join(dir, "cloudtrail-sandbox-key.pem")
	pub := filepath.Join(dir, "cloudtrail-sandbox-public.pem")
	var key *rsa.PrivateKey
	if b, err := os.ReadFile(priv); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, "", fmt.Errorf("activity: %s is not PEM", priv)
		}
		if key, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
			return nil, "", fmt.Errorf("activity: %s: %w", priv, err)
		}
	} else {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, "", err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, "", err
		}
		if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
			return nil, "", err
		}
	}
	if err := os.WriteFile(pub, EncodeDigestKey(&key.PublicKey), 0o644); err != nil {
		return nil, "", err
	}
	return key, pub, nil
}

// eventSources maps SDK service ids to CloudTrail event sources where the
// simple lower-casing does not give it.
var eventSources = map[string]string{
	"Elastic Load Balancing v2":   "elasticloadbalancing.amazonaws.com",
	"Auto Scaling":                "autoscaling.amazonaws.com",
	"CloudWatch Logs":             "logs.amazonaws.com",
	"CloudWatch":                  "monitoring.amazonaws.com",
	"Route 53":                    "route53.amazonaws.com",
	"Resource Groups Tagging API": "tagging.amazonaws.com",
}

func eventSource(service string) string {
	if s, ok := eventSources[service]; ok {
		return s
	}
	return strings.ToLower(strings.ReplaceAll(service, " ", "")) + ".amazonaws.com"
}

// requestParameters renders an SDK input roughly as CloudTrail does:
// lowerCamel keys, empty fields left out, bodies and long values dropped.
func requestParameters(input any) map[string]any {
	b, err := json.Marshal(input)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	out := map[string]any{}
	for _, k := range sortedKeys(m) {
		v := dropNulls(m[k])
		if v == nil || k == "Body" {
			continue
		}
		if s, ok := v.(string); ok && (s == "" || len(s) > 2048) {
			continue
		}
		if b, _ := json.Marshal(v); len(b) > 4096 || string(b) == "{}" || string(b) == "[]" {
			continue
		}
		name := k
		switch k {
		case "Bucket":
			name = "bucketName"
		default:
			r := []rune(k)
			r[0] = unicode.ToLower(r[0])
			name = string(r)
		}
		out[name] = v
	}
	return out
}

// dropNulls removes the null fields of nested objects: CloudTrail leaves
// out what a request did not send.
func dropNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
			} else {
				x[k] = dropNulls(e)
			}
		}
	case []any:
		for i, e := range x {
			x[i] = dropNulls(e)
		}
	}
	return v
}

// Record buffers one of the portal's own AWS calls (engine.OnCall) as a
// CloudTrail record of the deployer role's "portal" session.
func (t *SandboxTrail) Record(ctx context.Context, c engine.Call) {
	if c.Stack.AccountID == "" {
		return
	}
	region := c.Region
	if region == "" || region == "aws-global" {
		region = "us-east-1"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := Record{EventID: NewID(t.rng), RequestID: c.RequestID, Time: c.Time.UTC(), Account: c.Stack.AccountID, Region: region,
		Source: eventSource(c.Service), Name: c.Operation, ReadOnly: guessReadOnly(c.Operation), SourceIP: "198.51.100.200",
		UserAgent:         "aws-sdk-go-v2 portal (sandbox)",
		Identity:          Identity{Type: "AssumedRole", Account: c.Stack.AccountID, Role: t.deployerRole, Session: accounts.SessionName, AccessKey: "ASIASANDBOXPORTAL0001"},
		RequestParameters: requestParameters(c.Input)}
	if r.RequestID == "" {
		r.RequestID = NewID(t.rng)
	}
	if c.Err != nil {
		var ae smithy.APIError
		if errors.As(c.Err, &ae) {
			r.ErrorCode, r.ErrorMessge = ae.ErrorCode(), ae.ErrorMessage()
		} else {
			r.ErrorCode, r.ErrorMessge = "ClientError", c.Err.Error()
		}
	}
	k := r.Account + "/" + region
	t.pending[k] = append(t.pending[k], r.JSON())
}

// Flush writes the buffered records, one log file and one digest per
// account and region.
func (t *SandboxTrail) Flush(ctx context.Context, now time.Time) error {
	t.mu.Lock()
	pending := t.pending
	t.pending = map[string][]json.RawMessage{}
	t.mu.Unlock()
	keys := make([]string, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		acct, region, _ := strings.Cut(k, "/")
		t.mu.Lock()
		w := t.writer(acct, region)
		t.seq++
		unique := fmt.Sprintf("sbx%05d", t.seq)
		t.mu.Unlock()
		_, err := w.WriteLogFile(ctx, now, pending[k], unique)
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
			// The emulator restarted and lost the bucket: make it again.
			if _, err = t.createBucket(ctx); err == nil {
				_, err = w.WriteLogFile(ctx, now, pending[k], unique)
			}
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := w.WriteDigest(ctx, now.Add(-time.Minute), now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run flushes every interval until ctx ends, then once more.
func (t *SandboxTrail) Run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = t.Flush(fctx, time.Now())
			cancel()
			return
		case <-tick.C:
			_ = t.Flush(ctx, time.Now())
		}
	}
}
