package drivers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/engine"
)

// S3Bucket manages a bucket: SSE-KMS with a bucket key, versioning, the
// public access block, a TLS-only bucket policy and lifecycle rules.
//
// Fields: name, kms_key, versioning, public_access_block, tls_only,
// lifecycle ([{id, prefix, transition_days, storage_class, expiration_days,
// noncurrent_expiration_days}]); data_class and description are
// informational. The bucket lives in the resource's region
// (LocationConstraint). Outputs: arn, name, id, regional_domain_name.
//
// tls_only is a Deny statement (Sid DenyInsecureTransport) on
// aws:SecureTransport=false, merged into the bucket policy by Sid so other
// drivers' statements (CloudTrail's delivery grant) survive. moto blocks
// every object call once such a conditional Deny exists, even over the
// SDK's own requests; real S3 does not, since the SDK always uses TLS.
type S3Bucket struct{}

func (S3Bucket) Type() string       { return "s3_bucket" }
func (S3Bucket) ForceNew() []string { return []string{"name"} }

// Sid of the statement tls_only puts in the bucket policy.
const sidDenyInsecureTransport = "DenyInsecureTransport"

func s3Client(env *engine.Env, region string) *s3.Client {
	return s3.NewFromConfig(env.Config(region))
}

func s3BucketARN(region, name string) string {
	return fmt.Sprintf("arn:%s:s3:::%s", regionPartition(region), name)
}

// s3BucketName returns the bucket name of a bucket ARN, or s itself when it
// is already a name.
func s3BucketName(s string) string {
	if i := strings.LastIndex(s, ":::"); strings.HasPrefix(s, "arn:") && i >= 0 {
		return s[i+3:]
	}
	return s
}

// regionPartition returns the ARN partition of region.
func regionPartition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}

// refResolved reports whether a field read with Desired.String holds a
// real value: during planning a reference to a resource not created yet is
// Unknown, which String renders as "(known after apply: ...)", and an
// interpolation of one carries the engine's unknown mark.
func refResolved(s string) bool {
	return s != "" && !engine.IsUnknown(s) && !strings.HasPrefix(s, engine.Unknown{}.String()[:len("(known after apply")])
}

// s3BucketRegion finds where bucket lives, asking from region. It returns
// engine.ErrNotFound when the bucket does not exist.
func s3BucketRegion(ctx context.Context, env *engine.Env, region, bucket string) (string, error) {
	out, err := s3Client(env, region).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(bucket)})
	if engine.IsCode(err, "NotFound", "NoSuchBucket") {
		return "", engine.ErrNotFound
	} else if err != nil {
		return "", fmt.Errorf("head bucket %s: %w", bucket, err)
	}
	if r := aws.ToString(out.BucketRegion); r != "" {
		return r, nil
	}
	return region, nil
}

