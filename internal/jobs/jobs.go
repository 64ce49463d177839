// Package jobs runs the portal's scheduled work (syncs, drift checks,
// expiries) inside `portal serve`. Each job runs on at most one replica at a
// time: before running, a scheduler takes the job's lease in the database
// with a conditional UPDATE, and renews it while the job runs. A replica
// that dies loses its leases when they expire, and another takes over.
// Leases and schedules are kept on the database's clock (store.DB.Now),
// which every replica shares, never on one machine's.
package jobs

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"portal/internal/store"
)

// Func is a job's work. It should return when ctx is cancelled.
type Func func(ctx context.Context) error

type job struct {
	name     string
	interval time.Duration
	fn       Func
	trigger  chan struct{}
}

// Scheduler runs registered jobs on their intervals.
type Scheduler struct {
	db     *store.DB
	log    *slog.Logger
	now    func() time.Time // measures how long jobs take
	holder string
	// Lease is how long a taken lease lasts before it must be renewed.
	Lease time.Duration
	// Tick is how often the scheduler looks for due jobs.
	Tick time.Duration

	mu   sync.Mutex
	jobs map[string]*job
}

// New returns a scheduler. now measures how long jobs take (leases and
// schedules use the database's clock); holder names this replica in
// leases; empty picks a random name.
func New(db *store.DB, log *slog.Logger, now func() time.Time, holder string) *Scheduler {
	if now == nil {
		now = time.Now
	}
	if holder == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		holder = "replica-" + hex.EncodeToString(b)
	}
	return &Scheduler{db: db, log: log, now: now, holder: holder, Lease: time.Minute, Tick: time.Second, jobs: map[string]*job{}}
}

// Every registers fn to run every interval (the first run is due at once).
func (s *Scheduler) Every(name string, interval time.Duration, fn Func) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs[name] = &job{name: name, interval: interval, fn: fn, trigger: make(chan struct{}, 1)}
}

// Status is what the portal shows about a job.
type Status struct {
	Name         string
	Holder       string
	LeaseUntil   time.Time
	NextRun      time.Time
	LastStarted  time.Time
	LastFinished time.Time
	LastError    string
	Runs         int
	Running      bool
}

// Status returns the state of job name as recorded in the database.
func (s *Scheduler) Status(ctx context.Context, name string) (Status, error) {
	st := Status{Name: name}
	var lease, next, started, finished string
	err := s.db.QueryRowContext(ctx, `SELECT holder, lease_until, next_run, last_started, last_finished, last_error, runs FROM jobs WHERE name = ?`, name).
		Scan(&st.Holder, &lease, &next, &started, &finished, &st.LastError, &st.Runs)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	} else if err != nil {
		return st, fmt.Errorf("jobs: status %s: %w", name, err)
	}
	st.LeaseUntil, st.NextRun = parse(lease), parse(next)
	st.LastStarted, st.LastFinished = parse(started), parse(finished)
	now, err := s.db.Now(ctx)
	if err != nil {
		return st, fmt.Errorf("jobs: status %s: %w", name, err)
	}
	st.Running = st.Holder != "" && st.LeaseUntil.After(now)
	return st, nil
}

func parse(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := store.ParseTime(s)
	return t
}

