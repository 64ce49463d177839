// Package activity answers "who did what, where, when" across the estate's
// accounts and regions, and proves it to auditors:
//
//   - ingestion of CloudTrail events from trail buckets (the gzip JSON log
//     files CloudTrail delivers, read incrementally with a checkpoint per
//     AWSLogs/ACCOUNT/CloudTrail/REGION/ prefix) and from the LookupEvents
//     API (at most 2 requests a second per account and region, as AWS
//     allows), idempotent on event id, each event stored with its raw JSON;
//   - an explorer over the stored events (combined filters, keyset pages,
//     streamed CSV and JSON Lines exports);
//   - sensitive-event flags and notifications;
//   - log file integrity validation of CloudTrail's digest chain, the way
//     `aws cloudtrail validate-logs` does it;
//   - CloudWatch alarms and metrics of every stack;
//   - evidence reports per jurisdiction.
//
// Events the sandbox generated carry Sandbox = true and the pages say so.
package activity

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"portal/internal/audit"
	"portal/internal/jobs"
	"portal/internal/store"
)

// TrailBucket is a bucket CloudTrail delivers log files (and digests) to.
type TrailBucket struct {
	// Environment names the account (dev, test, prod) whose credentials
	// read the bucket.
	Environment string
	Bucket      string
	// Region is the bucket's region.
	Region string
	// Prefix is the trail's S3 key prefix ("" for none).
	Prefix string
	// Sandbox marks a bucket of generated sandbox activity.
	Sandbox bool
}

// LookupSource is an account read through the LookupEvents API, for
// accounts whose trail bucket the portal cannot read.
type LookupSource struct {
	Environment string
	Regions     []string
}

// Config is what the activity service reads and trusts.
type Config struct {
	Buckets []TrailBucket
	Lookups []LookupSource
	// DigestKeys are the public keys digest signatures are checked with,
	// by fingerprint (see PublicKeyFingerprint).
	DigestKeys []DigestKey
	// Clients builds AWS clients for an environment's account in a region.
	Clients Clients
	// Notify is told about newly ingested sensitive events (may be nil).
	Notify func(ctx context.Context, events []Event)
	// Stacks are the stacks whose alarms, metrics and evidence the pages
	// show.
	Stacks []StackRef
	// Environments maps account ids to environment names (dev, test,
	// prod), to tell which stacks' runs an event can belong to.
	Environments map[string]string
	// LookupRate is the LookupEvents request rate per account and region;
	// 2 a second (AWS's limit) when zero.
	LookupRate float64
	// Retention is how long each jurisdiction's events are kept
	// (ApplyRetention).
	Retention Retention
}

// Service is the activity area's backend.
type Service struct {
	cfg   Config
	db    *store.DB
	audit *audit.Log
	log   *slog.Logger
	now   func() time.Time
	// Workers bounds how many log files are fetched and parsed at once
	// (per writer).
	Workers int
	// Writers bounds how many log prefixes (an account's region each)
	// are stored at once on PostgreSQL, each on a connection of its own;
	// SQLite has one writer.
	Writers   int
	reporting sync.Mutex // held while an ingestion batch is reported

	jobs     *jobs.Scheduler
	schedule Schedule
	last     lastIngest
	facets   facetCache
}

// New returns the service.
func New(cfg Config, db *store.DB, log *audit.Log, logger *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LookupRate == 0 {
		cfg.LookupRate = 2
	}
	return &Service{cfg: cfg, db: db, audit: log, log: logger, now: now, Workers: 8, Writers: 4}
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// HasSources reports whether any bucket or LookupEvents account is
// configured.
func (s *Service) HasSources() bool { return len(s.cfg.Buckets)+len(s.cfg.Lookups) > 0 }
