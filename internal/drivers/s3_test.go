package drivers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/drivers"
	"portal/internal/engine"
)

var storeRegions = []string{"us-east-1", "eu-central-1", "ap-southeast-1"}

// testKey creates a customer-managed key in region and returns its ARN.
func storeKey(t *testing.T, env *engine.Env, region string) string {
	t.Helper()
	out, err := kms.NewFromConfig(env.Config(region)).CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String(t.Name())})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return aws.ToString(out.KeyMetadata.Arn)
}

// bucketName is unique per test account, since bucket names are global.
func storeBucketName(env *engine.Env, what string) string {
	return fmt.Sprintf("medportal-%s-%s-%s", env.Stack.AccountID, strings.ReplaceAll(env.Stack.Region, "-", ""), what)
}

type s3PolicyDoc struct {
	Statement []struct {
		Sid       string
		Effect    string
		Resource  any
		Condition map[string]map[string]any
	}
}

func readBucketPolicy(t *testing.T, c *s3.Client, bucket string) s3PolicyDoc {
	t.Helper()
	out, err := c.GetBucketPolicy(context.Background(), &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("GetBucketPolicy: %v", err)
	}
	var p s3PolicyDoc
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &p); err != nil {
		t.Fatalf("policy %s: %v", aws.ToString(out.Policy), err)
	}
	return p
}

func TestS3Bucket(t *testing.T) {
	t.Parallel()
	for _, region := range storeRegions {
		t.Run(region, func(t *testing.T) {
			ctx := context.Background()
			env := newEnv(t, region)
			c := s3.NewFromConfig(env.Config(region))
			key1, key2 := storeKey(t, env, region), storeKey(t, env, region)
			name := storeBucketName(env, "documents")
			d := &engine.Desired{ID: "documents_bucket", Type: "s3_bucket", Region: region, Fields: map[string]any{
				"name": name, "data_class": "patient", "description": "Prescriptions.", "kms_key": key1,
				"versioning": true, "public_access_block": true, "tls_only": false,
				"lifecycle": []any{map[string]any{"id": "old-versions", "noncurrent_expiration_days": int64(90)}},
			}}
			var checked bool
			live := lifecycle(t, env, drivers.S3Bucket{}, d, func(d *engine.Desired) []string {
				checkBucket(t, c, name, region, key1)
				checked = true
				// Objects and an old version, written before the TLS-only
				// policy (moto then refuses object calls), for Delete to
				// empty since the stack owns the bucket.
				for _, body := range []string{"v1", "v2"} {
					if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String("rx/1.pdf"), Body: strings.NewReader(body)}); err != nil {
						t.Fatalf("PutObject: %v", err)
					}
				}
				got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(name), Key: aws.String("rx/1.pdf")})
				if err != nil {
					t.Fatalf("GetObject: %v", err)
				}
				body, _ := io.ReadAll(got.Body)
				got.Body.Close()
				if got.ServerSideEncryption != s3types.ServerSideEncryptionAwsKms || string(body) != "v2" {
					t.Errorf("object sse=%s body=%q, want aws:kms and v2", got.ServerSideEncryption, body)
				}
				// A statement another driver wrote must survive tls_only.
				other := `{"Version":"2012-10-17","Statement":[{"Sid":"Other","Effect":"Allow","Principal":{"Service":"cloudtrail.amazonaws.com"},"Action":"s3:GetBucketAcl","Resource":"arn:aws:s3:::` + name + `"}]}`
				if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(name), Policy: aws.String(other)}); err != nil {
					t.Fatalf("PutBucketPolicy: %v", err)
				}
				d.Fields["kms_key"] = key2
				d.Fields["tls_only"] = true
				d.Fields["lifecycle"] = []any{
					map[string]any{"id": "archive", "transition_days": int64(90), "storage_class": "GLACIER"},
					map[string]any{"id": "expire", "prefix": "tmp/", "expiration_days": int64(7), "noncurrent_expiration_days": int64(1)},
				}
				return []string{"kms_key", "lifecycle", "tls_only"}
			})
			if !checked {
				t.Fatal("update never ran")
			}
			if live.Outputs["arn"] != "arn:aws:s3:::"+name || live.Outputs["name"] != name || live.Outputs["id"] != name {
				t.Errorf("outputs %v, want arn, name and id of %s", live.Outputs, name)
			}
			// The Read before Delete saw the updated settings.
			if live.Fields["kms_key"] != key2 || live.Fields["tls_only"] != true {
				t.Errorf("fields after update %v, want kms_key %s and tls_only", live.Fields, key2)
			}
		})
	}
}

