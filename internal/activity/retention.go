package activity

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"portal/internal/audit"
	"portal/internal/regions"
	"portal/internal/store"
)

// JobRetention archives and removes events past their jurisdiction's
// retention, daily.
const JobRetention = "activity.retention"

// DefaultRetentionYears is how long events are kept when -activity-retention
// does not say: six years, the HIPAA retention of documentation (45 CFR
// 164.316(b)(2)(i)), for every jurisdiction unless set shorter.
const DefaultRetentionYears = 6

// Retention is how many years each jurisdiction's events are kept, by
// jurisdiction id (us, eu, apac). A jurisdiction not listed keeps
// DefaultRetentionYears; an event of a region no jurisdiction allows
// (a global service's, an unused region's) is kept as long as the
// longest of them.
type Retention map[string]int

// ParseRetention reads "us:6,eu:6,apac:6" (years).
func ParseRetention(s string) (Retention, error) {
	r := Retention{}
	for _, item := range splitList(s) {
		id, v, ok := strings.Cut(item, ":")
		years, err := strconv.Atoi(strings.TrimSpace(v))
		if _, known := regions.JurisdictionByID(strings.TrimSpace(id)); !ok || err != nil || !known || years < 1 || years > 100 {
			return nil, fmt.Errorf("-activity-retention: %q: want JURISDICTION:YEARS (us, eu or apac; 1 to 100 years), e.g. us:6,eu:6,apac:6", item)
		}
		r[strings.TrimSpace(id)] = years
	}
	return r, nil
}

// Years is how long jurisdiction id's events are kept.
func (r Retention) Years(id string) int {
	if y, ok := r[id]; ok {
		return y
	}
	return DefaultRetentionYears
}

// ArchiveAPI is the part of the S3 client archiving uses.
type ArchiveAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// RetentionResult says what one pass of retention did.
type RetentionResult struct {
	Archived int      // events written to the trail buckets and removed
	Objects  []string // s3://bucket/key of each archive written
	Kept     []string // why events past retention are still here
	Dropped  []string // partitions dropped (PostgreSQL)
}

// retentionGroup is a set of regions kept for the same time.
type retentionGroup struct {
	id      string // jurisdiction id, or "other"
	regions []string
	not     bool // every region but these
	cutoff  time.Time
}

func (s *Service) retentionGroups(now time.Time) []retentionGroup {
	var out []retentionGroup
	var all []string
	longest := 0
	for _, j := range regions.Jurisdictions() {
		y := s.cfg.Retention.Years(j.ID)
		longest = max(longest, y)
		out = append(out, retentionGroup{id: j.ID, regions: j.AllowedRegions, cutoff: now.AddDate(-y, 0, 0)})
		all = append(all, j.AllowedRegions...)
	}
	return append(out, retentionGroup{id: "other", regions: all, not: true, cutoff: now.AddDate(-longest, 0, 0)})
}

func (g retentionGroup) cond() (string, []any) {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(g.regions)), ", ")
	args := make([]any, len(g.regions))
	for i, r := range g.regions {
		args[i] = r
	}
	if g.not {
		return "region NOT IN (" + marks + ")", args
	}
	return "region IN (" + marks + ")", args
}

// ApplyRetention archives every event past its jurisdiction's retention
// to the trail bucket of its account's environment, one gzip JSON Lines
// object per jurisdiction, account and day (the records as CloudTrail
// delivered them), and removes it from the database once the object is
// stored; on PostgreSQL a month's partition that is then empty and past
// every retention is dropped. Events that cannot be archived (no trail
// bucket for their account, S3 refusing) stay, and the result and the
// error say so: nothing is removed without its archive.
func (s *Service) ApplyRetention(ctx context.Context, by audit.Entry) (RetentionResult, error) {
	var res RetentionResult
	now, err := s.db.Now(ctx)
	if err != nil {
		return res, fmt.Errorf("activity: retention: %w", err)
	}
	for _, g := range s.retentionGroups(now) {
		if err := s.retainGroup(ctx, by, g, &res); err != nil {
			return res, err
		}
	}
	if s.db.Dialect() == store.Postgres {
		if err := s.dropPartitions(ctx, by, now, &res); err != nil {
			return res, err
		}
	}
	if res.Archived > 0 {
		// The drop-downs' counts and oldest event change: recompute them
		// (other replicas do with the next ingested event).
		s.facets.mu.Lock()
		s.facets.ok = false
		s.facets.mu.Unlock()
	}
	if len(res.Kept) > 0 {
		return res, fmt.Errorf("activity: retention: events past retention kept: %s", strings.Join(res.Kept, "; "))
	}
	return res, nil
}

