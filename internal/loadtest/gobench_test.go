package loadtest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
pkg: portal/internal/engine
cpu: AMD EPYC
BenchmarkApplyOneStack-2   	       1	12000000000 ns/op	         1.50 apply-s	       120.0 aws-calls
--- BENCH: BenchmarkApplyOneStack-2
    bench_test.go:99: noise
PASS
ok  	portal/internal/engine	30.1s
pkg: portal/internal/inventory
BenchmarkQuery100k/all-2         	     100	   2500000 ns/op	  1000 B/op	      20 allocs/op
BenchmarkQuery100k/all-2         	     100	   2400000 ns/op	  1000 B/op	      20 allocs/op
BenchmarkBroken-2 FAIL
`
	got := ParseGoBench(strings.NewReader(out))
	want := []Metric{
		{"portal/internal/engine", "BenchmarkApplyOneStack", "ns/op", 12e9},
		{"portal/internal/engine", "BenchmarkApplyOneStack", "apply-s", 1.5},
		{"portal/internal/engine", "BenchmarkApplyOneStack", "aws-calls", 120},
		{"portal/internal/inventory", "BenchmarkQuery100k/all", "ns/op", 2.4e6},
		{"portal/internal/inventory", "BenchmarkQuery100k/all", "B/op", 1000},
		{"portal/internal/inventory", "BenchmarkQuery100k/all", "allocs/op", 20},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if k := got[1].Key(); k != "engine BenchmarkApplyOneStack apply-s" {
		t.Errorf("key: got %q, want %q", k, "engine BenchmarkApplyOneStack apply-s")
	}
}
