package activity

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"
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
	// Each prefix (an account's region) has its own checkpoint, so
	// several are stored at once on PostgreSQL, each by a writer on a
	// connection of its own; SQLite has one writer.
	writers := 1
	if s.db.Dialect() == store.Postgres {
		writers = max(s.Writers, 1)
	}
	var g errgroup.Group
	g.SetLimit(writers)
	var failed atomic.Bool
	for _, p := range prefixes {
		if failed.Load() {
			break // as with one writer, the prefixes after a failure wait for the next pass
		}
		g.Go(func() error {
			err := s.ingestPrefix(ctx, client, b, p, max(s.Workers/writers, 1), res)
			if err != nil {
				failed.Store(true)
			}
			return err
		})
	}
	return g.Wait()
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

// ingestTxEvents is about how many events one ingestion transaction
// stores: large enough that index pages touched by many events are
// written once, small enough that a crash re-reads little and memory
// stays bounded.
const ingestTxEvents = 50000

// ingestTxHold bounds how long one ingestion transaction stays open: on
// SQLite it holds the database's one write lock, and every other write (a
// sign-in, a plan, an API token's use) waits for it, failing after the
// busy timeout (10 s). A transaction commits after this long even with
// fewer than ingestTxEvents events, at the end of the file it is on.
const ingestTxHold = time.Second

// fetched is one log file, fetched and parsed.
type fetched struct {
	key    string
	events []Event
	words  []any // wordsOf each event
	err    error
}

// ingestPrefix reads the log files under prefix after its checkpoint.
// Files are fetched and parsed by workers goroutines while this one
// stores them in key order, committing about ingestTxEvents at a time
// with the checkpoint (the last key stored) in the same transaction: a
// crash re-reads at most one batch and event ids keep that idempotent.
func (s *Service) ingestPrefix(ctx context.Context, client S3API, b TrailBucket, prefix string, workers int, res *IngestResult) error {
	source := "s3://" + b.Bucket + "/" + prefix
	after, err := s.checkpoint(ctx, source)
	if err != nil {
		return fmt.Errorf("activity: checkpoint %s: %w", source, err)
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.Bucket), Prefix: aws.String(prefix)}
	if after != "" {
		in.StartAfter = aws.String(after)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Each file's result arrives on its own channel, queued in key order;
	// the queue bounds how many parsed files wait in memory.
	queue := make(chan chan fetched, 2*workers)
	go func() {
		defer close(queue)
		slots := make(chan struct{}, workers)
		// Parsing leaves a core to the writer, which is the bottleneck.
		parse := make(chan struct{}, max(runtime.GOMAXPROCS(0)-1, 1))
		p := s3.NewListObjectsV2Paginator(client, in)
		for p.HasMorePages() {
			out, err := p.NextPage(pctx)
			if err != nil {
				c := make(chan fetched, 1)
				c <- fetched{err: fmt.Errorf("activity: list %s: %w", source, explainAWS(err))}
				select {
				case queue <- c:
				case <-pctx.Done():
				}
				return
			}
			for _, o := range out.Contents {
				key := aws.ToString(o.Key)
				if !strings.HasSuffix(key, ".json.gz") && !strings.HasSuffix(key, ".json") {
					continue
				}
				c := make(chan fetched, 1)
				select {
				case queue <- c:
				case <-pctx.Done():
					return
				}
				select {
				case slots <- struct{}{}:
				case <-pctx.Done():
					return
				}
				go func() {
					defer func() { <-slots }()
					events, words, err := fetchLog(pctx, client, b, key, parse, s.wordsOf())
					c <- fetched{key: key, events: events, words: words, err: err}
				}()
			}
		}
	}()
	w, err := s.newWriter(ctx)
	if err != nil {
		return err
	}
	defer w.close()
	// Events are inserted as their file arrives, and committed with the
	// checkpoint about every ingestTxEvents; what was added is reported
	// (and sensitive events notified) once committed. Only sensitive
	// events are kept until then: the rest may go with their file.
	var sens []Event
	var last string
	var opened time.Time
	files, seen, added := 0, 0, 0
	commit := func() error {
		if files == 0 {
			return nil
		}
		if err := w.commit(ctx, source, last); err != nil {
			return err
		}
		s.report(ctx, res, files, seen, added, sens)
		sens, files, seen, added = nil, 0, 0, 0
		return nil
	}
	for c := range queue {
		f := <-c
		if f.err != nil {
			// Files before the failing one are kept, with their checkpoint.
			cancel()
			if err := commit(); err != nil {
				return err
			}
			return f.err
		}
		months, err := s.missingMonths(ctx, f.events)
		if err != nil {
			return err
		}
		if len(months) > 0 {
			// A month's new partition waits for every transaction on the
			// table: the open one commits first, with its checkpoint.
			if err := commit(); err != nil {
				return err
			}
			if err := s.makePartitions(ctx, months); err != nil {
				return err
			}
		}
		if files == 0 {
			opened = time.Now()
		}
		stored, err := w.insert(ctx, f.events, f.words)
		if err != nil {
			return err
		}
		added += len(stored)
		sens = append(sens, sensitiveOf(stored)...)
		last = f.key
		files++
		seen += len(f.events)
		if seen >= ingestTxEvents || time.Since(opened) >= ingestTxHold {
			if err := commit(); err != nil {
				return err
			}
		}
	}
	return commit()
}

func (s *Service) account(ctx context.Context, res *IngestResult, seen int, added []Event) {
	s.report(ctx, res, 0, seen, len(added), sensitiveOf(added))
}

// report adds to res what a stored batch did, and notifies its sensitive
// events. Writers of several prefixes report one at a time.
func (s *Service) report(ctx context.Context, res *IngestResult, files, seen, added int, sens []Event) {
	s.reporting.Lock()
	defer s.reporting.Unlock()
	res.Files += files
	res.Events += seen
	res.New += added
	res.Sensitive += len(sens)
	if len(sens) > 0 && s.cfg.Notify != nil {
		s.cfg.Notify(ctx, sens)
	}
}

// sensitiveOf returns the sensitive events among events, each with its
// own copy of its record (not the whole log file's buffer).
func sensitiveOf(events []Event) []Event {
	var out []Event
	for _, e := range events {
		if e.Sensitive != "" {
			e.Raw = bytes.Clone(e.Raw)
			out = append(out, e)
		}
	}
	return out
}

// fetchLog downloads a log file (one of s.Workers at once: S3 latency)
// and parses it holding a parse slot (CPU).
func fetchLog(ctx context.Context, client S3API, b TrailBucket, key string, parse chan struct{}, wordsOf func([]byte) any) ([]Event, []any, error) {
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, nil, fmt.Errorf("activity: get s3://%s/%s: %w", b.Bucket, key, explainAWS(err))
	}
	body, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("activity: get s3://%s/%s: %w", b.Bucket, key, explainAWS(err))
	}
	select {
	case parse <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-parse }()
	events, words, err := parseLogFile(bytes.NewReader(body), key, wordsOf)
	if err != nil {
		return nil, nil, err
	}
	for i := range events {
		events[i].Sandbox = b.Sandbox
	}
	return events, words, nil
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
	added, err := s.insertTx(ctx, events, func(tx *sql.Tx) error {
		if newest.IsZero() {
			return nil
		}
		return s.saveCheckpoint(ctx, tx, source, store.Time(newest))
	})
	if err != nil {
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