// checkBucket asserts what the blueprint promises of a bucket, as S3
// itself reports it.
func checkBucket(t *testing.T, c *s3.Client, name, region, key string) {
	t.Helper()
	ctx := context.Background()
	loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("GetBucketLocation: %v", err)
	}
	if want := region; want != "us-east-1" && string(loc.LocationConstraint) != want {
		t.Errorf("bucket location %q, want %q", loc.LocationConstraint, want)
	}
	enc, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("GetBucketEncryption: %v", err)
	}
	r := enc.ServerSideEncryptionConfiguration.Rules[0]
	if r.ApplyServerSideEncryptionByDefault.SSEAlgorithm != s3types.ServerSideEncryptionAwsKms || aws.ToString(r.ApplyServerSideEncryptionByDefault.KMSMasterKeyID) != key || !aws.ToBool(r.BucketKeyEnabled) {
		t.Errorf("encryption %+v, want aws:kms with %s and a bucket key", r.ApplyServerSideEncryptionByDefault, key)
	}
	pab, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("GetPublicAccessBlock: %v", err)
	}
	p := pab.PublicAccessBlockConfiguration
	if !aws.ToBool(p.BlockPublicAcls) || !aws.ToBool(p.IgnorePublicAcls) || !aws.ToBool(p.BlockPublicPolicy) || !aws.ToBool(p.RestrictPublicBuckets) {
		t.Errorf("public access block %+v, want all four on", p)
	}
	ver, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(name)})
	if err != nil || ver.Status != s3types.BucketVersioningStatusEnabled {
		t.Errorf("versioning %v (%v), want Enabled", ver.Status, err)
	}
	lc, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("GetBucketLifecycleConfiguration: %v", err)
	}
	if len(lc.Rules) != 1 || aws.ToString(lc.Rules[0].ID) != "old-versions" || lc.Rules[0].NoncurrentVersionExpiration == nil || aws.ToInt32(lc.Rules[0].NoncurrentVersionExpiration.NoncurrentDays) != 90 {
		t.Errorf("lifecycle rules %+v, want old-versions expiring noncurrent versions after 90 days", lc.Rules)
	}
}

// TestS3BucketTLSOnly checks the policy document tls_only writes (moto
// blocks object calls under it, so objects are not tried afterwards).
func TestS3BucketTLSOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	region := "eu-central-1"
	env := newEnv(t, region)
	c := s3.NewFromConfig(env.Config(region))
	name := storeBucketName(env, "trail")
	d := &engine.Desired{ID: "trail_bucket", Type: "s3_bucket", Region: region, Tags: ownershipTags(env, "trail_bucket"), Fields: map[string]any{
		"name": name, "data_class": "audit", "kms_key": storeKey(t, env, region), "versioning": true, "public_access_block": true, "tls_only": true,
	}}
	live, err := drivers.S3Bucket{}.Create(ctx, env, d)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if live.Fields["tls_only"] != true {
		t.Errorf("tls_only read back %v, want true", live.Fields["tls_only"])
	}
	p := readBucketPolicy(t, c, name)
	if len(p.Statement) != 1 {
		t.Fatalf("policy has %d statements, want 1", len(p.Statement))
	}
	s := p.Statement[0]
	res, _ := json.Marshal(s.Resource)
	if s.Effect != "Deny" || fmt.Sprint(s.Condition["Bool"]["aws:SecureTransport"]) != "false" ||
		string(res) != fmt.Sprintf(`["arn:aws:s3:::%s","arn:aws:s3:::%s/*"]`, name, name) {
		t.Errorf("statement %+v (resources %s), want Deny of the bucket and its objects when aws:SecureTransport is false", s, res)
	}
	// Turning it off removes the statement and, with nothing left, the policy.
	d.Fields["tls_only"] = false
	changes := engine.Diff(d, live, drivers.S3Bucket{}.ForceNew())
	if got := changePaths(changes); fmt.Sprint(got) != "[tls_only]" {
		t.Fatalf("diff %v, want [tls_only]", got)
	}
	if _, err := (drivers.S3Bucket{}).Update(ctx, env, d, live, changes); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(name)}); !engine.IsCode(err, "NoSuchBucketPolicy") {
		t.Errorf("GetBucketPolicy after tls_only=false: %v, want NoSuchBucketPolicy", err)
	}
	if err := (drivers.S3Bucket{}).Delete(ctx, env, live); err != nil {
		t.Fatalf("Delete: %v", err)
	}
}