func (b S3Bucket) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	name, region := d.String("name"), d.Region
	if prior != nil {
		name = prior.PhysicalID
		if prior.Region != "" {
			region = prior.Region
		}
	}
	if !refResolved(name) {
		return nil, engine.ErrNotFound
	}
	actual, err := s3BucketRegion(ctx, env, region, name)
	if err != nil {
		return nil, err
	}
	c := s3Client(env, actual)
	live := &engine.Live{
		PhysicalID: name,
		Region:     actual,
		Outputs: map[string]string{
			"arn": s3BucketARN(actual, name), "name": name, "id": name,
			"regional_domain_name": fmt.Sprintf("%s.s3.%s.amazonaws.com", name, actual),
		},
		Fields: map[string]any{"name": name},
		Tags:   map[string]string{},
	}

	enc, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(name)})
	switch {
	case engine.IsCode(err, "ServerSideEncryptionConfigurationNotFoundError"):
		live.Fields["kms_key"] = ""
	case err != nil:
		return nil, fmt.Errorf("get encryption of bucket %s: %w", name, err)
	default:
		live.Fields["kms_key"] = ""
		for _, r := range enc.ServerSideEncryptionConfiguration.Rules {
			if def := r.ApplyServerSideEncryptionByDefault; def != nil && def.SSEAlgorithm == types.ServerSideEncryptionAwsKms && aws.ToBool(r.BucketKeyEnabled) {
				live.Fields["kms_key"] = aws.ToString(def.KMSMasterKeyID)
			}
		}
	}

	ver, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("get versioning of bucket %s: %w", name, err)
	}
	live.Fields["versioning"] = ver.Status == types.BucketVersioningStatusEnabled

	pab, err := c.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: aws.String(name)})
	switch {
	case engine.IsCode(err, "NoSuchPublicAccessBlockConfiguration"):
		live.Fields["public_access_block"] = false
	case err != nil:
		return nil, fmt.Errorf("get public access block of bucket %s: %w", name, err)
	default:
		p := pab.PublicAccessBlockConfiguration
		live.Fields["public_access_block"] = p != nil && aws.ToBool(p.BlockPublicAcls) && aws.ToBool(p.IgnorePublicAcls) &&
			aws.ToBool(p.BlockPublicPolicy) && aws.ToBool(p.RestrictPublicBuckets)
	}

	pol, err := getBucketPolicy(ctx, c, name)
	if err != nil {
		return nil, err
	}
	live.Fields["tls_only"] = pol.deniesInsecureTransport()

	lc, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: aws.String(name)})
	var rules []types.LifecycleRule
	switch {
	case engine.IsCode(err, "NoSuchLifecycleConfiguration"):
	case err != nil:
		return nil, fmt.Errorf("get lifecycle of bucket %s: %w", name, err)
	default:
		rules = lc.Rules
	}
	live.Fields["lifecycle"] = lifecycleField(rules, d.List("lifecycle"))

	tags, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(name)})
	switch {
	case engine.IsCode(err, "NoSuchTagSet"):
	case err != nil:
		return nil, fmt.Errorf("get tags of bucket %s: %w", name, err)
	default:
		for _, t := range tags.TagSet {
			live.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return live, nil
}

// lifecycleRule is a blueprint lifecycle rule in canonical form.
type lifecycleRule struct {
	ID, Prefix, StorageClass                          string
	TransitionDays, ExpirationDays, NoncurrentExpDays int64
}

func desiredLifecycle(list []any) []lifecycleRule {
	out := make([]lifecycleRule, 0, len(list))
	for _, e := range list {
		m, _ := e.(map[string]any)
		r := lifecycleRule{
			ID:                m2s(m, "id"),
			Prefix:            m2s(m, "prefix"),
			StorageClass:      m2s(m, "storage_class"),
			TransitionDays:    m2i(m, "transition_days"),
			ExpirationDays:    m2i(m, "expiration_days"),
			NoncurrentExpDays: m2i(m, "noncurrent_expiration_days"),
		}
		if r.TransitionDays > 0 && r.StorageClass == "" {
			r.StorageClass = string(types.TransitionStorageClassGlacier)
		}
		out = append(out, r)
	}
	return out
}

func m2s(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func m2i(m map[string]any, k string) int64 {
	switch x := m[k].(type) {
	case int64:
		return x
	case int:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

func liveLifecycle(rules []types.LifecycleRule) []lifecycleRule {
	out := make([]lifecycleRule, 0, len(rules))
	for _, r := range rules {
		if r.Status != types.ExpirationStatusEnabled {
			continue
		}
		lr := lifecycleRule{ID: aws.ToString(r.ID), Prefix: aws.ToString(r.Prefix)}
		if r.Filter != nil && r.Filter.Prefix != nil {
			lr.Prefix = aws.ToString(r.Filter.Prefix)
		}
		if len(r.Transitions) > 0 {
			lr.TransitionDays = int64(aws.ToInt32(r.Transitions[0].Days))
			lr.StorageClass = string(r.Transitions[0].StorageClass)
		}
		if r.Expiration != nil {
			lr.ExpirationDays = int64(aws.ToInt32(r.Expiration.Days))
		}
		if r.NoncurrentVersionExpiration != nil {
			lr.NoncurrentExpDays = int64(aws.ToInt32(r.NoncurrentVersionExpiration.NoncurrentDays))
		}
		out = append(out, lr)
	}
	return out
}

// lifecycleField reports the live rules for the diff: in the blueprint's
// own shape when they mean the same as want (AWS fills in defaults and
// orders rules its own way), otherwise in canonical form.
func lifecycleField(rules []types.LifecycleRule, want []any) []any {
	have := liveLifecycle(rules)
	wantRules := desiredLifecycle(want)
	byID := func(a, b lifecycleRule) int { return strings.Compare(a.ID, b.ID) }
	x, y := slices.Clone(have), slices.Clone(wantRules)
	slices.SortFunc(x, byID)
	slices.SortFunc(y, byID)
	if reflect.DeepEqual(x, y) {
		return want
	}
	out := make([]any, 0, len(have))
	for _, r := range have {
		m := map[string]any{"id": r.ID}
		if r.Prefix != "" {
			m["prefix"] = r.Prefix
		}
		if r.TransitionDays > 0 {
			m["transition_days"] = r.TransitionDays
			m["storage_class"] = r.StorageClass
		}
		if r.ExpirationDays > 0 {
			m["expiration_days"] = r.ExpirationDays
		}
		if r.NoncurrentExpDays > 0 {
			m["noncurrent_expiration_days"] = r.NoncurrentExpDays
		}
		out = append(out, m)
	}
	return out
}

func s3Tags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range sortedKeys(tags) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func (b S3Bucket) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	name := d.String("name")
	c := s3Client(env, d.Region)
	in := &s3.CreateBucketInput{Bucket: aws.String(name)}
	if d.Region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(d.Region)}
	}
	// A Create retried after a crash finds its own bucket: S3 answers
	// BucketAlreadyOwnedByYou, and the settings below are all idempotent.
	if _, err := c.CreateBucket(ctx, in); err != nil && !engine.IsCode(err, "BucketAlreadyOwnedByYou") {
		return nil, fmt.Errorf("create bucket %s: %w", name, err)
	}
	if err := s3.NewBucketExistsWaiter(c).Wait(ctx, &s3.HeadBucketInput{Bucket: aws.String(name)}, 2*time.Minute); err != nil {
		return nil, fmt.Errorf("wait for bucket %s: %w", name, err)
	}
	env.Logf("created bucket %s in %s", name, d.Region)
	// Tags first, so a crash from here on leaves a bucket the stack owns.
	if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(name), Tagging: &types.Tagging{TagSet: s3Tags(d.Tags)}}); err != nil {
		return nil, fmt.Errorf("tag bucket %s: %w", name, err)
	}
	if err := b.apply(ctx, c, env, d, name, nil); err != nil {
		return nil, err
	}
	return b.Read(ctx, env, d, &engine.Prior{PhysicalID: name, Region: d.Region})
}

