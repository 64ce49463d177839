package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// Figure is one headline number of a report.
type Figure struct {
	Key   string  `json:"key"`
	Label string  `json:"label"`
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
	// HigherIsBetter says which way a change is an improvement.
	HigherIsBetter bool `json:"higher_is_better,omitempty"`
}

// Report is what `portal-dev bench` writes, as JSON and as Markdown.
type Report struct {
	Started  time.Time   `json:"started"`
	Took     float64     `json:"took_s"`
	Commit   string      `json:"commit,omitempty"`
	Host     string      `json:"host"` // CPUs and Go version, so figures from different machines are not compared blindly
	Figures  []Figure    `json:"figures"`
	Missing  []string    `json:"missing,omitempty"`  // headline figures no benchmark produced
	Failures []string    `json:"failures,omitempty"` // steps that failed: go test, the portal, the load
	Load     *LoadResult `json:"load,omitempty"`
	PeakRSS  float64     `json:"portal_peak_rss_mib,omitempty"`
	Metrics  []Metric    `json:"go_benchmarks"`
}

// ReadReport reads a report written by WriteJSON.
func ReadReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("loadtest: %s: %w", path, err)
	}
	return &r, nil
}

// WriteJSON writes r as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// headline is how one headline figure is read from the run's numbers.
type headline struct {
	key, label, unit string
	higher           bool
	value            func(m map[string]float64, ms []Metric) (float64, bool)
}

func metric(key string, scale float64) func(map[string]float64, []Metric) (float64, bool) {
	return func(m map[string]float64, _ []Metric) (float64, bool) {
		v, ok := m[key]
		return v * scale, ok
	}
}

func ratio(num, den string) func(map[string]float64, []Metric) (float64, bool) {
	return func(m map[string]float64, _ []Metric) (float64, bool) {
		a, ok1 := m[num]
		b, ok2 := m[den]
		if !ok1 || !ok2 || b == 0 {
			return 0, false
		}
		return a / b, true
	}
}

// worst is the largest value of unit over the sub-benchmarks of bench.
func worst(pkg, bench, unit string, scale float64) func(map[string]float64, []Metric) (float64, bool) {
	return func(_ map[string]float64, ms []Metric) (float64, bool) {
		v, ok := 0.0, false
		for _, x := range ms {
			if strings.HasSuffix(x.Package, "/"+pkg) && strings.HasPrefix(x.Benchmark, bench+"/") && x.Unit == unit {
				v, ok = max(v, x.Value*scale), true
			}
		}
		return v, ok
	}
}

