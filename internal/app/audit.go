package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"portal/internal/accounts"
	"portal/internal/audit"
	"portal/internal/web"
)

// AuditConfig says where the audit keys live and where the head of the
// audit chain is anchored.
type AuditConfig struct {
	// KeyFile holds the audit key ring (default DATA-DIR/audit.key,
	// created when missing), unless KeysFromEnv: PORTAL_AUDIT_KEYS holds
	// the ring itself (read when the keys are loaded, never kept here).
	KeyFile     string
	KeysFromEnv bool
	// Shared: several replicas use the key ring (the database is
	// PostgreSQL), so a missing key file is an error, not made up here.
	Shared bool
	// Anchor is where anchors go; nil when anchoring is off.
	Anchor *AnchorConfig
}

// AnchorConfig is the S3 bucket (Object Lock, compliance mode) in the
// audit account that keeps the chain's anchors.
type AnchorConfig struct {
	Bucket, Prefix, Region string
	// AccountID and RoleARN: the audit account and the role the portal
	// assumes there (empty: the portal's own credentials).
	AccountID, RoleARN string
	Interval           time.Duration
	Retention          time.Duration
}

// AuditKeysEnv may hold the audit key ring itself (see audit.ParseKeyring),
// in place of a key file.
const AuditKeysEnv = "PORTAL_AUDIT_KEYS"

// AnchorJob is the scheduled job that anchors the audit chain.
const AnchorJob = "audit.anchor"

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func auditFlags(fs *flag.FlagSet) func(dataDir string) (AuditConfig, error) {
	keyFile := fs.String("audit-key-file", "", "file holding the audit key ring that seals the audit trail (default DATA-DIR/audit.key, created if missing); keep it away from the database and its backups. "+AuditKeysEnv+" may hold the ring itself instead")
	bucket := fs.String("audit-anchor-bucket", "", "S3 bucket with Object Lock (compliance mode), in the audit account, where the head of the audit chain is anchored; empty turns anchoring off")
	prefix := fs.String("audit-anchor-prefix", "portal/", "key prefix of the anchors in the anchor bucket")
	region := fs.String("audit-anchor-region", "us-east-1", "region of the anchor bucket")
	account := fs.String("audit-anchor-account-id", "", "AWS account id of the anchor bucket (the audit account)")
	role := fs.String("audit-anchor-role-arn", "", "ARN of the role the portal assumes in the audit account (default arn:aws:iam::ACCOUNT:role/PortalAuditAnchor)")
	every := fs.Duration("audit-anchor-interval", 15*time.Minute, "how often the head of the audit chain is anchored (when it moved)")
	days := fs.Int("audit-anchor-retention-days", 2190, "how long each anchor is locked in compliance mode (default 6 years, HIPAA's retention of documentation)")
	return func(dataDir string) (AuditConfig, error) {
		c := AuditConfig{KeyFile: *keyFile, KeysFromEnv: os.Getenv(AuditKeysEnv) != ""}
		if c.KeyFile == "" {
			c.KeyFile = filepath.Join(dataDir, "audit.key")
		}
		if c.KeysFromEnv {
			if _, err := audit.ParseKeyring(os.Getenv(AuditKeysEnv)); err != nil {
				return c, fmt.Errorf("%s: %w", AuditKeysEnv, err)
			}
		}
		if *bucket == "" {
			if *account != "" || *role != "" {
				return c, fmt.Errorf("-audit-anchor-account-id and -audit-anchor-role-arn need -audit-anchor-bucket")
			}
			return c, nil
		}
		a := &AnchorConfig{Bucket: *bucket, Prefix: *prefix, Region: *region, AccountID: *account, RoleARN: *role,
			Interval: *every, Retention: time.Duration(*days) * 24 * time.Hour}
		switch {
		case !bucketName.MatchString(a.Bucket):
			return c, fmt.Errorf("-audit-anchor-bucket: %q is not an S3 bucket name", a.Bucket)
		case a.AccountID != "" && !regexp.MustCompile(`^\d{12}$`).MatchString(a.AccountID):
			return c, fmt.Errorf("-audit-anchor-account-id: want 12 digits, got %q", a.AccountID)
		case a.Interval < time.Minute:
			return c, fmt.Errorf("-audit-anchor-interval: want at least 1m, got %s", a.Interval)
		case *days < 1:
			return c, fmt.Errorf("-audit-anchor-retention-days: want at least 1, got %d", *days)
		}
		if a.RoleARN == "" && a.AccountID != "" {
			a.RoleARN = "arn:aws:iam::" + a.AccountID + ":role/PortalAuditAnchor"
		}
		c.Anchor = a
		return c, nil
	}
}

