package engine_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"portal/internal/blueprints"
	"portal/internal/engine"
	"portal/internal/peers/peertest"
	"portal/internal/regions"
)

// applyStacks plans and applies stacks (each in h's account for its
// environment) with the given parallelism, all runs going at once, and
// returns the plan and apply wall times and the AWS calls made.
func applyStacks(b *testing.B, hs map[string]*harness, stacks []*blueprints.Stack, parallelism int) (plan, apply time.Duration, calls int) {
	ctx := context.Background()
	// moto builds each account's services on first use (EC2 loads its
	// AMI catalogue): warm them up untimed, so the figures measure the
	// portal and not the emulator's start-up.
	b.StopTimer()
	for _, st := range stacks {
		h := hs[st.Environment]
		if _, err := h.eng.Plan(ctx, engine.Target{Stack: st, Info: h.info(st)}, "apply"); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	plans := map[string]*engine.Plan{}
	for _, st := range stacks {
		wg.Add(1)
		go func(st *blueprints.Stack) {
			defer wg.Done()
			h := hs[st.Environment]
			h.eng.Parallelism = parallelism
			p, err := h.eng.Plan(ctx, engine.Target{Stack: st, Info: h.info(st)}, "apply")
			if err != nil {
				b.Error(err)
				return
			}
			if err := h.eng.SavePlan(ctx, by, p); err != nil {
				b.Error(err)
				return
			}
			mu.Lock()
			plans[st.ID] = p
			calls += p.Calls
			mu.Unlock()
		}(st)
	}
	wg.Wait()
	plan = time.Since(start)
	if b.Failed() {
		b.FailNow()
	}
	start = time.Now()
	for _, st := range stacks {
		wg.Add(1)
		go func(st *blueprints.Stack) {
			defer wg.Done()
			h := hs[st.Environment]
			id, err := h.eng.Apply(ctx, by, plans[st.ID].ID)
			if err != nil {
				b.Error(err)
				return
			}
			if err := h.eng.RunNow(ctx, "bench-"+st.ID); err != nil {
				b.Error(err)
				return
			}
			run, steps, _ := h.eng.GetRun(ctx, id)
			if run.State != engine.RunSucceeded {
				for _, s := range steps {
					if s.State != engine.StepDone {
						b.Logf("%s: %s %s %s", st.ID, s.ResourceID, s.State, s.Error)
					}
				}
				b.Errorf("%s: run %s (%s)", st.ID, run.State, run.Error)
			}
			mu.Lock()
			calls += run.Calls
			mu.Unlock()
		}(st)
	}
	wg.Wait()
	return plan, time.Since(start), calls
}

// BenchmarkApplyOneStack plans and applies the EU dev stack in a fresh
// account, with the engine's parallelism and then serially, and reports
// both wall times, the calls made and the speed-up from parallelism.
func BenchmarkApplyOneStack(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		par := map[string]*harness{"dev": newHarness(&testing.T{})}
		ser := map[string]*harness{"dev": newHarness(&testing.T{})}
		b.StartTimer()
		pp, pa, pc := applyStacks(b, par, []*blueprints.Stack{uniqueStack(b, "dev-eu")}, 8)
		sp, sa, _ := applyStacks(b, ser, []*blueprints.Stack{uniqueStack(b, "dev-eu")}, 1)
		b.ReportMetric(pp.Seconds(), "plan-s")
		b.ReportMetric(pa.Seconds(), "apply-s")
		b.ReportMetric(sp.Seconds(), "serial-plan-s")
		b.ReportMetric(sa.Seconds(), "serial-apply-s")
		b.ReportMetric(float64(pc), "aws-calls")
		b.ReportMetric(sa.Seconds()/pa.Seconds(), "apply-speedup")
	}
}