// TestS3BucketDeleteNotOwned: a bucket the stack does not own is never
// emptied; Delete refuses while it holds objects.
func TestS3BucketDeleteNotOwned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	region := "ap-southeast-1"
	env := newEnv(t, region)
	c := s3.NewFromConfig(env.Config(region))
	name := storeBucketName(env, "foreign")
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String("keep"), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	d := &engine.Desired{ID: "documents_bucket", Type: "s3_bucket", Region: region, Fields: map[string]any{"name": name}}
	live, err := drivers.S3Bucket{}.Read(ctx, env, d, nil)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if live.OwnedBy(env.Stack.ID) {
		t.Fatalf("untagged bucket reads as owned: %v", live.Tags)
	}
	err = drivers.S3Bucket{}.Delete(ctx, env, live)
	if err == nil || !strings.Contains(err.Error(), "not owned") {
		t.Errorf("Delete of a foreign non-empty bucket: %v, want a refusal naming ownership", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(name), Key: aws.String("keep")}); err != nil {
		t.Errorf("object of a foreign bucket is gone: %v", err)
	}
}

func TestS3Replication(t *testing.T) {
	t.Parallel()
	for _, region := range storeRegions {
		t.Run(region, func(t *testing.T) {
			ctx := context.Background()
			env := newEnv(t, region)
			c := s3.NewFromConfig(env.Config(region))
			// moto drops SourceSelectionCriteria from GetBucketReplication:
			// check the request the driver sends instead.
			sent := recordRequests(env, func(r *http.Request) bool {
				return r.Method == http.MethodPut && r.URL.Query().Has("replication")
			})
			replicaKey := storeKey(t, env, region)
			var arns []string
			for _, b := range []struct{ id, what, key string }{{"documents_bucket", "src", storeKey(t, env, region)}, {"documents_replica_bucket", "dst", replicaKey}} {
				d := &engine.Desired{ID: b.id, Type: "s3_bucket", Region: region, Tags: ownershipTags(env, b.id), Fields: map[string]any{
					"name": storeBucketName(env, b.what), "kms_key": b.key, "versioning": true, "public_access_block": true, "tls_only": false,
				}}
				live, err := drivers.S3Bucket{}.Create(ctx, env, d)
				if err != nil {
					t.Fatalf("Create bucket: %v", err)
				}
				t.Cleanup(func() { _ = drivers.S3Bucket{}.Delete(ctx, env, live) })
				arns = append(arns, live.Outputs["arn"])
			}
			role := "arn:aws:iam::" + env.Stack.AccountID + ":role/medportal-replication"
			src := storeBucketName(env, "src")
			d := &engine.Desired{ID: "documents_replication", Type: "s3_replication", Region: region, Fields: map[string]any{
				"source_bucket": src, "destination_bucket": arns[1], "role": role, "delete_marker_replication": false,
			}}
			var checked bool
			live := lifecycle(t, env, drivers.S3Replication{}, d, func(d *engine.Desired) []string {
				out, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(src)})
				if err != nil {
					t.Fatalf("GetBucketReplication: %v", err)
				}
				cfg := out.ReplicationConfiguration
				if aws.ToString(cfg.Role) != role || len(cfg.Rules) != 1 {
					t.Fatalf("replication %+v, want one rule with role %s", cfg, role)
				}
				r := cfg.Rules[0]
				if aws.ToString(r.Destination.Bucket) != arns[1] || r.Status != s3types.ReplicationRuleStatusEnabled {
					t.Errorf("rule destination %s status %s, want %s Enabled", aws.ToString(r.Destination.Bucket), r.Status, arns[1])
				}
				if body := sent.last(); !strings.Contains(body, "<SourceSelectionCriteria><SseKmsEncryptedObjects><Status>Enabled</Status></SseKmsEncryptedObjects></SourceSelectionCriteria>") {
					t.Errorf("PutBucketReplication sent %s, want SSE-KMS objects replicated", body)
				}
				if r.Destination.EncryptionConfiguration == nil || aws.ToString(r.Destination.EncryptionConfiguration.ReplicaKmsKeyID) != replicaKey {
					t.Errorf("replica key %+v, want the destination's key %s", r.Destination.EncryptionConfiguration, replicaKey)
				}
				checked = true
				d.Fields["role"] = role + "-v2"
				return []string{"role"}
			})
			if !checked {
				t.Fatal("update never ran")
			}
			if live.Fields["role"] != role+"-v2" {
				t.Errorf("role read back %v, want %s-v2", live.Fields["role"], role)
			}
			if _, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(src)}); err == nil {
				t.Errorf("replication configuration still there after Delete")
			}
		})
	}
}