// LoadAuditKeys returns the audit key ring of c (PORTAL_AUDIT_KEYS, or the
// key file, created when missing unless c.Shared) and, for a file, a
// function that reads it again (after a rotation).
func LoadAuditKeys(c AuditConfig) (*audit.Keyring, func() (*audit.Keyring, error), error) {
	if c.KeysFromEnv {
		r, err := audit.ParseKeyring(os.Getenv(AuditKeysEnv))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", AuditKeysEnv, err)
		}
		return r, nil, nil
	}
	r, err := audit.LoadKeyFile(c.KeyFile, !c.Shared)
	if errors.Is(err, fs.ErrNotExist) && c.Shared {
		return nil, nil, fmt.Errorf("no audit key ring: replicas sharing a PostgreSQL database must all seal the audit trail with the same keys, so none is made here. "+
			"Make one (echo \"k1 $(openssl rand -hex 32)\" > audit.key) and give it to every replica with -audit-key-file, or as %s (looked for %s)", AuditKeysEnv, c.KeyFile)
	} else if err != nil {
		return nil, nil, err
	}
	return r, func() (*audit.Keyring, error) { return audit.LoadKeyFile(c.KeyFile, false) }, nil
}

// AnchorStore builds the S3 anchor store of a: the portal's own AWS
// credentials (the SDK's default chain), assuming a.RoleARN in the audit
// account when set.
func AnchorStore(ctx context.Context, a AnchorConfig) (*audit.S3Anchors, error) {
	base, err := accounts.LoadBase(ctx)
	if err != nil {
		return nil, fmt.Errorf("app: anchors: %w", err)
	}
	cfg := base.Copy()
	cfg.Region = a.Region
	if a.RoleARN != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(base), a.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "portal-audit-anchor"
		}))
	}
	// Path-style addressing works with AWS and an emulator alike.
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = cfg.BaseEndpoint != nil })
	return &audit.S3Anchors{Client: client, Bucket: a.Bucket, Prefix: a.Prefix}, nil
}

// startAnchoring registers the anchoring job and returns what the audit
// page shows about it (nil when anchoring is off).
func (a *App) startAnchoring(ctx context.Context) (*web.AuditAnchoring, error) {
	ac := a.cfg.Audit.Anchor
	if ac == nil {
		a.log.Warn("the audit chain is not anchored outside the portal: set -audit-anchor-bucket (see the README's security section)")
		return nil, nil
	}
	st, err := AnchorStore(ctx, *ac)
	if err != nil {
		return nil, err
	}
	a.anchors = st
	first := true
	a.Jobs.Every(AnchorJob, ac.Interval, func(ctx context.Context) error {
		// The first run after a start writes the head even if it was
		// anchored before, in case that write never reached the store.
		_, err := a.anchor(ctx, first)
		if err == nil {
			first = false
		}
		return err
	})
	return &web.AuditAnchoring{
		Store: st, Interval: ac.Interval, Retention: ac.Retention, Account: ac.AccountID,
		Status: func(ctx context.Context) (time.Time, string, error) {
			s, err := a.Jobs.Status(ctx, AnchorJob)
			return s.LastFinished, s.LastError, err
		},
	}, nil
}

// AnchorNow checks the anchor bucket and anchors the chain's head when it
// moved since the last anchor, and reports whether it wrote one. It is the
// anchoring job's body, and runs once more as the portal stops.
func (a *App) AnchorNow(ctx context.Context) (bool, error) { return a.anchor(ctx, false) }

func (a *App) anchor(ctx context.Context, force bool) (bool, error) {
	if a.anchors == nil {
		return false, nil
	}
	if err := a.anchors.Check(ctx); err != nil {
		return false, err
	}
	an, ok, err := a.Audit.Anchor(ctx, a.anchors, a.cfg.Audit.Anchor.Retention, force)
	if err != nil {
		return false, err
	}
	if ok {
		a.log.Info("audit chain anchored", slog.Int64("seq", an.Seq), slog.String("location", an.Location))
	}
	return ok, nil
}