// retainGroup archives and removes g's events before its cutoff, a day
// of one account at a time, oldest first.
func (s *Service) retainGroup(ctx context.Context, by audit.Entry, g retentionGroup, res *RetentionResult) error {
	cond, cargs := g.cond()
	cut := g.cutoff.UnixMilli()
	type dayKey struct {
		account string
		day     int64 // Unix ms of the day's start
	}
	rows, err := s.db.QueryContext(ctx, `SELECT account, at / 86400000, COUNT(*) FROM activity_events WHERE at < ? AND `+cond+`
		GROUP BY account, at / 86400000 ORDER BY 2, 1`, append([]any{cut}, cargs...)...)
	if err != nil {
		return fmt.Errorf("activity: retention: %w", err)
	}
	var days []dayKey
	for rows.Next() {
		var k dayKey
		var n int
		if err := rows.Scan(&k.account, &k.day, &n); err != nil {
			rows.Close()
			return fmt.Errorf("activity: retention: %w", err)
		}
		k.day *= 86400000
		days = append(days, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("activity: retention: %w", err)
	}
	noBucket := map[string]int{}
	for _, d := range days {
		env := s.cfg.Environments[d.account]
		i := slices.IndexFunc(s.cfg.Buckets, func(b TrailBucket) bool { return b.Environment == env })
		if env == "" || i < 0 {
			noBucket[d.account]++
			continue
		}
		if err := s.archiveDay(ctx, by, g, s.cfg.Buckets[i], d.account, d.day, min(d.day+86400000, cut), res); err != nil {
			res.Kept = append(res.Kept, err.Error())
		}
	}
	for _, a := range sortedKeys(noBucket) {
		res.Kept = append(res.Kept, fmt.Sprintf("%d day(s) of account %s (%s): no trail bucket of its environment to archive them to", noBucket[a], a, g.id))
	}
	return nil
}

// archiveDay writes the events of account in g from..to (Unix ms) to b
// and removes them.
func (s *Service) archiveDay(ctx context.Context, by audit.Entry, g retentionGroup, b TrailBucket, account string, from, to int64, res *RetentionResult) error {
	cond, cargs := g.cond()
	args := append([]any{account, from, to}, cargs...)
	rows, err := s.db.QueryContext(ctx, `SELECT id, raw FROM activity_events WHERE account = ? AND at >= ? AND at < ? AND `+cond+` ORDER BY at, id`, args...)
	if err != nil {
		return fmt.Errorf("activity: retention: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	var ids []int64
	var words []string // SQLite: what the text index holds for each, to delete it
	for rows.Next() {
		var id int64
		var raw string
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return fmt.Errorf("activity: retention: %w", err)
		}
		ids = append(ids, id)
		if s.db.Dialect() == store.SQLite {
			words = append(words, valueWords([]byte(raw)))
		}
		zw.Write([]byte(raw))
		zw.Write([]byte{'\n'})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("activity: retention: %w", err)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	day := time.UnixMilli(from).UTC()
	key := fmt.Sprintf("portal-archive/activity/%s/%s/%s/%s.jsonl.gz", g.id, account, day.Format("2006/01/02"), day.Format("20060102"))
	if b.Prefix != "" {
		key = b.Prefix + "/" + key
	}
	where := "s3://" + b.Bucket + "/" + key
	sum := sha256.Sum256(buf.Bytes())
	client, err := s.archiveClient(b)
	if err != nil {
		return fmt.Errorf("%d events of account %s on %s: %v", len(ids), account, day.Format("2006-01-02"), err)
	}
	size := int64(buf.Len())
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key), Body: bytes.NewReader(buf.Bytes()),
		ContentLength: aws.Int64(size), ContentType: aws.String("application/x-ndjson"), ContentEncoding: aws.String("gzip"),
		Metadata: map[string]string{"sha256": hex.EncodeToString(sum[:]), "events": strconv.Itoa(len(ids))}}); err != nil {
		return fmt.Errorf("%d events of account %s on %s: archive to %s: %v", len(ids), account, day.Format("2006-01-02"), where, explainAWS(err))
	}
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key)})
	if err != nil || aws.ToInt64(head.ContentLength) != size {
		return fmt.Errorf("%d events of account %s on %s: the archive %s does not read back as written (%v)", len(ids), account, day.Format("2006-01-02"), where, err)
	}
	// Remove exactly the archived rows; the audit record goes with it.
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		n := 0
		for chunk := range slices.Chunk(ids, 500) {
			marks := strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")
			a := make([]any, len(chunk))
			for i, id := range chunk {
				a[i] = id
			}
			r, err := tx.ExecContext(ctx, `DELETE FROM activity_events WHERE id IN (`+marks+`)`, a...)
			if err != nil {
				return err
			}
			k, _ := r.RowsAffected()
			n += int(k)
		}
		// A contentless FTS5 index forgets a row when told the words it
		// indexed for it (valueWords, as at ingestion).
		for i, id := range ids {
			if words == nil {
				break
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO activity_text (activity_text, rowid, words) VALUES ('delete', ?, ?)`, id, words[i]); err != nil {
				return err
			}
		}
		if n != len(ids) {
			return fmt.Errorf("removed %d events, archived %d", n, len(ids))
		}
		e := by
		e.Action, e.Target = "activity.archive", where
		e.Details = map[string]any{"events": len(ids), "account": account, "jurisdiction": g.id, "day": day.Format("2006-01-02"),
			"retention_cutoff": store.Time(g.cutoff), "sha256": hex.EncodeToString(sum[:]), "bytes": size}
		_, err := s.audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return fmt.Errorf("%d events of account %s on %s, archived to %s, are still in the database: %v", len(ids), account, day.Format("2006-01-02"), where, err)
	}
	res.Archived += len(ids)
	res.Objects = append(res.Objects, where)
	s.log.Info("activity archived", slog.String("to", where), slog.Int("events", len(ids)))
	return nil
}

func (s *Service) archiveClient(b TrailBucket) (ArchiveAPI, error) {
	if s.cfg.Clients.S3 == nil {
		return nil, errors.New("no S3 client configured")
	}
	c, err := s.cfg.Clients.S3(b.Environment, b.Region)
	if err != nil {
		return nil, err
	}
	a, ok := c.(ArchiveAPI)
	if !ok {
		return nil, fmt.Errorf("the S3 client of %s cannot write", b.Environment)
	}
	return a, nil
}

// dropPartitions drops the months of activity_events past every
// retention that hold no event any more.
func (s *Service) dropPartitions(ctx context.Context, by audit.Entry, now time.Time, res *RetentionResult) error {
	oldest := now
	for _, g := range s.retentionGroups(now) {
		if g.cutoff.Before(oldest) {
			oldest = g.cutoff
		}
	}
	rows, err := s.db.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'activity_events'::regclass ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("activity: retention: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("activity: retention: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("activity: retention: %w", err)
	}
	for _, n := range names {
		month, err := time.Parse("200601", strings.TrimPrefix(n, "activity_events_"))
		if err != nil || !month.AddDate(0, 1, 0).Before(oldest) && !month.AddDate(0, 1, 0).Equal(oldest) {
			continue
		}
		lo, hi := month.UnixMilli(), month.AddDate(0, 1, 0).UnixMilli()
		err = s.db.Tx(ctx, func(tx *sql.Tx) error {
			// The partition's lock first: an ingestion adding to the month
			// now waits, and its events are then seen here.
			if _, err := tx.ExecContext(ctx, `LOCK TABLE `+pgIdent(n)+` IN ACCESS EXCLUSIVE MODE`); err != nil {
				return err
			}
			var left int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM activity_events WHERE at >= ? AND at < ?`, lo, hi).Scan(&left); err != nil {
				return err
			}
			if left > 0 {
				res.Kept = append(res.Kept, fmt.Sprintf("partition %s: %d events past retention not archived", n, left))
				return nil
			}
			if _, err := tx.ExecContext(ctx, `DROP TABLE `+pgIdent(n)); err != nil {
				return err
			}
			res.Dropped = append(res.Dropped, n)
			e := by
			e.Action, e.Target = "activity.partition_drop", "partition:"+n
			e.Details = map[string]any{"month": month.Format("2006-01"), "events": 0, "oldest_cutoff": store.Time(oldest)}
			_, err := s.audit.Append(ctx, tx, e)
			return err
		})
		if err != nil {
			return fmt.Errorf("activity: retention: drop %s: %w", n, err)
		}
	}
	return nil
}

// pgIdent quotes a name made by activity_month_partition.
func pgIdent(n string) string { return `"` + strings.ReplaceAll(n, `"`, `""`) + `"` }