// TestS3ReplicationDeleteMarkers: moto always reports delete marker
// replication Disabled; the driver says the endpoint does not support it
// instead of claiming success.
func TestS3ReplicationDeleteMarkers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	region := "us-east-1"
	env := newEnv(t, region)
	var arns []string
	for _, what := range []string{"src", "dst"} {
		d := &engine.Desired{ID: what, Type: "s3_bucket", Region: region, Tags: ownershipTags(env, what), Fields: map[string]any{
			"name": storeBucketName(env, what), "kms_key": storeKey(t, env, region), "versioning": true, "public_access_block": true, "tls_only": false,
		}}
		live, err := drivers.S3Bucket{}.Create(ctx, env, d)
		if err != nil {
			t.Fatalf("Create bucket: %v", err)
		}
		t.Cleanup(func() { _ = drivers.S3Bucket{}.Delete(ctx, env, live) })
		arns = append(arns, live.Outputs["arn"])
	}
	d := &engine.Desired{ID: "documents_replication", Type: "s3_replication", Region: region, Tags: ownershipTags(env, "documents_replication"), Fields: map[string]any{
		"source_bucket": storeBucketName(env, "src"), "destination_bucket": arns[1], "role": "arn:aws:iam::" + env.Stack.AccountID + ":role/r", "delete_marker_replication": true,
	}}
	_, err := drivers.S3Replication{}.Create(ctx, env, d)
	if err == nil || !strings.Contains(err.Error(), "not supported by this endpoint") || !strings.Contains(err.Error(), "DeleteMarkerReplication") {
		t.Errorf("Create with delete_marker_replication against moto: %v, want an error naming DeleteMarkerReplication as not supported", err)
	}
}

// requestLog records the bodies of requests an Env sends.
type requestLog struct {
	mu     sync.Mutex
	bodies []string
}

func (l *requestLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bodies) == 0 {
		return ""
	}
	return l.bodies[len(l.bodies)-1]
}

type recordingClient struct {
	next  aws.HTTPClient
	match func(*http.Request) bool
	log   *requestLog
}

func (c recordingClient) Do(r *http.Request) (*http.Response, error) {
	if c.match(r) && r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		c.log.mu.Lock()
		c.log.bodies = append(c.log.bodies, string(b))
		c.log.mu.Unlock()
	}
	return c.next.Do(r)
}

// recordRequests makes env record the bodies of the requests match selects.
func recordRequests(env *engine.Env, match func(*http.Request) bool) *requestLog {
	log := &requestLog{}
	config := env.Config
	env.Config = func(region string) aws.Config {
		cfg := config(region)
		next := cfg.HTTPClient
		if next == nil {
			next = awshttp.NewBuildableClient()
		}
		cfg.HTTPClient = recordingClient{next: next, match: match, log: log}
		return cfg
	}
	return log
}

// TestUnknownReferencesReadAsAbsent: during planning a reference to a
// resource not created yet is Unknown; the drivers that find their
// resource through one report it absent rather than look up the
// placeholder.
func TestUnknownReferencesReadAsAbsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := newEnv(t, "eu-central-1")
	unknown := engine.Unknown{Ref: "ref.x.arn"}
	cases := []struct {
		drv    engine.Driver
		fields map[string]any
	}{
		{drivers.S3Replication{}, map[string]any{"source_bucket": unknown, "destination_bucket": unknown, "role": unknown}},
		{drivers.SNSSubscription{}, map[string]any{"topic": unknown, "protocol": "email", "endpoints": []any{"a@example.com"}}},
	}
	for _, c := range cases {
		d := &engine.Desired{ID: "r", Type: c.drv.Type(), Region: "eu-central-1", Fields: c.fields}
		if _, err := c.drv.Read(ctx, env, d, nil); !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("%s Read with an unknown reference: %v, want ErrNotFound", c.drv.Type(), err)
		}
	}
}
