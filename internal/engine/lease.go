package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"portal/internal/store"
)

// DefaultLease is how long a runner's claim on a run lasts without
// renewal; a run whose lease lapsed belongs to a runner that died or lost
// the database.
const DefaultLease = 30 * time.Second

// errLeaseLost stops a run whose runner no longer holds it: its lease
// lapsed and recovery marked it interrupted (another replica may resume
// it), or the runner could not renew it in time.
var errLeaseLost = errors.New("this runner no longer holds the run's lease")

// fence identifies one runner's hold on one run: the run is its while the
// row still names it as holder with the attempt it claimed, in state
// running. Every write a run makes checks it in the same statement or
// transaction, so a runner that lost its lease writes nothing more.
type fence struct {
	db      *store.DB
	run     int64
	holder  string
	attempt int
}

// held is the SQL condition, on runs, that the fence still holds; its
// arguments are args().
const held = `id = ? AND holder = ? AND attempt = ? AND state = 'running'`

func (f fence) args() []any { return []any{f.run, f.holder, f.attempt} }

// renew extends the lease to lease from now on the database's clock and
// says whether someone asked the run to stop.
func (f fence) renew(ctx context.Context, lease time.Duration) (cancelRequested bool, err error) {
	now, err := f.db.Now(ctx)
	if err != nil {
		return false, err
	}
	err = f.db.QueryRowContext(ctx, `UPDATE runs SET lease_until = ? WHERE `+held+` RETURNING cancel_requested`,
		append([]any{store.Time(now.Add(lease))}, f.args()...)...).Scan(&cancelRequested)
	if errors.Is(err, sql.ErrNoRows) {
		return false, errLeaseLost
	}
	return cancelRequested, err
}

// tx runs fn in a transaction that first confirms the fence (and, on
// PostgreSQL, locks the run's row, so recovery cannot take the run while
// fn writes).
func (f fence) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return f.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET lease_until = lease_until WHERE `+held, f.args()...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return errLeaseLost
		}
		return fn(tx)
	})
}

// recordTimeout bounds each write of a run's progress: the run's own
// context may already be cancelled when a step's end is written.
const recordTimeout = 15 * time.Second

// stepRecorder writes a run's steps and log lines, fenced. Its first
// failure stops the run (through stop): a run whose progress cannot be
// recorded must not go on changing AWS unrecorded.
type stepRecorder struct {
	f    fence
	now  func() time.Time
	stop context.CancelCauseFunc

	mu  sync.Mutex
	err error // the first failure
}

// fail records err as the run's first recording failure (unless one is
// recorded), stops the run and returns err.
func (r *stepRecorder) fail(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
		r.stop(err)
	}
	return err
}

// Err is the first recording failure, or nil.
func (r *stepRecorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *stepRecorder) check(what string, res sql.Result, err error) error {
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = errLeaseLost
		}
	}
	if err != nil {
		return r.fail(fmt.Errorf("record %s: %w", what, err))
	}
	return nil
}

// log appends a line to the run's log (resource "" for the run itself).
func (r *stepRecorder) log(resource, line string) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	res, err := r.f.db.ExecContext(ctx, `INSERT INTO run_logs (run_id, at, resource_id, line)
		SELECT CAST(? AS INTEGER), ?, ?, ? WHERE EXISTS (SELECT 1 FROM runs WHERE `+held+`)`,
		append([]any{r.f.run, store.Time(r.now()), resource, line}, r.f.args()...)...)
	return r.check("a log line", res, err)
}

// step records the state of resource id's step.
func (r *stepRecorder) step(id, state, msg string, reqIDs []string, calls int) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	now := store.Time(r.now())
	var res sql.Result
	var err error
	switch state {
	case StepRunning:
		res, err = r.f.db.ExecContext(ctx, `UPDATE run_steps SET state = ?, started_at = ?, error = ''
			WHERE run_id = ? AND resource_id = ? AND EXISTS (SELECT 1 FROM runs WHERE `+held+`)`,
			append([]any{state, now, r.f.run, id}, r.f.args()...)...)
	default:
		ids, _ := json.Marshal(reqIDs)
		if reqIDs == nil {
			ids = []byte("[]")
		}
		res, err = r.f.db.ExecContext(ctx, `UPDATE run_steps SET state = ?, finished_at = ?, error = ?, request_ids = ?, calls = calls + ?
			WHERE run_id = ? AND resource_id = ? AND EXISTS (SELECT 1 FROM runs WHERE `+held+`)`,
			append([]any{state, now, msg, string(ids), calls, r.f.run, id}, r.f.args()...)...)
	}
	return r.check("step "+id+" as "+state, res, err)
}

// calls adds n AWS calls to the run's count.
func (r *stepRecorder) calls(n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	res, err := r.f.db.ExecContext(ctx, `UPDATE runs SET calls = calls + ? WHERE `+held, append([]any{n}, r.f.args()...)...)
	return r.check("the run's AWS calls", res, err)
}

// state writes what a step learnt about its resource (fn, in a fenced
// transaction).
func (r *stepRecorder) state(what string, fn func(tx *sql.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
	defer cancel()
	if err := r.f.tx(ctx, fn); err != nil {
		return r.fail(fmt.Errorf("record %s: %w", what, err))
	}
	return nil
}
