package engine

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"portal/internal/blueprints"
)

// Rounds orders the applies of stacks that refer to each other's resources
// (an environment's layer and its jurisdiction stacks): each round lists
// stacks whose applies may run at the same time, and every round's applies
// must finish before the next round starts. A stack may appear in several
// rounds: each apply creates what its inputs allow, and leaves the rest
// (its plan says it waits) for its next round.
//
// A stack runs in a round when another stack waits for something it can
// now create; when nothing is awaited, every stack with work left runs. So
// an environment is rolled out as: its layer (the zone the stacks write
// into), the three jurisdiction stacks, the layer again (its routing to
// their origins). References to stacks outside the set count as done.
func Rounds(stacks []*blueprints.Stack) ([][]string, error) {
	type key struct{ stack, id string }
	in := map[string]*blueprints.Stack{}
	for _, s := range stacks {
		in[s.ID] = s
	}
	deps := map[key][]key{}
	var all []key
	for _, s := range stacks {
		for _, r := range s.Resources {
			k := key{s.ID, r.ID}
			all = append(all, k)
			for _, d := range r.DependsOn {
				deps[k] = append(deps[k], key{s.ID, d})
			}
			for _, c := range r.Cross {
				st, id, _ := strings.Cut(c, ":")
				if _, ok := in[st]; ok {
					deps[k] = append(deps[k], key{st, id})
				}
			}
		}
	}
	done := map[key]bool{}
	var rounds [][]string
	for len(done) < len(all) {
		// What each stack could apply now: resources whose other stacks'
		// inputs exist, and whose own inputs exist or are applied with them.
		runnable := map[key]bool{}
		for changed := true; changed; {
			changed = false
			for _, k := range all {
				if done[k] || runnable[k] {
					continue
				}
				ok := true
				for _, d := range deps[k] {
					if !done[d] && !(d.stack == k.stack && runnable[d]) {
						ok = false
						break
					}
				}
				if ok {
					runnable[k] = true
					changed = true
				}
			}
		}
		if len(runnable) == 0 {
			var left []string
			for _, k := range all {
				if !done[k] {
					left = append(left, k.stack+"'s "+k.id)
				}
			}
			return nil, fmt.Errorf("engine: the stacks wait for each other in a cycle; nothing of %s can be applied", strings.Join(left, ", "))
		}
		// Stacks another stack waits for.
		awaited := map[string]bool{}
		for _, k := range all {
			if done[k] || runnable[k] {
				continue
			}
			for _, d := range deps[k] {
				if d.stack != k.stack && runnable[d] {
					awaited[d.stack] = true
				}
			}
		}
		if len(awaited) == 0 {
			for k := range runnable {
				awaited[k.stack] = true
			}
		}
		var round []string
		for st := range awaited {
			round = append(round, st)
		}
		sort.Slice(round, func(i, j int) bool {
			return slices.IndexFunc(stacks, func(s *blueprints.Stack) bool { return s.ID == round[i] }) <
				slices.IndexFunc(stacks, func(s *blueprints.Stack) bool { return s.ID == round[j] })
		})
		for k := range runnable {
			if awaited[k.stack] {
				done[k] = true
			}
		}
		rounds = append(rounds, round)
	}
	return rounds, nil
}