// apply brings the settings of bucket name to what d asks; with live it
// only touches the settings that differ.
func (b S3Bucket) apply(ctx context.Context, c *s3.Client, env *engine.Env, d *engine.Desired, name string, live *engine.Live) error {
	differs := func(field string, want any) bool {
		if live == nil {
			return true
		}
		return !reflect.DeepEqual(live.Fields[field], want)
	}
	if k := d.String("kms_key"); differs("kms_key", k) {
		var err error
		if k == "" {
			_, err = c.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: aws.String(name)})
		} else {
			_, err = c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
				Bucket: aws.String(name),
				ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{Rules: []types.ServerSideEncryptionRule{{
					ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(k)},
					BucketKeyEnabled:                   aws.Bool(true),
				}}},
			})
		}
		if err != nil {
			return fmt.Errorf("set encryption of bucket %s: %w", name, err)
		}
		env.Logf("bucket %s: default encryption SSE-KMS %s with bucket key", name, k)
	}
	if v := d.Bool("versioning"); differs("versioning", v) {
		status := types.BucketVersioningStatusEnabled
		if !v {
			status = types.BucketVersioningStatusSuspended
		}
		// A bucket that never had versioning needs no Suspended call.
		if v || live != nil {
			if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name), VersioningConfiguration: &types.VersioningConfiguration{Status: status}}); err != nil {
				return fmt.Errorf("set versioning of bucket %s: %w", name, err)
			}
			env.Logf("bucket %s: versioning %s", name, status)
		}
	}
	if p := d.Bool("public_access_block"); differs("public_access_block", p) {
		var err error
		if p {
			_, err = c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: aws.String(name), PublicAccessBlockConfiguration: &types.PublicAccessBlockConfiguration{
				BlockPublicAcls: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
			}})
		} else if live != nil {
			_, err = c.DeletePublicAccessBlock(ctx, &s3.DeletePublicAccessBlockInput{Bucket: aws.String(name)})
		}
		if err != nil {
			return fmt.Errorf("set public access block of bucket %s: %w", name, err)
		}
		env.Logf("bucket %s: public access block %t", name, p)
	}
	if lc := d.List("lifecycle"); d.Has("lifecycle") && (live == nil || !reflect.DeepEqual(live.Fields["lifecycle"], lc)) {
		if err := b.putLifecycle(ctx, c, name, desiredLifecycle(lc)); err != nil {
			return err
		}
		env.Logf("bucket %s: %d lifecycle rule(s)", name, len(lc))
	}
	// The policy goes last: in moto a conditional Deny blocks object calls.
	if t := d.Bool("tls_only"); differs("tls_only", t) {
		var err error
		if t {
			err = mergeBucketPolicy(ctx, c, name, []map[string]any{denyInsecureTransport(d.Region, name)}, nil)
		} else if live != nil {
			err = mergeBucketPolicy(ctx, c, name, nil, []string{sidDenyInsecureTransport})
		}
		if err != nil {
			return err
		}
		env.Logf("bucket %s: TLS-only policy %t", name, t)
	}
	return nil
}

