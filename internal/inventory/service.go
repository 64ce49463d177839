package inventory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"portal/internal/apperr"
	"portal/internal/audit"
	"portal/internal/jobs"
	"portal/internal/store"
)

// JobName is the scheduled discovery's job.
const JobName = "inventory.discover"

// Snapshot states.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Partial   = "partial" // finished, but some account/region tasks failed
	Failed    = "failed"
)

// Snapshot is one discovery and its progress.
type Snapshot struct {
	ID          int64       `json:"id"`
	State       string      `json:"state"`
	RequestedBy string      `json:"requested_by"`
	CreatedAt   time.Time   `json:"created_at"`
	StartedAt   time.Time   `json:"started_at"`
	FinishedAt  time.Time   `json:"finished_at"`
	TasksTotal  int         `json:"tasks_total"`
	TasksDone   int         `json:"tasks_done"`
	LastTask    string      `json:"last_task,omitempty"`
	Calls       int64       `json:"calls"`
	Resources   int         `json:"resources"`
	Errors      []TaskError `json:"errors"`
	Took        time.Duration
}

// Finished reports whether the discovery has ended (in any state).
func (s Snapshot) Finished() bool {
	return s.State == Succeeded || s.State == Partial || s.State == Failed
}

// Usable reports whether the snapshot's resources can be listed.
func (s Snapshot) Usable() bool { return s.State == Succeeded || s.State == Partial }

// Service stores discoveries and answers inventory queries.
type Service struct {
	db    *store.DB
	audit *audit.Log
	now   func() time.Time
	log   *slog.Logger
	disc  *Discoverer
	jobs  *jobs.Scheduler
	// Keep is how many finished snapshots are kept (default 30); older
	// ones are deleted when a discovery finishes.
	Keep int
}

// New returns the inventory service. d may be nil when AWS is not
// configured: queries work, discoveries are refused with a clear message.
func New(db *store.DB, log *audit.Log, logger *slog.Logger, now func() time.Time, d *Discoverer) *Service {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{db: db, audit: log, now: now, log: logger, disc: d, Keep: 30}
}

// CanDiscover reports whether AWS is configured, so discoveries can run.
func (s *Service) CanDiscover() bool { return s.disc != nil }

// Schedule registers the discovery with the scheduler, every interval and
// whenever Request asks for one.
func (s *Service) Schedule(j *jobs.Scheduler, every time.Duration) {
	s.jobs = j
	j.Every(JobName, every, s.RunJob)
}

var errNoAWS = apperr.New(apperr.Conflict, "AWS is not configured, so nothing can be discovered: start the portal with -dev-account-id, -test-account-id and -prod-account-id (see the README)")

// Request queues a discovery on behalf of by (audited) and makes the
// scheduled job due now. A discovery already queued or running is
// returned instead of queueing a second one.
func (s *Service) Request(ctx context.Context, by audit.Entry) (Snapshot, error) {
	if s.disc == nil {
		return Snapshot{}, errNoAWS
	}
	var id int64
	existing := false
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM inventory_snapshots WHERE state IN ('queued', 'running') ORDER BY id DESC LIMIT 1`).Scan(&id)
		if err == nil {
			existing = true
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("inventory: request: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO inventory_snapshots (state, requested_by, created_at) VALUES ('queued', ?, ?) RETURNING id`,
			by.Actor, store.Time(s.now())).Scan(&id); err != nil {
			return fmt.Errorf("inventory: request: %w", err)
		}
		e := by
		e.Action, e.Target = "inventory.discover", fmt.Sprintf("inventory-snapshot:%d", id)
		_, err = s.audit.Append(ctx, tx, e)
		return err
	})
	if err != nil {
		return Snapshot{}, err
	}
	if !existing && s.jobs != nil {
		if _, err := s.jobs.Trigger(ctx, JobName); err != nil {
			return Snapshot{}, err
		}
	}
	return s.Snapshot(ctx, id)
}

// RunJob is the scheduled job: it runs the oldest queued discovery, or a
// new one when none is queued.
func (s *Service) RunJob(ctx context.Context) error {
	_, err := s.Discover(ctx, "schedule")
	return err
}

