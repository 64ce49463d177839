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
	Started  time.Time `json:"started"`
	Took     float64   `json:"took_s"`
	Commit   string    `json:"commit,omitempty"`
	Host     string    `json:"host"` // CPUs and Go version, so figures from different machines are not compared blindly
	Figures  []Figure  `json:"figures"`
	Missing  []string  `json:"missing,omitempty"`  // headline figures no benchmark produced
	Failures []string  `json:"failures,omitempty"` // steps that failed: go test, the portal, the load
	Loads    []LoadRun `json:"loads,omitempty"`
	Metrics  []Metric  `json:"go_benchmarks"`

	// Load and PeakRSS are the one HTTP load of reports written before
	// Loads (a sandbox portal on SQLite): ReadReport moves them there.
	Load    *LoadResult `json:"load,omitempty"`
	PeakRSS float64     `json:"portal_peak_rss_mib,omitempty"`
}

// LoadRun is one HTTP load of a report: which portal, under which load
// model, and what it measured.
type LoadRun struct {
	// Key names the run in figure keys: "sqlite" (whose figures keep the
	// keys of the reports before replicas), "postgres", each with
	// "-think" for the think-time model.
	Key    string `json:"key"`
	Portal string `json:"portal"` // e.g. "two sandbox replicas on PostgreSQL behind the load balancer"
	Model  string `json:"model"`  // saturation or think time, in words
	// Replicas is how many portal processes served the load.
	Replicas int        `json:"replicas"`
	Load     LoadResult `json:"load"`
	// PeakRSS is each replica's peak resident set size so far, in MiB,
	// read when the load ended.
	PeakRSS []float64 `json:"peak_rss_mib"`
	// QueriesPerRequest is the statements the database ran during the
	// load (the clients' sign-ins and the background jobs included)
	// divided by the page requests; Queries are the most called ones.
	// PostgreSQL only (pg_stat_statements).
	QueriesPerRequest float64     `json:"queries_per_request,omitempty"`
	Queries           []QueryStat `json:"queries,omitempty"`
}

// The load models, as the report names them.
const (
	ModelSaturation = "saturation: a closed loop, each client asks for the next page as soon as the last one is in"
	modelThink      = "think time: each client pauses %s on average (uniform between half and one and a half times) between pages, as people read a page, and opens its first page at a random point of the first pause"
)

// ThinkModel names the think-time model with pause d.
func ThinkModel(d time.Duration) string { return fmt.Sprintf(modelThink, d) }

// PageLatencyTarget is the target for page latency with two
// replicas: p99 under this many milliseconds.
const PageLatencyTarget = 100.0

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
	if r.Load != nil && len(r.Loads) == 0 {
		run := LoadRun{Key: "sqlite", Portal: "a sandbox portal on SQLite", Model: ModelSaturation, Replicas: 1, Load: *r.Load}
		if r.PeakRSS > 0 {
			run.PeakRSS = []float64{r.PeakRSS}
		}
		r.Loads = []LoadRun{run}
	}
	r.Load, r.PeakRSS = nil, 0
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
	{"trail10m-ingest", "Trail ingest at 10,000,000 events", "events/s", true, metric("activity BenchmarkActivityTenMillion events/s", 1)},
	{"trail10m-p50", "Trail search p50 at 10,000,000 events", "ms", false, metric("activity BenchmarkActivityTenMillion search-p50-ms", 1)},
	{"trail10m-p95", "Trail search p95 at 10,000,000 events", "ms", false, metric("activity BenchmarkActivityTenMillion search-p95-ms", 1)},
	{"trail10m-ingest-pg", "Trail ingest at 10,000,000 events, PostgreSQL", "events/s", true, metric("activity"+PostgresSuffix+" BenchmarkActivityTenMillion events/s", 1)},
	{"trail10m-p50-pg", "Trail search p50 at 10,000,000 events, PostgreSQL", "ms", false, metric("activity"+PostgresSuffix+" BenchmarkActivityTenMillion search-p50-ms", 1)},
	{"trail10m-p95-pg", "Trail search p95 at 10,000,000 events, PostgreSQL", "ms", false, metric("activity"+PostgresSuffix+" BenchmarkActivityTenMillion search-p95-ms", 1)},
	{"revenue-p95", "Revenue query p95 at 1,000,000 rows (slowest query)", "ms", false, worst("billing", "BenchmarkRevenueQueries", "p95-ms", 1)},
	{"billing-sync", "Stripe sync throughput", "objects/s", true, metric("billing BenchmarkSyncBalanceTransactions objects/s", 1)},
	{"inventory-query", "Inventory query at 100,000 resources (slowest filter)", "ms", false, worst("inventory", "BenchmarkQuery100k", "ns/op", 1e-6)},
}