func (S3Bucket) putLifecycle(ctx context.Context, c *s3.Client, name string, rules []lifecycleRule) error {
	if len(rules) == 0 {
		if _, err := c.DeleteBucketLifecycle(ctx, &s3.DeleteBucketLifecycleInput{Bucket: aws.String(name)}); err != nil {
			return fmt.Errorf("delete lifecycle of bucket %s: %w", name, err)
		}
		return nil
	}
	out := make([]types.LifecycleRule, 0, len(rules))
	for _, r := range rules {
		lr := types.LifecycleRule{ID: aws.String(r.ID), Status: types.ExpirationStatusEnabled, Filter: &types.LifecycleRuleFilter{Prefix: aws.String(r.Prefix)}}
		if r.TransitionDays > 0 {
			lr.Transitions = []types.Transition{{Days: aws.Int32(int32(r.TransitionDays)), StorageClass: types.TransitionStorageClass(r.StorageClass)}}
		}
		if r.ExpirationDays > 0 {
			lr.Expiration = &types.LifecycleExpiration{Days: aws.Int32(int32(r.ExpirationDays))}
		}
		if r.NoncurrentExpDays > 0 {
			lr.NoncurrentVersionExpiration = &types.NoncurrentVersionExpiration{NoncurrentDays: aws.Int32(int32(r.NoncurrentExpDays))}
		}
		out = append(out, lr)
	}
	_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: aws.String(name), LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: out}})
	if err != nil {
		return fmt.Errorf("put lifecycle of bucket %s: %w", name, err)
	}
	return nil
}

func (b S3Bucket) Update(ctx context.Context, env *engine.Env, d *engine.Desired, live *engine.Live, changes []engine.FieldChange) (*engine.Live, error) {
	c := s3Client(env, live.Region)
	for _, ch := range changes {
		if ch.Path == "tags" {
			// PutBucketTagging replaces the set: keep tags others added.
			tags := map[string]string{}
			for k, v := range live.Tags {
				tags[k] = v
			}
			for k, v := range d.Tags {
				tags[k] = v
			}
			if _, err := c.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String(live.PhysicalID), Tagging: &types.Tagging{TagSet: s3Tags(tags)}}); err != nil {
				return nil, fmt.Errorf("tag bucket %s: %w", live.PhysicalID, err)
			}
		}
	}
	if err := b.apply(ctx, c, env, d, live.PhysicalID, live); err != nil {
		return nil, err
	}
	return b.Read(ctx, env, d, &engine.Prior{PhysicalID: live.PhysicalID, Region: live.Region})
}