// Trigger makes job name due now. It returns false when no such job is
// registered on this scheduler.
func (s *Scheduler) Trigger(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	j, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return false, nil
	}
	now, err := s.db.Now(ctx)
	if err != nil {
		return false, fmt.Errorf("jobs: trigger %s: %w", name, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO jobs (name, next_run) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET next_run = excluded.next_run`, name, store.Time(now)); err != nil {
		return false, fmt.Errorf("jobs: trigger %s: %w", name, err)
	}
	select {
	case j.trigger <- struct{}{}:
	default:
	}
	return true, nil
}

// Run runs due jobs until ctx is cancelled, then waits for running jobs to
// return.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	running := map[string]bool{}
	var mu sync.Mutex
	tick := time.NewTicker(s.Tick)
	defer tick.Stop()
	rows := map[string]bool{} // jobs whose row this scheduler has made sure of
	for {
		s.mu.Lock()
		jobs := make([]*job, 0, len(s.jobs))
		for _, j := range s.jobs {
			jobs = append(jobs, j)
		}
		s.mu.Unlock()
		sort.Slice(jobs, func(a, b int) bool { return jobs[a].name < jobs[b].name })
		now, due, err := s.due(ctx, jobs, rows)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("jobs: due jobs", slog.String("err", err.Error()))
		}
		for _, j := range jobs {
			mu.Lock()
			busy := running[j.name]
			mu.Unlock()
			if busy || !due[j.name] {
				continue
			}
			ok, err := s.take(ctx, j, now)
			if err != nil {
				s.log.Warn("job lease", slog.String("job", j.name), slog.String("err", err.Error()))
				continue
			}
			if !ok {
				continue
			}
			mu.Lock()
			running[j.name] = true
			mu.Unlock()
			wg.Add(1)
			go func(j *job) {
				defer wg.Done()
				s.runOne(ctx, j)
				mu.Lock()
				delete(running, j.name)
				mu.Unlock()
			}(j)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// RunOnce runs job name now on this replica if its lease can be taken, and
// reports whether it ran. Tests and on-demand buttons use it.
func (s *Scheduler) RunOnce(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	j, ok := s.jobs[name]
	s.mu.Unlock()
	if !ok {
		return false, fmt.Errorf("jobs: no job %q", name)
	}
	if _, err := s.Trigger(ctx, name); err != nil {
		return false, err
	}
	got, err := s.acquire(ctx, j)
	if err != nil || !got {
		return false, err
	}
	return true, s.runOne(ctx, j)
}

// due returns the database's time and which of jobs are due with no live
// lease, first making the rows of jobs not in rows (a job's first run is
// due at once): one query a tick however many jobs there are, rather than
// a claim attempt per job. It only narrows the claims: take decides.
func (s *Scheduler) due(ctx context.Context, jobs []*job, rows map[string]bool) (time.Time, map[string]bool, error) {
	now, err := s.db.Now(ctx)
	if err != nil {
		return now, nil, err
	}
	for _, j := range jobs {
		if !rows[j.name] {
			if err := s.ensure(ctx, j, now); err != nil {
				return now, nil, err
			}
			rows[j.name] = true
		}
	}
	q, err := s.db.QueryContext(ctx, `SELECT name FROM jobs WHERE next_run <= ? AND (holder = '' OR lease_until < ?)`, store.Time(now), store.Time(now))
	if err != nil {
		return now, nil, err
	}
	defer q.Close()
	due := map[string]bool{}
	for q.Next() {
		var name string
		if err := q.Scan(&name); err != nil {
			return now, nil, err
		}
		due[name] = true
	}
	return now, due, q.Err()
}

// ensure makes j's row, due at now, unless it exists.
func (s *Scheduler) ensure(ctx context.Context, j *job, now time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO jobs (name, next_run) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, j.name, store.Time(now))
	return err
}

// acquire takes j's lease when j is due and no live lease is held (see
// take).
func (s *Scheduler) acquire(ctx context.Context, j *job) (bool, error) {
	now, err := s.db.Now(ctx)
	if err != nil {
		return false, err
	}
	if err := s.ensure(ctx, j, now); err != nil {
		return false, err
	}
	return s.take(ctx, j, now)
}

// take takes j's lease at database time now when j is due and no live
// lease is held: one conditional UPDATE, so of several replicas one
// takes it.
func (s *Scheduler) take(ctx context.Context, j *job, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET holder = ?, lease_until = ?, last_started = ?
		WHERE name = ? AND next_run <= ? AND (holder = '' OR lease_until < ?)`,
		s.holder, store.Time(now.Add(s.Lease)), store.Time(now), j.name, store.Time(now), store.Time(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *Scheduler) runOne(ctx context.Context, j *job) error {
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Renew the lease while the job runs; if renewal fails the lease was
	// lost, so stop the job rather than risk a second runner.
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(s.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := s.renew(jctx, j); err != nil {
					s.log.Warn("job lease lost: stopping the job", slog.String("job", j.name), slog.String("err", err.Error()))
					cancel()
					return
				}
			}
		}
	}()
	began := s.now()
	start, err := s.db.Now(ctx)
	if err != nil {
		close(done)
		return fmt.Errorf("jobs: %s: %w", j.name, err)
	}
	err = j.fn(jctx)
	close(done)
	msg := ""
	if err != nil {
		msg = err.Error()
		s.log.Error("job failed", slog.String("job", j.name), slog.String("err", msg))
	} else {
		s.log.Debug("job done", slog.String("job", j.name), slog.Duration("took", s.now().Sub(began)))
	}
	// Release with a fresh context: the run's context may be cancelled.
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	finished, uerr := s.db.Now(rctx)
	if uerr == nil {
		_, uerr = s.db.ExecContext(rctx, `UPDATE jobs SET holder = '', lease_until = '', last_finished = ?, last_error = ?, runs = runs + 1, next_run = ?
			WHERE name = ? AND holder = ?`, store.Time(finished), msg, store.Time(start.Add(j.interval)), j.name, s.holder)
	}
	if uerr != nil {
		// The lease lapses by itself; the job then runs again, early.
		s.log.Error("job release", slog.String("job", j.name), slog.String("err", uerr.Error()))
	}
	return err
}

// renew extends j's lease, which this scheduler must still hold.
func (s *Scheduler) renew(ctx context.Context, j *job) error {
	now, err := s.db.Now(ctx)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE jobs SET lease_until = ? WHERE name = ? AND holder = ?`, store.Time(now.Add(s.Lease)), j.name, s.holder)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return errors.New("another replica holds it")
	}
	return nil
}
