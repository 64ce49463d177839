package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portal/internal/jobs"
	"portal/internal/peers/peertest"
	"portal/internal/store"
)

func TestMain(m *testing.M) { peertest.Main(m) }

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db := peertest.StoreForTest(t)
	return db
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestTwoSchedulersNeverOverlap runs one job due every millisecond on two
// schedulers sharing a database until it has run several times, and checks
// that its runs never overlap.
func TestTwoSchedulersNeverOverlap(t *testing.T) {
	db := openDB(t)
	var active, maxActive, runs atomic.Int32
	work := func(ctx context.Context) error {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			m := maxActive.Load()
			if n <= m || maxActive.CompareAndSwap(m, n) {
				break
			}
		}
		runs.Add(1)
		time.Sleep(30 * time.Millisecond)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, holder := range []string{"a", "b"} {
		s := jobs.New(db, quiet, nil, holder)
		s.Tick = 5 * time.Millisecond
		s.Every("sync", time.Millisecond, work)
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(ctx) }()
	}
	// Several runs, however long a loaded machine takes to give them (a
	// fixed window saw only two under the race detector at a load of 9).
	deadline := time.Now().Add(time.Minute)
	for runs.Load() < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if got := maxActive.Load(); got != 1 {
		t.Errorf("at most %d runs at once, want 1", got)
	}
	if got := runs.Load(); got < 6 {
		t.Errorf("%d runs in a minute, want several", got)
	}
}

// TestExpiredLeaseIsTakenOver: a replica that died holding a lease blocks
// the job only until the lease expires, on the database's clock.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	now, err := db.Now(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const left = 500 * time.Millisecond
	if _, err := db.ExecContext(ctx, `INSERT INTO jobs (name, holder, lease_until, next_run) VALUES ('drift', 'dead-replica', ?, ?)`,
		store.Time(now.Add(left)), store.Time(now.Add(-time.Minute))); err != nil {
		t.Fatal(err)
	}
	s := jobs.New(db, quiet, nil, "alive")
	ran := 0
	s.Every("drift", time.Hour, func(context.Context) error { ran++; return nil })
	if ok, err := s.RunOnce(ctx, "drift"); err != nil || ok {
		t.Fatalf("RunOnce while another replica holds a live lease: ran=%v err=%v, want not run", ok, err)
	}
	if st, _ := s.Status(ctx, "drift"); !st.Running || st.Holder != "dead-replica" {
		t.Errorf("status while the lease is live: %+v, want running, held by dead-replica", st)
	}
	time.Sleep(left + 100*time.Millisecond)
	started, _ := db.Now(ctx)
	if ok, err := s.RunOnce(ctx, "drift"); err != nil || !ok {
		t.Fatalf("RunOnce after the lease expired: ran=%v err=%v, want run", ok, err)
	}
	st, err := s.Status(ctx, "drift")
	if err != nil {
		t.Fatal(err)
	}
	if ran != 1 || st.Runs != 1 || st.Holder != "" || st.Running {
		t.Errorf("after one run: ran=%d status=%+v, want 1 run, lease released", ran, st)
	}
	if next := st.NextRun.Sub(started); next < time.Hour || next > time.Hour+5*time.Second {
		t.Errorf("next run %v after the run began, want an hour", next)
	}
}

// TestLostLeaseStopsTheJob: a job whose lease another replica took (this
// one paused past it) is cancelled.
func TestLostLeaseStopsTheJob(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	s := jobs.New(db, quiet, nil, "a")
	s.Lease = 300 * time.Millisecond
	stopped := make(chan error, 1)
	s.Every("sync", time.Hour, func(ctx context.Context) error {
		if _, err := db.ExecContext(context.Background(), `UPDATE jobs SET holder = 'b' WHERE name = 'sync'`); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			stopped <- ctx.Err()
			return ctx.Err()
		case <-time.After(5 * time.Second):
			stopped <- nil
			return nil
		}
	})
	_, _ = s.RunOnce(ctx, "sync")
	if err := <-stopped; err == nil {
		t.Error("the job went on for 5s after another replica took its lease")
	}
	var holder string
	db.QueryRowContext(ctx, `SELECT holder FROM jobs WHERE name = 'sync'`).Scan(&holder)
	if holder != "b" {
		t.Errorf("holder after the old runner stopped: %q, want b (the old runner must not release another's lease)", holder)
	}
}

func TestFailureIsRecorded(t *testing.T) {
	db := openDB(t)
	ctx := context.Background()
	s := jobs.New(db, quiet, nil, "x")
	s.Every("sync", time.Hour, func(context.Context) error { return errors.New("stripe: 401 invalid key") })
	if _, err := s.RunOnce(ctx, "sync"); err == nil {
		t.Fatal("RunOnce returned nil for a failing job")
	}
	st, _ := s.Status(ctx, "sync")
	if st.LastError != "stripe: 401 invalid key" {
		t.Errorf("last error %q, want the job's error", st.LastError)
	}
}
