package activity

import (
	"math/rand/v2"
	"testing"
	"time"
)

// backgroundRaws is n of Background's records, as CloudTrail writes them,
// and their average size.
func backgroundRaws(n int) ([][]byte, int) {
	end := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	recs := Background(rand.New(rand.NewPCG(1, 2)), []string{"111111111111"}, []string{"eu-central-1"}, end.Add(-24*time.Hour), end, n)
	raws := make([][]byte, len(recs))
	size := 0
	for i, r := range recs {
		raws[i] = r.JSON()
		size += len(raws[i])
	}
	return raws, size / len(raws)
}

// BenchmarkValueVector: building the words of one event's record for
// PostgreSQL's free-text index, a large part of ingestion's own CPU.
func BenchmarkValueVector(b *testing.B) {
	raws, size := backgroundRaws(500)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		valueVector(raws[i%len(raws)])
	}
}

// BenchmarkParseRecord: reading one CloudTrail record, the other large
// part of ingestion's own CPU.
func BenchmarkParseRecord(b *testing.B) {
	raws, size := backgroundRaws(500)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := ParseRecord(raws[i%len(raws)]); err != nil {
			b.Fatal(err)
		}
	}
}
