package engine

import (
	"context"
	"errors"
	"sync"
)

// ErrSkipped marks a node not run because something it waits on failed or
// the walk was cancelled.
var ErrSkipped = errors.New("skipped")

// walk calls fn for every node once all the nodes it waits on have
// succeeded, running at most parallelism calls at once. A node whose
// prerequisite failed or was skipped is skipped (fn is not called; its
// result is an error wrapping ErrSkipped); independent nodes still run.
// When stop reports true, no new call starts and the remaining nodes are
// skipped. waitsOn must only name nodes in nodes.
func walk(ctx context.Context, nodes []string, waitsOn map[string][]string, parallelism int, stop func() bool, fn func(ctx context.Context, id string) error) map[string]error {
	if parallelism < 1 {
		parallelism = 1
	}
	results := make(map[string]error, len(nodes))
	remaining := map[string]int{}
	dependants := map[string][]string{}
	for _, n := range nodes {
		remaining[n] = len(waitsOn[n])
		for _, p := range waitsOn[n] {
			dependants[p] = append(dependants[p], n)
		}
	}
	type done struct {
		id  string
		err error
	}
	doneCh := make(chan done)
	var ready []string
	for _, n := range nodes {
		if remaining[n] == 0 {
			ready = append(ready, n)
		}
	}
	running := 0
	var wg sync.WaitGroup
	var finish func(id string, err error)
	finish = func(id string, err error) {
		results[id] = err
		for _, d := range dependants[id] {
			if _, seen := results[d]; seen {
				continue
			}
			if err != nil {
				finish(d, errors.Join(ErrSkipped, errors.New("skipped because "+id+" did not complete")))
				continue
			}
			remaining[d]--
			if remaining[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	for len(results) < len(nodes) {
		for running < parallelism && len(ready) > 0 {
			id := ready[0]
			ready = ready[1:]
			if _, seen := results[id]; seen {
				continue
			}
			if ctx.Err() != nil || (stop != nil && stop()) {
				finish(id, errors.Join(ErrSkipped, errors.New("skipped: the run was cancelled")))
				continue
			}
			running++
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				doneCh <- done{id, fn(ctx, id)}
			}(id)
		}
		if running == 0 {
			if len(ready) == 0 && len(results) < len(nodes) {
				// Nothing can run: a cycle, which the blueprint validator
				// refuses; report the rest as skipped rather than hang.
				for _, n := range nodes {
					if _, seen := results[n]; !seen {
						results[n] = errors.Join(ErrSkipped, errors.New("skipped: waits on itself"))
					}
				}
			}
			continue
		}
		d := <-doneCh
		running--
		finish(d.id, d.err)
	}
	wg.Wait()
	return results
}