// Delete removes the bucket. Only a bucket this stack owns (by its
// ownership tag) is emptied first, every object version and delete marker;
// anyone else's bucket must already be empty, or S3 refuses.
func (b S3Bucket) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := s3Client(env, live.Region)
	name := live.PhysicalID
	if live.OwnedBy(env.Stack.ID) {
		if err := b.empty(ctx, c, env, name); err != nil {
			return err
		}
	}
	_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)})
	switch {
	case engine.IsCode(err, "NoSuchBucket", "NotFound"):
		return nil
	case engine.IsCode(err, "BucketNotEmpty"):
		return fmt.Errorf("delete bucket %s: it is not empty and not owned by stack %s, so the portal leaves its objects alone: %s", name, env.Stack.ID, engine.Explain(err))
	case err != nil:
		return fmt.Errorf("delete bucket %s: %w", name, err)
	}
	env.Logf("deleted bucket %s", name)
	return nil
}

// empty deletes every object version and delete marker of bucket name.
// moto refuses object calls once the TLS-only Deny is in the policy (real
// S3 does not, the SDK speaking TLS): on AccessDenied the driver drops its
// own statement, logs why, and tries once more.
func (b S3Bucket) empty(ctx context.Context, c *s3.Client, env *engine.Env, name string) error {
	err := b.deleteVersions(ctx, c, env, name)
	if engine.IsCode(err, "AccessDenied", "Forbidden") || errors.Is(err, errS3ObjectDenied) {
		pol, perr := getBucketPolicy(ctx, c, name)
		if perr == nil && pol.deniesInsecureTransport() {
			env.Logf("bucket %s: object calls refused under the TLS-only policy; removing that statement to empty the bucket", name)
			if err := mergeBucketPolicy(ctx, c, name, nil, []string{sidDenyInsecureTransport}); err != nil {
				return err
			}
			err = b.deleteVersions(ctx, c, env, name)
		}
	}
	if err != nil {
		return fmt.Errorf("empty bucket %s: %w", name, err)
	}
	return nil
}

func (S3Bucket) deleteVersions(ctx context.Context, c *s3.Client, env *engine.Env, name string) error {
	total := 0
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if engine.IsCode(err, "NoSuchBucket") {
			return nil
		} else if err != nil {
			return err
		}
		var ids []types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		for len(ids) > 0 {
			n := min(len(ids), 1000)
			out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(name), Delete: &types.Delete{Objects: ids[:n], Quiet: aws.Bool(true)}})
			if err != nil {
				return err
			}
			if len(out.Errors) > 0 {
				e := out.Errors[0]
				err := fmt.Errorf("delete %s (version %s): %s: %s", aws.ToString(e.Key), aws.ToString(e.VersionId), aws.ToString(e.Code), aws.ToString(e.Message))
				if aws.ToString(e.Code) == "AccessDenied" {
					err = fmt.Errorf("%w: %w", errS3ObjectDenied, err)
				}
				return err
			}
			total += n
			ids = ids[n:]
		}
	}
	if total > 0 {
		env.Logf("bucket %s: deleted %d object version(s) and delete marker(s)", name, total)
	}
	return nil
}

// errS3ObjectDenied marks a DeleteObjects answer refusing objects.
var errS3ObjectDenied = errors.New("object access denied")

// bucketPolicy is an S3 bucket policy document; statements are kept as
// generic JSON so that statements other drivers wrote round-trip intact.
type bucketPolicy struct {
	Version   string           `json:"Version"`
	ID        string           `json:"Id,omitempty"`
	Statement []map[string]any `json:"Statement"`
}