// BenchmarkApplyOneStackWithLatency is BenchmarkApplyOneStack with 30 ms
// added to every AWS call by a loopback proxy, standing for the round trip
// to a real AWS region: moto answers in microseconds but one request at a
// time, which hides what parallelism buys against AWS.
func BenchmarkApplyOneStackWithLatency(b *testing.B) {
	m := peertest.MotoForTest(b)
	proxy := peertest.StartFaultProxy(b, m, 0, 1)
	proxy.Latency = 30 * time.Millisecond
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		par := map[string]*harness{"dev": newHarnessVia(&testing.T{}, proxy.URL())}
		ser := map[string]*harness{"dev": newHarnessVia(&testing.T{}, proxy.URL())}
		b.StartTimer()
		_, pa, pc := applyStacks(b, par, []*blueprints.Stack{uniqueStack(b, "dev-eu")}, 8)
		_, sa, _ := applyStacks(b, ser, []*blueprints.Stack{uniqueStack(b, "dev-eu")}, 1)
		b.ReportMetric(pa.Seconds(), "apply-s")
		b.ReportMetric(sa.Seconds(), "serial-apply-s")
		b.ReportMetric(float64(pc), "aws-calls")
		b.ReportMetric(sa.Seconds()/pa.Seconds(), "apply-speedup")
	}
}

// BenchmarkApplyEstate applies the whole estate from empty: the nine
// stacks and the three environment layers, each environment in a fresh
// account of its own, against moto with 50 ms added to every AWS call (a
// loopback proxy standing for the round trip to a real region). Each
// environment goes in the rounds its cross-stack references need (layer,
// stacks, layer: engine.Rounds), the three environments at once. It
// reports the wall time beside the critical path (the sum of step
// durations along the longest chain of dependencies, across stacks: no
// schedule can beat it) and the serial time (every step one after the
// other).
func BenchmarkApplyEstate(b *testing.B) {
	m := peertest.MotoForTest(b)
	proxy := peertest.StartFaultProxy(b, m, 0, 1)
	proxy.Latency = 50 * time.Millisecond
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		hs := map[string]*harness{}
		envs := map[string][]*blueprints.Stack{}
		for _, env := range regions.EnvironmentNames() {
			hs[env] = newHarnessVia(&testing.T{}, proxy.URL())
			envs[env] = uniqueEnvironment(b, env)
		}
		b.StartTimer()
		start := time.Now()
		var mu sync.Mutex
		var wg sync.WaitGroup
		var steps []estateStep
		calls := 0
		for env, stacks := range envs {
			wg.Add(1)
			go func(h *harness, stacks []*blueprints.Stack) {
				defer wg.Done()
				s, c := rollOut(b, h, stacks)
				mu.Lock()
				steps, calls = append(steps, s...), calls+c
				mu.Unlock()
			}(hs[env], stacks)
		}
		wg.Wait()
		wall := time.Since(start)
		b.StopTimer()
		var stacks []*blueprints.Stack
		for _, env := range regions.EnvironmentNames() {
			stacks = append(stacks, envs[env]...)
		}
		critical, serial := criticalPath(stacks, steps)
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(critical.Seconds(), "critical-path-s")
		b.ReportMetric(serial.Seconds(), "serial-s")
		b.ReportMetric(float64(calls), "aws-calls")
		b.ReportMetric(wall.Seconds()/critical.Seconds(), "wall/critical")
		b.StartTimer()
	}
}

// estateStep is one resource's step of one run.
type estateStep struct {
	stack string
	step  engine.Step
}

