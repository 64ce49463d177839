package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"portal/internal/engine"
)

// s3ObjectMax bounds the content a blueprint may carry inline: a small
// static page, not data.
const s3ObjectMax = 64 << 10

// S3Object manages one small object whose content the blueprint holds (the
// maintenance page CloudFront serves while a jurisdiction has no healthy
// region). It is encrypted by the bucket's default encryption and carries
// the ownership tags as object tags.
//
// Fields: bucket (name or ARN), key, content, content_type. Outputs: url
// (s3://bucket/key), key, etag.
type S3Object struct{}

func (S3Object) Type() string       { return "s3_object" }
func (S3Object) ForceNew() []string { return []string{"bucket", "key"} }

func (S3Object) location(ctx context.Context, env *engine.Env, d *engine.Desired) (*s3.Client, string, string, error) {
	bucket := s3BucketName(d.String("bucket"))
	region, err := s3BucketRegion(ctx, env, d.Region, bucket)
	if err != nil {
		return nil, "", "", err
	}
	return s3Client(env, region), bucket, d.String("key"), nil
}

func (o S3Object) Read(ctx context.Context, env *engine.Env, d *engine.Desired, prior *engine.Prior) (*engine.Live, error) {
	if !known(d.String("bucket")) {
		return nil, engine.ErrNotFound
	}
	c, bucket, key, err := o.location(ctx, env, d)
	if errors.Is(err, engine.ErrNotFound) {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, err
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if engine.IsCode(err, "NoSuchKey", "NotFound", "NoSuchBucket") {
		return nil, engine.ErrNotFound
	} else if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, s3ObjectMax+1))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", bucket, key, err)
	}
	live := &engine.Live{
		PhysicalID: bucket + "/" + key,
		Region:     d.Region,
		Outputs:    map[string]string{"url": "s3://" + bucket + "/" + key, "key": key, "id": bucket + "/" + key, "etag": strings.Trim(aws.ToString(out.ETag), `"`)},
		Fields: map[string]any{
			"bucket":       d.String("bucket"),
			"key":          key,
			"content":      string(body),
			"content_type": aws.ToString(out.ContentType),
		},
		Tags: map[string]string{},
	}
	tags, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("tags of s3://%s/%s: %w", bucket, key, err)
	}
	for _, t := range tags.TagSet {
		live.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return live, nil
}

func (o S3Object) put(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	content := d.String("content")
	if len(content) > s3ObjectMax {
		return nil, fmt.Errorf("content is %d bytes, at most %d: an inline object is a small page, not data", len(content), s3ObjectMax)
	}
	c, bucket, key, err := o.location(ctx, env, d)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, k := range sortedKeys(d.Tags) {
		q.Set(k, d.Tags[k])
	}
	ct := d.String("content_type")
	if ct == "" {
		ct = "text/html; charset=utf-8"
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(content),
		ContentType: aws.String(ct), Tagging: aws.String(q.Encode()),
	}); err != nil {
		return nil, fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	env.Logf("wrote s3://%s/%s (%d bytes)", bucket, key, len(content))
	return o.Read(ctx, env, d, nil)
}

func (o S3Object) Create(ctx context.Context, env *engine.Env, d *engine.Desired) (*engine.Live, error) {
	return o.put(ctx, env, d)
}

func (o S3Object) Update(ctx context.Context, env *engine.Env, d *engine.Desired, _ *engine.Live, _ []engine.FieldChange) (*engine.Live, error) {
	return o.put(ctx, env, d)
}

// Delete removes every version of the object (the buckets are versioned).
func (o S3Object) Delete(ctx context.Context, env *engine.Env, live *engine.Live) error {
	bucket, key, _ := strings.Cut(live.PhysicalID, "/")
	region, err := s3BucketRegion(ctx, env, live.Region, bucket)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	c := s3Client(env, region)
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
	var ids []s3types.ObjectIdentifier
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if engine.IsCode(err, "NoSuchBucket") {
			return nil
		} else if err != nil {
			return fmt.Errorf("list versions of s3://%s/%s: %w", bucket, key, err)
		}
		for _, v := range page.Versions {
			if aws.ToString(v.Key) == key {
				ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
			}
		}
		for _, m := range page.DeleteMarkers {
			if aws.ToString(m.Key) == key {
				ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
			}
		}
	}
	for _, id := range ids {
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: id.Key, VersionId: id.VersionId}); err != nil && !engine.IsCode(err, "NoSuchKey", "NoSuchVersion") {
			return fmt.Errorf("delete s3://%s/%s: %w", bucket, key, err)
		}
	}
	env.Logf("deleted s3://%s/%s (%d versions)", bucket, key, len(ids))
	return nil
}
