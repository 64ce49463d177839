package analysis_test

import (
	"testing"

	"portal/internal/analysis"
	"portal/internal/blueprints"
)

// BenchmarkAnalyzeProd analyses the shipped prod environment: its layer
// and three stacks, every path, key, certificate and routing scenario.
func BenchmarkAnalyzeProd(b *testing.B) {
	set, _ := blueprints.LoadDir(shipped)
	stacks := environment(b, set, "prod")
	b.ResetTimer()
	for range b.N {
		analysis.Analyze("prod", stacks)
	}
}