// headlines are the figures the issue asks every report to show.
var headlines = []headline{
	{"plan-one", "Plan one stack (EU dev, moto)", "s", false, metric("engine BenchmarkApplyOneStack plan-s", 1)},
	{"apply-one", "Apply one stack, parallel", "s", false, metric("engine BenchmarkApplyOneStack apply-s", 1)},
	{"apply-one-serial", "Apply one stack, serial (same run)", "s", false, metric("engine BenchmarkApplyOneStack serial-apply-s", 1)},
	{"apply-one-ratio", "Apply one stack: parallel / serial time", "ratio", false, ratio("engine BenchmarkApplyOneStack apply-s", "engine BenchmarkApplyOneStack serial-apply-s")},
	{"apply-one-calls", "AWS calls to plan and apply one stack", "calls", false, metric("engine BenchmarkApplyOneStack aws-calls", 1)},
	{"apply-one-latency", "Apply one stack, 30 ms per AWS call, parallel", "s", false, metric("engine BenchmarkApplyOneStackWithLatency apply-s", 1)},
	{"apply-one-latency-ratio", "Apply one stack, 30 ms per AWS call: parallel / serial time", "ratio", false,
		ratio("engine BenchmarkApplyOneStackWithLatency apply-s", "engine BenchmarkApplyOneStackWithLatency serial-apply-s")},
	{"estate-wall", "Apply the whole estate from empty (9 stacks, 3 layers), 50 ms per AWS call: wall time", "s", false, metric("engine BenchmarkApplyEstate wall-s", 1)},
	{"estate-critical", "Whole estate: critical path (longest dependency chain)", "s", false, metric("engine BenchmarkApplyEstate critical-path-s", 1)},
	{"estate-serial", "Whole estate: serial time (every step in turn)", "s", false, metric("engine BenchmarkApplyEstate serial-s", 1)},
	{"estate-ratio", "Whole estate: wall time / critical path", "ratio", false, ratio("engine BenchmarkApplyEstate wall-s", "engine BenchmarkApplyEstate critical-path-s")},
	{"estate-calls", "AWS calls to plan and apply the whole estate", "calls", false, metric("engine BenchmarkApplyEstate aws-calls", 1)},
	{"plan-10000", "Plan a 10,000-resource graph", "s", false, metric("engine BenchmarkPlan10000 ns/op", 1e-9)},
	{"trail-ingest", "Trail ingest at 1,000,000 events", "events/s", true, metric("activity BenchmarkActivityMillion events/s", 1)},
	{"trail-p50", "Trail search p50 at 1,000,000 events", "ms", false, metric("activity BenchmarkActivityMillion search-p50-ms", 1)},
	{"trail-p95", "Trail search p95 at 1,000,000 events", "ms", false, metric("activity BenchmarkActivityMillion search-p95-ms", 1)},
	{"trail-ingest-pg", "Trail ingest at 1,000,000 events, PostgreSQL", "events/s", true, metric("activity"+PostgresSuffix+" BenchmarkActivityMillion events/s", 1)},
	{"trail-p50-pg", "Trail search p50 at 1,000,000 events, PostgreSQL", "ms", false, metric("activity"+PostgresSuffix+" BenchmarkActivityMillion search-p50-ms", 1)},
	{"trail-p95-pg", "Trail search p95 at 1,000,000 events, PostgreSQL", "ms", false, metric("activity"+PostgresSuffix+" BenchmarkActivityMillion search-p95-ms", 1)},
	{"revenue-p95", "Revenue query p95 at 1,000,000 rows (slowest query)", "ms", false, worst("billing", "BenchmarkRevenueQueries", "p95-ms", 1)},
	{"billing-sync", "Stripe sync throughput", "objects/s", true, metric("billing BenchmarkSyncBalanceTransactions objects/s", 1)},
	{"inventory-query", "Inventory query at 100,000 resources (slowest filter)", "ms", false, worst("inventory", "BenchmarkQuery100k", "ns/op", 1e-6)},
	{"http-rps", "HTTP throughput, all four pages", "req/s", true, metric("http all rps", 1)},
	{"http-p50", "HTTP latency p50, all four pages", "ms", false, metric("http all p50", 1)},
	{"http-p95", "HTTP latency p95, all four pages", "ms", false, metric("http all p95", 1)},
	{"http-p99", "HTTP latency p99, all four pages", "ms", false, metric("http all p99", 1)},
	{"http-failed", "HTTP requests failed", "requests", false, metric("http all failed", 1)},
	{"peak-rss", "Portal peak RSS (sandbox process, end of run)", "MiB", false, metric("portal peak-rss", 1)},
}

// Compute fills r.Figures and r.Missing from r.Metrics, r.Load and
// r.PeakRSS.
func (r *Report) Compute() {
	m := map[string]float64{}
	for _, x := range r.Metrics {
		m[x.Key()] = x.Value
	}
	if r.Load != nil {
		for _, p := range append([]PageStats{r.Load.Total}, r.Load.Pages...) {
			m["http "+p.Name+" rps"] = p.RPS
			m["http "+p.Name+" p50"] = p.P50ms
			m["http "+p.Name+" p95"] = p.P95ms
			m["http "+p.Name+" p99"] = p.P99ms
			m["http "+p.Name+" failed"] = float64(p.Failed)
		}
	}
	if r.PeakRSS > 0 {
		m["portal peak-rss"] = r.PeakRSS
	}
	r.Figures, r.Missing = nil, nil
	for _, h := range headlines {
		v, ok := h.value(m, r.Metrics)
		if !ok {
			r.Missing = append(r.Missing, h.label)
			continue
		}
		r.Figures = append(r.Figures, Figure{Key: h.key, Label: h.label, Unit: h.unit, Value: v, HigherIsBetter: h.higher})
	}
	if r.Load != nil {
		for _, p := range r.Load.Pages {
			r.Figures = append(r.Figures,
				Figure{Key: "http-rps-" + p.Name, Label: p.Name + " page throughput", Unit: "req/s", Value: p.RPS, HigherIsBetter: true},
				Figure{Key: "http-p95-" + p.Name, Label: p.Name + " page p95", Unit: "ms", Value: p.P95ms})
		}
	}
}