// Discover runs a discovery now, in the caller's goroutine, and stores its
// snapshot. It takes over the oldest queued request, if any. Callers must
// not run two at once (the scheduler's lease guarantees it for the job).
func (s *Service) Discover(ctx context.Context, requestedBy string) (Snapshot, error) {
	if s.disc == nil {
		return Snapshot{}, errNoAWS
	}
	now := s.now()
	var id int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		// Only one discovery runs at a time, so a running one left behind
		// was interrupted (the portal stopped).
		if _, err := tx.ExecContext(ctx, `UPDATE inventory_snapshots SET state = 'failed', finished_at = ?,
			errors = '[{"task":"discovery","error":"interrupted: the portal stopped during the discovery"}]' WHERE state = 'running'`, store.Time(now)); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT id FROM inventory_snapshots WHERE state = 'queued' ORDER BY id LIMIT 1`).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return tx.QueryRowContext(ctx, `INSERT INTO inventory_snapshots (state, requested_by, created_at) VALUES ('queued', ?, ?) RETURNING id`,
				requestedBy, store.Time(now)).Scan(&id)
		}
		return err
	})
	if err != nil {
		return Snapshot{}, fmt.Errorf("inventory: start discovery: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE inventory_snapshots SET state = 'running', started_at = ? WHERE id = ?`, store.Time(now), id); err != nil {
		return Snapshot{}, fmt.Errorf("inventory: start discovery: %w", err)
	}
	res, err := s.disc.Discover(ctx, func(p Progress) {
		// Progress is best effort: a failed update must not stop discovery.
		if _, err := s.db.ExecContext(ctx, `UPDATE inventory_snapshots SET tasks_total = ?, tasks_done = ?, last_task = ?, calls = ? WHERE id = ?`,
			p.Total, p.Done, p.Last, p.Calls, id); err != nil {
			s.log.Warn("inventory progress", slog.String("err", err.Error()))
		}
	})
	if err != nil {
		s.fail(id, err)
		return Snapshot{}, fmt.Errorf("inventory: discovery %d: %w", id, err)
	}
	if err := s.save(ctx, id, res); err != nil {
		s.fail(id, err)
		return Snapshot{}, err
	}
	return s.Snapshot(ctx, id)
}

func (s *Service) fail(id int64, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, _ := json.Marshal([]TaskError{{Task: "discovery", Error: cause.Error()}})
	if _, err := s.db.ExecContext(ctx, `UPDATE inventory_snapshots SET state = 'failed', finished_at = ?, errors = ? WHERE id = ?`,
		store.Time(s.now()), string(msg), id); err != nil {
		s.log.Error("inventory: mark discovery failed", slog.Int64("snapshot", id), slog.String("err", err.Error()))
	}
}

