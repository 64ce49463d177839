package sandbox

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/accounts"
	"portal/internal/activity"
	"portal/internal/app"
	"portal/internal/regions"
)

// startActivityTrail writes days of generated CloudTrail activity for
// the three sandbox accounts, with digests signed by a sandbox key kept in
// dir, into a trail bucket in moto's dev account, and configures the
// portal to ingest that bucket and trust that key. moto delivers no
// CloudTrail logs of its own.
func startActivityTrail(ctx context.Context, cfg *app.Config, dir string, days int, stdout io.Writer) (*activity.SandboxTrail, error) {
	base, err := accounts.LoadBase(ctx)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	cat, err := regions.New(cfg.Environments)
	if err != nil {
		return nil, err
	}
	devCfg, err := accounts.New(base, cat).Config("dev", "us-east-1")
	if err != nil {
		return nil, err
	}
	var accts, regs []string
	for _, e := range cat.Environments() {
		accts = append(accts, e.AccountID)
	}
	for _, j := range regions.Jurisdictions() {
		regs = append(regs, j.HomeRegion)
	}
	client := s3.NewFromConfig(devCfg, func(o *s3.Options) { o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true })
	start := time.Now()
	trail, err := activity.StartSandboxTrail(ctx, client, filepath.Join(dir, "data"), accts, regs, days, time.Now())
	if err != nil {
		return nil, err
	}
	cfg.Activity.Buckets = append(cfg.Activity.Buckets, trail.Bucket())
	pub, err := os.ReadFile(trail.KeyFile())
	if err != nil {
		return nil, err
	}
	keys, err := activity.ParseDigestKeys(pub)
	if err != nil {
		return nil, err
	}
	cfg.Activity.DigestKeys = append(cfg.Activity.DigestKeys, keys...)
	fmt.Fprintf(stdout, "Wrote %s of sandbox CloudTrail activity to s3://%s in %s (digests signed by %s).\n", plural(days, "day"), activity.SandboxBucket,
		time.Since(start).Round(time.Millisecond), trail.KeyFile())
	return trail, nil
}

// wireActivityTrail records the portal's own AWS calls (plans and runs)
// into the sandbox trail, flushed every 30 seconds. The returned function
// stops it after a last flush.
func wireActivityTrail(ctx context.Context, a *app.App, trail *activity.SandboxTrail) func() {
	if a.Estate != nil {
		a.Estate.Engine.OnCall = trail.Record
	}
	done := make(chan struct{})
	go func() { trail.Run(ctx, 30*time.Second); close(done) }()
	return func() { <-done }
}
