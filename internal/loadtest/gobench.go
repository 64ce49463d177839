package loadtest

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Metric is one figure a Go benchmark reported: ns/op, B/op, allocs/op or
// a unit of its own from b.ReportMetric.
type Metric struct {
	Package   string  `json:"package"`   // portal/internal/engine
	Benchmark string  `json:"benchmark"` // BenchmarkApplyOneStack or BenchmarkQuery100k/all, without the -GOMAXPROCS suffix
	Unit      string  `json:"unit"`
	Value     float64 `json:"value"`
}

// Key names the metric across reports: "engine BenchmarkApplyOneStack apply-s".
func (m Metric) Key() string {
	return strings.TrimPrefix(m.Package, "portal/internal/") + " " + m.Benchmark + " " + m.Unit
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// ParseGoBench reads `go test -bench` output and returns every metric of
// every benchmark line, in order. A benchmark that ran more than once (a
// -count above 1) keeps its last value.
func ParseGoBench(r io.Reader) []Metric {
	var out []Metric
	index := map[string]int{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		// name, iterations, then value/unit pairs.
		if len(f) < 4 || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			m := Metric{Package: pkg, Benchmark: name, Unit: f[i+1], Value: v}
			if j, ok := index[m.Key()]; ok {
				out[j] = m
				continue
			}
			index[m.Key()] = len(out)
			out = append(out, m)
		}
	}
	return out
}

// PostgresSuffix marks the package of a metric measured on PostgreSQL
// (PORTAL_TEST_STORE=postgres), so it sits beside its SQLite twin.
const PostgresSuffix = " (PostgreSQL)"