// save stores a finished discovery's resources, marks the snapshot
// finished, audits it and prunes old snapshots, in one transaction.
func (s *Service) save(ctx context.Context, id int64, res Result) error {
	state := Succeeded
	if len(res.Errors) > 0 {
		state = Partial
	}
	errs, err := json.Marshal(nonNil(res.Errors))
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := insertResources(ctx, tx, id, res.Resources); err != nil {
			return err
		}
		sum, err := summarize(res.Resources)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE inventory_snapshots SET state = ?, finished_at = ?, tasks_total = ?, tasks_done = ?, calls = ?, resources = ?, errors = ?, took_ms = ?, summary = ? WHERE id = ?`,
			state, store.Time(s.now()), res.Tasks, res.Tasks, res.Calls, len(res.Resources), string(errs), res.Took.Milliseconds(), sum, id); err != nil {
			return fmt.Errorf("inventory: finish snapshot %d: %w", id, err)
		}
		managed, violations := 0, 0
		for _, r := range res.Resources {
			if r.Managed {
				managed++
			}
			if r.Violation != "" {
				violations++
			}
		}
		if _, err := s.audit.Append(ctx, tx, audit.Entry{Actor: "system", Action: "inventory.snapshot", Target: fmt.Sprintf("inventory-snapshot:%d", id),
			Details: map[string]any{"state": state, "resources": len(res.Resources), "managed": managed, "residency_violations": violations,
				"calls": res.Calls, "failed_tasks": len(res.Errors), "took_ms": res.Took.Milliseconds()}}); err != nil {
			return err
		}
		return s.prune(ctx, tx)
	})
}

func nonNil(e []TaskError) []TaskError {
	if e == nil {
		return []TaskError{}
	}
	return e
}

// insertResources writes rs (already in display order) into snapshot id.
func insertResources(ctx context.Context, tx *sql.Tx, id int64, rs []Resource) error {
	res, err := tx.PrepareContext(ctx, `INSERT INTO inventory_resources (snapshot_id, arn, environment, account_id, region, service, type, name, managed, stack,
		portal_resource, version, jurisdiction, jurisdiction_by_region, violation, violates, note, tags, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`)
	if err != nil {
		return fmt.Errorf("inventory: store resources: %w", err)
	}
	defer res.Close()
	tag, err := tx.PrepareContext(ctx, `INSERT INTO inventory_tags (resource, key, value) VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("inventory: store resources: %w", err)
	}
	defer tag.Close()
	for _, r := range rs {
		tags, err := json.Marshal(r.Tags)
		if err != nil {
			return err
		}
		settings, err := json.Marshal(r.Settings)
		if err != nil {
			return err
		}
		var rid int64
		if err := res.QueryRowContext(ctx, id, r.ARN, r.Environment, r.AccountID, r.Region, r.Service, r.Type, r.Name, boolInt(r.Managed), r.Stack,
			r.PortalID, r.Version, r.Jurisdiction, boolInt(r.JurisdictionByRegion), r.Violation, boolInt(r.Violation != ""), r.Note, string(tags), string(settings)).
			Scan(&rid); err != nil {
			return fmt.Errorf("inventory: store %s: %w", r.ARN, err)
		}
		for k, v := range r.Tags {
			if _, err := tag.ExecContext(ctx, rid, k, v); err != nil {
				return fmt.Errorf("inventory: store tags of %s: %w", r.ARN, err)
			}
		}
	}
	return nil
}

// prune deletes finished snapshots beyond the newest Keep.
func (s *Service) prune(ctx context.Context, tx *sql.Tx) error {
	keep := s.Keep
	if keep <= 0 {
		keep = 30
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM inventory_snapshots WHERE state IN ('succeeded', 'partial', 'failed') AND id NOT IN
		(SELECT id FROM inventory_snapshots WHERE state IN ('succeeded', 'partial', 'failed') ORDER BY id DESC LIMIT ?)`, keep)
	if err != nil {
		return fmt.Errorf("inventory: prune snapshots: %w", err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const snapshotCols = `id, state, requested_by, created_at, started_at, finished_at, tasks_total, tasks_done, last_task, calls, resources, errors, took_ms`

func scanSnapshot(row interface{ Scan(...any) error }) (Snapshot, error) {
	var s Snapshot
	var created, started, finished, errs string
	var took int64
	if err := row.Scan(&s.ID, &s.State, &s.RequestedBy, &created, &started, &finished, &s.TasksTotal, &s.TasksDone, &s.LastTask, &s.Calls, &s.Resources, &errs, &took); err != nil {
		return s, err
	}
	s.CreatedAt, s.StartedAt, s.FinishedAt = parseTime(created), parseTime(started), parseTime(finished)
	s.Took = time.Duration(took) * time.Millisecond
	if err := json.Unmarshal([]byte(errs), &s.Errors); err != nil {
		return s, fmt.Errorf("inventory: snapshot %d errors: %w", s.ID, err)
	}
	return s, nil
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := store.ParseTime(s)
	return t
}

// Snapshot returns discovery id.
func (s *Service) Snapshot(ctx context.Context, id int64) (Snapshot, error) {
	sn, err := scanSnapshot(s.db.QueryRowContext(ctx, `SELECT `+snapshotCols+` FROM inventory_snapshots WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return sn, apperr.New(apperr.NotFound, "no discovery #%d (old ones are deleted after %d newer ones)", id, s.Keep)
	} else if err != nil {
		return sn, fmt.Errorf("inventory: snapshot %d: %w", id, err)
	}
	return sn, nil
}