// Compute fills r.Figures and r.Missing from r.Metrics and r.Loads.
func (r *Report) Compute() {
	m := map[string]float64{}
	for _, x := range r.Metrics {
		m[x.Key()] = x.Value
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
	for _, run := range r.Loads {
		r.Figures = append(r.Figures, run.figures()...)
	}
}

// figures are a load's headline figures. The SQLite saturation run keeps
// the keys reports had before there were several runs, so it is compared
// with them.
func (run LoadRun) figures() []Figure {
	key, rss, on := "http-"+run.Key, "peak-rss-"+run.Key, " ("+run.label()+")"
	if run.Key == "sqlite" {
		key, rss = "http", "peak-rss"
	}
	t := run.Load.Total
	out := []Figure{
		{Key: key + "-rps", Label: "HTTP throughput, all four pages" + on, Unit: "req/s", Value: t.RPS, HigherIsBetter: true},
		{Key: key + "-p50", Label: "HTTP latency p50, all four pages" + on, Unit: "ms", Value: t.P50ms},
		{Key: key + "-p95", Label: "HTTP latency p95, all four pages" + on, Unit: "ms", Value: t.P95ms},
		{Key: key + "-p99", Label: "HTTP latency p99, all four pages" + on, Unit: "ms", Value: t.P99ms},
		{Key: key + "-failed", Label: "HTTP requests failed" + on, Unit: "requests", Value: float64(t.Failed)},
	}
	for i, v := range run.PeakRSS {
		k, l := rss, "Portal peak RSS"+on
		if len(run.PeakRSS) > 1 {
			k, l = fmt.Sprintf("%s-%d", rss, i+1), fmt.Sprintf("Replica %d peak RSS%s", i+1, on)
		}
		out = append(out, Figure{Key: k, Label: l, Unit: "MiB", Value: v})
	}
	if run.QueriesPerRequest > 0 {
		out = append(out, Figure{Key: key + "-queries", Label: "Database statements per page request" + on, Unit: "statements", Value: run.QueriesPerRequest})
	}
	for _, p := range run.Load.Pages {
		out = append(out,
			Figure{Key: key + "-rps-" + p.Name, Label: p.Name + " page throughput" + on, Unit: "req/s", Value: p.RPS, HigherIsBetter: true},
			Figure{Key: key + "-p95-" + p.Name, Label: p.Name + " page p95" + on, Unit: "ms", Value: p.P95ms})
	}
	return out
}

// label is the run in a few words: "SQLite, saturation".
func (run LoadRun) label() string {
	store := "SQLite"
	if strings.HasPrefix(run.Key, "postgres") {
		store = "PostgreSQL"
	}
	if run.Replicas > 1 {
		store = fmt.Sprintf("%d replicas on %s", run.Replicas, store)
	}
	if run.Load.ThinkMs > 0 {
		return store + ", think time"
	}
	return store + ", saturation"
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
	if len(r.Loads) > 0 {
		r.writeLoads(w, prev)
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

// writeLoads writes the HTTP loads side by side: what was loaded and
// how, the machine's load average beside every figure, whether the page
// latency target is met, then each load's pages.
func (r *Report) writeLoads(w io.Writer, prev *Report) {
	fmt.Fprintf(w, "\n## HTTP load\n\n")
	fmt.Fprintf(w, "Signed-in clients (compliance and finance roles, one session each) request the Overview, Runs, Activity and Billing pages round-robin. ")
	fmt.Fprintf(w, "The load generator runs on the same machine as the portals (and PostgreSQL, and the balancer), so every figure shares its CPUs with them; the load average is given beside each run.\n\n")
	for _, run := range r.Loads {
		fmt.Fprintf(w, "- **%s**: %s; %s.\n", run.label(), run.Portal, run.Model)
	}
	fmt.Fprintf(w, "\n| | %s |\n|---|", strings.Join(mapRuns(r.Loads, LoadRun.label), " | "))
	fmt.Fprint(w, strings.Repeat("---:|", len(r.Loads)), "\n")
	row := func(name string, cell func(LoadRun) string) {
		fmt.Fprintf(w, "| %s | %s |\n", name, strings.Join(mapRuns(r.Loads, cell), " | "))
	}
	row("clients", func(x LoadRun) string { return fmt.Sprint(x.Load.Clients) })
	row("pause between pages", func(x LoadRun) string {
		if x.Load.ThinkMs == 0 {
			return "none"
		}
		return fmt.Sprintf("%.1f s on average", x.Load.ThinkMs/1000)
	})
	row("duration", func(x LoadRun) string { return fmt.Sprintf("%.0f s", x.Load.Duration) })
	row("requests", func(x LoadRun) string { return fmt.Sprint(x.Load.Total.Requests) })
	row("failed", func(x LoadRun) string { return fmt.Sprint(x.Load.Total.Failed) })
	row("req/s", func(x LoadRun) string { return fmt.Sprintf("%.1f", x.Load.Total.RPS) })
	row("p50 ms", func(x LoadRun) string { return fmt.Sprintf("%.1f", x.Load.Total.P50ms) })
	row("p95 ms", func(x LoadRun) string { return fmt.Sprintf("%.1f", x.Load.Total.P95ms) })
	row("p99 ms", func(x LoadRun) string { return fmt.Sprintf("%.1f", x.Load.Total.P99ms) })
	row("peak RSS per replica", func(x LoadRun) string {
		return strings.Join(mapFloats(x.PeakRSS, func(v float64) string { return fmt.Sprintf("%.0f MiB", v) }), ", ")
	})
	row("uptime at the start", func(x LoadRun) string { return x.Load.UptimeStart })
	row("uptime at the end", func(x LoadRun) string { return x.Load.UptimeEnd })
	if prev != nil {
		prevRun := map[string]LoadRun{}
		for _, p := range prev.Loads {
			prevRun[p.Key] = p
		}
		row("previous report: clients, p99", func(x LoadRun) string {
			p, ok := prevRun[x.Key]
			if !ok {
				return "—"
			}
			return fmt.Sprintf("%d, %.1f ms (%s)", p.Load.Clients, p.Load.Total.P99ms, p.Load.UptimeEnd)
		})
	}
	fmt.Fprintln(w)
	for _, run := range r.Loads {
		if run.Replicas < 2 {
			continue
		}
		verdict := "missed"
		if run.Load.Total.Failed == 0 && run.Load.Total.Requests > 0 && run.Load.Total.P99ms < PageLatencyTarget {
			verdict = "met"
		}
		fmt.Fprintf(w, "Target p99 under %.0f ms with %d replicas, %s: **%s** (p99 %.1f ms, %s at the end).\n\n",
			PageLatencyTarget, run.Replicas, run.label(), verdict, run.Load.Total.P99ms, run.Load.UptimeEnd)
	}
	for _, run := range r.Loads {
		fmt.Fprintf(w, "### %s\n\n| page | requests | failed | req/s | p50 ms | p95 ms | p99 ms |\n|---|---:|---:|---:|---:|---:|---:|\n", run.label())
		for _, p := range append(run.Load.Pages, run.Load.Total) {
			fmt.Fprintf(w, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f |\n", p.Name, p.Requests, p.Failed, p.RPS, p.P50ms, p.P95ms, p.P99ms)
		}
		for _, e := range run.Load.Errors {
			fmt.Fprintf(w, "\n- failure seen: `%s`", e)
		}
		fmt.Fprintln(w)
		if len(run.Queries) > 0 {
			fmt.Fprintf(w, "\n%.1f statements per page request on PostgreSQL (pg_stat_statements over the load, sign-ins and background jobs included). The most called:\n\n", run.QueriesPerRequest)
			fmt.Fprintf(w, "| calls | per request | mean ms | total ms | statement |\n|---:|---:|---:|---:|---|\n")
			for _, q := range run.Queries {
				fmt.Fprintf(w, "| %d | %.2f | %.3f | %.0f | `%s` |\n", q.Calls, q.PerRequest, q.MeanMs, q.TotalMs, strings.ReplaceAll(q.Query, "|", "\\|"))
			}
			fmt.Fprintln(w)
		}
	}
}

func mapRuns(runs []LoadRun, f func(LoadRun) string) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}

func mapFloats(xs []float64, f func(float64) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
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