func (p *bucketPolicy) UnmarshalJSON(b []byte) error {
	var raw struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Version, p.ID, p.Statement = raw.Version, raw.ID, nil
	if len(raw.Statement) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw.Statement, &p.Statement); err == nil {
		return nil
	}
	var one map[string]any
	if err := json.Unmarshal(raw.Statement, &one); err != nil {
		return err
	}
	p.Statement = []map[string]any{one}
	return nil
}

// deniesInsecureTransport reports whether the policy denies requests made
// without TLS.
func (p *bucketPolicy) deniesInsecureTransport() bool {
	for _, s := range p.Statement {
		if s["Effect"] != "Deny" {
			continue
		}
		cond, _ := json.Marshal(s["Condition"])
		c := strings.ReplaceAll(string(cond), " ", "")
		if strings.Contains(c, `"aws:SecureTransport":"false"`) || strings.Contains(c, `"aws:SecureTransport":false`) || strings.Contains(c, `"aws:SecureTransport":["false"]`) {
			return true
		}
	}
	return false
}

func denyInsecureTransport(region, bucket string) map[string]any {
	arn := s3BucketARN(region, bucket)
	return map[string]any{
		"Sid":       sidDenyInsecureTransport,
		"Effect":    "Deny",
		"Principal": "*",
		"Action":    "s3:*",
		"Resource":  []any{arn, arn + "/*"},
		"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
	}
}

func getBucketPolicy(ctx context.Context, c *s3.Client, bucket string) (*bucketPolicy, error) {
	out, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(bucket)})
	if engine.IsCode(err, "NoSuchBucketPolicy") {
		return &bucketPolicy{Version: "2012-10-17"}, nil
	} else if err != nil {
		return nil, fmt.Errorf("get policy of bucket %s: %w", bucket, err)
	}
	var p bucketPolicy
	if err := json.Unmarshal([]byte(aws.ToString(out.Policy)), &p); err != nil {
		return nil, fmt.Errorf("policy of bucket %s is not a JSON policy document: %w", bucket, err)
	}
	return &p, nil
}

// mergeBucketPolicy replaces, by Sid, the statements of add and removes
// those with a Sid in remove, leaving every other statement as it is. A
// policy left without statements is deleted.
func mergeBucketPolicy(ctx context.Context, c *s3.Client, bucket string, add []map[string]any, remove []string) error {
	p, err := getBucketPolicy(ctx, c, bucket)
	if err != nil {
		return err
	}
	drop := slices.Clone(remove)
	for _, s := range add {
		if sid, _ := s["Sid"].(string); sid != "" {
			drop = append(drop, sid)
		}
	}
	kept := p.Statement[:0:0]
	for _, s := range p.Statement {
		if sid, _ := s["Sid"].(string); sid != "" && slices.Contains(drop, sid) {
			continue
		}
		kept = append(kept, s)
	}
	p.Statement = append(kept, add...)
	if p.Version == "" {
		p.Version = "2012-10-17"
	}
	if len(p.Statement) == 0 {
		if _, err := c.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String(bucket)}); err != nil && !engine.IsCode(err, "NoSuchBucketPolicy") {
			return fmt.Errorf("delete policy of bucket %s: %w", bucket, err)
		}
		return nil
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode policy of bucket %s: %w", bucket, err)
	}
	if _, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(bucket), Policy: aws.String(string(doc))}); err != nil {
		return fmt.Errorf("put policy of bucket %s: %w", bucket, err)
	}
	return nil
}

// S3Replication manages the replication rule of one source bucket into a
// destination bucket (a separate resource, so the replication role's
// policy can name both buckets).
//
// Fields: source_bucket (name), destination_bucket (ARN), role (ARN),
// delete_marker_replication. The rule replicates SSE-KMS objects and has
// the replica encrypted with the destination bucket's own default KMS key
// when it has one. Outputs: id (the source bucket), rule_id.
//
// A replication rule carries no tags: its ID records the owning stack and
// resource ("portal/<stack>/<resource>"), and Read reports the ownership
// tags from it. Rules of other owners in the same configuration are kept.
type S3Replication struct{}

func (S3Replication) Type() string       { return "s3_replication" }
func (S3Replication) ForceNew() []string { return []string{"source_bucket"} }