// WriteMarkdown writes r, each figure beside prev's (nil when there is no
// previous report).
func (r *Report) WriteMarkdown(w io.Writer, prev *Report, prevName string) {
	fmt.Fprintf(w, "# Portal benchmark report\n\n")
	fmt.Fprintf(w, "Run %s, took %s, commit `%s`, %s.\n\n", r.Started.Format(time.RFC3339), time.Duration(r.Took*float64(time.Second)).Round(time.Second), r.Commit, r.Host)
	if prev != nil {
		fmt.Fprintf(w, "Compared with `%s` (run %s, commit `%s`, %s).\n\n", prevName, prev.Started.Format(time.RFC3339), prev.Commit, prev.Host)
	} else {
		fmt.Fprintf(w, "No previous report in the folder: the next run is compared with this one.\n\n")
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "> **Failed:** %s\n\n", f)
	}
	prevFig := map[string]Figure{}
	if prev != nil {
		for _, f := range prev.Figures {
			prevFig[f.Key] = f
		}
	}
	fmt.Fprintf(w, "## Headline figures\n\n| figure | this run | previous | change |\n|---|---:|---:|---:|\n")
	for _, f := range r.Figures {
		p, ok := prevFig[f.Key]
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", f.Label, num(f.Value, f.Unit), prevCell(p, ok), change(f.Value, p.Value, ok, f.HigherIsBetter))
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "| %s | *not measured* | | |\n", m)
	}
	if l := r.Load; l != nil {
		fmt.Fprintf(w, "\n## HTTP load\n\n%d signed-in clients (compliance and finance roles, one session each) requesting the pages round-robin for %.0f s.\n\n", l.Clients, l.Duration)
		fmt.Fprintf(w, "| page | requests | failed | req/s | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range append(l.Pages, l.Total) {
			fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f |\n", p.Name, p.Requests, p.Failed, p.RPS, p.P50ms, p.P95ms, p.P99ms)
		}
		for _, e := range l.Errors {
			fmt.Fprintf(w, "\n- failure seen: `%s`", e)
		}
		fmt.Fprintln(w)
	}
	prevM := map[string]float64{}
	if prev != nil {
		for _, m := range prev.Metrics {
			prevM[m.Key()] = m.Value
		}
	}
	fmt.Fprintf(w, "\n## Every Go benchmark metric\n\n| package | benchmark | unit | this run | previous | change |\n|---|---|---|---:|---:|---:|\n")
	for _, m := range r.Metrics {
		p, ok := prevM[m.Key()]
		higher := strings.HasSuffix(m.Unit, "/s") || strings.HasSuffix(m.Unit, "speedup")
		pc := ""
		if ok {
			pc = num(p, "")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", strings.TrimPrefix(m.Package, "portal/"), m.Benchmark, m.Unit, num(m.Value, ""), pc, change(m.Value, p, ok, higher))
	}
}

func prevCell(f Figure, ok bool) string {
	if !ok {
		return "—"
	}
	return num(f.Value, f.Unit)
}

func num(v float64, unit string) string {
	var s string
	switch a := math.Abs(v); {
	case a == math.Trunc(a) && a < 1e15:
		s = fmt.Sprintf("%.0f", v)
	case a >= 100:
		s = fmt.Sprintf("%.0f", v)
	case a >= 1:
		s = fmt.Sprintf("%.2f", v)
	default:
		s = fmt.Sprintf("%.3g", v)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

// change is the relative change from prev to v, marked when it is a
// regression of more than 10%.
func change(v, prev float64, ok, higherIsBetter bool) string {
	if !ok {
		return ""
	}
	if prev == 0 {
		if v == 0 {
			return "="
		}
		return "new"
	}
	pct := (v - prev) / math.Abs(prev) * 100
	s := fmt.Sprintf("%+.0f%%", pct)
	worse := pct > 10
	if higherIsBetter {
		worse = pct < -10
	}
	if worse {
		s += " **worse**"
	}
	return s
}
