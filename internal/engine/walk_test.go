package engine

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWalkOrderAndParallelism(t *testing.T) {
	nodes := []string{"key", "bucket", "table", "policy", "role"}
	waits := map[string][]string{"bucket": {"key"}, "table": {"key"}, "policy": {"bucket", "table"}, "role": {"policy"}}
	var mu sync.Mutex
	var order []string
	var active, peak atomic.Int32
	res := walk(context.Background(), nodes, waits, 4, nil, func(ctx context.Context, id string) error {
		n := active.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		active.Add(-1)
		mu.Lock()
		order = append(order, id)
		mu.Unlock()
		return nil
	})
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	for n, ps := range waits {
		for _, p := range ps {
			if pos[p] > pos[n] {
				t.Errorf("%s ran before %s, which it waits on (order %v)", n, p, order)
			}
		}
	}
	for _, n := range nodes {
		if res[n] != nil {
			t.Errorf("%s: %v", n, res[n])
		}
	}
	if peak.Load() != 2 {
		t.Errorf("peak parallelism %d, want 2 (bucket and table together)", peak.Load())
	}
}

func TestWalkFailureSkipsDependantsOnly(t *testing.T) {
	nodes := []string{"a", "b", "c", "d"}
	waits := map[string][]string{"b": {"a"}, "c": {"b"}}
	res := walk(context.Background(), nodes, waits, 2, nil, func(ctx context.Context, id string) error {
		if id == "a" {
			return errors.New("boom")
		}
		return nil
	})
	var skipped []string
	for id, err := range res {
		if errors.Is(err, ErrSkipped) {
			skipped = append(skipped, id)
		}
	}
	sort.Strings(skipped)
	if res["d"] != nil || len(skipped) != 2 || skipped[0] != "b" || skipped[1] != "c" {
		t.Errorf("results %v, want b and c skipped, d done", res)
	}
}

func TestWalkStop(t *testing.T) {
	var ran atomic.Int32
	var stopped atomic.Bool
	res := walk(context.Background(), []string{"a", "b", "c"}, map[string][]string{"b": {"a"}, "c": {"b"}}, 1,
		stopped.Load, func(ctx context.Context, id string) error {
			ran.Add(1)
			stopped.Store(true) // cancel requested while a runs: a finishes, b and c never start
			return nil
		})
	if ran.Load() != 1 || res["a"] != nil || !errors.Is(res["b"], ErrSkipped) || !errors.Is(res["c"], ErrSkipped) {
		t.Errorf("ran %d, results %v; want only a to run", ran.Load(), res)
	}
}
