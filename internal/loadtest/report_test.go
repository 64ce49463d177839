package loadtest

import (
	"strings"
	"testing"
)

func TestReportComparesWithPrevious(t *testing.T) {
	run := func(apply, serial, p95 float64) *Report {
		r := &Report{Metrics: []Metric{
			{"portal/internal/engine", "BenchmarkApplyOneStack", "apply-s", apply},
			{"portal/internal/engine", "BenchmarkApplyOneStack", "serial-apply-s", serial},
			{"portal/internal/billing", "BenchmarkRevenueQueries/a", "p95-ms", p95},
			{"portal/internal/billing", "BenchmarkRevenueQueries/b", "p95-ms", p95 / 2},
		}, Load: &LoadResult{Clients: 2, Duration: 1, Total: PageStats{Name: "all", RPS: 100, P95ms: 20},
			Pages: []PageStats{{Name: "Overview", RPS: 100, P95ms: 20}}}, PeakRSS: 100}
		r.Compute()
		return r
	}
	prev, cur := run(2, 8, 100), run(3, 9, 100)
	fig := map[string]float64{}
	for _, f := range cur.Figures {
		fig[f.Key] = f.Value
	}
	for key, want := range map[string]float64{"apply-one": 3, "apply-one-ratio": 3.0 / 9, "revenue-p95": 100, "http-rps": 100, "peak-rss": 100, "http-p95-Overview": 20} {
		if got := fig[key]; got != want {
			t.Errorf("figure %s: got %v, want %v", key, got, want)
		}
	}
	var b strings.Builder
	cur.WriteMarkdown(&b, prev, "bench-prev.md")
	md := b.String()
	for _, want := range []string{
		"| Apply one stack, parallel | 3 s | 2 s | +50% **worse** |",
		"| Revenue query p95 at 1,000,000 rows (slowest query) | 100 ms | 100 ms | +0% |",
		"| Trail search p95 at 1,000,000 events | *not measured* | | |",
		"Compared with `bench-prev.md`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
