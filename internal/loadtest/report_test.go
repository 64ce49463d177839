package loadtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReportComparesWithPrevious(t *testing.T) {
	run := func(apply, serial, p95, pgP99 float64) *Report {
		r := &Report{Metrics: []Metric{
			{"portal/internal/engine", "BenchmarkApplyOneStack", "apply-s", apply},
			{"portal/internal/engine", "BenchmarkApplyOneStack", "serial-apply-s", serial},
			{"portal/internal/billing", "BenchmarkRevenueQueries/a", "p95-ms", p95},
			{"portal/internal/billing", "BenchmarkRevenueQueries/b", "p95-ms", p95 / 2},
		}, Loads: []LoadRun{
			{Key: "sqlite", Portal: "a sandbox portal on SQLite", Model: ModelSaturation, Replicas: 1, PeakRSS: []float64{100},
				Load: LoadResult{Clients: 2, Duration: 1, Total: PageStats{Name: "all", RPS: 100, P95ms: 20}, UptimeEnd: "load average: 1.00, 0.50, 0.25",
					Pages: []PageStats{{Name: "Overview", RPS: 100, P95ms: 20}}}},
			{Key: "postgres", Portal: "2 sandbox replicas on PostgreSQL", Model: ModelSaturation, Replicas: 2, PeakRSS: []float64{90, 95},
				QueriesPerRequest: 7.5, Queries: []QueryStat{{Query: "SELECT data FROM sessions WHERE token = $1", Calls: 10, PerRequest: 1}},
				Load: LoadResult{Clients: 2, Duration: 1, Total: PageStats{Name: "all", Requests: 10, RPS: 80, P99ms: pgP99}, UptimeEnd: "load average: 2.00, 1.00, 0.50"}},
			{Key: "postgres-think", Portal: "2 sandbox replicas on PostgreSQL", Model: ThinkModel(1e9), Replicas: 2, PeakRSS: []float64{90, 95},
				Load: LoadResult{Clients: 2, Duration: 1, ThinkMs: 1000, Total: PageStats{Name: "all", Requests: 10, RPS: 2, P99ms: 40}}},
		}}
		r.Compute()
		return r
	}
	prev, cur := run(2, 8, 100, 150), run(3, 9, 100, 300)
	fig := map[string]float64{}
	for _, f := range cur.Figures {
		fig[f.Key] = f.Value
	}
	for key, want := range map[string]float64{"apply-one": 3, "apply-one-ratio": 3.0 / 9, "revenue-p95": 100, "http-rps": 100, "peak-rss": 100, "http-p95-Overview": 20,
		"http-postgres-p99": 300, "peak-rss-postgres-1": 90, "peak-rss-postgres-2": 95, "http-postgres-queries": 7.5, "http-postgres-think-p99": 40} {
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
		"| HTTP latency p99, all four pages (2 replicas on PostgreSQL, saturation) | 300 ms | 150 ms | +100% **worse** |",
		"| | SQLite, saturation | 2 replicas on PostgreSQL, saturation | 2 replicas on PostgreSQL, think time |",
		"| peak RSS per replica | 100 MiB | 90 MiB, 95 MiB | 90 MiB, 95 MiB |",
		"| uptime at the end | load average: 1.00, 0.50, 0.25 | load average: 2.00, 1.00, 0.50 |",
		"Target p99 under 100 ms with 2 replicas, 2 replicas on PostgreSQL, saturation: **missed** (p99 300.0 ms",
		"Target p99 under 100 ms with 2 replicas, 2 replicas on PostgreSQL, think time: **met** (p99 40.0 ms",
		"7.5 statements per page request on PostgreSQL",
		"| 10 | 1.00 |",
		"Compared with `bench-prev.md`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// A report written before there were several loads keeps being compared:
// its one load becomes the SQLite run.
func TestReadReportMovesTheOldLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench-latest.json")
	old := `{"started": "2026-12-01T10:00:00Z", "host": "2 CPUs", "figures": [], "go_benchmarks": [],
		"load": {"clients": 20, "duration_s": 30, "total": {"name": "all", "requests": 600, "p99_ms": 80}, "pages": []},
		"portal_peak_rss_mib": 120}`
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Loads) != 1 || r.Loads[0].Key != "sqlite" || r.Loads[0].Load.Clients != 20 || r.Loads[0].Load.Total.P99ms != 80 ||
		len(r.Loads[0].PeakRSS) != 1 || r.Loads[0].PeakRSS[0] != 120 || r.Load != nil {
		t.Errorf("got loads %+v (old load %v), want the old load as the SQLite run with its peak RSS", r.Loads, r.Load)
	}
}
