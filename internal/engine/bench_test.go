package engine_test

import (
	"context"
	"fmt"
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

// BenchmarkApplyNineStacks plans and applies all nine shipped stacks at
// once, dev, test and prod each in its own fresh account.
func BenchmarkApplyNineStacks(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		hs := map[string]*harness{}
		for _, env := range regions.EnvironmentNames() {
			hs[env] = newHarness(&testing.T{})
		}
		var stacks []*blueprints.Stack
		for _, env := range regions.EnvironmentNames() {
			for _, j := range regions.Jurisdictions() {
				stacks = append(stacks, uniqueStack(b, regions.StackID(env, j.ID)))
			}
		}
		b.StartTimer()
		p, a, calls := applyStacks(b, hs, stacks, 8)
		b.ReportMetric(p.Seconds(), "plan-s")
		b.ReportMetric(a.Seconds(), "apply-s")
		b.ReportMetric(float64(calls), "aws-calls")
	}
}

// uniqueStack is a shipped stack whose names (S3 buckets are global) carry
// a prefix of their own, so benchmark iterations never collide.
func uniqueStack(b *testing.B, id string) *blueprints.Stack {
	prefix := fmt.Sprintf("b%d", time.Now().UnixNano()%1e9)
	return shippedStack(b, id, [2]string{"name_prefix: medportal-", "name_prefix: " + prefix + "-"})
}
