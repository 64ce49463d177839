package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3API is the part of the S3 client anchors use, with the SDK's
// signatures.
type S3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObjectLockConfiguration(ctx context.Context, in *s3.GetObjectLockConfigurationInput, opts ...func(*s3.Options)) (*s3.GetObjectLockConfigurationOutput, error)
}

// S3Anchors keeps anchors in an S3 bucket with Object Lock, one object per
// anchor under Prefix+"anchors/", named by the record and its hash
// ("anchors/00000000000000000042-<hash>.json", so listing the bucket is
// enough to verify) and holding the Anchor as JSON. Each object is locked
// in compliance mode until its RetainUntil: nobody, not even the account's
// root user, can delete or overwrite it before then. The bucket belongs in
// an account of its own (the audit account), which the portal reaches with
// a role that may only put and read objects there.
type S3Anchors struct {
	Client S3API
	Bucket string
	Prefix string // e.g. "portal/"; "" for the bucket's root
}

var anchorName = regexp.MustCompile(`^anchors/(\d{20})-([0-9a-f]{64})\.json$`)

// Describe names the bucket and prefix.
func (s *S3Anchors) Describe() string { return "s3://" + s.Bucket + "/" + s.Prefix }

// Check refuses a bucket that cannot keep anchors safely: without Object
// Lock, or whose default retention is governance mode (which some can
// bypass). A bucket without a default rule is fine: every anchor is put in
// compliance mode.
func (s *S3Anchors) Check(ctx context.Context) error {
	out, err := s.Client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(s.Bucket)})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ObjectLockConfigurationNotFoundError" {
		return fmt.Errorf("bucket %s has no Object Lock: anchors there could be deleted; create the anchor bucket with Object Lock enabled", s.Bucket)
	} else if err != nil {
		return fmt.Errorf("bucket %s: read its Object Lock configuration: %w", s.Bucket, err)
	}
	c := out.ObjectLockConfiguration
	if c == nil || c.ObjectLockEnabled != types.ObjectLockEnabledEnabled {
		return fmt.Errorf("bucket %s has no Object Lock: anchors there could be deleted; create the anchor bucket with Object Lock enabled", s.Bucket)
	}
	if c.Rule != nil && c.Rule.DefaultRetention != nil && c.Rule.DefaultRetention.Mode != types.ObjectLockRetentionModeCompliance {
		return fmt.Errorf("bucket %s retains objects in %s mode by default, which can be bypassed; use COMPLIANCE", s.Bucket, c.Rule.DefaultRetention.Mode)
	}
	return nil
}

// Put writes a as one object, locked in compliance mode until
// a.RetainUntil, and returns its s3:// URL.
func (s *S3Anchors) Put(ctx context.Context, a Anchor) (string, error) {
	body, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%sanchors/%020d-%s.json", s.Prefix, a.Seq, a.Hash)
	_, err = s.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:                    aws.String(s.Bucket),
		Key:                       aws.String(key),
		Body:                      bytes.NewReader(body),
		ContentType:               aws.String("application/json"),
		ChecksumAlgorithm:         types.ChecksumAlgorithmSha256, // Object Lock puts need a checksum
		ObjectLockMode:            types.ObjectLockModeCompliance,
		ObjectLockRetainUntilDate: aws.Time(a.RetainUntil.UTC()),
	})
	if err != nil {
		return "", err
	}
	return "s3://" + s.Bucket + "/" + key, nil
}

// List reads every anchor from the object names (the record and its hash),
// with the time S3 received it.
func (s *S3Anchors) List(ctx context.Context) ([]Anchor, error) {
	var out []Anchor
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket), Prefix: aws.String(s.Prefix + "anchors/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list anchors in %s: %w", s.Describe(), err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), s.Prefix)
			m := anchorName.FindStringSubmatch(name)
			if m == nil {
				continue
			}
			seq, _ := strconv.ParseInt(m[1], 10, 64)
			out = append(out, Anchor{Seq: seq, Hash: m[2], AnchoredAt: aws.ToTime(o.LastModified), Location: "s3://" + s.Bucket + "/" + aws.ToString(o.Key)})
		}
	}
	sortAnchors(out)
	return out, nil
}

// CreateAnchorBucket makes bucket in region with Object Lock enabled and
// a default retention of days in compliance mode. The sandbox and tests use
// it; in production whoever runs the audit account creates the bucket once
// (see the README), and the portal's role there can only put and read.
func CreateAnchorBucket(ctx context.Context, c *s3.Client, bucket, region string, days int32) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket), ObjectLockEnabledForBucket: aws.Bool(true)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(region)}
	}
	if _, err := c.CreateBucket(ctx, in); err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			return fmt.Errorf("create anchor bucket %s: %w", bucket, err)
		}
	}
	// A bucket that already retains in compliance mode for these days is
	// kept as it is: a restarted sandbox finds its anchors there, and
	// moto refuses a new Object Lock configuration on a bucket holding
	// objects (AWS accepts one, but there is nothing to change).
	if cur, err := c.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(bucket)}); err == nil &&
		cur.ObjectLockConfiguration != nil && cur.ObjectLockConfiguration.ObjectLockEnabled == types.ObjectLockEnabledEnabled {
		if r := cur.ObjectLockConfiguration.Rule; r != nil && r.DefaultRetention != nil &&
			r.DefaultRetention.Mode == types.ObjectLockRetentionModeCompliance && aws.ToInt32(r.DefaultRetention.Days) == days {
			return nil
		}
	}
	_, err := c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
		Bucket: aws.String(bucket),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{
			ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule:              &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeCompliance, Days: aws.Int32(days)}},
		},
	})
	if err != nil {
		return fmt.Errorf("anchor bucket %s: Object Lock configuration: %w", bucket, err)
	}
	return nil
}