// Latest returns the newest discovery whose resources can be listed; a
// NotFound error when there is none yet.
func (s *Service) Latest(ctx context.Context) (Snapshot, error) {
	sn, err := scanSnapshot(s.db.QueryRowContext(ctx, `SELECT `+snapshotCols+` FROM inventory_snapshots WHERE state IN ('succeeded', 'partial') ORDER BY id DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return sn, apperr.New(apperr.NotFound, "nothing has been discovered yet")
	} else if err != nil {
		return sn, fmt.Errorf("inventory: latest snapshot: %w", err)
	}
	return sn, nil
}

// Snapshots lists the newest discoveries, in every state, newest first.
func (s *Service) Snapshots(ctx context.Context, limit int) ([]Snapshot, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+snapshotCols+` FROM inventory_snapshots ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("inventory: snapshots: %w", err)
	}
	defer rows.Close()
	var out []Snapshot
	for rows.Next() {
		sn, err := scanSnapshot(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sn)
	}
	return out, rows.Err()
}

// InsertSnapshot stores rs as a finished snapshot without asking AWS;
// benchmarks and tests use it to build large inventories.
func (s *Service) InsertSnapshot(ctx context.Context, rs []Resource) (Snapshot, error) {
	var id int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		sum, err := summarize(rs)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO inventory_snapshots (state, requested_by, created_at, started_at, finished_at, resources, summary) VALUES ('succeeded', 'import', ?, ?, ?, ?, ?) RETURNING id`,
			store.Time(s.now()), store.Time(s.now()), store.Time(s.now()), len(rs), sum).Scan(&id); err != nil {
			return err
		}
		return insertResources(ctx, tx, id, rs)
	})
	if err != nil {
		return Snapshot{}, err
	}
	return s.Snapshot(ctx, id)
}

// stored is the summary kept with each snapshot.
type stored struct {
	Counts []ServiceCount `json:"counts"`
	Facets Facets         `json:"facets"`
}

// summarize computes the per-service counts and the filter menus' values.
func summarize(rs []Resource) (string, error) {
	counts := map[string]*ServiceCount{}
	sets := [4]map[string]bool{{}, {}, {}, {}}
	for _, r := range rs {
		c, ok := counts[r.Service]
		if !ok {
			c = &ServiceCount{Service: r.Service, Label: ServiceLabel(r.Service)}
			counts[r.Service] = c
		}
		c.Total++
		if r.Managed {
			c.Managed++
		} else {
			c.Unmanaged++
		}
		if r.Violation != "" {
			c.Violations++
		}
		for i, v := range []string{r.Region, r.Service, r.Type, r.Stack} {
			if v != "" {
				sets[i][v] = true
			}
		}
	}
	var st stored
	for _, c := range counts {
		st.Counts = append(st.Counts, *c)
	}
	sortCounts(st.Counts)
	keys := func(m map[string]bool) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	st.Facets = Facets{Regions: keys(sets[0]), Services: keys(sets[1]), Types: keys(sets[2]), Stacks: keys(sets[3])}
	b, err := json.Marshal(st)
	return string(b), err
}

// summaryOf reads snapshot id's stored summary; ok is false for snapshots
// stored without one.
func (s *Service) summaryOf(ctx context.Context, id int64) (stored, bool, error) {
	var raw string
	if err := s.db.QueryRowContext(ctx, `SELECT summary FROM inventory_snapshots WHERE id = ?`, id).Scan(&raw); err != nil {
		return stored{}, false, fmt.Errorf("inventory: summary of %d: %w", id, err)
	}
	if raw == "" {
		return stored{}, false, nil
	}
	var st stored
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return st, false, fmt.Errorf("inventory: summary of %d: %w", id, err)
	}
	return st, true, nil
}
