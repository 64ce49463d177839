package activity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/time/rate"

	"portal/internal/engine"
	"portal/internal/store"
)

// S3API is the part of the S3 client ingestion and validation use.
type S3API interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// LookupAPI is the part of the CloudTrail client LookupEvents ingestion uses.
type LookupAPI interface {
	LookupEvents(ctx context.Context, in *cloudtrail.LookupEventsInput, optFns ...func(*cloudtrail.Options)) (*cloudtrail.LookupEventsOutput, error)
}

// Clients builds AWS clients for an environment's account in a region.
type Clients struct {
	S3         func(env, region string) (S3API, error)
	Lookup     func(env, region string) (LookupAPI, error)
	CloudWatch func(env, region string) (CloudWatchAPI, error)
	// Config is the environment's AWS configuration in region, for the
	// live checks of evidence reports.
	Config func(env, region string) (aws.Config, error)
}

// IngestResult says what one ingestion pass did.
type IngestResult struct {
	Files, Events, New, Sensitive int
	Took                          time.Duration
	Errors                        []string
}

// Ingest reads every configured bucket and LookupEvents account from its
// checkpoint. A failing source does not stop the others; its error is in
// the result and returned joined.
func (s *Service) Ingest(ctx context.Context) (IngestResult, error) {
	start := s.now()
	var res IngestResult
	var errs []error
	for _, b := range s.cfg.Buckets {
		if err := s.ingestBucket(ctx, b, &res); err != nil {
			errs = append(errs, err)
			res.Errors = append(res.Errors, err.Error())
		}
	}
	for _, l := range s.cfg.Lookups {
		for _, region := range l.Regions {
			if err := s.ingestLookup(ctx, l.Environment, region, &res); err != nil {
				errs = append(errs, err)
				res.Errors = append(res.Errors, err.Error())
			}
		}
	}
	res.Took = s.now().Sub(start)
	return res, errors.Join(errs...)
}

// ingestBucket finds the bucket's AWSLogs/ACCOUNT/CloudTrail/REGION/
// prefixes and reads each from its checkpoint.
func (s *Service) ingestBucket(ctx context.Context, b TrailBucket, res *IngestResult) error {
	if s.cfg.Clients.S3 == nil {
		return fmt.Errorf("activity: no S3 client configured")
	}
	client, err := s.cfg.Clients.S3(b.Environment, b.Region)
	if err != nil {
		return fmt.Errorf("activity: bucket %s: %w", b.Bucket, err)
	}
	prefixes, err := LogPrefixes(ctx, client, b.Bucket, b.Prefix, "CloudTrail")
	if err != nil {
		return fmt.Errorf("activity: bucket %s: %w", b.Bucket, explainAWS(err))
	}
	for _, p := range prefixes {
		if err := s.ingestPrefix(ctx, client, b, p, res); err != nil {
			return err
		}
	}
	return nil
}

// LogPrefixes lists the PREFIX/AWSLogs/ACCOUNT/KIND/REGION/ prefixes of a
// trail bucket, where KIND is CloudTrail (log files) or CloudTrail-Digest.
// An organization trail's extra AWSLogs/ORG-ID/ level is followed too.
func LogPrefixes(ctx context.Context, client S3API, bucket, prefix, kind string) ([]string, error) {
	root := strings.TrimSuffix(prefix, "/")
	if root != "" {
		root += "/"
	}
	root += "AWSLogs/"
	accounts, err := listDirs(ctx, client, bucket, root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, acct := range accounts {
		name := strings.TrimSuffix(strings.TrimPrefix(acct, root), "/")
		if strings.HasPrefix(name, "o-") { // organization id
			inner, err := listDirs(ctx, client, bucket, acct)
			if err != nil {
				return nil, err
			}
			for _, a := range inner {
				regions, err := listDirs(ctx, client, bucket, a+kind+"/")
				if err != nil {
					return nil, err
				}
				out = append(out, regions...)
			}
			continue
		}
		regions, err := listDirs(ctx, client, bucket, acct+kind+"/")
		if err != nil {
			return nil, err
		}
		out = append(out, regions...)
	}
	sort.Strings(out)
	return out, nil
}

func listDirs(ctx context.Context, client S3API, bucket, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, cp := range page.CommonPrefixes {
			out = append(out, aws.ToString(cp.Prefix))
		}
	}
	return out, nil
}