// rollOut applies an environment's stacks in their rounds (all stacks of a
// round at once) and returns every step and the AWS calls made.
func rollOut(b *testing.B, h *harness, stacks []*blueprints.Stack) ([]estateStep, int) {
	ctx := context.Background()
	rounds, err := engine.Rounds(stacks)
	if err != nil {
		b.Error(err)
		return nil, 0
	}
	byID := map[string]*blueprints.Stack{}
	for _, s := range stacks {
		byID[s.ID] = s
	}
	var out []estateStep
	calls := 0
	for _, round := range rounds {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, id := range round {
			wg.Add(1)
			go func(st *blueprints.Stack) {
				defer wg.Done()
				p, err := h.eng.Plan(ctx, engine.Target{Stack: st, Info: h.info(st)}, "apply")
				if err != nil {
					b.Error(err)
					return
				}
				if err := h.eng.SavePlan(ctx, by, p); err != nil {
					b.Error(err)
					return
				}
				runID, err := h.eng.Apply(ctx, by, p.ID)
				if err != nil {
					b.Error(err)
					return
				}
				if err := h.eng.RunNow(ctx, "bench-"+st.ID); err != nil {
					b.Error(err)
					return
				}
				run, steps, _ := h.eng.GetRun(ctx, runID)
				if run.State != engine.RunSucceeded {
					b.Errorf("%s: run %s (%s)", st.ID, run.State, run.Error)
				}
				mu.Lock()
				calls += p.Calls + run.Calls
				for _, s := range steps {
					out = append(out, estateStep{st.ID, s})
				}
				mu.Unlock()
			}(byID[id])
		}
		wg.Wait()
	}
	return out, calls
}

// criticalPath returns the longest chain of step durations through the
// resources' dependencies (within a stack and across stacks) and the sum
// of every step.
func criticalPath(stacks []*blueprints.Stack, steps []estateStep) (critical, serial time.Duration) {
	took := map[string]time.Duration{}
	for _, s := range steps {
		if s.step.StartedAt.IsZero() || s.step.FinishedAt.IsZero() {
			continue
		}
		d := s.step.FinishedAt.Sub(s.step.StartedAt)
		serial += d
		k := s.stack + ":" + s.step.ResourceID
		took[k] += d // a layer resource may work in two rounds
	}
	deps := map[string][]string{}
	for _, st := range stacks {
		for _, r := range st.Resources {
			k := st.ID + ":" + r.ID
			for _, d := range r.DependsOn {
				deps[k] = append(deps[k], st.ID+":"+d)
			}
			deps[k] = append(deps[k], r.Cross...)
		}
	}
	memo := map[string]time.Duration{}
	var longest func(k string, depth int) time.Duration
	longest = func(k string, depth int) time.Duration {
		if v, ok := memo[k]; ok || depth > 10000 {
			return v
		}
		var best time.Duration
		for _, d := range deps[k] {
			if v := longest(d, depth+1); v > best {
				best = v
			}
		}
		memo[k] = best + took[k]
		return memo[k]
	}
	for k := range took {
		if v := longest(k, 0); v > critical {
			critical = v
		}
	}
	return critical, serial
}

// uniqueEnvironment is env's layer and jurisdiction stacks of the shipped
// blueprints with names of their own (S3 bucket names are global), linked.
func uniqueEnvironment(b *testing.B, env string) []*blueprints.Stack {
	prefix := fmt.Sprintf("b%d", time.Now().UnixNano()%1e9)
	dir := b.TempDir()
	err := filepath.WalkDir("../../blueprints", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		rel, _ := filepath.Rel("../../blueprints", path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		s := string(data)
		if strings.HasPrefix(rel, filepath.Join("stacks", env+"-")) || rel == filepath.Join("environments", env+".yaml") {
			s = strings.Replace(s, "name_prefix: medportal-", "name_prefix: "+prefix+"-", 1)
		}
		out := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, []byte(s), 0o644)
	})
	if err != nil {
		b.Fatal(err)
	}
	set, diags := blueprints.LoadDir(dir)
	if blueprints.HasErrors(diags) {
		b.Fatal(diags)
	}
	var out []*blueprints.Stack
	for _, id := range []string{regions.LayerID(env), env + "-us", env + "-eu", env + "-apac"} {
		st, diags := set.Resolve(id)
		if st == nil {
			b.Fatal(diags)
		}
		out = append(out, st)
	}
	blueprints.Link(out)
	return out
}

// uniqueStack is a shipped stack whose names (S3 buckets are global) carry
// a prefix of their own, so benchmark iterations never collide.
func uniqueStack(b *testing.B, id string) *blueprints.Stack {
	prefix := fmt.Sprintf("b%d", time.Now().UnixNano()%1e9)
	return shippedStack(b, id, [2]string{"name_prefix: medportal-", "name_prefix: " + prefix + "-"})
}
