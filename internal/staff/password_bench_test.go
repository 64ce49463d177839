package staff_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"portal/internal/staff"
)

// BenchmarkSignInBurst checks 100 passwords at once, as when many people
// sign in together or someone guesses at the sign-in form, and reports
// the peak heap: argon2id takes 19 MiB a computation, and the portal runs
// only as many at once as it has cores.
func BenchmarkSignInBurst(b *testing.B) {
	hash, err := staff.HashPassword("correct horse battery staple", staff.DefaultHashParams)
	if err != nil {
		b.Fatal(err)
	}
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				if ok, err := staff.CheckPassword(hash, "wrong guess at the form"); err != nil || ok {
					b.Errorf("check: %v %v", ok, err)
				}
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	close(stop)
	<-sampled
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
