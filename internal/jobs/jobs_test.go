package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"portal/internal/jobs"
	"portal/internal/store"
)

func openDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "portal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestTwoSchedulersNeverOverlap runs one job on two schedulers sharing a
// database and checks that its runs never overlap.
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
	time.Sleep(600 * time.Millisecond)
	cancel()
	wg.Wait()
	if got := maxActive.Load(); got != 1 {
		t.Errorf("at most %d runs at once, want 1", got)
	}
	if got := runs.Load(); got < 3 {
		t.Errorf("%d runs in 600ms, want several", got)
	}
}

// TestExpiredLeaseIsTakenOver: a replica that died holding a lease blocks
// the job only until the lease expires.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	db := openDB(t)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `INSERT INTO jobs (name, holder, lease_until, next_run) VALUES ('drift', 'dead-replica', ?, ?)`,
		store.Time(now.Add(30*time.Second)), store.Time(now.Add(-time.Minute))); err != nil {
		t.Fatal(err)
	}
	s := jobs.New(db, quiet, clock, "alive")
	ran := 0
	s.Every("drift", time.Hour, func(context.Context) error { ran++; return nil })
	if ok, err := s.RunOnce(ctx, "drift"); err != nil || ok {
		t.Fatalf("RunOnce while another replica holds a live lease: ran=%v err=%v, want not run", ok, err)
	}
	now = now.Add(31 * time.Second)
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
	if want := now.Add(time.Hour); !st.NextRun.Equal(want) {
		t.Errorf("next run %v, want %v", st.NextRun, want)
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