func replicationRuleID(stack, id string) string { return "portal/" + stack + "/" + id }

func (r S3Replication) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	src := s3BucketName(d.String("source_bucket"))
	if prior != nil {
		src = prior.PhysicalID
	}
	if !refResolved(src) {
		return nil, engine.ErrNotFound
	}
	region, err := s3BucketRegion(ctx, env, d.Region, src)
	if err != nil {
		return nil, err
	}
	out, err := s3Client(env, region).GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(src)})
	if engine.IsCode(err, "ReplicationConfigurationNotFoundError", "NoSuchBucket") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get replication of bucket %s: %w", src, err)
	}
	ruleID := replicationRuleID(env.Stack.ID, d.ID)
	cfg := out.ReplicationConfiguration
	for _, rule := range cfg.Rules {
		if aws.ToString(rule.ID) != ruleID {
			continue
		}
		live := &engine.Live{
			PhysicalID: src,
			Region:     region,
			Outputs:    map[string]string{"id": src, "source_bucket": src, "rule_id": ruleID},
			Fields: map[string]any{
				"source_bucket":             src,
				"role":                      aws.ToString(cfg.Role),
				"delete_marker_replication": rule.DeleteMarkerReplication != nil && rule.DeleteMarkerReplication.Status == types.DeleteMarkerReplicationStatusEnabled,
			},
			Tags: map[string]string{engine.TagStack: env.Stack.ID, engine.TagResource: d.ID, engine.TagManaged: "portal"},
		}
		if rule.Status != types.ReplicationRuleStatusEnabled {
			live.Fields["delete_marker_replication"] = "(rule disabled)"
		}
		if dst := rule.Destination; dst != nil {
			live.Fields["destination_bucket"] = aws.ToString(dst.Bucket)
			if dst.EncryptionConfiguration != nil {
				live.Outputs["replica_kms_key"] = aws.ToString(dst.EncryptionConfiguration.ReplicaKmsKeyID)
			}
		}
		// The source field is written as a name or an ARN: report it the
		// way the blueprint does.
		if s := d.String("source_bucket"); s3BucketName(s) == src {
			live.Fields["source_bucket"] = s
		}
		return live, nil
	}
	return nil, engine.ErrNotFound
}

func (r S3Replication) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return r.put(ctx, env, d)
}

func (r S3Replication) Update(ctx context.Context, env *engine.Env, d *engine.Desired, _ *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return r.put(ctx, env, d)
}