func (s *Service) checkpoint(ctx context.Context, source string) (string, error) {
	var pos string
	err := s.db.QueryRowContext(ctx, `SELECT position FROM activity_checkpoints WHERE source = ?`, source).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return pos, err
}

func (s *Service) saveCheckpoint(ctx context.Context, tx *sql.Tx, source, pos string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO activity_checkpoints (source, position, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (source) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`, source, pos, store.Time(s.now()))
	return err
}

// ingestPrefix reads the log files under prefix after its checkpoint, a
// listing page (up to 1,000 files) at a time: files are fetched and parsed
// in parallel, then stored with the new checkpoint in one transaction, so
// a crash re-reads at most one page and event ids keep that idempotent.
func (s *Service) ingestPrefix(ctx context.Context, client S3API, b TrailBucket, prefix string, res *IngestResult) error {
	source := "s3://" + b.Bucket + "/" + prefix
	after, err := s.checkpoint(ctx, source)
	if err != nil {
		return fmt.Errorf("activity: checkpoint %s: %w", source, err)
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.Bucket), Prefix: aws.String(prefix)}
	if after != "" {
		in.StartAfter = aws.String(after)
	}
	// Pages are fetched and parsed while the previous one is stored.
	type page struct {
		keys   []string
		events []Event
		err    error
	}
	pages := make(chan page, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(pages)
		p := s3.NewListObjectsV2Paginator(client, in)
		for p.HasMorePages() {
			out, err := p.NextPage(pctx)
			if err != nil {
				pages <- page{err: fmt.Errorf("activity: list %s: %w", source, explainAWS(err))}
				return
			}
			var keys []string
			for _, o := range out.Contents {
				if k := aws.ToString(o.Key); strings.HasSuffix(k, ".json.gz") || strings.HasSuffix(k, ".json") {
					keys = append(keys, k)
				}
			}
			if len(keys) == 0 {
				continue
			}
			events, err := s.fetchAll(pctx, client, b, keys)
			select {
			case pages <- page{keys: keys, events: events, err: err}:
			case <-pctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for pg := range pages {
		if pg.err != nil {
			return pg.err
		}
		var added []Event
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			var err error
			if added, err = insertTx(ctx, tx, pg.events); err != nil {
				return err
			}
			return s.saveCheckpoint(ctx, tx, source, pg.keys[len(pg.keys)-1])
		}); err != nil {
			return err
		}
		res.Files += len(pg.keys)
		s.account(ctx, res, len(pg.events), added)
	}
	return nil
}

func (s *Service) account(ctx context.Context, res *IngestResult, seen int, added []Event) {
	res.Events += seen
	res.New += len(added)
	var sens []Event
	for _, e := range added {
		if e.Sensitive != "" {
			sens = append(sens, e)
		}
	}
	res.Sensitive += len(sens)
	if len(sens) > 0 && s.cfg.Notify != nil {
		s.cfg.Notify(ctx, sens)
	}
}

// fetchAll downloads and parses keys with s.Workers at once, keeping key order.
func (s *Service) fetchAll(ctx context.Context, client S3API, b TrailBucket, keys []string) ([]Event, error) {
	out := make([][]Event, len(keys))
	errs := make([]error, len(keys))
	workers := max(s.Workers, 1)
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				out[i], errs[i] = fetchLog(ctx, client, b, keys[i])
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	var all []Event
	for i := range keys {
		if errs[i] != nil {
			return nil, errs[i]
		}
		all = append(all, out[i]...)
	}
	return all, nil
}

func fetchLog(ctx context.Context, client S3API, b TrailBucket, key string) ([]Event, error) {
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("activity: get s3://%s/%s: %w", b.Bucket, key, explainAWS(err))
	}
	defer obj.Body.Close()
	events, err := ParseLogFile(obj.Body, key)
	if err != nil {
		return nil, err
	}
	for i := range events {
		events[i].Sandbox = b.Sandbox
	}
	return events, nil
}

// lookupOverlap re-reads this much before the checkpoint: LookupEvents
// may show an event a few minutes after it happened.
const lookupOverlap = 15 * time.Minute

// ingestLookup pages through LookupEvents from the account's checkpoint
// (the newest event time seen), at most LookupRate requests a second.
func (s *Service) ingestLookup(ctx context.Context, env, region string, res *IngestResult) error {
	if s.cfg.Clients.Lookup == nil {
		return fmt.Errorf("activity: no CloudTrail client configured")
	}
	client, err := s.cfg.Clients.Lookup(env, region)
	if err != nil {
		return fmt.Errorf("activity: LookupEvents %s/%s: %w", env, region, err)
	}
	source := "lookup:" + env + "/" + region
	pos, err := s.checkpoint(ctx, source)
	if err != nil {
		return err
	}
	in := &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(50), EndTime: aws.Time(s.now())}
	newest := time.Time{}
	if pos != "" {
		if t, err := store.ParseTime(pos); err == nil {
			in.StartTime = aws.Time(t.Add(-lookupOverlap))
			newest = t
		}
	}
	limiter := rate.NewLimiter(rate.Limit(s.cfg.LookupRate), 1)
	var events []Event
	for {
		if err := limiter.Wait(ctx); err != nil {
			return err
		}
		out, err := client.LookupEvents(ctx, in)
		if err != nil {
			return fmt.Errorf("activity: LookupEvents %s/%s: %w", env, region, explainAWS(err))
		}
		for _, ev := range out.Events {
			e, err := ParseRecord([]byte(aws.ToString(ev.CloudTrailEvent)))
			if err != nil {
				return fmt.Errorf("activity: LookupEvents %s/%s: %w", env, region, err)
			}
			e.Origin = source
			events = append(events, e)
			if e.Time.After(newest) {
				newest = e.Time
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	var added []Event
	if err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if added, err = insertTx(ctx, tx, events); err != nil {
			return err
		}
		if newest.IsZero() {
			return nil
		}
		return s.saveCheckpoint(ctx, tx, source, store.Time(newest))
	}); err != nil {
		return err
	}
	s.account(ctx, res, len(events), added)
	return nil
}

// IngestReader stores the events of one log file read from r (used by
// the benchmark and by tools that already hold the files).
func (s *Service) IngestReader(ctx context.Context, r io.Reader, origin string, sandbox bool) (IngestResult, error) {
	var res IngestResult
	events, err := ParseLogFile(r, origin)
	if err != nil {
		return res, err
	}
	for i := range events {
		events[i].Sandbox = sandbox
	}
	added, err := s.Insert(ctx, events)
	if err != nil {
		return res, err
	}
	res.Files = 1
	s.account(ctx, &res, len(events), added)
	return res, nil
}

// Checkpoint is one ingestion source's position.
type Checkpoint struct {
	Source, Position string
	UpdatedAt        time.Time
}

// Checkpoints lists every source's position.
func (s *Service) Checkpoints(ctx context.Context) ([]Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, position, updated_at FROM activity_checkpoints ORDER BY source`)
	if err != nil {
		return nil, fmt.Errorf("activity: checkpoints: %w", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		var c Checkpoint
		var at string
		if err := rows.Scan(&c.Source, &c.Position, &at); err != nil {
			return nil, err
		}
		c.UpdatedAt, _ = store.ParseTime(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// explainAWS keeps err for errors.Is/As but says it in plain words
// (engine.Explain: "not supported by this endpoint" for an emulator's
// HTML error page, never a raw parse error).
func explainAWS(err error) error {
	if err == nil {
		return nil
	}
	return &awsError{msg: engine.Explain(err), err: err}
}

type awsError struct {
	msg string
	err error
}

func (e *awsError) Error() string { return e.msg }
func (e *awsError) Unwrap() error { return e.err }

// ResetCheckpoints forgets every ingestion position, so the next pass
// reads every source from the start (stored events are not duplicated).
func (s *Service) ResetCheckpoints(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM activity_checkpoints`)
	return err
}