// put writes this resource's rule into the source bucket's replication
// configuration (PutBucketReplication replaces the whole configuration,
// so other rules are carried over). It is idempotent.
func (r S3Replication) put(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	src := s3BucketName(d.String("source_bucket"))
	dst := d.String("destination_bucket")
	if !strings.HasPrefix(dst, "arn:") {
		dst = s3BucketARN(d.Region, dst)
	}
	region, err := s3BucketRegion(ctx, env, d.Region, src)
	if err != nil {
		return nil, fmt.Errorf("source bucket %s: %w", src, err)
	}
	c := s3Client(env, region)
	// The replica is encrypted with the destination's own key, which lives
	// in the destination's region.
	replicaKey := ""
	dstName := s3BucketName(dst)
	dstRegion, err := s3BucketRegion(ctx, env, d.Region, dstName)
	if err != nil {
		return nil, fmt.Errorf("destination bucket %s: %w", dstName, err)
	}
	enc, err := s3Client(env, dstRegion).GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(dstName)})
	if err != nil && !engine.IsCode(err, "ServerSideEncryptionConfigurationNotFoundError") {
		return nil, fmt.Errorf("get encryption of destination bucket %s: %w", dstName, err)
	} else if err == nil {
		for _, rule := range enc.ServerSideEncryptionConfiguration.Rules {
			if def := rule.ApplyServerSideEncryptionByDefault; def != nil && def.SSEAlgorithm == types.ServerSideEncryptionAwsKms {
				replicaKey = aws.ToString(def.KMSMasterKeyID)
			}
		}
	}

	ruleID := replicationRuleID(env.Stack.ID, d.ID)
	dm := types.DeleteMarkerReplicationStatusDisabled
	if d.Bool("delete_marker_replication") {
		dm = types.DeleteMarkerReplicationStatusEnabled
	}
	rule := types.ReplicationRule{
		ID:                      aws.String(ruleID),
		Priority:                aws.Int32(1),
		Status:                  types.ReplicationRuleStatusEnabled,
		Filter:                  &types.ReplicationRuleFilter{Prefix: aws.String("")},
		DeleteMarkerReplication: &types.DeleteMarkerReplication{Status: dm},
		SourceSelectionCriteria: &types.SourceSelectionCriteria{SseKmsEncryptedObjects: &types.SseKmsEncryptedObjects{Status: types.SseKmsEncryptedObjectsStatusEnabled}},
		Destination:             &types.Destination{Bucket: aws.String(dst)},
	}
	if replicaKey != "" {
		rule.Destination.EncryptionConfiguration = &types.EncryptionConfiguration{ReplicaKmsKeyID: aws.String(replicaKey)}
	}

	rules := []types.ReplicationRule{rule}
	cur, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(src)})
	if err != nil && !engine.IsCode(err, "ReplicationConfigurationNotFoundError") {
		return nil, fmt.Errorf("get replication of bucket %s: %w", src, err)
	} else if err == nil {
		for _, other := range cur.ReplicationConfiguration.Rules {
			if aws.ToString(other.ID) != ruleID {
				rules = append(rules, other)
			}
		}
	}
	if len(rules) > 1 {
		for i := range rules {
			rules[i].Priority = aws.Int32(int32(i + 1))
		}
	}
	_, err = c.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{
		Bucket:                   aws.String(src),
		ReplicationConfiguration: &types.ReplicationConfiguration{Role: aws.String(d.String("role")), Rules: rules},
	})
	if err != nil {
		return nil, fmt.Errorf("put replication of bucket %s: %w", src, err)
	}
	env.Logf("bucket %s replicates into %s (replica key %q, delete markers %s)", src, dst, replicaKey, dm)
	live, err := r.Read(ctx, env, d, &engine.Prior{PhysicalID: src, Region: region})
	if err != nil {
		return nil, err
	}
	// moto stores the rule but always answers DeleteMarkerReplication
	// Disabled (and drops SourceSelectionCriteria); real S3 reports what was
	// put. Say so rather than report success and plan the change forever.
	if got := live.Fields["delete_marker_replication"]; got != d.Bool("delete_marker_replication") {
		return nil, fmt.Errorf("put replication of bucket %s: the endpoint accepted DeleteMarkerReplication %s but reports %v: not supported by this endpoint", src, dm, got)
	}
	return live, nil
}

// Delete removes this resource's rule, and the configuration with it when
// no other rule is left.
func (r S3Replication) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	c := s3Client(env, live.Region)
	src := live.PhysicalID
	cur, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(src)})
	if engine.IsCode(err, "ReplicationConfigurationNotFoundError", "NoSuchBucket") {
		return nil
	} else if err != nil {
		return fmt.Errorf("get replication of bucket %s: %w", src, err)
	}
	ruleID := live.Outputs["rule_id"]
	var rest []types.ReplicationRule
	for _, rule := range cur.ReplicationConfiguration.Rules {
		if aws.ToString(rule.ID) != ruleID {
			rest = append(rest, rule)
		}
	}
	if len(rest) == 0 {
		_, err = c.DeleteBucketReplication(ctx, &s3.DeleteBucketReplicationInput{Bucket: aws.String(src)})
	} else {
		cur.ReplicationConfiguration.Rules = rest
		_, err = c.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{Bucket: aws.String(src), ReplicationConfiguration: cur.ReplicationConfiguration})
	}
	if err != nil && !engine.IsCode(err, "NoSuchBucket") {
		return fmt.Errorf("remove replication rule %s of bucket %s: %w", ruleID, src, err)
	}
	env.Logf("bucket %s: replication rule %s removed", src, ruleID)
	return nil
}
